"""Share links: a founder hands a report, or the live investor dashboard, to someone without an account.

A link's token is ``<link id>.<secret>``; only the SHA-256 of the secret is kept, and the optional passcode only as
an argon2 hash. The id finds the row before its org is known (the credential-id policy of ``share_links``). An
expired, revoked or forged token answers like a missing page. Passcode attempts are rate limited per link, and
every view is written to the org's audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.audit import service as audit_service
from northstar.core.context import ClientMeta
from northstar.core.db import get_in_org, set_tenant_context, settings_of
from northstar.core.http import AppError, NotFound
from northstar.core.permissions import Principal
from northstar.core.ratelimit import RateLimiter
from northstar.core.security import hash_password, verify_password
from northstar.reports.models import Report, ShareLink
from northstar.reports.service.generation import get_report
from northstar.settings import Settings

PASSCODE_ATTEMPTS = 5  # wrong passcodes per link per window
PASSCODE_WINDOW_SECONDS = 900
GONE = "This link is invalid or has expired"


class PasscodeNeeded(AppError):
    status = 401
    code = "passcode_required"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_share(
    session: AsyncSession,
    *,
    principal: Principal,
    report_id: uuid.UUID | None,
    label: str,
    expires_in_days: int,
    passcode: str | None,
) -> tuple[ShareLink, str]:
    """A link to a report (or, with no report, the live investor dashboard) and its token, shown once."""
    if report_id is not None:
        await get_report(session, org_id=principal.org_id, report_id=report_id)
    secret = secrets.token_urlsafe(32)
    link = ShareLink(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        report_id=report_id,
        token_hash=_digest(secret),
        passcode_hash=hash_password(settings_of(session), passcode) if passcode else None,
        label=label,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_in_days),
        created_by=principal.user_id,
    )
    session.add(link)
    await session.flush()
    await session.refresh(link)
    return link, f"{link.id.hex}.{secret}"


async def list_shares(
    session: AsyncSession, *, org_id: uuid.UUID, report_id: uuid.UUID | None = None
) -> list[ShareLink]:
    query = select(ShareLink).where(ShareLink.org_id == org_id)
    if report_id is not None:
        query = query.where(ShareLink.report_id == report_id)
    return list((await session.scalars(query.order_by(ShareLink.created_at.desc()))).all())


async def revoke_share(session: AsyncSession, *, org_id: uuid.UUID, share_id: uuid.UUID) -> ShareLink:
    link = await get_in_org(session, ShareLink, share_id, org_id=org_id, missing="No such share link")
    if link.revoked_at is None:
        link.revoked_at = dt.datetime.now(dt.UTC)
        await session.flush()
    return link


def link_url(settings: Settings, token: str) -> str:
    """Where a share link's holder opens it."""
    return f"{settings.public_url.rstrip('/')}/shared/{token}"


def _parse(token: str) -> tuple[uuid.UUID, str]:
    link_hex, _, secret = token.partition(".")
    try:
        return uuid.UUID(hex=link_hex), secret
    except ValueError:
        raise NotFound(GONE, code="link_expired") from None


async def open_share(
    session: AsyncSession,
    *,
    token: str,
    passcode: str | None,
    limiter: RateLimiter,
    client: ClientMeta,
) -> tuple[ShareLink, Report | None]:
    """The link a token names and its report (None: the live dashboard), the session bound to the link's org and
    the view audited. Raises ``PasscodeNeeded`` before a view of a link with a passcode, 429 after too many
    wrong ones, and 404 for anything expired, revoked or forged."""
    link_id, secret = _parse(token)
    rows = await set_tenant_context(
        session,
        credential_id=link_id,
        then="SELECT org_id FROM reports.share_links WHERE id = {id}",
        params={"id": str(link_id)},
    )
    if not rows:
        raise NotFound(GONE, code="link_expired")
    await set_tenant_context(session, org_id=rows[0].org_id)
    link = await get_in_org(session, ShareLink, link_id, org_id=rows[0].org_id, missing=GONE)
    now = dt.datetime.now(dt.UTC)
    if not hmac.compare_digest(link.token_hash, _digest(secret)) or link.revoked_at or link.expires_at <= now:
        raise NotFound(GONE, code="link_expired")
    if link.passcode_hash is not None:
        if not passcode:
            raise PasscodeNeeded("This link asks for a passcode")
        await limiter.enforce(
            f"share-passcode:{link.id}", limit=PASSCODE_ATTEMPTS, window_seconds=PASSCODE_WINDOW_SECONDS
        )
        if not verify_password(settings_of(session), link.passcode_hash, passcode):
            raise PasscodeNeeded("The passcode is not right", code="passcode_wrong")
    link.views += 1
    link.last_viewed_at = now
    report = await get_report(session, org_id=link.org_id, report_id=link.report_id) if link.report_id else None
    await audit_service.record(
        session,
        org_id=link.org_id,
        action="reports.share_viewed",
        actor_type="share_link",
        actor_id=link.id,
        client=client,
        target_type="report" if report else "investor_dashboard",
        target_id=str(report.id) if report else "",
        details={"label": link.label, "views": link.views},
    )
    await session.flush()
    return link, report
