"""Field encryption: AES-256-GCM with the key id in every ciphertext, configured keys, and rotation that re-encrypts
every registered column with the current key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from northstar.accounts.service.pii import email_index
from northstar.cli import app
from northstar.core.crypto import DecryptionError, FieldCipher, new_key, parse_key
from northstar.core.security import auth_keys, field_cipher
from northstar.settings import Settings, get_settings
from tests.factories import PASSWORD, unique_email

runner = CliRunner()


def test_ciphertexts_name_their_key_and_bind_their_row() -> None:
    cipher = FieldCipher({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")
    token = cipher.encrypt("sk_live_secret", associated_data="row-1")
    assert token.startswith("k2:") and "sk_live_secret" not in token
    assert cipher.decrypt(token, associated_data="row-1") == "sk_live_secret"
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, associated_data="row-2")  # moved to another row: refused
    with pytest.raises(DecryptionError):
        FieldCipher({"k1": b"\x01" * 32}, "k1").decrypt(token)  # its key is gone
    assert cipher.is_current(token) and not cipher.is_current("k1:abc")


def test_configured_keys_must_be_whole() -> None:
    assert len(parse_key("k2", new_key())) == 32
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key("k2", "c2hvcnQ=")
    with pytest.raises(ValueError, match="not configured"):
        field_cipher(Settings(crypto={"current_key": "k9"}))


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings and derived keys read again after the test changes the key configuration."""
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def _user_with_secret(database_url: str, secret: str, email: str) -> uuid.UUID:
    assert runner.invoke(app, ["create-user", "--email", email, "--password", PASSWORD]).exit_code == 0
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT id FROM auth.users WHERE email_blind_index = %s", (email_index(get_settings(), email),)
        ).fetchone()
        assert found is not None
        user_id: uuid.UUID = found[0]
        connection.execute(
            "UPDATE auth.users SET mfa_secret_encrypted = %s WHERE id = %s",
            (auth_keys(get_settings()).cipher.encrypt(secret, associated_data=str(user_id)), user_id),
        )
    return user_id


def _stored(database_url: str, user_id: uuid.UUID, column: str = "mfa_secret_encrypted") -> str:
    with psycopg.connect(database_url) as connection:
        found = connection.execute(f"SELECT {column} FROM auth.users WHERE id = %s", (user_id,)).fetchone()
    assert found is not None
    return str(found[0])


def test_rotation_re_encrypts_with_the_new_key(database_url: str, keys_env: pytest.MonkeyPatch) -> None:
    email = unique_email("keys")
    user_id = _user_with_secret(database_url, "JBSWY3DPEHPK3PXP", email)
    assert _stored(database_url, user_id).startswith("k1:")
    assert _stored(database_url, user_id, "email_encryption_key_id") == "k1"
    printed = runner.invoke(app, ["keys", "new", "k2"])
    assert printed.exit_code == 0, printed.output
    keys = orjson.loads(printed.output.split("NORTHSTAR_CRYPTO__KEYS='")[1].split("'")[0])
    keys_env.setenv("NORTHSTAR_CRYPTO__KEYS", orjson.dumps(keys).decode())
    keys_env.setenv("NORTHSTAR_CRYPTO__CURRENT_KEY", "k2")
    get_settings.cache_clear()
    rotated = runner.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "auth.users.mfa_secret_encrypted" in rotated.output
    token = _stored(database_url, user_id)
    assert token.startswith("k2:")
    assert auth_keys(get_settings()).cipher.decrypt(token, associated_data=str(user_id)) == "JBSWY3DPEHPK3PXP"
    # The user's e-mail and name went over too, with their key id columns; the blind index did not change.
    assert "auth.users.email_encrypted" in rotated.output and "auth.users.full_name_encrypted" in rotated.output
    email_token = _stored(database_url, user_id, "email_encrypted")
    assert email_token.startswith("k2:") and _stored(database_url, user_id, "email_encryption_key_id") == "k2"
    assert _stored(database_url, user_id, "full_name_encryption_key_id") == "k2"
    assert auth_keys(get_settings()).cipher.decrypt(email_token, associated_data=str(user_id)) == email
    assert _stored(database_url, user_id, "email_blind_index") == email_index(get_settings(), email)
    again = runner.invoke(app, ["keys", "rotate"])
    assert again.exit_code == 0 and _stored(database_url, user_id) == token  # nothing left to rotate
