"""Custom fields: definitions per organization (CRUD, roles, tenants), values checked at ingestion (a bad value is
a rejected event with its reason), values on profiles, ``{{custom.key}}`` in templates, and audience targeting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import Account, add_member
from tests.socialproof.conftest import WidgetSite, widget_event

FIELDS = "/api/v1/custom-fields"


async def define(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(FIELDS, headers=account.headers, json={"name": body.get("key", "Field"), **body})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def standard_fields(client: httpx.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    return {
        "plan": await define(client, account, key="plan", type="enum", options=["free", "pro"], default="free"),
        "seats": await define(client, account, key="seats", type="number"),
        "vip": await define(client, account, key="vip", type="boolean"),
        "renews": await define(client, account, key="renews", type="date"),
        "company": await define(client, account, key="company", type="text"),
    }


async def test_fields_are_created_read_listed_changed_and_deleted(client: httpx.AsyncClient, founder: Account) -> None:
    created = await define(
        client, founder, name="Plan", key="plan", type="enum", options=["free", "pro"], required=True, default="free"
    )
    assert {key: created[key] for key in ("name", "key", "type", "options", "required", "default")} == {
        "name": "Plan",
        "key": "plan",
        "type": "enum",
        "options": ["free", "pro"],
        "required": True,
        "default": "free",
    }
    path = f"{FIELDS}/{created['id']}"
    assert (await client.get(path, headers=founder.headers)).json()["data"] == created
    await define(client, founder, key="birthday", type="date", default="2000-01-31")
    listed = (await client.get(FIELDS, headers=founder.headers)).json()
    assert [item["key"] for item in listed["data"]] == ["birthday", "plan"] and listed["meta"]["total"] == 2

    changed = await client.patch(
        path, headers=founder.headers, json={"name": "Tier", "options": ["free", "pro", "team"], "default": "team"}
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["name"], data["options"], data["default"], data["key"], data["type"]) == (
        "Tier",
        ["free", "pro", "team"],
        "team",
        "plan",
        "enum",
    )
    cleared = await client.patch(path, headers=founder.headers, json={"default": None, "required": False})
    assert cleared.json()["data"]["default"] is None and cleared.json()["data"]["required"] is False

    assert (await client.delete(path, headers=founder.headers)).status_code == 204
    assert (await client.get(path, headers=founder.headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "Plan", "type": "text"}, "should match pattern"),
        ({"key": "1plan", "type": "text"}, "should match pattern"),
        ({"key": "plan", "type": "color"}, "Input should be"),
        ({"key": "plan", "type": "enum"}, "options are given exactly for enum fields"),
        ({"key": "plan", "type": "text", "options": ["a"]}, "options are given exactly for enum fields"),
        ({"key": "plan", "type": "enum", "options": ["a", "a"]}, "different"),
        ({"key": "plan", "type": "enum", "options": ["a"], "default": "b"}, "must be one of a"),
        ({"key": "seats", "type": "number", "default": "ten"}, "must be a number"),
        ({"key": "vip", "type": "boolean", "default": 1}, "must be true or false"),
        ({"key": "renews", "type": "date", "default": "2026-02-30"}, "real date"),
        ({"key": "renews", "type": "date", "default": "30.01.2026"}, "YYYY-MM-DD"),
        ({"key": "note", "type": "text", "default": "<script>x</script>"}, "plain text"),
        ({"key": "note", "type": "text", "extra": 1}, "Extra inputs"),
    ],
)
async def test_bad_definitions_are_422s(
    client: httpx.AsyncClient, founder: Account, body: dict[str, Any], message: str
) -> None:
    response = await client.post(FIELDS, headers=founder.headers, json={"name": "Field", **body})
    assert response.status_code == 422, response.text
    assert message in str(response.json()["error"]["details"]), response.json()
    assert (await client.get(FIELDS, headers=founder.headers)).json()["data"] == []  # nothing half-written


async def test_bad_changes_and_duplicate_keys_are_refused(client: httpx.AsyncClient, founder: Account) -> None:
    plan = await define(client, founder, key="plan", type="enum", options=["free", "pro"])
    text = await define(client, founder, key="company", type="text")
    duplicate = await client.post(
        FIELDS, headers=founder.headers, json={"name": "Again", "key": "plan", "type": "text"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "custom_field_key_taken"
    for path, body, message in (
        (plan["id"], {"default": "team"}, "must be one of free, pro"),
        (plan["id"], {"options": []}, "at least 1"),
        (plan["id"], {"key": "tier"}, "Extra inputs"),
        (plan["id"], {"type": "text"}, "Extra inputs"),
        (text["id"], {"options": ["a"]}, "only enum fields have options"),
    ):
        response = await client.patch(f"{FIELDS}/{path}", headers=founder.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert message in str(response.json()["error"]), response.json()
    assert (await client.get(f"{FIELDS}/{plan['id']}", headers=founder.headers)).json()["data"] == plan


async def test_roles_and_tenants(client: httpx.AsyncClient, founder: Account, other_founder: Account) -> None:
    field = await define(client, founder, key="plan", type="text")
    path = f"{FIELDS}/{field['id']}"
    for role, reads, writes in (("admin", 200, True), ("member", 200, False), ("analyst", 200, False)):
        account = await add_member(client, founder, role)
        assert (await client.get(path, headers=account.headers)).status_code == reads
        created = await client.post(
            FIELDS, headers=account.headers, json={"name": "X", "key": f"k_{role}", "type": "text"}
        )
        assert created.status_code == (201 if writes else 403), (role, created.text)
        changed = await client.patch(path, headers=account.headers, json={"name": "Y"})
        assert changed.status_code == (200 if writes else 403), role
    investor = await add_member(client, founder, "investor")
    assert (await client.get(FIELDS, headers=investor.headers)).status_code == 403
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, path, headers=other_founder.headers, json={"name": "Hijack"})
        assert response.status_code == 404, (method, response.text)
    assert (await client.get(FIELDS, headers=other_founder.headers)).json()["data"] == []
    assert (await client.get(path, headers=founder.headers)).json()["data"]["name"] == "Y"


# --- values at ingestion -----------------------------------------------------------------------------------------


async def test_backend_events_carry_checked_values_onto_the_profile(site: WidgetSite) -> None:
    await standard_fields(site.client, site.account)
    await site.record(
        {
            "type": "signup",
            "visitorId": "cust-1",
            "custom": {"seats": 5, "vip": True, "renews": "2027-01-31", "company": "  Tom &amp; <b>Jerry</b> "},
        },
        {"type": "purchase", "visitorId": "cust-1", "custom": {"plan": "pro"}},
    )
    stored = {event.event_type: event.payload.get("custom") for event in site.stored()}
    assert stored["signup"] == {
        "seats": 5,
        "vip": True,
        "renews": "2027-01-31",
        "company": "Tom & Jerry",  # plain text, as every stored text
        "plan": "free",  # the default
    }
    assert stored["purchase"] == {"plan": "pro"}  # a default never overwrites a value on the profile:
    profile = (
        await site.client.get(
            f"/api/v1/sites/{site.id}/visitors", headers=site.account.headers, params={"userId": "cust-1"}
        )
    ).json()["data"][0]
    assert profile["custom"] == {
        "seats": 5,
        "vip": True,
        "renews": "2027-01-31",
        "company": "Tom & Jerry",
        "plan": "pro",
    }
    await site.record({"type": "signup", "visitorId": "cust-1", "custom": {"seats": 6}})  # plan: the default, "free"
    again = (
        await site.client.get(
            f"/api/v1/sites/{site.id}/visitors", headers=site.account.headers, params={"userId": "cust-1"}
        )
    ).json()["data"][0]
    assert again["custom"] == {**profile["custom"], "seats": 6}


@pytest.mark.parametrize(
    ("custom", "field", "reason"),
    [
        ({"plan": "team"}, "plan", "must be one of free, pro"),
        ({"seats": "five"}, "seats", "must be a number"),
        ({"seats": True}, "seats", "must be a number"),
        ({"vip": "yes"}, "vip", "must be true or false"),
        ({"renews": "2027-13-01"}, "renews", "real date"),
        ({"company": 7}, "company", "must be text"),
        ({"company": "<img src=x onerror=alert(1)>"}, "company", "plain text"),
        ({"colour": "red"}, "colour", "no custom field has this key"),
    ],
)
async def test_a_bad_backend_value_rejects_the_batch_with_the_reason(
    site: WidgetSite, custom: dict[str, Any], field: str, reason: str
) -> None:
    await standard_fields(site.client, site.account)
    await site.record({"type": "review", "rating": 4})  # an events key, and one stored event
    good = {"id": str(uuid.uuid4()), "type": "signup", "visitorId": "c", "custom": {"plan": "pro"}}
    bad = {"id": str(uuid.uuid4()), "type": "purchase", "visitorId": "c", "custom": custom}
    response = await site.client.post(
        f"/api/v1/sites/{site.id}/events", headers=site.events_key, json={"events": [good, bad]}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "event_rejected"
    assert error["details"] == [
        {"field": f"body.events.1.custom.{field}", "message": f"custom.{field}: {reason}", "type": "custom_field"}
    ] or reason in str(error["details"])
    assert [event.event_type for event in site.stored()] == ["review"]  # nothing of the batch


async def test_a_required_field_without_default_must_be_given(site: WidgetSite) -> None:
    await define(site.client, site.account, key="order_ref", type="text", required=True)
    await site.record({"type": "review", "rating": 4})
    missing = await site.client.post(
        f"/api/v1/sites/{site.id}/events",
        headers=site.events_key,
        json={"events": [{"type": "purchase", "custom": {}}]},
    )
    assert missing.status_code == 422 and "custom.order_ref: is required" in missing.text
    # events without custom values are not checked: a page view cannot know them
    await site.record({"type": "purchase"}, {"type": "purchase", "custom": {"order_ref": "A-1"}})


async def test_widget_events_with_bad_values_are_rejected_one_by_one(site: WidgetSite) -> None:
    await standard_fields(site.client, site.account)
    view = widget_event("page_view", site.page("/"))
    good = widget_event("signup", site.page("/welcome"), custom={"plan": "pro", "seats": 3})
    bad = widget_event("purchase", site.page("/done"), custom={"plan": "gold", "vip": "no"})
    response = await site.collect(view, good, bad, visitor={"userId": "widget-user"})
    assert response.status_code == 202, response.text
    assert response.json()["data"] == {
        "accepted": 2,
        "duplicates": 0,
        "dropped": 1,
        "rejected": [
            {"id": bad["id"], "reason": "custom.plan: must be one of free, pro; custom.vip: must be true or false"}
        ],
    }
    stored = {str(event.id): event.payload for event in site.stored()}
    assert set(stored) == {view["id"], good["id"]}
    assert stored[good["id"]]["custom"] == {"plan": "pro", "seats": 3} and "custom" not in stored[view["id"]]


async def test_a_changed_definition_applies_to_the_next_widget_batch(site: WidgetSite) -> None:
    field = await define(site.client, site.account, key="plan", type="enum", options=["free"])
    first = await site.collect(widget_event("signup", site.page("/"), custom={"plan": "pro"}))
    assert first.json()["data"]["dropped"] == 1
    changed = await site.client.patch(
        f"{FIELDS}/{field['id']}", headers=site.account.headers, json={"options": ["free", "pro"]}
    )
    assert changed.status_code == 200
    second = await site.collect(widget_event("signup", site.page("/"), custom={"plan": "pro"}))
    assert second.json()["data"] == {"accepted": 1, "duplicates": 0, "dropped": 0}


@pytest.mark.parametrize(
    "custom",
    [{"k" * 41: "x"}, {f"k{index}": 1 for index in range(51)}, {"plan": {"nested": 1}}, {"plan": ["a"]}],
)
async def test_malformed_custom_objects_are_422s(site: WidgetSite, custom: dict[str, Any]) -> None:
    response = await site.collect(widget_event("signup", site.page("/"), custom=custom))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"].startswith("body.events.0.custom")


# --- templates and targeting ---------------------------------------------------------------------------------------


async def test_templates_show_custom_values_as_plain_text(site: WidgetSite) -> None:
    await standard_fields(site.client, site.account)
    await define(site.client, site.account, key="tagline", type="text")
    template = await site.template(
        message='{{firstName}} ({{custom.company|default:"a shop"}}, {{custom.seats}} seats, vip {{custom.vip}}) '
        "said {{custom.tagline|upper}}"
    )
    notification = await site.notification(
        type="recent_activity", templateId=template["id"], source={"eventTypes": ["signup"]}
    )
    await site.record(
        {
            "type": "signup",
            "firstName": "Anna",
            "custom": {"company": "ACME &lt;script&gt;", "seats": 1200, "vip": False, "tagline": "hi &amp; bye"},
        }
    )
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await site.record({"type": "signup", "firstName": "Ben", "occurredAt": earlier})
    feed = (await site.feed()).json()["data"]
    shown = next(item for item in feed["notifications"] if item["id"] == notification["id"])
    texts = [item["parts"][0] for item in shown["items"]]
    assert texts == [
        "Anna (ACME, 1,200 seats, vip false) said HI & BYE",
        "Ben (a shop,  seats, vip ) said ",
    ]


@pytest.mark.parametrize("variable", ["custom.Plan", "custom.", "custom.plan.x", "customer.plan", "custom.1a"])
async def test_bad_custom_placeholders_are_refused(site: WidgetSite, variable: str) -> None:
    response = await site.client.post(
        f"/api/v1/sites/{site.id}/templates",
        headers=site.account.headers,
        json={"name": "T", "message": f"Hello {{{{{variable}}}}}"},
    )
    assert response.status_code == 422, response.text
    assert "unknown variable" in response.text


async def _audience(site: WidgetSite, visitor: dict[str, str]) -> list[str]:
    response = await site.client.post(
        "/api/v1/widget/audience", headers=site.browser(), json={"siteKey": site.key, "visitor": visitor}
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == site.origin
    return sorted(response.json()["data"]["notifications"])


async def test_notifications_target_score_ranges_returning_visitors_and_custom_values(site: WidgetSite) -> None:
    await standard_fields(site.client, site.account)
    everyone = await site.notification(type="announcement", name="Everyone")
    engaged = await site.notification(
        type="announcement", name="Engaged", targeting={"audience": {"scoreMin": 50, "scoreMax": 100}}
    )
    newcomers = await site.notification(type="announcement", name="New", targeting={"audience": {"visitors": "new"}})
    returning = await site.notification(
        type="announcement", name="Returning", targeting={"audience": {"visitors": "returning"}}
    )
    pro = await site.notification(
        type="announcement",
        name="Pro, big",
        targeting={
            "audience": {
                "custom": [
                    {"key": "plan", "operator": "in", "value": ["pro"]},
                    {"key": "seats", "operator": "gte", "value": 10},
                    {"key": "renews", "operator": "lt", "value": "2027-06-01"},
                    {"key": "vip", "operator": "ne", "value": True},
                ]
            }
        },
    )
    feed = (await site.feed()).json()["data"]
    flags = {item["id"]: item["audience"] for item in feed["notifications"]}
    assert flags == {
        everyone["id"]: False,
        engaged["id"]: True,
        newcomers["id"]: True,
        returning["id"]: True,
        pro["id"]: True,
    }

    # nobody known yet: a new visitor with score 0 and no values
    assert await _audience(site, {"userId": "stranger"}) == [newcomers["id"]]
    await site.record(
        {"type": "purchase", "visitorId": "big", "occurredAt": "2026-12-01T10:00:00Z"},
        {"type": "purchase", "visitorId": "big", "occurredAt": "2026-12-01T12:00:00Z"},
        {"type": "purchase", "visitorId": "big", "custom": {"plan": "pro", "seats": 12, "renews": "2027-03-01"}},
    )
    assert await _audience(site, {"userId": "big"}) == sorted([engaged["id"], returning["id"], pro["id"]])
    await site.record({"type": "signup", "visitorId": "small", "custom": {"plan": "pro", "seats": 2}})
    assert await _audience(site, {"userId": "small"}) == [newcomers["id"]]


@pytest.mark.parametrize(
    ("audience", "message"),
    [
        ({"scoreMin": 80, "scoreMax": 20}, "scoreMin must not be above scoreMax"),
        ({"scoreMin": 101}, "less than or equal to 100"),
        ({"visitors": "loyal"}, "Input should be"),
        ({"custom": [{"key": "plan", "operator": "in", "value": "pro"}]}, "in takes a non-empty list"),
        ({"custom": [{"key": "plan", "operator": "exists", "value": 1}]}, "exists takes no value"),
        ({"custom": [{"key": "vip", "operator": "gt", "value": True}]}, "compares numbers or dates"),
        ({"custom": [{"key": "Plan", "value": "x"}]}, "should match pattern"),
        ({"custom": [{"key": "plan", "operator": "like", "value": "x"}]}, "Input should be"),
    ],
)
async def test_bad_audiences_are_422s(site: WidgetSite, audience: dict[str, Any], message: str) -> None:
    response = await site.client.post(
        f"/api/v1/sites/{site.id}/notifications",
        headers=site.account.headers,
        json={"name": "N", "type": "announcement", "targeting": {"audience": audience}},
    )
    assert response.status_code == 422, response.text
    assert message in response.text


async def test_the_audience_endpoint_refuses_other_origins_and_bad_requests(site: WidgetSite) -> None:
    foreign = await site.client.post(
        "/api/v1/widget/audience",
        headers=site.browser(origin="https://evil.example"),
        json={"siteKey": site.key, "visitor": {}},
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    unknown = await site.client.post(
        "/api/v1/widget/audience", headers=site.browser(), json={"siteKey": "pk_nope1234", "visitor": {}}
    )
    assert unknown.status_code == 404
    for body in (b"{", b'{"siteKey": 1}', b'{"siteKey": "pk_x\\u0000yz", "visitor": {}}'):
        response = await site.client.post("/api/v1/widget/audience", headers=site.browser(), content=body)
        assert response.status_code in (400, 422), response.text
        assert response.json()["error"]["code"] in ("invalid_json", "validation_error")
