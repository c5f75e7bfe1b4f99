"""Alerts delivered for real: e-mail to the SMTP server on loopback (text and HTML, RFC 8058 one-click unsubscribe),
Slack to the fake on loopback (webhook and bot token, Block Kit checked), in-app over ``/events/stream``; quiet
hours, the daily digest, retries with backoff, and destinations turned off after a day of failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from northstar.alerts.service import delivery
from northstar.app import create_app
from northstar.core.db import Database
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.alerts.conftest import (
    Run,
    Slack,
    delivery_job,
    evaluate,
    history,
    inbox_of,
    make_channel,
    make_rule,
    run_now,
    set_preferences,
    today,
    write_points,
)
from tests.clients import sse_events
from tests.conftest import Mailbox
from tests.factories import Account, add_member, invite, signup

BELOW = {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 30000}
TITLE = "MRR is below 300.00 USD"


async def _org_name(client: httpx.AsyncClient, account: Account) -> str:
    return str((await client.get("/api/v1/organization", headers=account.headers)).json()["data"]["name"])


def _parts(mail: Message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()  # type: ignore[union-attr]
        for part in mail.walk()
        if not part.is_multipart()
    }


async def _fire(client: httpx.AsyncClient, account: Account, database: Database, **rule: Any) -> dict[str, Any]:
    """MRR below a threshold today, and a rule that says so, evaluated."""
    await write_points(database, account, "mrr", {today(): 29950})
    made = await make_rule(client, account, BELOW, **rule)
    assert await evaluate(database, account) == 1
    return made


async def test_an_alert_email_with_one_click_unsubscribe(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    await _fire(client, founder, database)
    await work()
    [mail] = mailbox.to(founder.email)
    assert mail["Subject"] == f"[{await _org_name(client, founder)}] {TITLE}"
    assert mail.get_content_type() == "multipart/alternative" and mail["Auto-Submitted"] == "auto-generated"
    parts = _parts(mail)
    assert f"MRR is 299.50 USD on {today():%d %B %Y}, below the threshold of 300.00 USD." in parts["text/plain"]
    assert "<h2" in parts["text/html"] and TITLE in parts["text/html"] and "/app/kpis/mrr" in parts["text/html"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = urlsplit(mail["List-Unsubscribe"].removeprefix("<").removesuffix(">"))
    assert link.path == "/api/v1/notifications/unsubscribe"
    token = parse_qs(link.query)["token"][0]
    page = link._replace(path="/app/unsubscribe").geturl()  # the e-mail's own link asks a person to confirm
    assert f"Unsubscribe: {page}" in parts["text/plain"] and page.replace("&", "&amp;") in parts["text/html"]

    shown = await client.get(link.path, params={"token": token})  # what the link would do; opening it does nothing
    assert shown.json()["data"] == {"email": founder.email, "kind": "threshold", "unsubscribed": False}

    version, org, user, kind, signature = token.split(".")
    member = await add_member(client, founder, "member")
    forged = [
        f"{version}.{org}.{user}.all.{signature}",  # a wider unsubscribe than signed
        f"{version}.{org}.{member.user_id.hex}.{kind}.{signature}",  # someone else
        f"{version}.{uuid.uuid4().hex}.{user}.{kind}.{signature}",
        f"{version}.{org}.{user}.{kind}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "nonsense",
    ]
    for bad in forged:
        refused = await client.post(link.path, params={"token": bad}, content=b"List-Unsubscribe=One-Click")
        assert refused.status_code == 404, bad
        assert refused.json()["error"] == {
            "code": "invalid_unsubscribe_link",
            "message": "This unsubscribe link is invalid",
            "details": None,
        }

    # What a mail client's Unsubscribe button sends (RFC 8058): a form POST, no session.
    for _ in range(2):
        done = await client.post(
            link.path,
            params={"token": token},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200, done.text
        assert done.json()["data"] == {"email": founder.email, "kind": "threshold", "unsubscribed": True}
    channels = (await client.get("/api/v1/notifications/preferences", headers=founder.headers)).json()["data"]
    assert channels["channels"]["threshold"] == ["in_app"] and channels["channels"]["goal"] == ["email", "in_app"]


async def test_slack_by_webhook_and_by_bot_token_in_block_kit(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, slack: Slack
) -> None:
    webhook = await make_channel(client, founder, name="Team", kind="slack_webhook", webhookUrl=slack.webhook_url)
    bot = await make_channel(
        client, founder, name="Bot", kind="slack_bot", token=slack.fake.bot_token, channel="C0ALERTS"
    )
    await set_preferences(client, founder, channels={"threshold": []})
    before = len(slack.fake.received)
    rule = await _fire(client, founder, database, channels=[webhook["id"], bot["id"]])
    await work()
    arrived = slack.fake.received[before:]
    assert sorted(where for where, _ in arrived) == ["C0ALERTS", "webhook"]
    org = await _org_name(client, founder)
    for _, message in arrived:
        assert message["text"] == TITLE
        header, section, context, actions = message["blocks"]
        assert header == {"type": "header", "text": {"type": "plain_text", "text": TITLE, "emoji": False}}
        assert section["text"]["type"] == "mrkdwn" and "299.50 USD" in section["text"]["text"]
        assert context["elements"][0]["text"] == f"Rule “{rule['name']}” · {org}".replace("&", "&amp;")
        assert actions["elements"][0]["url"].endswith("/app/kpis/mrr")
    deliveries = await history(client, founder, ruleId=rule["id"])
    assert sorted((row["channel"], row["channelId"], row["status"], row["attempts"]) for row in deliveries) == sorted(
        [("slack", webhook["id"], "sent", 1), ("slack", bot["id"], "sent", 1)]
    )


async def test_in_app_alerts_reach_their_members_stream_only(
    alert_settings: Settings, client: httpx.AsyncClient, founder: Account, database: Database, work: Run
) -> None:
    member = await add_member(client, founder, "member")
    await set_preferences(client, founder, channels={"threshold": ["in_app"]})
    async with (
        serving(create_app(alert_settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        http.stream("GET", "/events/stream?topics=alerts.inbox,alerts.inbox.read", headers=founder.headers) as mine,
        http.stream("GET", "/events/stream", headers=member.headers) as theirs,
    ):
        founders, members = sse_events(mine), sse_events(theirs)
        assert (await anext(founders))[0] == "ready" and (await anext(members))[0] == "ready"
        await _fire(client, founder, database)
        await work()
        async with asyncio.timeout(30):
            topic, data = await anext(founders)
        assert topic == "alerts.inbox" and (data["title"], data["kind"], data["unread"]) == (TITLE, "threshold", 1)
        [message] = await inbox_of(client, founder)
        assert message["id"] == data["id"]
        read = await http.post(f"/api/v1/notifications/inbox/{message['id']}/read", headers=founder.headers)
        assert read.status_code == 200
        async with asyncio.timeout(30):
            assert await anext(founders) == ("alerts.inbox.read", {"unread": 0})
        with pytest.raises(TimeoutError):  # addressed to the founder: the member's stream heard nothing
            async with asyncio.timeout(0.5):
                await anext(members)


async def test_quiet_hours_hold_email_until_they_end(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(hours=1)).time(), (now + dt.timedelta(hours=1)).time()
    await set_preferences(client, founder, quietHours={"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"})
    rule = await _fire(client, founder, database)
    await work()
    rows = {row["channel"]: row for row in await history(client, founder, ruleId=rule["id"])}
    assert rows["in_app"]["status"] == "sent"  # the inbox is silent: never held
    ends = (now + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    assert (rows["email"]["status"], dt.datetime.fromisoformat(rows["email"]["notBefore"])) == ("held", ends)
    job = await delivery_job(database, rows["email"]["id"])
    assert (job["status"], job["scheduled_at"]) == ("todo", ends)
    assert mailbox.to(founder.email) == []

    await set_preferences(client, founder, quietHours=None)
    await run_now(database, rows["email"]["id"])  # the hours have passed
    await work()
    assert len(mailbox.to(founder.email)) == 1
    assert {row["channel"]: row["status"] for row in await history(client, founder, ruleId=rule["id"])} == {
        "email": "sent",
        "in_app": "sent",
    }


async def test_a_digest_collects_a_days_email_into_one(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    await set_preferences(client, founder, digest=True, digestHour=7)
    await write_points(database, founder, "mrr", {today(): 29950})
    await write_points(database, founder, "orders", {today(): 2}, source="orders")
    await make_rule(client, founder, BELOW)
    await make_rule(client, founder, {"kind": "threshold", "metric": "orders", "direction": "below", "value": 5})
    assert await evaluate(database, founder) == 2
    await work()
    held = [row for row in await history(client, founder, channel="email")]
    now = dt.datetime.now(dt.UTC)
    seven = dt.datetime.combine(now.date() + dt.timedelta(days=now.hour >= 7), dt.time(7), dt.UTC)
    assert [(row["status"], dt.datetime.fromisoformat(row["notBefore"])) for row in held] == [("held", seven)] * 2
    assert len(await inbox_of(client, founder)) == 2 and mailbox.to(founder.email) == []

    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await delivery.send_digests(session, org_id=founder.org_id) == 0  # not 07:00 yet
        await session.execute(text("UPDATE alerts.deliveries SET not_before = now() - interval '1 minute'"))
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await delivery.send_digests(session, org_id=founder.org_id) == 1
    await work()
    [mail] = mailbox.to(founder.email)
    assert mail["Subject"] == f"[{await _org_name(client, founder)}] Daily digest: 2 alerts"
    body = _parts(mail)["text/plain"]
    assert TITLE in body and "Orders is below 5" in body
    assert parse_qs(urlsplit(mail["List-Unsubscribe"].strip("<>")).query)["token"][0].split(".")[3] == "all"
    rows = await history(client, founder, channel="email")
    digest = next(row for row in rows if row["title"] == "Daily digest")
    assert (digest["status"], digest["ruleId"]) == ("sent", None)
    assert (
        sorted((row["status"], row["digestId"]) for row in rows if row is not digest)
        == [("digested", digest["id"])] * 2
    )


async def test_a_failed_delivery_is_retried_with_backoff_then_given_up(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, slack: Slack
) -> None:
    channel = await make_channel(client, founder, name="Team", kind="slack_webhook", webhookUrl=slack.webhook_url)
    await set_preferences(client, founder, channels={"threshold": []})
    slack.fake.vendor.fail_next("server_error", path_prefix="/services/", count=1)
    rule = await _fire(client, founder, database, channels=[channel["id"]])
    await work()
    [row] = await history(client, founder, ruleId=rule["id"])
    assert (row["status"], row["attempts"]) == ("retrying", 1)
    assert row["lastError"].startswith("Slack answered 503")
    job = await delivery_job(database, row["id"])
    assert job["status"] == "todo" and job["attempts"] == 1 and job["scheduled_at"] > dt.datetime.now(dt.UTC)
    await run_now(database, row["id"])
    await work()
    [row] = await history(client, founder, ruleId=rule["id"])
    assert (row["status"], row["attempts"], row["lastError"]) == ("sent", 2, None)

    # A destination that never answers: tried the configured number of times, then failed for good.
    broken = await make_channel(
        client, founder, name="Gone", kind="slack_webhook", webhookUrl=f"{slack.url}/services/T0/B0/unknown"
    )
    second = await make_rule(
        client,
        founder,
        {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 40000},
        channels=[broken["id"]],
    )
    assert await evaluate(database, founder) == 1
    for _ in range(10):
        await work()
        [row] = await history(client, founder, ruleId=second["id"])
        if row["status"] == "failed":
            break
        await run_now(database, row["id"])
    assert (row["status"], row["attempts"]) == ("failed", 6)
    assert row["lastError"] == "Slack answered 404: no_service"
    assert (await delivery_job(database, row["id"]))["status"] == "succeeded"


async def test_a_channel_failing_for_a_day_is_turned_off_and_admins_told(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, slack: Slack
) -> None:
    admin = await add_member(client, founder, "admin")
    member = await add_member(client, founder, "member")
    channel = await make_channel(client, founder, name="Team", kind="slack_webhook", webhookUrl=slack.webhook_url)
    await set_preferences(client, founder, channels={"threshold": []})
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(
            text("UPDATE alerts.channels SET failing_since = now() - interval '25 hours' WHERE id = :id"),
            {"id": uuid.UUID(channel["id"])},
        )
    slack.fake.vendor.fail_next("server_error", path_prefix="/services/", count=1)
    rule = await _fire(client, founder, database, channels=[channel["id"]])
    await work()
    [row] = await history(client, founder, ruleId=rule["id"])
    assert (row["status"], row["attempts"]) == ("failed", 1)  # no retry into a channel that is off
    shown = (await client.get(f"/api/v1/notifications/channels/{channel['id']}", headers=founder.headers)).json()
    assert shown["data"]["status"] == "disabled" and shown["data"]["lastError"].startswith("Slack answered 503")
    for account in (founder, admin):
        [notice] = await inbox_of(client, account)
        assert (notice["kind"], notice["title"]) == ("notice", "Slack channel “Team” was turned off")
    assert await inbox_of(client, member) == []

    later = await make_rule(
        client,
        founder,
        {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 40000},
        channels=[channel["id"]],
    )
    assert await evaluate(database, founder) == 1
    [skipped] = await history(client, founder, ruleId=later["id"])
    assert (skipped["status"], skipped["lastError"]) == ("skipped", "The channel is turned off")
    on = await client.patch(
        f"/api/v1/notifications/channels/{channel['id']}", json={"enabled": True}, headers=founder.headers
    )
    assert (on.json()["data"]["status"], on.json()["data"]["failingSince"]) == ("active", None)


async def test_email_refused_for_a_day_is_turned_off_and_the_member_told(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    email = f"bounce-{uuid.uuid4().hex[:8]}@example.com"
    invitation = await invite(client, founder, email=email, role="analyst")
    bouncing = await signup(client, email=email, invitation_token=str(invitation["token"]))
    await set_preferences(client, bouncing, channels={"threshold": ["email"]})
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(
            text("UPDATE alerts.preferences SET email_failing_since = now() - interval '25 hours' WHERE user_id = :id"),
            {"id": bouncing.user_id},
        )
    rule = await _fire(client, founder, database, recipients=[str(bouncing.user_id)])
    await work()
    [row] = await history(client, founder, ruleId=rule["id"])
    assert row["status"] == "failed" and "No such mailbox" in row["lastError"]
    state = (await client.get("/api/v1/notifications/preferences", headers=bouncing.headers)).json()["data"]["email"]
    assert state["status"] == "disabled" and "No such mailbox" in state["lastError"]
    for account in (founder, bouncing):
        [notice] = await inbox_of(client, account)
        assert notice["title"] == f"Alert e-mail to {email} was turned off"
    back = await set_preferences(client, bouncing, emailEnabled=True)
    assert back["email"] == {"status": "active", "failingSince": None, "lastError": None, "disabledAt": None}
