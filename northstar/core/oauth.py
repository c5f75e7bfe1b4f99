"""What every OAuth 2.0 authorization code trip needs, for sign-in providers and integrations alike.

A trip's ``state`` is 256 random bits the browser carries to the provider and back; the server keeps only its SHA-256
(``state_digest``), so a leaked table cannot be replayed into a callback. PKCE (RFC 7636, S256) binds the code to a
verifier that never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_state() -> str:
    return secrets.token_urlsafe(32)


def state_digest(state: str) -> str:
    """How a trip's state is kept: its SHA-256, hex."""
    return hashlib.sha256(state.encode()).hexdigest()


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (kept server-side) and its S256 challenge (sent to the provider)."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
