"""Users and new organizations: what signing up, logging in and managing an organization all start from."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Membership, Organization, User
from northstar.accounts.service import pii
from northstar.core.db import set_tenant_context, settings_of
from northstar.core.http import Conflict, NotFound, Unprocessable
from northstar.core.permissions import Role
from northstar.core.security import PasswordPolicyError, check_password_policy, hash_password
from northstar.settings import Settings


def now() -> datetime:
    return datetime.now(UTC)


def validated_password(settings: Settings, password: str) -> str:
    try:
        check_password_policy(password)
    except PasswordPolicyError as exc:
        raise Unprocessable(
            str(exc), code="weak_password", details=[{"field": "password", "message": str(exc)}]
        ) from exc
    return hash_password(settings, password)


def _slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "org"
    return f"{base}-{secrets.token_hex(3)}"


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    index = pii.email_index(settings_of(session), email)
    return (await session.execute(select(User).where(User.email_blind_index == index))).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user")
    return user


NO_PASSWORD = "!"  # noqa: S105 - the mark of an account without a password, not one


async def create_user(session: AsyncSession, *, email: str, password: str | None, name: str) -> User:
    """A user with ``password``, or (None: made through a sign-in provider or SCIM) with ``NO_PASSWORD``, which no
    password matches (it is no argon2 hash), so none signs in until one is set."""
    if await user_by_email(session, email) is not None:
        raise Conflict("An account with this e-mail already exists", code="email_taken")
    settings = settings_of(session)
    password_hash = validated_password(settings, password) if password is not None else NO_PASSWORD
    user = User(id=uuid.uuid4(), password_hash=password_hash)
    pii.seal_email(settings, user, email)
    pii.seal_full_name(settings, user, name)
    session.add(user)
    await session.flush()
    return user


async def create_organization(session: AsyncSession, *, name: str, founder: User) -> Organization:
    """A new tenant with ``founder`` as its Founder; binds the transaction to it."""
    org = Organization(id=uuid.uuid4(), name=name, slug=_slug(name))
    await set_tenant_context(session, org_id=org.id, user_id=founder.id)
    session.add(org)
    await session.flush()
    session.add(Membership(org_id=org.id, user_id=founder.id, role=Role.FOUNDER.value))
    await session.flush()
    return org
