"""Small factories that create test data through the public API, as a client would."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pyotp

PASSWORD = "a-Long-and-unusual-passphrase-42"


@dataclass
class Account:
    email: str
    password: str
    user_id: uuid.UUID
    org_id: uuid.UUID
    access_token: str
    refresh_token: str
    role: str = "founder"
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", **self.extra_headers}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.com"


def claims_of(token: str) -> dict[str, object]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))


def tokens_of(response: httpx.Response) -> dict[str, str]:
    """The token pair in an answer of signup, login, MFA verification or refresh: always at ``data.tokens``."""
    assert response.status_code in (200, 201), response.text
    return dict(response.json()["data"]["tokens"])


def account_from(response: httpx.Response, *, email: str, password: str = PASSWORD, role: str = "founder") -> Account:
    """The account a token-issuing answer signs in."""
    tokens = tokens_of(response)
    return Account(
        email=email,
        password=password,
        user_id=uuid.UUID(str(claims_of(tokens["accessToken"])["sub"])),
        org_id=uuid.UUID(tokens["orgId"]),
        access_token=tokens["accessToken"],
        refresh_token=tokens["refreshToken"],
        role=role,
    )


async def signup(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    invitation_token: str | None = None,
    org_name: str | None = None,
) -> Account:
    email = email or unique_email()
    body: dict[str, object] = {"email": email, "password": PASSWORD, "name": "Test User"}
    if invitation_token:
        body["invitationToken"] = invitation_token
    if org_name:
        body["organizationName"] = org_name
    response = await client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return account_from(response, email=email)


async def login(client: httpx.AsyncClient, account: Account, *, org_id: uuid.UUID | None = None) -> Account:
    """A new session of ``account`` (its own refresh-token family), in ``org_id`` or the first org it joined."""
    body: dict[str, object] = {"email": account.email, "password": account.password}
    if org_id:
        body["orgId"] = str(org_id)
    response = await client.post("/api/v1/auth/login", json=body)
    return account_from(response, email=account.email, password=account.password, role=account.role)


async def refresh(client: httpx.AsyncClient, account: Account) -> Account:
    """``account`` with the token pair its refresh token is exchanged for."""
    response = await client.post("/api/v1/auth/refresh", json={"refreshToken": account.refresh_token})
    return account_from(response, email=account.email, password=account.password, role=account.role)


async def invite(client: httpx.AsyncClient, inviter: Account, *, email: str, role: str) -> dict[str, object]:
    response = await client.post("/api/v1/invitations", json={"email": email, "role": role}, headers=inviter.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def add_member(client: httpx.AsyncClient, founder: Account, role: str) -> Account:
    """A new user who joined ``founder``'s org with ``role`` by accepting an invitation at sign-up."""
    email = unique_email(role)
    invitation = await invite(client, founder, email=email, role=role)
    account = await signup(client, email=email, invitation_token=str(invitation["token"]))
    assert account.org_id == founder.org_id
    account.role = role
    return account


async def enable_mfa(client: httpx.AsyncClient, account: Account) -> pyotp.TOTP:
    """Turn MFA on for ``account``'s user; the authenticator returned gives its codes. It is confirmed with the
    previous step's code, so the current one is still unused for a login (a code works once)."""
    enrollment = (await client.post("/api/v1/auth/mfa/enroll", headers=account.headers)).json()["data"]
    totp = pyotp.TOTP(enrollment["secret"])
    earlier = totp.at(time.time() - totp.interval)
    confirmed = await client.post("/api/v1/auth/mfa/confirm", json={"code": earlier}, headers=account.headers)
    assert confirmed.status_code == 200, confirmed.text
    return totp


async def create_project(client: httpx.AsyncClient, account: Account, name: str = "Project") -> dict[str, object]:
    response = await client.post("/api/v1/projects", json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])
