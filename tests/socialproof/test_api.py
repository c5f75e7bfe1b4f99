"""Sites (seed 001): create, validate the domain and settings, update, delete; roles and uniqueness."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.factories import Account, add_member


def _domain() -> str:
    return f"shop-{secrets.token_hex(4)}.example.com"


async def _create(client: httpx.AsyncClient, account: Account, **fields: object) -> httpx.Response:
    return await client.post("/api/v1/sites", headers=account.headers,
                             json={"name": "My shop", "domain": _domain(), **fields})


async def test_create_with_defaults_and_read_back(client: httpx.AsyncClient, founder: Account) -> None:
    host = _domain()
    created = await _create(client, founder, domain=f"https://{host.upper()}/")
    assert created.status_code == 201, created.text
    site = created.json()["data"]
    assert site["domain"] == host and site["siteKey"].startswith("pk_") and len(site["siteKey"]) >= 27
    assert site["settings"] == {"position": "bottom-left", "theme": "auto", "locale": "en", "timezone": "UTC"}
    assert site["dataRegion"] == "us" and site["createdBy"] == str(founder.user_id)
    fetched = await client.get(f"/api/v1/sites/{site['id']}", headers=founder.headers)
    assert fetched.json()["data"] == site
    listed = (await client.get(f"/api/v1/sites?q={host[:10]}", headers=founder.headers)).json()
    assert [item["id"] for item in listed["data"]] == [site["id"]] and listed["meta"]["total"] == 1


async def test_international_domains_are_stored_in_ascii(client: httpx.AsyncClient, founder: Account) -> None:
    label = secrets.token_hex(3)
    created = await _create(client, founder, domain=f"Bücher-{label}.example")
    stored = created.json()["data"]["domain"]
    assert stored.startswith("xn--") and stored.isascii()
    assert stored.encode().decode("idna") == f"bücher-{label}.example"


@pytest.mark.parametrize("domain", ["shop.example.com/checkout", "127.0.0.1", "not a domain", "-bad.example.com",
                                    "http://shop.example.com:8080", "ftp://shop.example.com", "example", "",
                                    "user@shop.example.com", "a" * 64 + ".example.com"])
async def test_bad_domains_are_422_on_the_domain_field(client: httpx.AsyncClient, founder: Account,
                                                      domain: str) -> None:
    response = await _create(client, founder, domain=domain)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["body.domain"]


@pytest.mark.parametrize(("given", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "body.settings.timezone"),
    ({"position": "middle"}, "body.settings.position"),
    ({"locale": "english"}, "body.settings.locale"),
    ({"colour": "red"}, "body.settings.colour"),
])
async def test_bad_settings_are_422(client: httpx.AsyncClient, founder: Account, given: dict[str, str],
                                    field: str) -> None:
    response = await _create(client, founder, settings=given)
    assert response.status_code == 422
    assert field in [detail["field"] for detail in response.json()["error"]["details"]]


async def test_a_domain_belongs_to_one_site(client: httpx.AsyncClient, founder: Account,
                                           other_founder: Account) -> None:
    host = _domain()
    first = await _create(client, founder, domain=host)
    taken = await _create(client, other_founder, domain=f"https://{host}")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    other = (await _create(client, other_founder)).json()["data"]
    renamed = await client.patch(f"/api/v1/sites/{other['id']}", json={"domain": host}, headers=other_founder.headers)
    assert renamed.status_code == 409
    await client.delete(f"/api/v1/sites/{first.json()['data']['id']}", headers=founder.headers)
    assert (await _create(client, other_founder, domain=host)).status_code == 201


async def test_patch_merges_settings_and_keeps_the_region(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder, dataRegion="eu", settings={"theme": "dark"})).json()["data"]
    patched = await client.patch(f"/api/v1/sites/{site['id']}", headers=founder.headers,
                                 json={"name": "Renamed", "settings": {"timezone": "Europe/Berlin"}})
    assert patched.status_code == 200
    data = patched.json()["data"]
    assert data["name"] == "Renamed" and data["dataRegion"] == "eu"
    assert data["settings"] == {"position": "bottom-left", "theme": "dark", "locale": "en",
                                "timezone": "Europe/Berlin"}
    moved = await client.patch(f"/api/v1/sites/{site['id']}", json={"dataRegion": "us"}, headers=founder.headers)
    assert moved.status_code == 422


async def test_roles(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder)).json()["data"]
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")
    member = await add_member(client, founder, "member")
    assert (await client.get(f"/api/v1/sites/{site['id']}", headers=analyst.headers)).status_code == 200
    assert (await _create(client, analyst)).status_code == 403
    assert (await client.get("/api/v1/sites", headers=investor.headers)).status_code == 403
    own = (await _create(client, member)).json()["data"]
    renamed = await client.patch(f"/api/v1/sites/{own['id']}", json={"name": "Mine"}, headers=member.headers)
    assert renamed.status_code == 200
    foreign = await client.patch(f"/api/v1/sites/{site['id']}", json={"name": "Not mine"}, headers=member.headers)
    assert foreign.status_code == 403
    assert (await client.delete(f"/api/v1/sites/{site['id']}", headers=member.headers)).status_code == 403
    assert (await client.delete(f"/api/v1/sites/{own['id']}", headers=member.headers)).status_code == 204
