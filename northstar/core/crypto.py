"""Field encryption with AES-256-GCM; each ciphertext names its key id so keys can rotate."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    pass


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key per purpose from the one configured secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())


class FieldCipher:
    """``encrypt`` -> ``"<key id>:<base64(nonce|ciphertext)>"``; older key ids stay decryptable."""

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id

    def encrypt(self, plaintext: str, *, associated_data: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), associated_data.encode())
        return f"{self._current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

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
