"""TOTP MFA: enrolment, login challenge, one use per code, recovery codes, disabling."""

from __future__ import annotations

import time

import httpx
import pyotp

from tests.factories import PASSWORD, Account, tokens_of


def _code(secret: str, offset_steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(time.time() + offset_steps * totp.interval)


async def _enable(client: httpx.AsyncClient, account: Account) -> tuple[str, list[str]]:
    enrolled = (await client.post("/api/v1/auth/mfa/enroll", headers=account.headers)).json()["data"]
    assert enrolled["otpauthUri"].startswith("otpauth://totp/")
    confirmed = await client.post(
        "/api/v1/auth/mfa/confirm", headers=account.headers, json={"code": _code(enrolled["secret"], -1)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return enrolled["secret"], confirmed.json()["data"]["recoveryCodes"]


async def _challenge(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    data = response.json()["data"]
    assert data["mfaRequired"] is True and data["tokens"] is None
    return str(data["mfaToken"])


async def test_login_with_mfa_needs_a_fresh_code_once(client: httpx.AsyncClient, founder: Account) -> None:
    secret, codes = await _enable(client, founder)
    assert len(codes) == 10
    challenge = await _challenge(client, founder)
    code = _code(secret)
    ok = await client.post("/api/v1/auth/mfa/verify", json={"mfaToken": challenge, "code": code})
    assert ok.status_code == 200, ok.text
    assert tokens_of(ok)["accessToken"]
    replay = await client.post(
        "/api/v1/auth/mfa/verify", json={"mfaToken": await _challenge(client, founder), "code": code}
    )
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_mfa_code"


async def test_codes_outside_one_step_are_refused(client: httpx.AsyncClient, founder: Account) -> None:
    secret, _ = await _enable(client, founder)
    challenge = await _challenge(client, founder)
    stale = await client.post("/api/v1/auth/mfa/verify", json={"mfaToken": challenge, "code": _code(secret, -3)})
    assert stale.status_code == 401
    ahead = await client.post("/api/v1/auth/mfa/verify", json={"mfaToken": challenge, "code": _code(secret, 1)})
    assert ahead.status_code == 200


async def test_recovery_codes_work_once(client: httpx.AsyncClient, founder: Account) -> None:
    _, codes = await _enable(client, founder)
    first = await client.post(
        "/api/v1/auth/mfa/verify", json={"mfaToken": await _challenge(client, founder), "recoveryCode": codes[0]}
    )
    assert first.status_code == 200
    again = await client.post(
        "/api/v1/auth/mfa/verify", json={"mfaToken": await _challenge(client, founder), "recoveryCode": codes[0]}
    )
    assert again.status_code == 401


async def test_oauth_form_login_refuses_mfa_accounts(client: httpx.AsyncClient, founder: Account) -> None:
    await _enable(client, founder)
    response = await client.post("/api/v1/auth/token", data={"username": founder.email, "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "mfa_required"


async def test_invalid_challenge_token_and_disable(client: httpx.AsyncClient, founder: Account) -> None:
    secret, _ = await _enable(client, founder)
    bogus = await client.post("/api/v1/auth/mfa/verify", json={"mfaToken": founder.access_token, "code": "123456"})
    assert bogus.status_code == 401
    wrong = await client.post(
        "/api/v1/auth/mfa/disable",
        headers=founder.headers,
        json={"password": "wrong-password-1", "code": _code(secret)},
    )
    assert wrong.status_code == 422
    disabled = await client.post(
        "/api/v1/auth/mfa/disable", headers=founder.headers, json={"password": PASSWORD, "code": _code(secret, 1)}
    )
    assert disabled.status_code == 204
    login = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": PASSWORD})
    assert login.json()["data"]["mfaRequired"] is False


async def test_mfa_secret_is_stored_encrypted(client: httpx.AsyncClient, founder: Account, database_url: str) -> None:
    import psycopg

    secret, _ = await _enable(client, founder)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT mfa_secret_encrypted FROM auth.users WHERE id = %s", (founder.user_id,))
        ).fetchone()
    assert row is not None and secret not in row[0] and row[0].startswith("k1:")
