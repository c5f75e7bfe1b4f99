"""Sign-in with an OpenID Connect provider, against a real provider on loopback (``demo/oidc_provider.py``) and the
platform served on its own port, the browser's hops made by hand: a new person signs up and comes back to the same
account; an e-mail an account holds is not merged until its owner connects the provider; every forged or broken
answer is refused (state, code, audience, issuer, expiry, signature, nonce), and none signs anyone in."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from northstar.accounts.service import identity
from northstar.app import create_app
from northstar.core.db import Database
from northstar.demo.loopback import free_port, serving, serving_at_its_address
from northstar.demo.oidc_provider import FakeOidcProvider, Misbehaviour, Person
from northstar.settings import Settings, SignInProvider
from tests.console.conftest import csrf_of, leaving_url
from tests.factories import PASSWORD, signup, unique_email
from tests.rows import rows_of

NAME = "fakegoogle"


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[FakeOidcProvider]:
    fake = FakeOidcProvider()
    async with serving_at_its_address(fake):
        yield fake


@pytest.fixture(autouse=True)
def behaving(provider: FakeOidcProvider) -> None:
    """Each test starts with a provider that behaves, and a person nobody has seen."""
    provider.misbehave = None
    provider.person = Person(uuid.uuid4().hex, unique_email(), "Ada Lovelace")


@pytest.fixture(scope="module")
async def site(settings: Settings, provider: FakeOidcProvider) -> AsyncIterator[str]:
    """The platform on loopback, with the fake as its sign-in provider "Google (fake)"."""
    port = free_port()
    configured = SignInProvider(
        name=NAME,
        label="Google (fake)",
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
    )
    github = SignInProvider(
        name="fakegithub",
        label="GitHub (fake)",
        kind="github",
        issuer=provider.issuer,
        api_url=provider.issuer,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
    )
    changed = settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "auth": settings.auth.model_copy(update={"providers": [configured, github]}),
        }
    )
    async with serving(create_app(changed), port=port) as url:
        yield url


async def to_provider_and_back(http: httpx.AsyncClient, start: httpx.Response) -> httpx.Response:
    """Follow a start (303 to the provider), the provider's consent (302 back), and the callback."""
    assert start.status_code == 303, start.text
    consent = await http.get(start.headers["location"])
    assert consent.status_code == 302, consent.text
    return await http.get(consent.headers["location"])


async def sign_in(http: httpx.AsyncClient, site: str, name: str = NAME) -> httpx.Response:
    return await to_provider_and_back(http, await http.get(f"{site}/app/login/with/{name}?next=/app/account"))


async def _signed_in_as(http: httpx.AsyncClient, site: str) -> str | None:
    """The e-mail the browser is signed in as, or None."""
    page = await http.get(f"{site}/app/account")
    if page.status_code != 200:
        return None
    marker = "E-mail: "
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index("<", start)].strip()


async def test_a_new_person_signs_up_and_comes_back_to_the_same_account(
    site: str, provider: FakeOidcProvider, database: Database
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(f"{site}/app/login")
        assert "Sign in with Google (fake)" in page.text
        listed = (await http.get(f"{site}/api/v1/auth/providers")).json()["data"]
        assert [(found["name"], found["kind"]) for found in listed] == [(NAME, "oidc"), ("fakegithub", "github")]
        back = await sign_in(http, site)
        assert back.status_code == 303 and back.headers["location"] == "/app/account", back.text
        assert await _signed_in_as(http, site) == provider.person.email
    async with httpx.AsyncClient(timeout=30) as again:
        assert (await sign_in(again, site)).status_code == 303
        assert await _signed_in_as(again, site) == provider.person.email
    found = await rows_of(
        database,
        None,
        "SELECT user_id FROM auth.identities WHERE auth_provider = :name AND auth_provider_id = :subject",
        name=NAME,
        subject=provider.person.subject,
    )
    assert len(found) == 1
    user_id = found[0][0]
    orgs = await rows_of(
        database, None, "SELECT org_id FROM core.memberships WHERE user_id = :u", user_id=user_id, u=user_id
    )
    assert len(orgs) == 1  # the one org signing up made
    logins = await rows_of(
        database,
        orgs[0][0],
        "SELECT details->>'method' FROM core.audit_events WHERE action = 'auth.login' AND actor_id = :user",
        user=user_id,
    )
    assert [method for (method,) in logins] == [f"oidc:{NAME}", f"oidc:{NAME}"]


async def test_an_email_an_account_holds_is_not_merged_until_its_owner_connects_it(
    site: str, provider: FakeOidcProvider, client: httpx.AsyncClient
) -> None:
    owner = await signup(client, email=provider.person.email)
    async with httpx.AsyncClient(timeout=30) as stranger:
        refused = await sign_in(stranger, site)
        assert refused.status_code == 409 and "already exists" in refused.text
        assert await _signed_in_as(stranger, site) is None

    async with httpx.AsyncClient(base_url=site, timeout=30) as http:
        page = await http.get("/app/login")
        signed = await http.post(
            "/app/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        assert signed.status_code == 303
        listing = await http.get("/app/account/connected")
        assert "Connect Google (fake)" in listing.text
        leaving = await http.post(f"/app/account/connected/{NAME}/connect", data={"csrf_token": csrf_of(listing.text)})
        consent = await http.get(leaving_url(leaving))
        assert consent.status_code == 302, consent.text
        linked = await http.get(consent.headers["location"])
        assert linked.headers["location"] == f"/app/account/connected?connected={NAME}"
        listing = await http.get(linked.headers["location"])
        assert "Google (fake) is connected" in listing.text

        token = csrf_of(listing.text)
        kept = await http.post(f"/app/account/connected/{NAME}/disconnect", data={"csrf_token": token})
        assert kept.status_code == 403 and "enter your password" in kept.text

    async with httpx.AsyncClient(timeout=30) as browser:
        assert (await sign_in(browser, site)).status_code == 303
        assert await _signed_in_as(browser, site) == owner.email

    linked = (await client.get("/api/v1/users/me/identities", headers=owner.headers)).json()["data"]
    assert [found["provider"] for found in linked] == [NAME] and linked[0]["lastUsedAt"]
    path = f"/api/v1/users/me/identities/{NAME}/disconnect"
    kept = await client.post(path, headers=owner.headers, json={})
    assert kept.status_code == 403 and kept.json()["error"]["code"] == "password_required"
    wrong = await client.post(path, headers=owner.headers, json={"password": "not it at all"})
    assert wrong.status_code == 403
    assert (await client.post(path, headers=owner.headers, json={"password": PASSWORD})).status_code == 204
    assert (await client.get("/api/v1/users/me/identities", headers=owner.headers)).json()["data"] == []
    assert (await client.post(path, headers=owner.headers, json={"password": PASSWORD})).status_code == 404
    async with httpx.AsyncClient(timeout=30) as browser:
        assert (await sign_in(browser, site)).status_code == 409  # the e-mail's owner again, not connected


@pytest.mark.parametrize(
    ("misbehaviour", "said"),
    [
        ("audience", "issued for another application"),
        ("issuer", "issued by another provider"),
        ("expired", "has expired"),
        ("unsigned", "not signed with"),
        ("foreign_key", "not valid"),
        ("nonce", "does not carry this sign-in"),
    ],
)
async def test_a_broken_id_token_signs_nobody_in(
    site: str, provider: FakeOidcProvider, database: Database, misbehaviour: Misbehaviour, said: str
) -> None:
    provider.misbehave = misbehaviour
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await sign_in(http, site)
        assert refused.status_code == 400 and said in refused.text, refused.text
        assert await _signed_in_as(http, site) is None
    assert (
        await rows_of(
            database, None, "SELECT 1 FROM auth.identities WHERE auth_provider_id = :s", s=provider.person.subject
        )
        == []
    )


async def test_a_state_is_good_once_and_a_code_once(site: str, provider: FakeOidcProvider) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        start = await http.get(f"{site}/app/login/with/{NAME}")
        consent = await http.get(start.headers["location"])
        callback = consent.headers["location"]
        assert (await http.get(callback)).status_code == 303
        replayed = await http.get(callback)
        assert replayed.status_code == 400 and "already used" in replayed.text

        code = httpx.URL(callback).params["code"]
        fresh = await http.get(f"{site}/app/login/with/{NAME}")
        state = httpx.URL(fresh.headers["location"]).params["state"]
        reused = await http.get(f"{site}/app/login/with/{NAME}/callback", params={"code": code, "state": state})
        assert reused.status_code == 400 and "invalid_grant" in reused.text  # the provider refuses the code again

        forged = await http.get(f"{site}/app/login/with/{NAME}/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 400 and "unknown, expired or already used" in forged.text
        denied = await http.get(f"{site}/app/login/with/{NAME}/callback", params={"error": "access_denied"})
        assert denied.status_code == 400 and "cancelled" in denied.text
        assert (await http.get(f"{site}/app/login/with/nobody")).status_code == 404


async def test_github_signs_in_with_its_user_and_primary_verified_email(
    site: str, provider: FakeOidcProvider, database: Database
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        start = await http.get(f"{site}/app/login/with/fakegithub")
        assert "/login/oauth/authorize?" in start.headers["location"]
        assert "scope=read%3Auser+user%3Aemail" in start.headers["location"]
        consent = await http.get(start.headers["location"])
        callback = consent.headers["location"]
        back = await http.get(callback)
        assert back.status_code == 303, back.text
        assert await _signed_in_as(http, site) == provider.person.email

        code = httpx.URL(callback).params["code"]
        fresh = await http.get(f"{site}/app/login/with/fakegithub")
        state = httpx.URL(fresh.headers["location"]).params["state"]
        reused = await http.get(f"{site}/app/login/with/fakegithub/callback", params={"code": code, "state": state})
        assert reused.status_code == 400 and "bad_verification_code" in reused.text
    subject = str(int(provider.person.subject[:12], 16))
    found = await rows_of(
        database,
        None,
        "SELECT 1 FROM auth.identities WHERE auth_provider = 'fakegithub' AND auth_provider_id = :s",
        s=subject,
    )
    assert len(found) == 1

    provider.person = Person(uuid.uuid4().hex, unique_email(), "Unverified", email_verified=False)
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await sign_in(http, site, "fakegithub")
        assert refused.status_code == 400 and "did not vouch for an e-mail" in refused.text


async def test_trips_over_for_a_day_are_forgotten(site: str, database: Database) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        start = await http.get(f"{site}/app/login/with/{NAME}")
    state = httpx.URL(start.headers["location"]).params["state"]
    digest = hashlib.sha256(state.encode()).hexdigest()
    kept = "SELECT 1 FROM auth.sign_in_states WHERE state_hash = :h"
    async with database.tenant_transaction() as session:
        await identity.purge_finished(session)
    assert len(await rows_of(database, None, kept, h=digest)) == 1  # a trip still running stays
    async with database.tenant_transaction() as session:
        aged = "UPDATE auth.sign_in_states SET expires_at = now() - interval '25 hours' WHERE state_hash = :h"
        await session.execute(text(aged), {"h": digest})
        assert await identity.purge_finished(session) >= 1
    assert await rows_of(database, None, kept, h=digest) == []
