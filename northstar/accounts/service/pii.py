"""Users' e-mail and full name: sealed with AES-256-GCM on write, found by a blind index, opened in one place.

The database never holds either in plaintext (a ``pg_dump`` shows tokens only). ``get_user_email`` and
``get_user_full_name`` are the accessors the seed names; who may read whom:

* the user themself;
* a principal allowed to read the member directory (``members:read``: founders, admins, members, analysts; not
  investors, nor API keys without that scope) in an org the user belongs to — the same people who see the
  directory today;
* the platform itself (``PLATFORM``), to send mail to the address (invitations, alerts) or to answer a data-subject
  request.

Anyone else gets ``404`` exactly as for a missing user, so the accessor does not tell who exists.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Membership, User
from northstar.core.crypto import blind_index, key_id_of
from northstar.core.db import settings_of
from northstar.core.http import NotFound
from northstar.core.permissions import Principal
from northstar.core.security import field_cipher
from northstar.settings import Settings

PLATFORM: Final = "platform"
Reader = Principal | Literal["platform"]


def normalise_email(email: str) -> str:
    """The form the blind index is computed on: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def email_index(settings: Settings, email: str) -> str:
    return blind_index(settings.resolved_secret_key(), "email", normalise_email(email))


def seal_email(settings: Settings, user: User, email: str) -> None:
    """Set the user's e-mail: the token, its key id and the blind index (the row id is the associated data)."""
    token = field_cipher(settings).encrypt(normalise_email(email), associated_data=str(user.id))
    user.email_encrypted, user.email_encryption_key_id = token, key_id_of(token)
    user.email_blind_index = email_index(settings, email)


def seal_full_name(settings: Settings, user: User, full_name: str) -> None:
    token = field_cipher(settings).encrypt(full_name, associated_data=str(user.id))
    user.full_name_encrypted, user.full_name_encryption_key_id = token, key_id_of(token)


def open_token(settings: Settings, user_id: uuid.UUID, token: str | None) -> str:
    """The one place a user's PII token is decrypted; callers have decided the reader may see it."""
    return field_cipher(settings).decrypt(token, associated_data=str(user_id)) if token else ""


async def _authorised_user(session: AsyncSession, *, user_id: uuid.UUID, reader: Reader) -> User:
    missing = NotFound("No such user")
    if reader != PLATFORM and reader.user_id != user_id:
        if not reader.can("read", "members"):
            raise missing
        shared = await session.scalar(
            select(Membership.id).where(Membership.org_id == reader.org_id, Membership.user_id == user_id)
        )
        if shared is None:
            raise missing
    user = await session.get(User, user_id)
    if user is None:
        raise missing
    return user


async def get_user_email(session: AsyncSession, *, user_id: uuid.UUID, reader: Reader) -> str:
    user = await _authorised_user(session, user_id=user_id, reader=reader)
    return open_token(settings_of(session), user.id, user.email_encrypted)


async def get_user_full_name(session: AsyncSession, *, user_id: uuid.UUID, reader: Reader) -> str:
    user = await _authorised_user(session, user_id=user_id, reader=reader)
    return open_token(settings_of(session), user.id, user.full_name_encrypted)


async def user_id_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    """Who has this address, through the blind index (no decryption)."""
    found: uuid.UUID | None = await session.scalar(
        select(User.id).where(User.email_blind_index == email_index(settings_of(session), email))
    )
    return found


@dataclass(frozen=True)
class Profile:
    """A user as the API and console show them, opened for a reader allowed to see them."""

    id: uuid.UUID
    email: str
    name: str
    mfa_enabled: bool
    created_at: datetime


async def get_profile(session: AsyncSession, *, user_id: uuid.UUID, reader: Reader) -> Profile:
    user = await _authorised_user(session, user_id=user_id, reader=reader)
    settings = settings_of(session)
    return Profile(
        id=user.id,
        email=open_token(settings, user.id, user.email_encrypted),
        name=open_token(settings, user.id, user.full_name_encrypted),
        mfa_enabled=user.mfa_enabled,
        created_at=user.created_at,
    )
