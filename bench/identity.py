"""Identity (issue 16): the OpenID Connect callback, measured against a real provider on loopback, the SAML
assertion consumer service against a real IdP on loopback, and the SCIM user list of an organization with 10,000
provisioned users.

Runs a real ``northstar run`` (API and worker) with ``northstar/demo/oidc_provider.py`` configured as its sign-in
provider, served by this process. Each round starts a sign-in (``/app/login/with/…``), consents at the provider, and
times the callback alone: the state used up, the code exchanged at the provider's token endpoint, the ID token
verified against the cached JWKS, the person found and signed in (tokens, session, audit). The first round signs the
person up and fills the caches; it is not counted.

Baselines, same run: the provider's token endpoint alone (an authorization code with PKCE exchanged directly), which
every callback waits for; and a password login through the API (argon2id at RFC 9106's low-memory profile).

SAML: an org configured with ``northstar/demo/saml_idp.py``'s metadata. Each round starts a sign-on
(``/saml/{org}/login``), has the IdP answer it, and times the POST to the ACS alone: the request used up, the
signature verified by xmlsec, the conditions checked, the assertion id recorded, the person found and signed in. The
first round provisions the person and is not counted. Baseline: the OIDC callback and the password login above.

SCIM: 10,000 users provisioned into one org (written straight to its database as provisioning writes them: users
with their e-mail and name encrypted, memberships, SCIM resources), then ``GET /scim/v2/Users`` pages of 100 from
random start indexes, and ``userName eq`` lookups of random users, with the org's bearer token. Baseline, same
org: ``GET /api/v1/members`` pages of 100 (the members list the console shows).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import re
import secrets
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.server import PASSWORD, Server, running_server, signup
from bench.socialproof import server_database
from northstar.accounts.models import Membership, ScimUser, User
from northstar.accounts.service import pii
from northstar.accounts.service.users import NO_PASSWORD
from northstar.core.db import settings_of
from northstar.demo.loopback import serving_at_its_address
from northstar.demo.oidc_provider import FakeOidcProvider
from northstar.demo.saml_idp import FakeSamlIdp, SamlPerson

ROUNDS = int(os.environ.get("NORTHSTAR_BENCH_OIDC_ROUNDS", "200"))
NAME = "bench"
SCIM_USERS = 10_000


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


async def _callbacks(base_url: str) -> list[float]:
    timings = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(ROUNDS + 1):
            start = await http.get(f"{base_url}/app/login/with/{NAME}")
            consent = await http.get(start.headers["location"])
            began = time.perf_counter()
            back = await http.get(consent.headers["location"])
            timings.append(time.perf_counter() - began)
            assert back.status_code == 303, back.text
            http.cookies.clear()
    return timings[1:]


async def _sign_ons(base_url: str, idp: FakeSamlIdp) -> list[float]:
    token = await asyncio.to_thread(signup, base_url, "bench-saml@example.com")
    async with httpx.AsyncClient(timeout=30) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        org = (await http.get(f"{base_url}/api/v1/organization", headers=bearer)).json()["data"]["id"]
        configured = await http.put(
            f"{base_url}/api/v1/organization/sso", json={"metadataXml": idp.metadata_xml()}, headers=bearer
        )
        configured.raise_for_status()
        timings = []
        for _ in range(ROUNDS + 1):
            start = await http.get(f"{base_url}/saml/{org}/login")
            page = (await http.get(start.headers["location"])).text
            fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', page))
            began = time.perf_counter()
            back = await http.post(f"{base_url}/saml/{org}/acs", data=fields)
            timings.append(time.perf_counter() - began)
            assert back.status_code == 303, back.text
            http.cookies.clear()
    return timings[1:]


async def _exchanges(provider: FakeOidcProvider) -> list[float]:
    timings = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(ROUNDS):
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            redirect = "http://127.0.0.1/callback"
            consent = await http.get(
                f"{provider.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": provider.client_id,
                    "redirect_uri": redirect,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "state": "s",
                    "nonce": "n",
                },
            )
            code = httpx.URL(consent.headers["location"]).params["code"]
            began = time.perf_counter()
            answered = await http.post(
                f"{provider.issuer}/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                      "code_verifier": verifier},
                auth=(provider.client_id, provider.client_secret),
            )  # fmt: skip
            timings.append(time.perf_counter() - began)
            answered.raise_for_status()
    return timings


async def _password_logins(base_url: str, email: str) -> list[float]:
    timings = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(ROUNDS // 4):
            began = time.perf_counter()
            answered = await http.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            timings.append(time.perf_counter() - began)
            answered.raise_for_status()
    return timings


async def _provision(server: Server, org_id: uuid.UUID) -> list[str]:
    """``SCIM_USERS`` users in ``org_id``, as SCIM provisioning stores them; their e-mails."""
    database = server_database(server.data_dir)
    emails = [f"scim-{number:05d}@bench.example" for number in range(SCIM_USERS)]
    try:
        for start in range(0, SCIM_USERS, 1000):
            async with database.tenant_transaction(org_id=org_id) as session:
                settings = settings_of(session)
                users = []
                for email in emails[start : start + 1000]:
                    user = User(id=uuid.uuid4(), password_hash=NO_PASSWORD)
                    pii.seal_email(settings, user, email)
                    pii.seal_full_name(settings, user, f"Person {email[5:10]}")
                    users.append(user)
                session.add_all(users)
                await session.flush()
                session.add_all(Membership(org_id=org_id, user_id=user.id, role="member") for user in users)
                session.add_all(ScimUser(org_id=org_id, user_id=user.id) for user in users)
    finally:
        await database.dispose()
    return emails


async def _lists(base_url: str, headers: dict[str, str], emails: list[str]) -> dict[str, list[float]]:
    chance = random.Random(16)
    timings: dict[str, list[float]] = {"pages": [], "filters": [], "members": []}
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(ROUNDS):
            for name, url, params in (
                ("pages", "/scim/v2/Users", {"startIndex": chance.randint(1, SCIM_USERS - 99), "count": 100}),
                ("filters", "/scim/v2/Users", {"filter": f'userName eq "{chance.choice(emails)}"'}),
                ("members", "/api/v1/members", {"page": chance.randint(1, SCIM_USERS // 100), "limit": 100}),
            ):
                began = time.perf_counter()
                answered = await http.get(f"{base_url}{url}", params=params, headers=headers[name])
                timings[name].append(time.perf_counter() - began)
                answered.raise_for_status()
    return timings


async def _scim(server: Server) -> dict[str, Any]:
    token = await asyncio.to_thread(signup, server.base_url, "bench-scim@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        org = (await http.get(f"{server.base_url}/api/v1/organization", headers=bearer)).json()["data"]["id"]
        made = await http.post(f"{server.base_url}/api/v1/organization/scim-token", headers=bearer)
        scim_bearer = {"Authorization": f"Bearer {made.json()['data']['token']}"}
    started = time.perf_counter()
    emails = await _provision(server, uuid.UUID(org))
    seeded = time.perf_counter() - started
    timings = await _lists(server.base_url, {"pages": scim_bearer, "filters": scim_bearer, "members": bearer}, emails)
    return {
        "scim_users": SCIM_USERS,
        "scim_seed_s": seeded,
        "scim_list_100_p50_ms": statistics.median(timings["pages"]) * 1000,
        "scim_list_100_p95_ms": _p95(timings["pages"]),
        "scim_filter_username_p50_ms": statistics.median(timings["filters"]) * 1000,
        "scim_filter_username_p95_ms": _p95(timings["filters"]),
        "baseline_members_list_100_p50_ms": statistics.median(timings["members"]) * 1000,
        "baseline_members_list_100_p95_ms": _p95(timings["members"]),
    }


async def _run() -> dict[str, Any]:
    provider = FakeOidcProvider()
    idp = FakeSamlIdp(person=SamlPerson("grace", "bench-sso@example.com", "Grace Hopper"))
    async with serving_at_its_address(provider), serving_at_its_address(idp):
        configured = [
            {
                "name": NAME,
                "label": "Bench",
                "issuer": provider.issuer,
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
            }
        ]
        exchanges = await _exchanges(provider)
        with running_server("run", NORTHSTAR_AUTH__PROVIDERS=json.dumps(configured)) as server:
            callbacks = await _callbacks(server.base_url)
            sign_ons = await _sign_ons(server.base_url, idp)
            email = "bench-password@example.com"
            await asyncio.to_thread(signup, server.base_url, email)
            logins = await _password_logins(server.base_url, email)
            scim = await _scim(server)
    return scim | {
        "rounds": ROUNDS,
        "oidc_callback_p50_ms": statistics.median(callbacks) * 1000,
        "oidc_callback_p95_ms": _p95(callbacks),
        "saml_acs_p50_ms": statistics.median(sign_ons) * 1000,
        "saml_acs_p95_ms": _p95(sign_ons),
        "baseline_token_exchange_p50_ms": statistics.median(exchanges) * 1000,
        "baseline_token_exchange_p95_ms": _p95(exchanges),
        "baseline_password_login_p50_ms": statistics.median(logins) * 1000,
        "baseline_password_login_p95_ms": _p95(logins),
    }


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    results |= asyncio.run(_run())
    results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
