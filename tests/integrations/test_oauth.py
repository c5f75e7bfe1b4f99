"""Connecting integrations through the providers' consent screens, against each provider's fake authorization server
on loopback (HubSpot, Google, Stripe Connect, Shopify's app install) and a real worker: the browser's hops made by
hand, each rejection of a state, a denied consent and a refused code, refreshing expiring tokens (and asking for a
reconnect when the provider will not), revocation at disconnect, who may connect, and what another org reaches."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from pydantic.alias_generators import to_camel
from starlette.applications import Starlette
from starlette.routing import Mount

from northstar.app import create_app
from northstar.core.db import Database
from northstar.demo.loopback import serving
from northstar.demo.stripe_account import add_months, generate, rates_body
from northstar.demo.stripe_api import FakeStripe
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account, add_member, signup
from tests.fakes.google_analytics import FakeGoogleAnalytics
from tests.fakes.hubspot import FakeHubSpot, default_pipeline
from tests.fakes.shopify import ShopifyStore
from tests.integrations.conftest import integration_of, wait_for_sync
from tests.rows import rows_of
from tests.workers import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_URL, Workers, reaching_loopback, with_oauth_apps

CALLBACK_FIELDS = ("state", "code", "error", "error_description", "shop", "hmac", "timestamp", "host", "scope")
PROPERTY = "314159"


@dataclass
class Vendors:
    hubspot: FakeHubSpot
    google: FakeGoogleAnalytics
    stripe: FakeStripe
    shopify: ShopifyStore


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[Vendors]:
    """Every fake vendor under its settings' name on the port the workers were told (``tests.workers.OAUTH_URL``)."""
    start = dt.datetime.fromtimestamp(add_months(int(time.time()), -2), dt.UTC)
    found = Vendors(
        hubspot=FakeHubSpot(client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET),
        google=FakeGoogleAnalytics(
            property_id=PROPERTY, access_tokens=set(), client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET
        ),
        stripe=FakeStripe(
            generate(customers=4, months=2, seed=3, start=start),
            client_id=OAUTH_CLIENT_ID,
            platform_key=OAUTH_CLIENT_SECRET,
        ),
        shopify=ShopifyStore(
            token="shpat_before_install", client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET
        ),
    )
    found.hubspot.add_deal(
        created=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
        dealname="Consented deal",
        amount="1200",
        dealstage="qualifiedtobuy",
        pipeline=default_pipeline()["id"],
    )
    app = Starlette(
        routes=[
            Mount("/hubspot", app=found.hubspot.app),
            Mount("/google", app=found.google.app),
            Mount("/stripe", app=found.stripe.app),
            Mount("/shopify", app=found.shopify.app),
        ]
    )
    async with serving(app, port=urlsplit(OAUTH_URL).port):
        yield found


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The platform with the fakes' OAuth apps, as the workers have them."""
    async with running(create_app(with_oauth_apps(reaching_loopback(settings)))) as http:
        yield http


@pytest.fixture(scope="module")
async def keys_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A platform with no OAuth client configured: pasting keys only."""
    async with running(create_app(reaching_loopback(settings))) as http:
        yield http


async def start(
    client: httpx.AsyncClient, account: Account, provider: str, *, status: int = 200, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/api/v1/integrations/oauth/{provider}/start", headers=account.headers, json=body)
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    return found


async def authorization_url(client: httpx.AsyncClient, account: Account, provider: str, **body: Any) -> str:
    return str((await start(client, account, provider, **body))["data"]["authorizationUrl"])


async def consent(url: str, *, decision: str = "allow") -> dict[str, str]:
    """The person at the provider's screen: its page, their decision, and the parameters of the redirect back."""
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(url)
        assert page.status_code == 200, page.text
        assert "Allow access to your" in page.text
        fields = {html.unescape(name): html.unescape(value) for name, value in HIDDEN.findall(page.text)}
        answer = await browser.post(url.partition("?")[0], data={**fields, "decision": decision})
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert back.path.endswith("/callback")
    return dict(parse_qsl(back.query))


HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


async def finish(client: httpx.AsyncClient, account: Account, provider: str, back: dict[str, str]) -> httpx.Response:
    body = {to_camel(name): value for name, value in back.items() if name in CALLBACK_FIELDS}
    return await client.post(f"/api/v1/integrations/oauth/{provider}/finish", headers=account.headers, json=body)


async def connected(
    client: httpx.AsyncClient, account: Account, provider: str, **body: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Start, consent and finish: the integration made, and the redirect back that made it."""
    back = await consent(await authorization_url(client, account, provider, **body))
    response = await finish(client, account, provider, back)
    assert response.status_code == 200, response.text
    integration: dict[str, Any] = response.json()["data"]
    return integration, back


async def consents(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/integrations/oauth/consents", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def integrations(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/integrations", headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def expire_consent(database: Database, account: Account, integration_id: str) -> None:
    """The access token's expiry has passed, as it would an hour later (the provider is told too, by the test)."""
    await rows_of(
        database,
        account.org_id,
        "UPDATE integrations.oauth_consents SET expires_at = now() - interval '1 minute'"
        " WHERE integration_id = :id AND revoked_at IS NULL RETURNING id",
        id=integration_id,
    )


async def test_hubspot_connects_through_its_consent_screen_and_syncs(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account, worker: Workers, database: Database
) -> None:
    listed = (await client.get("/api/v1/integrations/oauth/providers", headers=founder.headers)).json()["data"]
    assert [item["provider"] for item in listed] == ["stripe", "google_analytics", "shopify", "hubspot"]
    assert next(item for item in listed if item["provider"] == "shopify")["needs"] == ["shop"]

    url = await authorization_url(client, founder, "hubspot", name="Sales CRM")
    asked = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{OAUTH_URL}/hubspot/oauth/authorize?")
    assert asked["client_id"] == OAUTH_CLIENT_ID and asked["response_type"] == "code"
    assert asked["scope"] == "crm.objects.deals.read oauth"
    assert asked["redirect_uri"].endswith("/app/integrations/oauth/hubspot/callback")
    kept = await rows_of(database, founder.org_id, "SELECT state_hash, used_at FROM integrations.oauth_states")
    assert len(kept) == 1 and kept[0].state_hash != asked["state"] and kept[0].used_at is None  # only its digest

    back = await consent(url)
    response = await finish(client, founder, "hubspot", back)
    assert response.status_code == 200, response.text
    integration = response.json()["data"]
    assert (integration["provider"], integration["name"], integration["status"]) == ("hubspot", "Sales CRM", "active")
    assert integration["credentials"] == ["accessToken", "refreshToken"]
    sealed = await rows_of(
        database,
        founder.org_id,
        "SELECT credentials_encrypted FROM integrations.integrations WHERE id = :id",
        id=integration["id"],
    )
    issued = next(iter(vendors.hubspot.issued))
    assert issued not in sealed[0].credentials_encrypted  # stored encrypted like pasted keys
    exchange = vendors.hubspot.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["client_secret"] == OAUTH_CLIENT_SECRET
    assert exchange["redirect_uri"] == asked["redirect_uri"]

    [given] = await consents(client, founder, integrationId=integration["id"])
    assert given["userId"] == str(founder.user_id) and given["account"] == str(vendors.hubspot.hub_id)
    assert given["scopes"] == ["crm.objects.deals.read", "oauth"]
    assert given["expiresAt"] is not None and given["revokedAt"] is None

    run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "succeeded", run
    assert run["fetched"]["deals"] == 1


@pytest.mark.parametrize("provider", ["google_analytics", "stripe", "shopify"])
async def test_google_stripe_and_shopify_connect_through_their_consent_screens(
    provider: str, client: httpx.AsyncClient, vendors: Vendors, founder: Account, worker: Workers
) -> None:
    config: dict[str, Any] = {
        "google_analytics": {"propertyId": PROPERTY},
        "stripe": {},
        "shopify": {"shop": "HTTPS://Acme.myshopify.com/"},
    }[provider]
    if provider == "stripe":  # the generated account bills in three currencies
        rates = rates_body(vendors.stripe.account.fx_rates)
        assert (await client.put("/api/v1/metrics/fx-rates", headers=founder.headers, json=rates)).status_code == 200
    url = await authorization_url(client, founder, provider, config=config)
    asked = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    back = await consent(url)
    response = await finish(client, founder, provider, back)
    assert response.status_code == 200, response.text
    integration = response.json()["data"]
    [given] = await consents(client, founder, integrationId=integration["id"])
    if provider == "google_analytics":
        assert asked["code_challenge_method"] == "S256" and asked["access_type"] == "offline"
        assert vendors.google.token_grants[-1]["code_verifier"]  # PKCE: the fake checked it against the challenge
        assert given["scopes"] == ["https://www.googleapis.com/auth/analytics.readonly"]
        assert integration["config"]["propertyId"] == PROPERTY and given["expiresAt"] is not None
    elif provider == "stripe":
        assert asked["scope"] == "read_only" and "code_challenge" not in asked
        assert integration["credentials"] == ["apiKey"]
        assert given["account"] == vendors.stripe.account_id and given["expiresAt"] is None
    else:
        assert asked["scope"] == "read_orders,read_customers"
        assert back["shop"] == "acme.myshopify.com" and back["hmac"]  # signed by the fake with the app's secret
        assert integration["config"]["shop"] == "acme.myshopify.com"
        assert given["account"] == "acme.myshopify.com" and given["scopes"] == ["read_customers", "read_orders"]
    run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "succeeded", run


async def test_a_state_is_good_only_for_its_org_and_person_once_and_before_it_expires(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account, database: Database
) -> None:
    admin = await add_member(client, founder, "admin")
    stranger = await signup(client)

    async def refused(account: Account, back: dict[str, str], why: str) -> None:
        response = await finish(client, account, "hubspot", back)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_state" and why in error["message"], error

    back = await consent(await authorization_url(client, founder, "hubspot"))
    await refused(founder, {**back, "state": "made-up"}, "not one this organization started")
    await refused(stranger, back, "not one this organization started")  # another org's state is invisible to it
    await refused(admin, back, "started by someone else")
    assert (await finish(client, founder, "stripe", back)).status_code == 400  # a HubSpot trip, not Stripe's
    assert (await finish(client, founder, "hubspot", back)).status_code == 200  # none of those used it up
    await refused(founder, back, "used already")

    late = await consent(await authorization_url(client, founder, "hubspot"))
    await rows_of(
        database,
        founder.org_id,
        "UPDATE integrations.oauth_states SET expires_at = now() - interval '1 second' WHERE used_at IS NULL"
        " RETURNING state_hash",
    )
    await refused(founder, late, "expired")
    assert len(await integrations(client, founder)) == 1
    assert await integrations(client, stranger) == [] and await consents(client, stranger) == []

    missing = await client.post(
        "/api/v1/integrations/oauth/hubspot/finish", headers=founder.headers, json={"code": "x"}
    )
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "validation_error", missing.text


async def test_a_denied_consent_a_refused_code_or_a_forged_redirect_connects_nothing(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account
) -> None:
    denied = await consent(await authorization_url(client, founder, "hubspot"), decision="deny")
    assert denied["error"] == "access_denied" and "code" not in denied
    response = await finish(client, founder, "hubspot", denied)
    assert response.status_code == 400 and response.json()["error"]["code"] == "consent_denied", response.text
    assert "denied" in response.json()["error"]["message"]
    replay = await finish(client, founder, "hubspot", {**denied, "code": "stolen"})
    assert replay.json()["error"]["code"] == "invalid_state"  # the denied trip is spent

    wrong_code = await consent(await authorization_url(client, founder, "hubspot"))
    response = await finish(client, founder, "hubspot", {**wrong_code, "code": "not-the-code"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "oauth_refused"
    assert "BAD_AUTH_CODE" in response.json()["error"]["message"]

    google = await consent(await authorization_url(client, founder, "google_analytics", config={"propertyId": "1"}))
    response = await finish(client, founder, "google_analytics", {**google, "code": google["code"][::-1]})
    assert response.json()["error"]["code"] == "oauth_refused" and "invalid_grant" in response.text

    shop = await consent(await authorization_url(client, founder, "shopify", config={"shop": "acme.myshopify.com"}))
    response = await finish(client, founder, "shopify", {**shop, "timestamp": str(int(shop["timestamp"]) + 60)})
    assert response.status_code == 400 and "not signed" in response.json()["error"]["message"], response.text
    assert await integrations(client, founder) == []


async def test_expiring_tokens_are_refreshed_and_a_refused_refresh_asks_for_a_reconnect(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account, worker: Workers, database: Database
) -> None:
    integration, _ = await connected(client, founder, "hubspot")
    assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
    vendors.hubspot.expire_access_tokens()
    await expire_consent(database, founder, integration["id"])
    sync = await client.post(f"/api/v1/integrations/{integration['id']}/sync", headers=founder.headers)
    assert sync.status_code == 202, sync.text
    run = await wait_for_sync(client, founder, integration["id"], until=("succeeded", "failed"))
    assert run["status"] == "succeeded", run
    assert vendors.hubspot.token_requests[-1]["grant_type"] == "refresh_token"
    [given] = await consents(client, founder, integrationId=integration["id"])
    assert given["refreshedAt"] is not None and dt.datetime.fromisoformat(given["expiresAt"]) > dt.datetime.now(dt.UTC)

    vendors.hubspot.uninstall()  # the account's admin removed the app: its refresh token no longer refreshes
    await expire_consent(database, founder, integration["id"])
    await client.post(f"/api/v1/integrations/{integration['id']}/sync", headers=founder.headers)
    run = await wait_for_sync(client, founder, integration["id"], until=("succeeded", "failed"))
    assert run["status"] == "failed" and "BAD_REFRESH_TOKEN" in run["error"], run
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "reconnect" and "connect the account again" in found["lastError"]

    url = await authorization_url(client, founder, "hubspot", integrationId=integration["id"])
    response = await finish(client, founder, "hubspot", await consent(url))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == integration["id"] and response.json()["data"]["status"] == "active"
    newer, replaced = await consents(client, founder, integrationId=integration["id"])
    assert newer["revokedAt"] is None
    assert replaced["revocation"] == "reconnected" and replaced["revokedBy"] == str(founder.user_id)
    run = await wait_for_sync(client, founder, integration["id"], until=("succeeded", "failed"))
    assert run["status"] == "succeeded", run

    google, _ = await connected(client, founder, "google_analytics", config={"propertyId": PROPERTY})
    vendors.google.expire_access_tokens()
    await expire_consent(database, founder, google["id"])
    tested = await client.post(f"/api/v1/integrations/{google['id']}/test", headers=founder.headers)
    assert tested.status_code == 200, tested.text  # refreshed first, then the Data API took the new token
    assert vendors.google.token_grants[-1]["grant_type"] == "refresh_token"


async def test_disconnecting_revokes_the_grant_at_each_provider(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account, worker: Workers
) -> None:
    made = {
        "hubspot": await connected(client, founder, "hubspot"),
        "google_analytics": await connected(client, founder, "google_analytics", config={"propertyId": PROPERTY}),
        "stripe": await connected(client, founder, "stripe"),
        "shopify": await connected(client, founder, "shopify", config={"shop": "acme.myshopify.com"}),
    }
    refresh_tokens = {
        "hubspot": next(reversed(vendors.hubspot.refresh_tokens)),
        "google_analytics": vendors.google.made_from[max(vendors.google.made_from, key=lambda token: token)],
    }
    uninstalls = vendors.shopify.uninstalls
    for provider, (integration, _) in made.items():
        await wait_for_sync(client, founder, integration["id"])  # its first sync is over before it goes
        gone = await client.delete(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)
        assert gone.status_code == 204, (provider, gone.text)
        [given] = await consents(client, founder, integrationId=integration["id"])
        assert (given["revocation"], given["providerRevocation"]) == ("disconnected", "revoked"), given
        assert given["revokedBy"] == str(founder.user_id)
    assert refresh_tokens["hubspot"] in vendors.hubspot.revoked
    assert refresh_tokens["google_analytics"] in vendors.google.revoked
    assert not vendors.stripe.connected and vendors.stripe.revoked
    assert vendors.shopify.uninstalls == uninstalls + 1
    assert await integrations(client, founder) == []

    integration, _ = await connected(client, founder, "hubspot")
    await wait_for_sync(client, founder, integration["id"])
    vendors.hubspot.uninstall()  # revoked at HubSpot already: the disconnect goes on and says what HubSpot answered
    gone = await client.delete(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)
    assert gone.status_code == 204, gone.text
    [given] = await consents(client, founder, integrationId=integration["id"])
    assert given["providerRevocation"].startswith("refused: BAD_REFRESH_TOKEN"), given


async def test_only_the_roles_that_connect_integrations_connect_and_other_orgs_reach_nothing(
    client: httpx.AsyncClient, vendors: Vendors, founder: Account
) -> None:
    integration, _ = await connected(client, founder, "hubspot")
    for role in ("member", "analyst", "investor"):
        person = await add_member(client, founder, role)
        refused = await start(client, person, "hubspot", status=403)
        assert refused["error"]["code"] == "forbidden"
        answer = await finish(client, person, "hubspot", {"state": "any", "code": "any"})
        assert answer.status_code == 403, (role, answer.text)
    admin = await add_member(client, founder, "admin")
    assert await authorization_url(client, admin, "hubspot")

    key = await client.post("/api/v1/api-keys", headers=founder.headers, json={"name": "robot", "role": "admin"})
    assert key.status_code == 201, key.text
    robot = {"X-API-Key": key.json()["data"]["key"]}  # may connect with keys, but a consent needs a person
    answer = await client.post("/api/v1/integrations/oauth/hubspot/start", headers=robot, json={})
    assert answer.status_code == 403 and "API keys" in answer.json()["error"]["message"], answer.text

    stranger = await signup(client)
    assert await consents(client, stranger) == []
    reconnect = await start(client, stranger, "hubspot", status=404, integrationId=integration["id"])
    assert reconnect["error"]["code"] == "not_found"
    gone = await client.delete(f"/api/v1/integrations/{integration['id']}", headers=stranger.headers)
    assert gone.status_code == 404
    assert (await integration_of(client, founder, integration["id"]))["status"] == "active"


async def test_bad_requests_are_clear_and_providers_without_a_client_keep_the_pasted_keys(
    client: httpx.AsyncClient, keys_only: httpx.AsyncClient, vendors: Vendors, founder: Account
) -> None:
    no_property = await start(client, founder, "google_analytics", status=422)
    assert "propertyId" in no_property["error"]["message"]
    elsewhere = await start(client, founder, "shopify", status=422, config={"shop": "evil.example.com"})
    assert elsewhere["error"]["details"][0]["field"] == "body.config.shop"
    unknown = await start(client, founder, "salesforce", status=422)
    assert unknown["error"]["code"] == "validation_error"
    mixpanel = await start(client, founder, "mixpanel", status=404)
    assert mixpanel["error"]["code"] == "oauth_not_offered"
    stray = await start(client, founder, "hubspot", status=404, integrationId=str(uuid.uuid4()))
    assert stray["error"]["code"] == "not_found"

    assert (await keys_only.get("/api/v1/integrations/oauth/providers", headers=founder.headers)).json()["data"] == []
    missing = await start(keys_only, founder, "hubspot", status=404)
    assert missing["error"]["code"] == "oauth_not_configured"
    pasted = await keys_only.post(
        "/api/v1/integrations",
        headers=founder.headers,
        json={
            "provider": "hubspot",
            "name": "Pasted",
            "credentials": {"accessToken": vendors.hubspot.token},
            "config": {"baseUrl": f"{OAUTH_URL}/hubspot"},
        },
    )
    assert pasted.status_code == 201, pasted.text
    gone = await keys_only.delete(f"/api/v1/integrations/{pasted.json()['data']['id']}", headers=founder.headers)
    assert gone.status_code == 204 and await consents(client, founder) == []  # pasted keys are the owner's to roll
