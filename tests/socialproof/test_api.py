"""Sites (seed 001): create, validate the domain and settings, update, delete; roles and uniqueness."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.factories import Account, add_member


def _domain() -> str:
    return f"shop-{secrets.token_hex(4)}.example.com"


async def _create(client: httpx.AsyncClient, account: Account, **fields: object) -> httpx.Response:
    return await client.post(
        "/api/v1/sites", headers=account.headers, json={"name": "My shop", "domain": _domain(), **fields}
    )


async def test_create_with_defaults_and_read_back(client: httpx.AsyncClient, founder: Account) -> None:
    host = _domain()
    created = await _create(client, founder, domain=f"https://{host.upper()}/")
    assert created.status_code == 201, created.text
    site = created.json()["data"]
    assert site["domain"] == host and site["siteKey"].startswith("pk_") and len(site["siteKey"]) >= 27
    assert site["settings"] == {
        "position": "bottom-left",
        "theme": "auto",
        "locale": "en",
        "timezone": "UTC",
        "persistentVisitorId": False,
    }
    assert site["scriptTag"] == f'<script async src="http://127.0.0.1:8000/w/{site["siteKey"]}.js"></script>'
    assert (
        site["snippet"].startswith("<script>") and f'"http://127.0.0.1:8000/w/{site["siteKey"]}.js"' in site["snippet"]
    )
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


@pytest.mark.parametrize(
    "domain",
    [
        "shop.example.com/checkout",
        "127.0.0.1",
        "not a domain",
        "-bad.example.com",
        "http://shop.example.com:8080",
        "ftp://shop.example.com",
        "example",
        "",
        "user@shop.example.com",
        "a" * 64 + ".example.com",
    ],
)
async def test_bad_domains_are_422_on_the_domain_field(
    client: httpx.AsyncClient, founder: Account, domain: str
) -> None:
    response = await _create(client, founder, domain=domain)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["body.domain"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "body.settings.timezone"),
        ({"position": "middle"}, "body.settings.position"),
        ({"locale": "english"}, "body.settings.locale"),
        ({"colour": "red"}, "body.settings.colour"),
    ],
)
async def test_bad_settings_are_422(
    client: httpx.AsyncClient, founder: Account, given: dict[str, str], field: str
) -> None:
    response = await _create(client, founder, settings=given)
    assert response.status_code == 422
    assert field in [detail["field"] for detail in response.json()["error"]["details"]]


async def test_a_domain_belongs_to_one_site_of_an_org(client: httpx.AsyncClient, founder: Account) -> None:
    """Within an organization; across organizations see test_domains.py (the one that proves control serves)."""
    host = _domain()
    first = await _create(client, founder, domain=host)
    taken = await _create(client, founder, domain=f"https://{host}")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    other = (await _create(client, founder)).json()["data"]
    renamed = await client.patch(f"/api/v1/sites/{other['id']}", json={"domain": host}, headers=founder.headers)
    assert renamed.status_code == 409
    await client.delete(f"/api/v1/sites/{first.json()['data']['id']}", headers=founder.headers)
    assert (await _create(client, founder, domain=host)).status_code == 201


async def test_patch_merges_settings_and_keeps_the_region(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder, dataRegion="eu", settings={"theme": "dark"})).json()["data"]
    patched = await client.patch(
        f"/api/v1/sites/{site['id']}",
        headers=founder.headers,
        json={"name": "Renamed", "settings": {"timezone": "Europe/Berlin"}},
    )
    assert patched.status_code == 200
    data = patched.json()["data"]
    assert data["name"] == "Renamed" and data["dataRegion"] == "eu"
    assert data["settings"] == {
        "position": "bottom-left",
        "theme": "dark",
        "locale": "en",
        "timezone": "Europe/Berlin",
        "persistentVisitorId": False,
    }
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


async def test_templates_are_validated_and_previewed(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder)).json()["data"]
    path = f"/api/v1/sites/{site['id']}/templates"
    created = await client.post(
        path,
        headers=founder.headers,
        json={
            "name": "Purchases",
            "message": '{{firstName|default:"Someone"}} from {{city}} bought {{product|truncate:9}}',
            "cssContent": ".popup { border-radius: 12px; background: url(https://cdn.example.com/bg.png) }",
        },
    )
    assert created.status_code == 201, created.text
    template = created.json()["data"]
    assert template["preview"] == "Anna from Berlin bought Trail Sh…"
    listed = (await client.get(path, headers=founder.headers)).json()
    assert [item["id"] for item in listed["data"]] == [template["id"]]
    patched = await client.patch(
        f"{path}/{template['id']}", headers=founder.headers, json={"message": "{{count}} people are viewing this page"}
    )
    assert patched.json()["data"]["preview"] == "23 people are viewing this page"
    assert patched.json()["data"]["cssContent"] == template["cssContent"]
    plain = await client.post(path, headers=founder.headers, json={"name": "t", "message": "Tom & Jerry <3 {{city}}"})
    assert plain.status_code == 201, plain.text  # plain text may hold & and < where they are not markup


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "{{password}} leaked"}, "body.message"),
        ({"message": "{{city|shout}}"}, "body.message"),
        ({"message": '{{city|truncate:"ten"}}'}, "body.message"),
        ({"message": "Hi {{city"}, "body.message"),
        ({"message": "ok", "cssContent": "</style><script>alert(1)</script>"}, "body.cssContent"),
        ({"message": "ok", "cssContent": "@import url(https://evil.example/x.css);"}, "body.cssContent"),
        ({"message": "ok", "cssContent": ".a { background: url(javascript:alert(1)) }"}, "body.cssContent"),
        ({"message": "ok", "cssContent": ".a { width: expression(alert(1)) }"}, "body.cssContent"),
        ({"message": "ok", "cssContent": ".a { -moz-binding: url(https://evil.example/x.xml) }"}, "body.cssContent"),
        ({"message": "ok", "cssContent": ".a { background: url(data:image/svg+xml,abc) }"}, "body.cssContent"),
        ({"message": "<img src=x onerror=alert(1)>{{city}}"}, "body.message"),  # the feed is plain text
        ({"message": "{{firstName}} bought <b>{{product}}</b>"}, "body.message"),
        ({"message": "Sale &lt;script&gt;"}, "body.message"),
    ],
)
async def test_unsafe_templates_are_422(
    client: httpx.AsyncClient, founder: Account, body: dict[str, str], field: str
) -> None:
    site = (await _create(client, founder)).json()["data"]
    response = await client.post(
        f"/api/v1/sites/{site['id']}/templates", headers=founder.headers, json={"name": "t", **body}
    )
    assert response.status_code == 422, response.text
    assert field in [detail["field"] for detail in response.json()["error"]["details"]]


async def test_templates_belong_to_their_site(client: httpx.AsyncClient, founder: Account) -> None:
    first, second = [(await _create(client, founder)).json()["data"] for _ in range(2)]
    template = (
        await client.post(
            f"/api/v1/sites/{first['id']}/templates", headers=founder.headers, json={"name": "t", "message": "{{city}}"}
        )
    ).json()["data"]
    wrong_site = await client.get(f"/api/v1/sites/{second['id']}/templates/{template['id']}", headers=founder.headers)
    assert wrong_site.status_code == 404
    analyst = await add_member(client, founder, "analyst")
    read = await client.get(f"/api/v1/sites/{first['id']}/templates", headers=analyst.headers)
    assert read.status_code == 200 and read.json()["meta"]["total"] == 1
    assert (
        await client.delete(f"/api/v1/sites/{first['id']}/templates/{template['id']}", headers=analyst.headers)
    ).status_code == 403
    await client.delete(f"/api/v1/sites/{first['id']}", headers=founder.headers)
    gone = await client.get(f"/api/v1/sites/{first['id']}/templates/{template['id']}", headers=founder.headers)
    assert gone.status_code == 404


PURCHASES = {
    "name": "Recent purchases",
    "type": "recent_activity",
    "status": "active",
    "source": {"eventTypes": ["purchase"], "maxAgeSeconds": 172800},
    "targeting": {
        "urls": [
            {"match": "contains", "value": "/products/"},
            {"match": "regex", "value": "^/checkout", "exclude": True},
        ],
        "devices": ["desktop", "mobile"],
        "countries": ["DE", "AT"],
        "schedule": {"weekdays": ["mon", "fri"], "start": "09:00", "end": "18:00"},
    },
    "display": {"firstDelaySeconds": 3, "maxPerSession": 5},
}


async def test_notifications_round_trip_with_defaults(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder)).json()["data"]
    template = (
        await client.post(
            f"/api/v1/sites/{site['id']}/templates",
            headers=founder.headers,
            json={"name": "t", "message": "{{firstName}} bought {{product}}"},
        )
    ).json()["data"]
    created = await client.post(
        f"/api/v1/sites/{site['id']}/notifications",
        headers=founder.headers,
        json={**PURCHASES, "templateId": template["id"]},
    )
    assert created.status_code == 201, created.text
    notification = created.json()["data"]
    assert notification["channels"] == ["popup"] and notification["templateId"] == template["id"]
    assert notification["anonymization"] == {"enabled": True, "name": "first_name", "location": "city", "excluded": []}
    assert notification["display"]["firstDelaySeconds"] == 3 and notification["display"]["hideOwnEvents"] is True
    assert notification["targeting"]["visitors"] == "all"
    path = f"/api/v1/sites/{site['id']}/notifications/{notification['id']}"
    paused = await client.patch(path, headers=founder.headers, json={"status": "paused", "templateId": None})
    assert paused.status_code == 200, paused.text
    assert paused.json()["data"]["status"] == "paused" and paused.json()["data"]["templateId"] is None
    assert paused.json()["data"]["targeting"] == notification["targeting"]
    listed = await client.get(f"/api/v1/sites/{site['id']}/notifications?status=paused", headers=founder.headers)
    assert [item["id"] for item in listed.json()["data"]] == [notification["id"]]
    assert (await client.delete(path, headers=founder.headers)).status_code == 204
    assert (await client.get(path, headers=founder.headers)).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "recent_activity", "source": {}}, "body"),
        ({"type": "period_counter", "source": {"eventTypes": ["purchase"]}}, "body"),
        ({"source": {"eventTypes": ["custom"]}}, "body.source"),
        ({"source": {"eventTypes": ["purchase"], "minAgeSeconds": 3600, "maxAgeSeconds": 600}}, "body.source"),
        ({"targeting": {"urls": [{"match": "regex", "value": "(unclosed"}]}}, "body.targeting.urls.0"),
        ({"targeting": {"countries": ["germany"]}}, "body.targeting.countries.0"),
        ({"targeting": {"schedule": {"weekdays": ["mon", "mon"]}}}, "body.targeting.schedule"),
        ({"targeting": {"schedule": {"start": "25:00", "end": "26:00"}}}, "body.targeting.schedule.start"),
        ({"display": {"durationSeconds": 0}}, "body.display.durationSeconds"),
        ({"channels": ["sms"]}, "body.channels.0"),
        ({"name": "<img src=x onerror=alert(1)>Sale"}, "body.name"),  # an announcement shows its name
        ({"source": {"eventTypes": ["custom"], "customEvent": "<i>x</i>"}}, "body.source.customEvent"),
    ],
)
async def test_bad_notifications_are_422(
    client: httpx.AsyncClient, founder: Account, change: dict[str, object], field: str
) -> None:
    site = (await _create(client, founder)).json()["data"]
    response = await client.post(
        f"/api/v1/sites/{site['id']}/notifications", headers=founder.headers, json={**PURCHASES, **change}
    )
    assert response.status_code == 422, response.text
    assert field in [detail["field"] for detail in response.json()["error"]["details"]], response.text


async def test_patch_validates_the_whole_notification(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder)).json()["data"]
    notification = (
        await client.post(f"/api/v1/sites/{site['id']}/notifications", headers=founder.headers, json=PURCHASES)
    ).json()["data"]
    path = f"/api/v1/sites/{site['id']}/notifications/{notification['id']}"
    emptied = await client.patch(path, headers=founder.headers, json={"source": {"eventTypes": []}})
    assert emptied.status_code == 422
    other_site = (await _create(client, founder)).json()["data"]
    foreign_template = (
        await client.post(
            f"/api/v1/sites/{other_site['id']}/templates",
            headers=founder.headers,
            json={"name": "t", "message": "{{city}}"},
        )
    ).json()["data"]
    wrong = await client.patch(path, headers=founder.headers, json={"templateId": foreign_template["id"]})
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "body.templateId"
    unchanged = (await client.get(path, headers=founder.headers)).json()["data"]
    assert unchanged["source"]["eventTypes"] == ["purchase"] and unchanged["templateId"] is None


async def test_a_template_in_use_cannot_be_deleted(client: httpx.AsyncClient, founder: Account) -> None:
    site = (await _create(client, founder)).json()["data"]
    template = (
        await client.post(
            f"/api/v1/sites/{site['id']}/templates", headers=founder.headers, json={"name": "t", "message": "{{city}}"}
        )
    ).json()["data"]
    await client.post(
        f"/api/v1/sites/{site['id']}/notifications",
        headers=founder.headers,
        json={**PURCHASES, "templateId": template["id"]},
    )
    refused = await client.delete(f"/api/v1/sites/{site['id']}/templates/{template['id']}", headers=founder.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "template_in_use"
    assert (await client.delete(f"/api/v1/sites/{site['id']}", headers=founder.headers)).status_code == 204
