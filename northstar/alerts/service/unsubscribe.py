"""One-click unsubscribe (RFC 8058) from alert e-mails, with a signed link.

Every alert e-mail carries ``List-Unsubscribe: <{public URL}/api/v1/notifications/unsubscribe?token=…>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``: a mail client's "Unsubscribe" button POSTs to that address,
with no session, and e-mail of that rule kind (or, from a digest, of every kind) is turned off for the member. A
GET only says what the link would do (mail scanners follow links). The token names the organization, the member
and the kind, signed with HMAC-SHA256 under a key derived for this purpose: changing any part of it, or making one
up, gives the answer of an unknown link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import RULE_KINDS
from northstar.alerts.service.preferences import email_stopped, preferences_of, stop_email
from northstar.core.crypto import derive_key
from northstar.core.db import set_tenant_context, settings_of
from northstar.core.http import NotFound
from northstar.settings import Settings

PATH = "/api/v1/notifications/unsubscribe"  # the one-click address mail clients POST to (List-Unsubscribe)
PAGE = "/app/unsubscribe"  # the page a person opens from the e-mail's own link, to confirm
VERSION = "u1"
KINDS = ("all", *RULE_KINDS)


@dataclass(frozen=True)
class Subscription:
    org_id: uuid.UUID
    user_id: uuid.UUID
    kind: str


@dataclass(frozen=True)
class Unsubscribed:
    email: str
    kind: str
    unsubscribed: bool


def _signature(settings: Settings, payload: str) -> str:
    key = derive_key(settings.resolved_secret_key(), "alerts/unsubscribe")
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_for(settings: Settings, subscription: Subscription) -> str:
    payload = f"{VERSION}.{subscription.org_id.hex}.{subscription.user_id.hex}.{subscription.kind}"
    return f"{payload}.{_signature(settings, payload)}"


def link_for(settings: Settings, subscription: Subscription, *, page: bool = False) -> str:
    """The one-click address, or (``page``) the page asking a person to confirm."""
    where = PAGE if page else PATH
    return f"{settings.public_url.rstrip('/')}{where}?{urlencode({'token': token_for(settings, subscription)})}"


def _invalid() -> NotFound:
    return NotFound("This unsubscribe link is invalid", code="invalid_unsubscribe_link")


def read_token(settings: Settings, token: str) -> Subscription:
    """The subscription a token names, if its signature holds."""
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not hmac.compare_digest(_signature(settings, payload), signature):
        raise _invalid()
    try:
        org_id, user_id = uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2])
    except ValueError:
        raise _invalid() from None
    if parts[3] not in KINDS:
        raise _invalid()
    return Subscription(org_id=org_id, user_id=user_id, kind=parts[3])


async def _member_email(session: AsyncSession, subscription: Subscription) -> str:
    """Bind the link's organization (it comes with no credential) and find the member; one who left is unknown."""
    await set_tenant_context(session, org_id=subscription.org_id)
    found = await accounts.members_of(session, org_id=subscription.org_id, user_ids=[subscription.user_id])
    if not found:
        raise _invalid()
    return found[0].email


async def describe(session: AsyncSession, *, token: str) -> Unsubscribed:
    """What the link is about, and whether that e-mail is off already."""
    subscription = read_token(settings_of(session), token)
    email = await _member_email(session, subscription)
    preferences = await preferences_of(session, org_id=subscription.org_id, user_id=subscription.user_id)
    return Unsubscribed(email=email, kind=subscription.kind, unsubscribed=email_stopped(preferences, subscription.kind))


async def unsubscribe(session: AsyncSession, *, token: str) -> Unsubscribed:
    """Turn the e-mail the link names off (again is the same)."""
    subscription = read_token(settings_of(session), token)
    email = await _member_email(session, subscription)
    await stop_email(session, org_id=subscription.org_id, user_id=subscription.user_id, kind=subscription.kind)
    return Unsubscribed(email=email, kind=subscription.kind, unsubscribed=True)
