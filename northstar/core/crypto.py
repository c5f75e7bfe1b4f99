"""Field encryption with AES-256-GCM; each ciphertext names its key id, so keys can rotate.

Keys come from configuration: ``k1`` is derived from the platform secret, and more can be configured
(``NORTHSTAR_CRYPTO__KEYS``, base64 of 32 random bytes each) with one of them made current
(``NORTHSTAR_CRYPTO__CURRENT_KEY``). New ciphertexts use the current key; older ones stay readable while their key is
configured, and ``northstar keys rotate`` re-encrypts every registered column (``ENCRYPTED_COLUMNS``) with the current
key, after which an old key can be removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import NotFound

KEY_BYTES = 32


class DecryptionError(Exception):
    pass


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key per purpose from the one configured secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())


def link_signature(secret: str, purpose: str, *parts: object) -> str:
    """HMAC-SHA256 of ``parts`` under a key derived for ``purpose`` alone: a leaked key of one kind of link signs
    nothing else, and nothing else's key signs one."""
    key = derive_key(secret, purpose)
    return hmac.new(key, ":".join(str(part) for part in parts).encode(), hashlib.sha256).hexdigest()


def signed_until(secret: str, purpose: str, *, org_id: uuid.UUID, subject: object, ttl_seconds: int) -> str:
    """The query of an expiring link to ``subject`` of an org: ``org=…&expires=…&signature=…``."""
    expires = int(time.time()) + ttl_seconds
    return f"org={org_id}&expires={expires}&signature={link_signature(secret, purpose, org_id, subject, expires)}"


def check_signed(
    secret: str, purpose: str, *, org_id: uuid.UUID | None, subject: object, expires: int | None, signature: str | None
) -> uuid.UUID:
    """The org a link was signed for; any missing, expired or forged part answers like a missing object."""
    if (
        org_id is None
        or expires is None
        or signature is None
        or expires < time.time()
        or not hmac.compare_digest(link_signature(secret, purpose, org_id, subject, expires), signature)
    ):
        raise NotFound("This link is invalid or has expired", code="link_expired")
    return org_id


def new_key() -> str:
    """A fresh key, as configured: base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(key_id: str, encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.encode())
    except (ValueError, TypeError):
        raise ValueError(f"key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
    return key


class FieldCipher:
    """``encrypt`` -> ``"<key id>:<base64(nonce|ciphertext)>"``; older key ids stay decryptable."""

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"the current key {current_key_id!r} is not configured")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    def encrypt(self, plaintext: str, *, associated_data: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.current_key_id].encrypt(nonce, plaintext.encode(), associated_data.encode())
        return f"{self.current_key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, associated_data: str = "") -> str:
        key_id, _, body = token.partition(":")
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        raw = base64.urlsafe_b64decode(body)
        try:
            return cipher.decrypt(raw[:12], raw[12:], associated_data.encode()).decode()
        except Exception as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc

    def is_current(self, token: str) -> bool:
        return token.partition(":")[0] == self.current_key_id


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of ``FieldCipher`` tokens whose associated data is the row's id; ``tenant`` tables are under RLS."""

    table: str
    column: str
    id_column: str = "id"
    tenant: bool = True
    key_id_column: str | None = None  # a column naming each token's key, kept in step by rotation


ENCRYPTED_COLUMNS: list[EncryptedColumn] = []


def register_encrypted_column(column: EncryptedColumn) -> None:
    """Modules declare their encrypted columns (next to their tables) so rotation reaches every one."""
    if column not in ENCRYPTED_COLUMNS:
        ENCRYPTED_COLUMNS.append(column)


async def rotate_column(session: AsyncSession, column: EncryptedColumn, cipher: FieldCipher) -> int:
    """Re-encrypt the column's tokens that use an older key (the rows the session can see); returns how many."""
    rows = (
        await session.execute(
            text(
                f"SELECT {column.id_column}, {column.column} FROM {column.table} "  # noqa: S608 - registered identifiers
                f"WHERE {column.column} IS NOT NULL AND split_part({column.column}, ':', 1) <> :current FOR UPDATE"
            ),
            {"current": cipher.current_key_id},
        )
    ).all()
    key_id = f", {column.key_id_column} = :key_id" if column.key_id_column else ""
    for row_id, token in rows:
        plaintext = cipher.decrypt(token, associated_data=str(row_id))
        await session.execute(
            text(
                f"UPDATE {column.table} SET {column.column} = :token{key_id} "  # noqa: S608 - registered identifiers
                f"WHERE {column.id_column} = :id"
            ),
            {
                "token": cipher.encrypt(plaintext, associated_data=str(row_id)),
                "key_id": cipher.current_key_id,
                "id": _as_id(row_id),
            },
        )
    return len(rows)


def key_id_of(token: str) -> str:
    """The key id a token was sealed with (its prefix)."""
    return token.partition(":")[0]


def blind_index(secret: str, purpose: str, value: str) -> str:
    """A deterministic HMAC of ``value`` for equality lookups on an encrypted column. Its key is derived from the
    platform secret for ``purpose`` and does not rotate with the field keys (rotating it would re-index every row)."""
    return link_signature(secret, f"blind-index/{purpose}", value)


def _as_id(value: object) -> object:
    return value if isinstance(value, uuid.UUID | int) else str(value)
