"""Data-subject requests (export, erasure), consent logs and audit retention.

Subjects: ``user`` is the caller's own account; ``visitor`` is a site visitor named by the id the merchant knows
them by (customer id or e-mail, as passed to ``identify`` or as ``visitorId``); ``visitor_hash`` is a stored
visitor id. A request keeps only a keyed digest of its subject, so the record of an erasure does not name whom it
erased; an export keeps its subject encrypted until its job has run, then drops it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import data_subject as accounts_subject
from northstar.accounts.service import pii
from northstar.audit import service as audit
from northstar.core import crypto
from northstar.core.db import fetch_page, settings_of
from northstar.core.http import NotFound, Unprocessable
from northstar.core.permissions import Principal
from northstar.core.queue import enqueue_named
from northstar.core.security import field_cipher
from northstar.core.storage import ObjectStore, expiring_link
from northstar.privacy.models import ConsentLog, PrivacyRequest, PrivacySettings
from northstar.settings import Settings
from northstar.socialproof.service import privacy as socialproof_privacy

EXPORT_TASK = "privacy.export"
DOWNLOADS = "privacy/exports"  # the purpose of the key that signs export links
MAX_RETENTION_DAYS = 2557  # 7 years


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Subject:
    type: str  # user | visitor | visitor_hash
    value: str  # the user id, the merchant's id for the visitor, or the stored visitor id


def subject_digest(settings: Settings, subject: Subject) -> str:
    """A keyed digest: requests about the same subject can be matched, and the digest names nobody."""
    return crypto.blind_index(settings.resolved_secret_key(), "privacy-subject", f"{subject.type}:{subject.value}")


def subject_for(principal: Principal, *, subject_type: str, value: str | None) -> Subject:
    """The subject a request names; ``user`` is always the caller (an org admin does not erase accounts)."""
    if subject_type == "user":
        if principal.user_id is None:
            raise Unprocessable("Only a signed-in user can ask about their own account", code="user_required")
        return Subject("user", str(principal.user_id))
    if not value or not value.strip():
        raise Unprocessable(
            "Name the visitor", code="subject_required", details=[{"field": "subject", "message": "required"}]
        )
    return Subject(subject_type, value.strip())


async def _new_request(session: AsyncSession, *, principal: Principal, kind: str, subject: Subject) -> PrivacyRequest:
    settings = settings_of(session)
    request = PrivacyRequest(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        kind=kind,
        subject_type=subject.type,
        subject_digest=subject_digest(settings, subject),
        requested_by=principal.user_id,
        result={},
    )
    session.add(request)
    await session.flush()
    return request


async def request_export(session: AsyncSession, *, principal: Principal, subject: Subject) -> PrivacyRequest:
    """Queue the export in this transaction; the job writes a JSON file and the request gets a signed link."""
    request = await _new_request(session, principal=principal, kind="export", subject=subject)
    request.subject_encrypted = field_cipher(settings_of(session)).encrypt(
        subject.value, associated_data=str(request.id)
    )
    request.job_id = await enqueue_named(session, EXPORT_TASK, org_id=principal.org_id, request_id=str(request.id))
    await session.flush()
    return request


async def _visitor_keys(
    session: AsyncSession, *, org_id: uuid.UUID, subject: Subject
) -> socialproof_privacy.VisitorKeys:
    if subject.type == "visitor":
        return await socialproof_privacy.visitor_keys(session, org_id=org_id, identifier=subject.value)
    return await socialproof_privacy.visitor_keys(session, org_id=org_id, visitor_id=subject.value)


async def collect(session: AsyncSession, *, org_id: uuid.UUID, subject: Subject) -> dict[str, Any]:
    """Everything held about the subject in this org (and, for a user, their account)."""
    document: dict[str, Any] = {"subjectType": subject.type, "generatedAt": now().isoformat()}
    if subject.type == "user":
        document["account"] = await accounts_subject.export_user(session, user_id=uuid.UUID(subject.value))
    else:
        keys = await _visitor_keys(session, org_id=org_id, subject=subject)
        document["visitorIds"] = [{"siteId": str(site), "visitorId": vid} for site, vid in keys.pairs]
        document["socialProof"] = await socialproof_privacy.export_visitor(session, keys=keys)
    return document


async def run_export(session: AsyncSession, *, store: ObjectStore, request_id: uuid.UUID) -> PrivacyRequest:
    """The job: collect, write ``privacy/<org>/<request>.json``, forget the subject, audit the completion."""
    request = await session.get(PrivacyRequest, request_id, with_for_update=True)
    if request is None or request.kind != "export":
        raise NotFound("No such privacy request")
    if request.status == "completed" or request.subject_encrypted is None:
        return request
    value = field_cipher(settings_of(session)).decrypt(request.subject_encrypted, associated_data=str(request.id))
    document = await collect(session, org_id=request.org_id, subject=Subject(request.subject_type, value))
    key = f"privacy/{request.org_id}/{request.id}.json"
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    await store.put_bytes(key, data, content_type="application/json")
    request.file_key, request.status, request.completed_at = key, "completed", now()
    request.subject_encrypted = None
    request.result = {"bytes": len(data)}
    await audit.record(
        session,
        org_id=request.org_id,
        action="privacy.export_completed",
        actor_type="system",
        actor_id=None,
        target_type="privacy_request",
        target_id=str(request.id),
        details={"bytes": len(data)},
    )
    await session.flush()
    return request


async def check_own_erasure(session: AsyncSession, *, principal: Principal, confirm_email: str) -> None:
    """The confirmation of an account's erasure names that account's address (compared through the blind index)."""
    assert principal.user_id is not None
    found = await pii.user_id_by_email(session, confirm_email)
    if found != principal.user_id:
        raise Unprocessable(
            "Type your account's e-mail address to confirm",
            code="confirmation_mismatch",
            details=[{"field": "confirmEmail", "message": "does not match your account"}],
        )


async def erase(session: AsyncSession, *, principal: Principal, subject: Subject) -> PrivacyRequest:
    """Erase the subject now, in this transaction: their rows go, and the audit trail names them no more."""
    request = await _new_request(session, principal=principal, kind="erasure", subject=subject)
    pseudonym = f"erased:{request.id.hex[:12]}"
    counts: dict[str, int] = {}
    if subject.type == "user":
        user_id = uuid.UUID(subject.value)
        email = await pii.get_user_email(session, user_id=user_id, reader=pii.PLATFORM)
        name = await pii.get_user_full_name(session, user_id=user_id, reader=pii.PLATFORM)
        counts |= await accounts_subject.erase_user(session, org_id=principal.org_id, user_id=user_id)
        request.requested_by = None  # the record of the erasure does not name whom it erased
        await session.execute(
            update(PrivacyRequest).where(PrivacyRequest.requested_by == user_id).values(requested_by=None)
        )
        await session.execute(update(ConsentLog).where(ConsentLog.actor_id == user_id).values(actor_id=None))
        counts["sites"] = await socialproof_privacy.forget_creator(session, user_id=user_id)
        terms, actor = [email, name, str(user_id)], user_id
    else:
        keys = await _visitor_keys(session, org_id=principal.org_id, subject=subject)
        counts |= await socialproof_privacy.erase_visitor(session, keys=keys)
        forgotten = await session.execute(  # the consent log keeps the decision, not whose it was
            update(ConsentLog).where(ConsentLog.subject_digest.in_(keys.visitor_ids)).values(subject_digest=None)
        )
        counts["consent_logs"] = int(getattr(forgotten, "rowcount", 0) or 0)
        terms, actor = [subject.value, *keys.visitor_ids], None
    counts["audit_events"] = await audit.pseudonymise(
        session, terms=[t for t in terms if len(t) >= 3], pseudonym=pseudonym, actor_id=actor
    )
    request.status, request.completed_at, request.result = "completed", now(), counts
    await session.flush()
    return request


async def get_request(session: AsyncSession, *, org_id: uuid.UUID, request_id: uuid.UUID) -> PrivacyRequest:
    request = await session.get(PrivacyRequest, request_id)
    if request is None or request.org_id != org_id:
        raise NotFound("No such privacy request")
    return request


async def get_own_request(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID) -> PrivacyRequest:
    """A user's own request (about their account); anyone else's answers like a missing one."""
    request = await get_request(session, org_id=principal.org_id, request_id=request_id)
    if request.subject_type != "user" or request.requested_by != principal.user_id:
        raise NotFound("No such privacy request")
    return request


async def list_requests(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[PrivacyRequest], int]:
    query = select(PrivacyRequest).where(PrivacyRequest.org_id == org_id).order_by(PrivacyRequest.created_at.desc())
    return await fetch_page(session, query, offset=offset, limit=limit)


async def download_link(store: ObjectStore, settings: Settings, request: PrivacyRequest) -> str | None:
    """An expiring link to a finished export: the store's presigned URL (S3), else one signed by us."""
    if request.status != "completed" or not request.file_key:
        return None
    return await expiring_link(
        store,
        request.file_key,
        ttl_seconds=settings.datasets.download_link_ttl_seconds,
        secret=settings.resolved_secret_key(),
        purpose=DOWNLOADS,
        org_id=request.org_id,
        subject=request.id,
        route=f"{settings.public_url.rstrip('/')}/api/v1/privacy/exports/{request.id}",
    )


def check_download_link(
    settings: Settings, *, org_id: uuid.UUID | None, request_id: uuid.UUID, expires: int | None, signature: str | None
) -> uuid.UUID:
    return crypto.check_signed(
        settings.resolved_secret_key(),
        DOWNLOADS,
        org_id=org_id,
        subject=request_id,
        expires=expires,
        signature=signature,
    )


async def export_file(session: AsyncSession, *, org_id: uuid.UUID, request_id: uuid.UUID) -> str:
    request = await get_request(session, org_id=org_id, request_id=request_id)
    if request.status != "completed" or not request.file_key:
        raise NotFound("This export is not ready")
    return request.file_key


# Consent logs


async def record_consent(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    source: str,
    action: str,
    site_id: uuid.UUID | None = None,
    subject_digest: str | None = None,
    actor_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> ConsentLog:
    entry = ConsentLog(
        id=uuid.uuid4(),
        org_id=org_id,
        site_id=site_id,
        source=source,
        action=action,
        subject_digest=subject_digest,
        actor_id=actor_id,
        details=details or {},
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_consents(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[list[ConsentLog], int]:
    query = select(ConsentLog).where(ConsentLog.org_id == org_id)
    if site_id is not None:
        query = query.where(ConsentLog.site_id == site_id)
    return await fetch_page(session, query.order_by(ConsentLog.occurred_at.desc()), offset=offset, limit=limit)


# Settings and audit retention


async def get_settings(session: AsyncSession, *, org_id: uuid.UUID) -> PrivacySettings:
    found = await session.get(PrivacySettings, org_id)
    return found or PrivacySettings(org_id=org_id, audit_retention_days=MAX_RETENTION_DAYS, updated_at=now())


async def update_settings(session: AsyncSession, *, principal: Principal, audit_retention_days: int) -> PrivacySettings:
    """Change the audit retention (30 days to 7 years); the change goes in the consent log as a merchant setting."""
    current = await session.get(PrivacySettings, principal.org_id, with_for_update=True)
    previous = current.audit_retention_days if current else MAX_RETENTION_DAYS
    if current is None:
        current = PrivacySettings(org_id=principal.org_id, audit_retention_days=audit_retention_days)
        session.add(current)
    current.audit_retention_days, current.updated_at = audit_retention_days, now()
    await session.flush()
    await record_consent(
        session,
        org_id=principal.org_id,
        source="merchant",
        action="settings_changed",
        actor_id=principal.user_id or principal.api_key_id,
        details={"auditRetentionDays": {"from": previous, "to": audit_retention_days}},
    )
    return current


async def apply_audit_retention(session: AsyncSession, *, org_id: uuid.UUID) -> int:
    """Remove the org's audit entries older than its retention (the chain keeps verifying from a checkpoint)."""
    settings = await get_settings(session, org_id=org_id)
    return await audit.prune(session, before=now() - timedelta(days=settings.audit_retention_days))


async def current_org(session: AsyncSession) -> uuid.UUID:
    """The org the transaction is bound to (periodic per-org tasks get only the session)."""
    return uuid.UUID(str(await session.scalar(text("SELECT current_setting('northstar.org_id')"))))
