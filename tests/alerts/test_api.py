"""The alerts API: rules, shared channels, preferences and the inbox through HTTP, as a client uses them; who may
do what; bad input answered with 422 in the envelope; another organization's ids answered like missing ones."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from northstar.alerts.service import inbox
from northstar.app import create_app
from northstar.core.db import Database
from northstar.settings import Settings
from tests.alerts.conftest import Slack, make_channel, make_rule, set_preferences
from tests.conftest import running
from tests.factories import Account, add_member

THRESHOLD = {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 30000}


async def test_a_rule_is_made_read_changed_and_deleted(client: httpx.AsyncClient, founder: Account) -> None:
    analyst = await add_member(client, founder, "analyst")
    rule = await make_rule(client, founder, THRESHOLD, recipients=[str(founder.user_id), str(analyst.user_id)])
    assert rule["condition"] == THRESHOLD
    assert rule["recipients"] == sorted([str(founder.user_id), str(analyst.user_id)])
    assert (rule["cooldownMinutes"], rule["enabled"], rule["channels"]) == (1440, True, [])
    assert rule["createdBy"] == str(founder.user_id) and rule["lastEvaluatedAt"] is None

    listed = await client.get("/api/v1/notifications/rules", headers=analyst.headers)
    assert listed.status_code == 200 and [item["id"] for item in listed.json()["data"]] == [rule["id"]]
    assert listed.json()["meta"] == {"page": 1, "limit": 20, "total": 1}

    path = f"/api/v1/notifications/rules/{rule['id']}"
    changed = await client.patch(
        path,
        headers=founder.headers,
        json={
            "name": "MRR dropped a lot",
            "condition": {"kind": "change", "metric": "mrr", "direction": "down", "percent": 10, "windowDays": 30},
            "recipients": [str(founder.user_id)],
            "enabled": False,
        },
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["name"] == "MRR dropped a lot" and data["enabled"] is False
    assert data["condition"] == {
        "kind": "change",
        "metric": "mrr",
        "direction": "down",
        "percent": 10.0,
        "windowDays": 30,
    }
    assert data["recipients"] == [str(founder.user_id)]
    assert (await client.get(path, headers=founder.headers)).json()["data"] == data

    assert (await client.delete(path, headers=founder.headers)).status_code == 204
    assert (await client.get(path, headers=founder.headers)).status_code == 404


async def test_every_kind_of_condition_is_taken_as_documented(client: httpx.AsyncClient, founder: Account) -> None:
    goal = await client.post(
        "/api/v1/dashboard/goals",
        headers=founder.headers,
        json={"metric": "customers", "target": 100, "targetDate": "2030-01-01"},
    )
    conditions = [
        THRESHOLD,
        {"kind": "change", "metric": "sessions", "direction": "up", "percent": 50, "windowDays": 7},
        {"kind": "anomaly", "metric": "sessions", "direction": "either", "lookbackDays": 3},
        {"kind": "goal", "goalId": goal.json()["data"]["id"], "statuses": ["missed"]},
        {"kind": "integration", "integrationId": None, "problem": "lag", "hours": 12},
        {"kind": "report"},
    ]
    for condition in conditions:
        made = await make_rule(client, founder, condition)
        assert {key: value for key, value in made["condition"].items() if key in condition} == {
            key: float(value) if key == "percent" else value for key, value in condition.items()
        }
    defaults = await make_rule(client, founder, {"kind": "goal"})
    assert defaults["condition"] == {"kind": "goal", "goalId": None, "statuses": ["at_risk", "missed"]}


BAD_RULES: list[tuple[dict[str, Any], str]] = [
    ({"name": "x", "condition": {"kind": "weather"}}, "body.condition"),
    (
        {"name": "x", "condition": {"kind": "threshold", "metric": "mrr", "direction": "below"}},
        "body.condition.threshold.value",
    ),
    ({"name": "x", "condition": {**THRESHOLD, "value": "lots"}}, "body.condition.threshold.value"),
    ({"name": "x", "condition": {**THRESHOLD, "metric": "MRR; drop"}}, "body.condition.threshold.metric"),
    ({"name": "x", "condition": {**THRESHOLD, "direction": "sideways"}}, "body.condition.threshold.direction"),
    ({"name": "x", "condition": {"kind": "change", "metric": "mrr", "percent": 0}}, "body.condition.change.percent"),
    (
        {"name": "x", "condition": {"kind": "anomaly", "metric": "mrr", "lookbackDays": 400}},
        "body.condition.anomaly.lookbackDays",
    ),
    ({"name": "x", "condition": {"kind": "integration", "problem": "lag"}}, "body.condition.integration"),
    ({"name": "x", "condition": {"kind": "integration", "problem": "error", "hours": 3}}, "body.condition.integration"),
    ({"name": "x", "condition": {"kind": "goal", "statuses": []}}, "body.condition.goal.statuses"),
    ({"name": "x", "condition": {"kind": "report", "extra": 1}}, "body.condition.report.extra"),
    ({"name": " ", "condition": THRESHOLD}, "body.name"),
    ({"name": "x", "condition": THRESHOLD, "cooldownMinutes": -1}, "body.cooldownMinutes"),
    ({"name": "x", "condition": THRESHOLD, "recipients": ["not-an-id"]}, "body.recipients.0"),
    ({"name": "x\u0000", "condition": THRESHOLD}, "body.name"),
    ({"name": "x", "condition": THRESHOLD, "colour": "red"}, "body.colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_RULES, ids=[field for _, field in BAD_RULES])
async def test_bad_rules_are_422_naming_the_field(
    client: httpx.AsyncClient, founder: Account, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/notifications/rules", json=body, headers=founder.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(detail["field"].startswith(field) for detail in error["details"]), error


async def test_a_rule_names_only_what_the_organization_has(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    """Recipients are members who may read alerts; goals, integrations and channels are the org's own."""
    investor = await add_member(client, founder, "investor")
    theirs = await client.post(
        "/api/v1/dashboard/goals",
        headers=other_founder.headers,
        json={"metric": "mrr", "target": 100, "targetDate": "2030-01-01"},
    )
    cases = [
        ({"recipients": [str(other_founder.user_id)]}, "body.recipients.0"),
        ({"recipients": [str(founder.user_id), str(investor.user_id)]}, "body.recipients.1"),
        ({"channels": [str(uuid.uuid4())]}, "body.channels.0"),
        ({"recipients": [], "channels": []}, "body.recipients"),
    ]
    for extra, field in cases:
        response = await client.post(
            "/api/v1/notifications/rules", json={"name": "x", "condition": THRESHOLD, **extra}, headers=founder.headers
        )
        assert response.status_code == 422, (extra, response.text)
        assert response.json()["error"]["details"][0]["field"] == field
    goal = {"kind": "goal", "goalId": theirs.json()["data"]["id"]}
    response = await client.post(
        "/api/v1/notifications/rules", json={"name": "x", "condition": goal}, headers=founder.headers
    )
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "body.condition.goalId"


async def test_roles(client: httpx.AsyncClient, founder: Account) -> None:
    """Founders and admins manage rules and channels; members make rules for themselves and change only theirs;
    analysts read; investors have no part in alerts."""
    admin = await add_member(client, founder, "admin")
    member = await add_member(client, founder, "member")
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")
    founders = await make_rule(client, founder, THRESHOLD)
    for path in ("/api/v1/notifications/rules", "/api/v1/notifications/channels", "/api/v1/notifications/history"):
        assert (await client.get(path, headers=investor.headers)).status_code == 403, path
        assert (await client.get(path, headers=analyst.headers)).status_code == 200, path
    body = {"name": "x", "condition": THRESHOLD}
    refused = await client.post("/api/v1/notifications/rules", json=body, headers=investor.headers)
    assert refused.status_code == 403
    assert (await client.post("/api/v1/notifications/rules", json=body, headers=analyst.headers)).status_code == 403

    mine = await make_rule(client, member, THRESHOLD)
    assert mine["recipients"] == [str(member.user_id)]
    for recipients in ([str(founder.user_id)], [str(member.user_id), str(admin.user_id)]):
        response = await client.post(
            "/api/v1/notifications/rules", json={**body, "recipients": recipients}, headers=member.headers
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "not_own_recipient"
    path = f"/api/v1/notifications/rules/{founders['id']}"
    assert (await client.patch(path, json={"name": "mine"}, headers=member.headers)).status_code == 403
    assert (await client.delete(path, headers=member.headers)).status_code == 403
    assert (await client.patch(path, json={"name": "admin's"}, headers=admin.headers)).status_code == 200
    own = f"/api/v1/notifications/rules/{mine['id']}"
    assert (await client.patch(own, json={"cooldownMinutes": 0}, headers=member.headers)).status_code == 200
    assert (await client.delete(own, headers=member.headers)).status_code == 204

    channel = {"name": "Team", "kind": "slack_webhook", "webhookUrl": "https://hooks.slack.com/services/T/B/x"}
    for account in (member, analyst, investor):
        response = await client.post("/api/v1/notifications/channels", json=channel, headers=account.headers)
        assert response.status_code == 403, account.role
    assert (await client.post("/api/v1/notifications/channels", json=channel, headers=admin.headers)).status_code == 201


async def test_channels_keep_their_secrets(client: httpx.AsyncClient, founder: Account, slack: Slack) -> None:
    webhook = await make_channel(client, founder, name="Team", kind="slack_webhook", webhookUrl=slack.webhook_url)
    bot = await make_channel(
        client, founder, name="Bot", kind="slack_bot", token=slack.fake.bot_token, channel="C0ALERTS"
    )
    assert (webhook["kind"], webhook["channel"], webhook["status"]) == ("slack_webhook", None, "active")
    assert (bot["kind"], bot["channel"]) == ("slack_bot", "C0ALERTS")
    listed = await client.get("/api/v1/notifications/channels", headers=founder.headers)
    assert slack.fake.bot_token not in listed.text and slack.fake.hook_path not in listed.text

    for found in (webhook, bot):
        tested = await client.post(f"/api/v1/notifications/channels/{found['id']}/test", headers=founder.headers)
        assert tested.status_code == 200, tested.text
    assert slack.fake.messages()[-1]["blocks"][0]["text"]["text"] == "Northstar alerts are connected"
    assert slack.fake.messages("C0ALERTS")[-1]["text"] == "Northstar alerts are connected"

    moved = await client.patch(
        f"/api/v1/notifications/channels/{bot['id']}", json={"channel": "C0NOWHERE"}, headers=founder.headers
    )
    assert moved.status_code == 200 and moved.json()["data"]["channel"] == "C0NOWHERE"
    failed = await client.post(f"/api/v1/notifications/channels/{bot['id']}/test", headers=founder.headers)
    assert failed.status_code == 422 and failed.json()["error"]["code"] == "channel_failed"
    assert "channel_not_found" in failed.json()["error"]["message"]

    wrong = await client.patch(
        f"/api/v1/notifications/channels/{webhook['id']}", json={"token": "xoxb-1"}, headers=founder.headers
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "body.token"
    off = await client.patch(
        f"/api/v1/notifications/channels/{webhook['id']}", json={"enabled": False}, headers=founder.headers
    )
    assert off.json()["data"]["status"] == "disabled" and off.json()["data"]["disabledAt"] is not None
    assert (
        await client.delete(f"/api/v1/notifications/channels/{webhook['id']}", headers=founder.headers)
    ).status_code == 204


async def test_slack_addresses_go_through_the_outbound_guard(settings: Settings, founder: Account) -> None:
    """As deployed (no loopback opening for tests): a webhook over plain http is refused, and one on a private
    address cannot be reached."""
    async with running(create_app(settings)) as http:
        channel = {"name": "Inside", "kind": "slack_webhook", "webhookUrl": "http://hooks.example.com/services/x"}
        plain = await http.post("/api/v1/notifications/channels", json=channel, headers=founder.headers)
        assert plain.status_code == 422 and plain.json()["error"]["details"][0]["field"] == "body.webhookUrl"
        inside = {**channel, "webhookUrl": "https://127.0.0.1:9/services/x"}
        made = await http.post("/api/v1/notifications/channels", json=inside, headers=founder.headers)
        assert made.status_code == 201, made.text
        tested = await http.post(
            f"/api/v1/notifications/channels/{made.json()['data']['id']}/test", headers=founder.headers
        )
        assert tested.status_code == 422 and tested.json()["error"]["code"] == "channel_failed"
        assert "private or reserved" in tested.json()["error"]["message"]


BAD_CHANNELS: list[tuple[dict[str, Any], str]] = [
    ({"name": "x", "kind": "slack_webhook"}, "body"),
    ({"name": "x", "kind": "slack_bot", "token": "xoxb-1"}, "body"),
    ({"name": "x", "kind": "slack_webhook", "webhookUrl": "https://h.example/x", "token": "t"}, "body"),
    ({"name": "x", "kind": "teams", "webhookUrl": "https://h.example/x"}, "body.kind"),
    ({"name": "x", "kind": "slack_bot", "token": "xoxb-1", "channel": "#no spaces"}, "body.channel"),
    ({"name": "x", "kind": "slack_webhook", "webhookUrl": "ftp://hooks.example/x"}, "body.webhookUrl"),
    ({"name": "x", "kind": "slack_webhook", "webhookUrl": "not a url"}, "body.webhookUrl"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CHANNELS, ids=[str(i) for i in range(len(BAD_CHANNELS))])
async def test_bad_channels_are_422(
    client: httpx.AsyncClient, founder: Account, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/notifications/channels", json=body, headers=founder.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


async def test_preferences_are_each_members_own(client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    shown = (await client.get("/api/v1/notifications/preferences", headers=member.headers)).json()["data"]
    assert shown == {
        "timeZone": None,
        "effectiveTimeZone": "UTC",
        "quietHours": None,
        "digest": False,
        "digestHour": 8,
        "channels": {
            kind: ["email", "in_app"] for kind in ("threshold", "change", "anomaly", "goal", "integration", "report")
        },
        "email": {"status": "active", "failingSince": None, "lastError": None, "disabledAt": None},
    }
    changed = await set_preferences(
        client,
        member,
        timeZone="Europe/Berlin",
        quietHours={"start": "22:00", "end": "07:00"},
        digest=True,
        digestHour=7,
        channels={"anomaly": ["in_app", "in_app"], "report": []},
    )
    assert changed["effectiveTimeZone"] == "Europe/Berlin" and changed["quietHours"] == {
        "start": "22:00:00",
        "end": "07:00:00",
    }
    assert changed["channels"]["anomaly"] == ["in_app"] and changed["channels"]["report"] == []
    assert changed["channels"]["threshold"] == ["email", "in_app"] and changed["digest"] is True
    founders = (await client.get("/api/v1/notifications/preferences", headers=founder.headers)).json()["data"]
    assert founders["timeZone"] is None and founders["digest"] is False
    cleared = await set_preferences(client, member, timeZone=None, quietHours=None)
    assert cleared["timeZone"] is None and cleared["quietHours"] is None and cleared["digest"] is True

    for body, field in (
        ({"timeZone": "Mars/Olympus"}, "body.timeZone"),
        ({"quietHours": {"start": "22:00", "end": "22:00"}}, "body.quietHours"),
        ({"quietHours": {"start": "25:00", "end": "07:00"}}, "body.quietHours.start"),
        ({"quietHours": {"start": "22:00+02:00", "end": "07:00"}}, "body.quietHours.start"),
        ({"digestHour": 24}, "body.digestHour"),
        ({"channels": {"threshold": ["pigeon"]}}, "body.channels.threshold.0"),
        ({"channels": {"weather": ["email"]}}, "body.channels.weather.[key]"),
    ):
        response = await client.patch("/api/v1/notifications/preferences", json=body, headers=member.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["details"][0]["field"] == field, response.json()

    key = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=founder.headers)
    as_key = {"X-API-Key": key.json()["data"]["key"]}
    refused = await client.get("/api/v1/notifications/inbox", headers=as_key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "member_required"


async def test_the_inbox_is_each_members_own(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    member = await add_member(client, founder, "member")
    for user_id, title in ((member.user_id, "first"), (member.user_id, "second"), (founder.user_id, "x")):
        async with database.tenant_transaction(org_id=founder.org_id) as session:  # one after the other
            await inbox.notify(session, org_id=founder.org_id, user_id=user_id, kind="notice", title=title, body="b")
    messages = (await client.get("/api/v1/notifications/inbox", headers=member.headers)).json()
    assert [item["title"] for item in messages["data"]] == ["second", "first"] and messages["meta"]["total"] == 2
    unread = await client.get("/api/v1/notifications/inbox/unread", headers=member.headers)
    assert unread.json()["data"] == {"unread": 2}

    first = messages["data"][1]
    for account in (founder, other_founder):  # another member's message, another org's: like a missing one
        response = await client.post(f"/api/v1/notifications/inbox/{first['id']}/read", headers=account.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    read = await client.post(f"/api/v1/notifications/inbox/{first['id']}/read", headers=member.headers)
    assert read.status_code == 200 and read.json()["data"]["readAt"] is not None
    only_unread = await client.get("/api/v1/notifications/inbox?unread=true", headers=member.headers)
    assert [item["title"] for item in only_unread.json()["data"]] == ["second"]
    marked = await client.post("/api/v1/notifications/inbox/read-all", headers=member.headers)
    assert marked.json()["data"] == {"marked": 1}
    assert (await client.get("/api/v1/notifications/inbox/unread", headers=member.headers)).json()["data"] == {
        "unread": 0
    }
    assert (await client.get("/api/v1/notifications/inbox/unread", headers=founder.headers)).json()["data"] == {
        "unread": 1
    }


async def test_another_organizations_ids_answer_like_missing_ones(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, slack: Slack, database: Database
) -> None:
    rule = await make_rule(client, founder, THRESHOLD)
    channel = await make_channel(client, founder, name="Team", kind="slack_webhook", webhookUrl=slack.webhook_url)
    calls = [
        ("GET", "/api/v1/notifications/rules/{}", None, rule["id"]),
        ("PATCH", "/api/v1/notifications/rules/{}", {"name": "hijack"}, rule["id"]),
        ("DELETE", "/api/v1/notifications/rules/{}", None, rule["id"]),
        ("GET", "/api/v1/notifications/channels/{}", None, channel["id"]),
        ("PATCH", "/api/v1/notifications/channels/{}", {"name": "hijack"}, channel["id"]),
        ("POST", "/api/v1/notifications/channels/{}/test", None, channel["id"]),
        ("DELETE", "/api/v1/notifications/channels/{}", None, channel["id"]),
    ]
    for method, path, body, victim in calls:
        foreign = await client.request(method, path.format(victim), json=body, headers=other_founder.headers)
        missing = await client.request(method, path.format(uuid.uuid4()), json=body, headers=other_founder.headers)
        assert foreign.status_code == missing.status_code == 404, (method, path, foreign.text)
        assert foreign.json() == missing.json()
    # their rule as a filter of the log shows nothing of it, and their channel cannot be named in a rule
    assert (
        await client.get(f"/api/v1/notifications/history?ruleId={rule['id']}", headers=other_founder.headers)
    ).json()["data"] == []
    named = await client.post(
        "/api/v1/notifications/rules",
        json={"name": "x", "condition": THRESHOLD, "channels": [channel["id"]]},
        headers=other_founder.headers,
    )
    assert named.status_code == 422
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        names = (
            await session.execute(text("SELECT name FROM alerts.rules WHERE id = :id"), {"id": rule["id"]})
        ).scalar()
    assert names == THRESHOLD["kind"] + " rule"
