"""Small factories that create test data through the public API, as a client would."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import httpx

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


async def signup(client: httpx.AsyncClient, *, email: str | None = None, invitation_token: str | None = None,
                 org_name: str | None = None) -> Account:
    email = email or unique_email()
    body: dict[str, object] = {"email": email, "password": PASSWORD, "name": "Test User"}
    if invitation_token:
        body["invitationToken"] = invitation_token
    if org_name:
        body["organizationName"] = org_name
    response = await client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    tokens = response.json()["data"]
    claims = claims_of(tokens["accessToken"])
    return Account(email=email, password=PASSWORD, user_id=uuid.UUID(str(claims["sub"])),
                   org_id=uuid.UUID(tokens["orgId"]), access_token=tokens["accessToken"],
                   refresh_token=tokens["refreshToken"])


async def invite(client: httpx.AsyncClient, inviter: Account, *, email: str, role: str) -> dict[str, object]:
    response = await client.post("/api/v1/invitations", json={"email": email, "role": role},
                                 headers=inviter.headers)
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


async def create_project(client: httpx.AsyncClient, account: Account, name: str = "Project") -> dict[str, object]:
    response = await client.post("/api/v1/projects", json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])
