"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``whsec_`` secrets, and the
``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers.

The signed content is ``{id}.{timestamp}.{body}``, HMAC-SHA256 with the secret's bytes, base64, prefixed ``v1,``.
Several signatures go in one header separated by spaces (during a secret rotation both secrets sign), and a
receiver accepts a message when any of them matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
SECRET_BYTES = 24
TOLERANCE_SECONDS = 300  # a receiver refuses timestamps further than this from its clock (replays)


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and base64 of 24 random bytes, as the spec suggests."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key a ``whsec_`` secret stands for (the base64 after the prefix)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise ValueError("the secret is not whsec_ followed by base64") from None


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign(keys: Iterable[bytes], *, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a message signed with each of ``keys`` (current secret first)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": " ".join(signature(key, message_id, moment, body) for key in keys),
    }


def verify(key: bytes, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> bool:
    """True when ``headers`` carry a fresh timestamp and a ``v1`` signature of ``body`` made with ``key``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id, stamp, signatures = (
        lowered.get("webhook-id"),
        lowered.get("webhook-timestamp"),
        lowered.get("webhook-signature"),
    )
    if not message_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(key, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures.split(" "))
