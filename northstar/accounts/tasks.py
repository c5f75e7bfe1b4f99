"""Queue tasks of the accounts module."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Invitation, RefreshToken
from northstar.accounts.service import identity, saml
from northstar.core.db import execute_count, settings_of
from northstar.core.mailer import send_email
from northstar.core.queue import periodic_per_org, queue_app, task_database, tenant_task


@tenant_task("accounts.send_invitation_email")
async def send_invitation_email(session: AsyncSession, *, invitation_id: str, org_name: str, accept_url: str) -> None:
    """Runs after the invitation committed; a revoked or accepted invitation is not mailed."""
    invitation = await session.get(Invitation, uuid.UUID(invitation_id))
    if invitation is None or invitation.accepted_at or invitation.revoked_at:
        return
    await send_email(
        settings_of(session).smtp,
        to=invitation.email,
        subject=f"You are invited to join {org_name} on Northstar",
        body=(
            f"You have been invited to join {org_name} as {invitation.role}.\n\n"
            f"See the invitation and how to join (sign up with it, or accept it signed in): {accept_url}\n\n"
            f"The link expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
    )


@periodic_per_org("accounts.purge_expired_sessions", cron="*/30 * * * *")
async def purge_expired_sessions(session: AsyncSession) -> int:
    """Refresh tokens past expiry (plus a day, so late reuse is still detected) are deleted."""
    return await execute_count(
        session, delete(RefreshToken).where(RefreshToken.expires_at < func.now() - text("interval '1 day'"))
    )


@queue_app.periodic(cron="17 * * * *", periodic_id="accounts.purge_sign_in_states")
@queue_app.task(name="accounts.purge_sign_in_states", queueing_lock="accounts.purge_sign_in_states", retry=3)
async def purge_sign_in_states(timestamp: int) -> int:
    """Hourly: trips to sign-in providers over for a day are deleted (they belong to no org)."""
    async with task_database().tenant_transaction() as session:
        return await identity.purge_finished(session)


@periodic_per_org("accounts.purge_saml_sign_ons", cron="23 * * * *")
async def purge_saml_sign_ons(session: AsyncSession) -> int:
    """Hourly: the org's SAML sign-on requests over for a day, and assertion ids past expiry (no replay can use
    them any more: the assertion itself has expired)."""
    return await saml.purge_finished(session)
