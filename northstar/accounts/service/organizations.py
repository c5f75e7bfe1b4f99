"""Organizations, memberships and roles, invitations by e-mail token."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import ApiKey, Invitation, Membership, Organization, User
from northstar.accounts.service import credentials, pii
from northstar.accounts.service.users import create_organization, get_user, now
from northstar.audit import service as audit
from northstar.core.context import ClientMeta
from northstar.core.db import fetch_page, set_tenant_context, settings_of
from northstar.core.http import Conflict, Forbidden, NotFound
from northstar.core.permissions import ROLE_RANK, Principal, Role
from northstar.core.queue import enqueue_named
from northstar.core.security import auth_keys, constant_time_equal, new_secret, split_credential
from northstar.settings import Settings

INVITATION_PREFIX = "inv_"


async def get_organization(session: AsyncSession, *, org_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organization")
    return org


async def update_organization(session: AsyncSession, *, org_id: uuid.UUID, name: str) -> Organization:
    org = await get_organization(session, org_id=org_id)
    org.name = name
    await session.flush()
    return org


async def list_my_organizations(session: AsyncSession, *, user_id: uuid.UUID) -> list[tuple[Organization, str]]:
    """Every org the user belongs to (memberships are visible to their own user across orgs)."""
    rows = await session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
    )
    return [(org, role) for org, role in rows.all()]


async def create_additional_organization(session: AsyncSession, *, principal: Principal, name: str) -> Organization:
    """The caller founds another org; the transaction returns to the caller's current org afterwards."""
    assert principal.user_id is not None
    user = await get_user(session, principal.user_id)
    org = await create_organization(session, name=name, founder=user)
    await set_tenant_context(session, org_id=principal.org_id, user_id=principal.user_id)
    return org


@dataclass(frozen=True)
class MemberRow:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    joined_at: datetime


def _members_query(org_id: uuid.UUID) -> Select[Membership, str, str | None]:
    return (
        select(Membership, User.email_encrypted, User.full_name_encrypted)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at)
    )


def _member_row(settings: Settings, membership: Membership, email: str, name: str | None) -> MemberRow:
    """Members see each other in the directory (``members:read``), the rule ``pii.get_user_email`` also applies."""
    user_id = membership.user_id
    return MemberRow(
        user_id,
        pii.open_token(settings, user_id, email),
        pii.open_token(settings, user_id, name),
        membership.role,
        membership.created_at,
    )


async def list_members(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[MemberRow], int]:
    rows = (
        await session.execute(_members_query(org_id).add_columns(func.count().over()).offset(offset).limit(limit))
    ).all()
    settings = settings_of(session)
    return [_member_row(settings, m, email, name) for m, email, name, _ in rows], int(rows[0][-1]) if rows else 0


async def members_of(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_ids: Collection[uuid.UUID] | None = None,
    roles: Collection[str] | None = None,
) -> list[MemberRow]:
    """The members among ``user_ids`` and with one of ``roles`` (either unset: any), unpaged: whom to notify."""
    query = _members_query(org_id)
    if user_ids is not None:
        query = query.where(Membership.user_id.in_(list(user_ids)))
    if roles is not None:
        query = query.where(Membership.role.in_(list(roles)))
    return [_member_row(settings_of(session), *row) for row in (await session.execute(query)).all()]


async def get_member(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> MemberRow:
    row = (await session.execute(_members_query(org_id).where(Membership.user_id == user_id))).first()
    if row is None:
        raise NotFound("No such member")
    return _member_row(settings_of(session), *row)


def _strongest_role(principal: Principal, *, project_id: uuid.UUID | None, team_id: uuid.UUID | None) -> Role:
    return min(principal.roles_for(project_id=project_id, team_id=team_id), key=ROLE_RANK.__getitem__)


def ensure_can_grant(
    principal: Principal, role: Role, *, project_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None
) -> None:
    """Nobody grants a role above their own (on a project or team: their role there, org-wide or granted)."""
    if ROLE_RANK[role] < ROLE_RANK[_strongest_role(principal, project_id=project_id, team_id=team_id)]:
        raise Forbidden(f"Your role cannot grant the {role.value} role")


def ensure_can_change(
    principal: Principal,
    held: Role,
    *,
    verb: str,
    project_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
) -> None:
    """Nobody demotes or removes someone whose role is above their own, and the answer says so."""
    mine = _strongest_role(principal, project_id=project_id, team_id=team_id)
    if ROLE_RANK[held] < ROLE_RANK[mine]:
        raise Forbidden(
            f"{_with_article(held).capitalize()} cannot be {verb} by {_with_article(mine)}",
            code="outranked",
            details={"role": held.value, "yourRole": mine.value},
        )


def _with_article(role: Role) -> str:
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


async def find_membership(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    return await session.scalar(select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id))


async def _membership(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = await find_membership(session, org_id=org_id, user_id=user_id)
    if membership is None:
        raise NotFound("No such member")
    return membership


async def _ensure_founder_remains(session: AsyncSession, *, org_id: uuid.UUID, leaving: Membership) -> None:
    if leaving.role != Role.FOUNDER.value:
        return
    founders = await session.scalar(
        select(func.count()).where(Membership.org_id == org_id, Membership.role == Role.FOUNDER.value)
    )
    if (founders or 0) <= 1:
        raise Conflict("An organization needs at least one founder", code="last_founder")


@dataclass(frozen=True)
class RoleChange:
    member: MemberRow
    previous_role: str
    capped_keys: list[ApiKey]


async def change_member_role(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, role: Role, client: ClientMeta
) -> RoleChange:
    """The new role applies on the member's next request, and the API keys they made are capped to it."""
    membership = await _membership(session, org_id=principal.org_id, user_id=user_id)
    ensure_can_change(principal, Role(membership.role), verb="demoted")
    ensure_can_grant(principal, role)
    previous = membership.role
    if role != Role.FOUNDER:
        await _ensure_founder_remains(session, org_id=principal.org_id, leaving=membership)
    membership.role = role.value
    await session.flush()  # locks the membership: a key being made for them now waits, then gets capped here
    capped = await credentials.cap_keys_of(session, principal=principal, user_id=user_id, role=role, client=client)
    return RoleChange(await get_member(session, org_id=principal.org_id, user_id=user_id), previous, capped)


async def remove_member(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, client: ClientMeta
) -> list[ApiKey]:
    """Removes the member (their sessions, project and team roles go with it) and revokes the API keys they made."""
    membership = await _membership(session, org_id=principal.org_id, user_id=user_id)
    if user_id != principal.user_id:
        ensure_can_change(principal, Role(membership.role), verb="removed")
    await _ensure_founder_remains(session, org_id=principal.org_id, leaving=membership)
    await session.delete(membership)
    await session.flush()
    return await credentials.revoke_keys_of(session, principal=principal, user_id=user_id, client=client)


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str
    accept_url: str


async def create_invitation(session: AsyncSession, *, principal: Principal, email: str, role: Role) -> NewInvitation:
    ensure_can_grant(principal, role)
    existing = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.org_id == principal.org_id,
            User.email_blind_index == pii.email_index(settings_of(session), email),
        )
    )
    if existing is not None:
        raise Conflict("This person is already a member", code="already_member")
    secret = new_secret()
    settings = settings_of(session)
    invitation = Invitation(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        email=email,
        role=role.value,
        token_hash=auth_keys(settings_of(session)).hash_secret(secret),
        invited_by=principal.user_id,
        expires_at=now() + timedelta(seconds=settings.auth.invitation_ttl_seconds),
    )
    session.add(invitation)
    await session.flush()
    token = f"{INVITATION_PREFIX}{invitation.id.hex}_{secret}"
    # The link people click: the console's page, which says who invites and offers sign-up or acceptance.
    accept_url = f"{settings.public_url.rstrip('/')}/app/invitations/accept?{urlencode({'token': token})}"
    org = await get_organization(session, org_id=principal.org_id)
    await enqueue_named(
        session,
        "accounts.send_invitation_email",
        org_id=principal.org_id,
        invitation_id=str(invitation.id),
        org_name=org.name,
        accept_url=accept_url,
    )
    return NewInvitation(invitation, token, accept_url)


async def list_invitations(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Invitation], int]:
    query = select(Invitation).where(Invitation.org_id == org_id).order_by(Invitation.created_at.desc())
    return await fetch_page(session, query, offset=offset, limit=limit)


async def revoke_invitation(session: AsyncSession, *, org_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None or invitation.org_id != org_id:
        raise NotFound("No such invitation")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = now()
    await session.flush()
    return invitation


async def _open_invitation(
    session: AsyncSession, *, token: str, user_id: uuid.UUID | None = None, lock: bool = False
) -> Invitation:
    """The invitation a token names, if it can still be accepted; any other token (unknown, forged, expired,
    revoked, used) gets the same 404, so a token tells nothing about invitations it does not open."""
    parsed = split_credential(token, INVITATION_PREFIX)
    invalid = NotFound("This invitation is invalid or has expired", code="invalid_invitation")
    if parsed is None:
        raise invalid
    invitation_id, secret = parsed
    await set_tenant_context(session, user_id=user_id, credential_id=invitation_id)
    invitation = await session.get(Invitation, invitation_id, with_for_update=lock)
    if (
        invitation is None
        or not constant_time_equal(invitation.token_hash, auth_keys(settings_of(session)).hash_secret(secret))
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now()
    ):
        raise invalid
    return invitation


@dataclass(frozen=True)
class InvitationView:
    invitation: Invitation
    org_name: str


async def view_invitation(session: AsyncSession, *, token: str) -> InvitationView:
    """What the link in an invitation e-mail shows, before anyone signs in: the org, the role, the expiry."""
    invitation = await _open_invitation(session, token=token)
    await set_tenant_context(session, org_id=invitation.org_id, credential_id=invitation.id)
    return InvitationView(invitation, (await get_organization(session, org_id=invitation.org_id)).name)


async def accept_invitation(session: AsyncSession, *, token: str, user: User, client: ClientMeta) -> Membership:
    """Join the inviting org. Only the account with the invited e-mail can use the token, once."""
    invitation = await _open_invitation(session, token=token, user_id=user.id, lock=True)
    if user.email_blind_index != pii.email_index(settings_of(session), invitation.email):
        raise Forbidden("This invitation was sent to another e-mail address", code="invitation_email_mismatch")
    await set_tenant_context(session, org_id=invitation.org_id, user_id=user.id, credential_id=invitation.id)
    if (
        await session.scalar(
            select(Membership.id).where(Membership.org_id == invitation.org_id, Membership.user_id == user.id)
        )
        is not None
    ):
        raise Conflict("You are already a member of this organization", code="already_member")
    invitation.accepted_at = now()
    membership = Membership(org_id=invitation.org_id, user_id=user.id, role=invitation.role)
    session.add(membership)
    await session.flush()
    await audit.record(
        session,
        org_id=invitation.org_id,
        action="invitation.accepted",
        actor_type="user",
        actor_id=user.id,
        client=client,
        target_type="invitation",
        target_id=str(invitation.id),
        details={"role": invitation.role},
    )
    return membership


async def add_member(session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, role: Role) -> Membership:
    """Make an existing user a member at once, without an invitation (directory provisioning and demo data)."""
    ensure_can_grant(principal, role)
    await set_tenant_context(session, org_id=principal.org_id, user_id=principal.user_id)
    membership = Membership(org_id=principal.org_id, user_id=user_id, role=role.value)
    session.add(membership)
    await session.flush()
    return membership
