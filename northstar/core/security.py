"""Credentials: argon2id passwords, short-lived JWTs, opaque secrets stored as HMAC, TOTP."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
import pyotp
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from northstar.core.crypto import FieldCipher, derive_key, parse_key
from northstar.settings import Settings

JWT_ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 10_000
PASSWORD_MIN, PASSWORD_MAX = 8, 128

PASSWORD_PROFILES = {"rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY, "cheapest": profiles.CHEAPEST}


class PasswordPolicyError(ValueError):
    pass


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise PasswordPolicyError(f"Password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    if password.lower() in _common_passwords():
        raise PasswordPolicyError("This password is too common; choose another one")


@dataclass(frozen=True)
class _PasswordHashing:
    hasher: PasswordHasher
    dummy_hash: str  # verified when the user does not exist, so both failures cost the same time


@lru_cache(maxsize=2)
def _password_hashing(profile: str) -> _PasswordHashing:
    hasher = PasswordHasher.from_parameters(PASSWORD_PROFILES[profile])
    return _PasswordHashing(hasher, hasher.hash(secrets.token_urlsafe(16)))


def hash_password(settings: Settings, password: str) -> str:
    return _password_hashing(settings.auth.password_hashing).hasher.hash(password)


def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists."""
    hashing = _password_hashing(settings.auth.password_hashing)
    try:
        return hashing.hasher.verify(password_hash or hashing.dummy_hash, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(settings: Settings, password_hash: str) -> bool:
    """Hashes made with other parameters than the configured ones are replaced at the next login."""
    return _password_hashing(settings.auth.password_hashing).hasher.check_needs_rehash(password_hash)


class TokenError(Exception):
    pass


@dataclass(frozen=True)
class TokenSigner:
    """Issues and checks JWTs: one algorithm; exp, iat, iss, aud, typ and sub always required."""

    secret: str
    issuer: str
    audience: str
    _verified: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def issue(self, *, typ: str, subject: str, ttl_seconds: int, claims: dict[str, Any] | None = None) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "typ": typ,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            **(claims or {}),
        }
        return jwt.encode(payload, self.secret, algorithm=JWT_ALGORITHM)

    def verify(self, token: str, *, typ: str) -> dict[str, Any]:
        """Check signature and claims. A token already verified is served from memory until it expires:
        the same bytes always verify the same way, and decoding costs more than the rest of auth."""
        cached = self._verified.get(token)
        if cached is not None and cached["exp"] > time.time() and cached["typ"] == typ:
            return cached
        payload = self._decode(token, typ=typ)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = payload
        return payload

    def _decode(self, token: str, *, typ: str) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[JWT_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if payload.get("typ") != typ:
            raise TokenError("wrong token type")
        return payload


def keyed_hash(secret_key: str, value: str) -> str:
    """HMAC-SHA256 for high-entropy secrets (API keys, refresh tokens, codes): fast and not reversible."""
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def split_credential(token: str, prefix: str) -> tuple[uuid.UUID, str] | None:
    """Parse ``<prefix><uuid-hex>_<secret>`` into its id and secret; None when malformed."""
    if not token.startswith(prefix):
        return None
    ident, sep, secret = token[len(prefix) :].partition("_")
    if not sep or not secret:
        return None
    try:
        return uuid.UUID(hex=ident), secret
    except ValueError:
        return None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def matching_totp_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step (±1 around now) whose code matches, so callers can refuse a step used before."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = at if at is not None else time.time()
    current = int(now // totp.interval)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


@dataclass(frozen=True)
class AuthKeys:
    """Everything derived from the one configured secret: JWT signing, HMAC of secrets, field encryption."""

    signer: TokenSigner
    hmac_key: str
    cipher: FieldCipher

    def hash_secret(self, value: str) -> str:
        return keyed_hash(self.hmac_key, value)


def field_cipher(settings: Settings) -> FieldCipher:
    """The derived key ``k1`` and the configured keys; the configured current key (or ``k1``) encrypts."""
    return auth_keys(settings).cipher


def auth_keys(settings: Settings) -> AuthKeys:
    """The keys of this configuration, derived once: every authenticated request needs them."""
    return _derived_keys(
        settings.resolved_secret_key(),
        settings.auth.issuer,
        settings.auth.audience,
        tuple(sorted(settings.crypto.keys.items())),
        settings.crypto.current_key,
    )


@lru_cache(maxsize=8)
def _derived_keys(
    secret: str, issuer: str, audience: str, field_keys: tuple[tuple[str, str], ...], current_key: str
) -> AuthKeys:
    keys = {"k1": derive_key(secret, "fields/k1")}
    keys.update({key_id: parse_key(key_id, encoded) for key_id, encoded in field_keys})
    return AuthKeys(
        signer=TokenSigner(secret=derive_key(secret, "jwt").hex(), issuer=issuer, audience=audience),
        hmac_key=derive_key(secret, "hmac").hex(),
        cipher=FieldCipher(keys, current_key or "k1"),
    )
