"""`northstar seed --demo` end to end: the seeded org seen through the public API, as the console will see it.

The seed runs here against the test database; its Stripe account's metrics are checked against the reference
calculation over the generated account (``tests/metrics/stripe_reference.py``), every month and day to the cent."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from northstar.core.db import Database
from northstar.demo.showcase import INVESTOR_METRICS, TRAFFIC_DAYS, Showcase, seed_showcase
from northstar.settings import Settings
from tests.factories import Account, account_from
from tests.integrations.test_stripe import assert_metrics_equal_the_reference, today_of
from tests.metrics.money import amounts


@pytest.fixture(scope="module")
async def showcase(database_url: str, settings: Settings) -> Showcase:
    return await seed_showcase(database_url, settings)


async def log_in(client: httpx.AsyncClient, showcase: Showcase, role: str) -> Account:
    email, password = next((email, password) for held, email, password in showcase.org.users if held == role)
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return account_from(response, email=email, password=password, role=role)


async def test_every_user_logs_in_with_their_role_and_the_key_works(
    client: httpx.AsyncClient, showcase: Showcase
) -> None:
    assert [role for role, _, _ in showcase.org.users] == ["founder", "admin", "member", "analyst", "investor"]
    for role, _, _ in showcase.org.users:
        account = await log_in(client, showcase, role)
        assert account.org_id == showcase.org.org_id
        orgs = (await client.get("/api/v1/organizations", headers=account.headers)).json()["data"]
        assert [(org["id"], org["role"]) for org in orgs] == [(str(showcase.org.org_id), role)]
    projects = await client.get("/api/v1/projects", headers={"X-API-Key": showcase.org.api_key})
    assert projects.status_code == 200, projects.text
    assert projects.json()["meta"]["total"] == 3


async def test_mrr_is_the_engines_over_the_synced_stripe_account(
    client: httpx.AsyncClient, database: Database, showcase: Showcase
) -> None:
    founder = await log_in(client, showcase, "founder")
    reference = await assert_metrics_equal_the_reference(client, founder, database, showcase.stripe)
    today, _ = await today_of(client, founder)
    expected = sum(reference.mrr_on(customer, today) for customer in reference.priced)
    dashboard = amounts((await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"])
    assert dashboard["problem"] is None
    mrr = next(card for card in dashboard["cards"] if card["metric"] == "mrr")
    assert mrr["value"] == expected > 0

    investor = await log_in(client, showcase, "investor")  # the founder shared MRR with investors, and no more
    seen = amounts((await client.get("/api/v1/dashboard", headers=investor.headers)).json()["data"])
    assert next(card for card in seen["cards"] if card["metric"] == "mrr")["value"] == expected
    assert {card["metric"] for card in seen["cards"]} <= set(INVESTOR_METRICS)
    assert (await client.get("/api/v1/integrations", headers=investor.headers)).status_code == 403

    integrations = (await client.get("/api/v1/integrations", headers=founder.headers)).json()["data"]
    assert [(found["provider"], found["status"]) for found in integrations] == [("stripe", "paused")]
    runs = await client.get(f"/api/v1/integrations/{integrations[0]['id']}/runs", headers=founder.headers)
    assert [run["status"] for run in runs.json()["data"]] == ["succeeded"]


async def test_the_site_has_weeks_of_events_analytics_and_a_notification(
    client: httpx.AsyncClient, showcase: Showcase
) -> None:
    member = await log_in(client, showcase, "member")
    site = f"/api/v1/sites/{showcase.site_id}"
    notifications = (await client.get(f"{site}/notifications", headers=member.headers)).json()["data"]
    assert [(found["type"], found["status"]) for found in notifications] == [("recent_activity", "active")]

    today = dt.datetime.now(dt.UTC).date()
    response = await client.get(
        f"{site}/analytics",
        headers=member.headers,
        params={"start": (today - dt.timedelta(days=30)).isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 200, response.text
    analytics = response.json()["data"]
    totals = analytics["totals"]
    assert totals["pageViews"] > totals["impressions"] > totals["clicks"] > totals["conversions"] > 0
    assert totals["uniqueVisitors"] > 500
    busy_days = [point["bucket"][:10] for point in analytics["series"] if point["pageViews"]]
    assert len(busy_days) >= TRAFFIC_DAYS - 1  # spread over three weeks, not clamped into the last seven days
    assert dt.date.fromisoformat(busy_days[0]) <= today - dt.timedelta(days=TRAFFIC_DAYS - 2)


async def test_the_dataset_is_generated_and_ready(client: httpx.AsyncClient, showcase: Showcase) -> None:
    analyst = await log_in(client, showcase, "analyst")
    job = (await client.get(f"/api/v1/status/{showcase.dataset_job_id}", headers=analyst.headers)).json()["data"]
    assert (job["status"], job["progress"]) == ("completed", 1.0)
    dataset = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}", headers=analyst.headers)).json()
    assert (dataset["data"]["status"], dataset["data"]["rowCount"]) == ("ready", job["rowsTotal"])
    rows = await client.get(f"/api/v1/datasets/{job['result']['datasetId']}/rows", headers=analyst.headers)
    assert rows.status_code == 200, rows.text
    assert rows.json()["data"]
