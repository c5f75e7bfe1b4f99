"""A user's account as a data subject: what is exported, and what erasure removes (``northstar.privacy`` calls
these after deciding the request is allowed)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import ApiKey, Invitation, Membership, Organization, Project, User
from northstar.accounts.service import pii
from northstar.accounts.service.organizations import _ensure_founder_remains
from northstar.core.db import set_tenant_context, settings_of
from northstar.core.http import NotFound


async def export_user(session: AsyncSession, *, user_id: uuid.UUID) -> dict[str, Any]:
    """The account and its memberships the current transaction can see (the user's own, in every org)."""
    profile = await pii.get_profile(session, user_id=user_id, reader=pii.PLATFORM)
    user = await session.get(User, user_id)
    assert user is not None
    memberships = (
        await session.execute(
            select(Membership.org_id, Organization.name, Membership.role, Membership.created_at)
            .join(Organization, Organization.id == Membership.org_id)
            .where(Membership.user_id == user_id)
        )
    ).all()
    return {
        "id": str(profile.id),
        "email": profile.email,
        "fullName": profile.name,
        "mfaEnabled": profile.mfa_enabled,
        "createdAt": profile.created_at.isoformat(),
        "lastLoginAt": user.last_login_at.isoformat() if user.last_login_at else None,
        "memberships": [
            {"orgId": str(org_id), "organization": name, "role": role, "joinedAt": joined.isoformat()}
            for org_id, name, role, joined in memberships
        ],
    }


async def erase_user(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, int]:
    """Delete the account (memberships, sessions, MFA codes go with it), the org's invitations to its address, and
    its name on what it created in the org. The last founder of an org cannot be erased (409 ``last_founder``):
    another founder must be named first."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user")
    email = pii.open_token(settings_of(session), user.id, user.email_encrypted)
    memberships = list((await session.scalars(select(Membership).where(Membership.user_id == user_id))).all())
    invitations = 0
    for membership in memberships:  # each org in its own tenant context: its founders, its invitations
        await set_tenant_context(session, org_id=membership.org_id, user_id=user_id)
        await _ensure_founder_remains(session, org_id=membership.org_id, leaving=membership)
        deleted = await session.execute(
            delete(Invitation).where(Invitation.org_id == membership.org_id, Invitation.email == email)
        )
        invitations += int(getattr(deleted, "rowcount", 0) or 0)
        await session.execute(update(Project).where(Project.created_by == user_id).values(created_by=None))
        await session.execute(update(ApiKey).where(ApiKey.created_by == user_id).values(created_by=None))
        await session.execute(update(Invitation).where(Invitation.invited_by == user_id).values(invited_by=None))
    await set_tenant_context(session, org_id=org_id, user_id=user_id)
    await session.delete(user)
    await session.flush()
    return {"users": 1, "memberships": len(memberships), "invitations": invitations}
