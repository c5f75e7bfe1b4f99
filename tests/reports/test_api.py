"""The coach's routes on a computed billing history (the dashboard tests' one, tests/metrics/test_queries.py):
insights whose every number is a fact, answers citing the movements behind them, the coach's voice, who may ask,
and nothing of another organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from northstar.core.numbers import unsupported
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)


async def _data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def _insights(client: httpx.AsyncClient, account: Account, **params: str) -> dict[str, Any]:
    data: dict[str, Any] = await _data(
        await client.get("/api/v1/coach/insights", headers=account.headers, params=params)
    )
    return data


async def _ask(client: httpx.AsyncClient, account: Account, question: str) -> dict[str, Any]:
    data: dict[str, Any] = await _data(
        await client.post("/api/v1/coach/ask", headers=account.headers, json={"question": question})
    )
    return data


def _month(day: dt.date) -> str:
    return day.strftime("%B %Y")


async def test_this_months_insights_are_told_from_the_facts(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
) -> None:
    found = await _insights(client, billing.account)
    assert found["month"] == billing.month(0).isoformat() and found["generator"] == "deterministic"
    facts = {fact["id"]: fact for fact in found["facts"]}
    assert facts["kpi.mrr"]["data"] == {
        "metric": "mrr",
        "value": 22500,
        "previous": 26500,
        "change": -4000,
        "changePercent": -15.1,
    }
    assert found["narrative"].startswith(
        f"A tougher month, with a clear place to start. MRR fell by 40.00 USD (15.1 %) to 225.00 USD in "
        f"{_month(billing.month(0))}."
    )
    assert unsupported(found["narrative"], [fact["text"] for fact in found["facts"]]) == []
    movers = [fact["data"]["customer"] for fact_id, fact in facts.items() if fact_id.startswith("movement.")]
    assert movers == ["cus_c", "cus_e", "cus_d"]  # churn -3000 and contraction -3000 (by day, then id), new +2000
    rules = {step["rule"]: step for step in found["recommendations"]}
    assert "shrinking_month" in rules
    assert set(rules["shrinking_month"]["cites"]) == {"movements", "movement.1", "movement.2"}
    assert found["paragraphs"] == found["narrative"].split("\n\n")

    last = await _insights(client, billing.account, month=billing.month(-1).strftime("%Y-%m"))
    assert last["narrative"].startswith(
        f"Good month: MRR grew by 85.00 USD (47.2 %) to 265.00 USD in {_month(billing.month(-1))}."
    )
    assert unsupported(last["narrative"], [fact["text"] for fact in last["facts"]]) == []


async def test_answers_cite_the_movements_and_customers_behind_them(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
) -> None:
    founder = billing.account
    dropped = await _ask(client, founder, "Why did MRR drop this month?")
    assert dropped["intent"] == "why_changed" and dropped["month"] == billing.month(0).isoformat()
    cited = {fact["id"]: fact for fact in dropped["citations"]}
    assert [fact["data"]["customer"] for fact in dropped["citations"] if fact["id"].startswith("movement.")] == [
        "cus_c",
        "cus_e",
    ]
    assert "kpi.mrr" in cited and "movements" in cited
    assert unsupported(dropped["answer"], [fact["text"] for fact in dropped["citations"]]) == []

    grew = await _ask(client, founder, "why did MRR grow last month?")
    assert grew["month"] == billing.month(-1).isoformat()
    assert [fact["data"]["kind"] for fact in grew["citations"] if fact["id"].startswith("movement.")] == [
        "new",
        "expansion",
        "reactivation",
    ]

    top = await _ask(client, founder, "Who were the top customers?")
    assert top["intent"] == "top_customers" and len(top["citations"]) == 3

    created = await client.post(
        "/api/v1/dashboard/goals",
        headers=founder.headers,
        json={"metric": "mrr", "target": 50000, "targetDate": (billing.today + dt.timedelta(days=60)).isoformat()},
    )
    assert created.status_code == 201, created.text
    outlook = await _ask(client, founder, "Will we hit our MRR goal?")
    assert outlook["intent"] == "goal_outlook"
    assert [fact["id"] for fact in outlook["citations"]] == [f"goal.{created.json()['data']['id']}"]
    assert "500.00 USD" in outlook["answer"]

    week = await _ask(client, founder, "What changed since last week?")
    assert week["intent"] == "since_last_week"
    assert week["citations"][0]["id"] == "week" and week["citations"][0]["data"]["end"] == 22500
    assert unsupported(week["answer"], [fact["text"] for fact in week["citations"]]) == []

    other = await _ask(client, founder, "hello")
    assert other["intent"] == "overview" and "why did MRR change?" in other["answer"]


async def test_the_voice_is_the_orgs_and_only_admins_change_it(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
) -> None:
    founder = billing.account
    assert await _data(await client.get("/api/v1/coach/settings", headers=founder.headers)) == {
        "tone": "upbeat",
        "length": "standard",
    }
    standard = await _insights(client, founder)
    changed = await client.patch(
        "/api/v1/coach/settings", headers=founder.headers, json={"tone": "neutral", "length": "short"}
    )
    assert await _data(changed) == {"tone": "neutral", "length": "short"}
    short = await _insights(client, founder)
    assert short["narrative"].startswith("MRR fell by 40.00 USD")
    assert len(short["narrative"]) < len(standard["narrative"]) and "cus_c" not in short["paragraphs"][0]
    assert (
        await client.patch("/api/v1/coach/settings", headers=founder.headers, json={"tone": "snarky"})
    ).status_code == 422

    analyst = await add_member(client, founder, "analyst")
    assert (await _data(await client.get("/api/v1/coach/settings", headers=analyst.headers)))["tone"] == "neutral"
    refused = await client.patch("/api/v1/coach/settings", headers=analyst.headers, json={"tone": "upbeat"})
    assert refused.status_code == 403
    audit = await _data(
        await client.get("/api/v1/audit", headers=founder.headers, params={"targetType": "coach_settings"})
    )
    assert [entry["action"] for entry in audit] == ["coach.settings.update"]


async def test_investors_are_refused_and_other_orgs_see_only_their_own(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    other_founder: Account,
) -> None:
    founder = billing.account
    analyst = await add_member(client, founder, "analyst")
    assert (await _insights(client, analyst))["facts"]
    investor = await add_member(client, founder, "investor")
    assert (await client.get("/api/v1/coach/insights", headers=investor.headers)).status_code == 403
    assert (
        await client.post("/api/v1/coach/ask", headers=investor.headers, json={"question": "why did MRR drop?"})
    ).status_code == 403
    changed = await client.patch("/api/v1/coach/settings", headers=founder.headers, json={"length": "detailed"})
    assert changed.status_code == 200
    assert (await _data(await client.get("/api/v1/coach/settings", headers=other_founder.headers)))["length"] == (
        "standard"
    )
    theirs = await _insights(client, other_founder)
    assert not [fact for fact in theirs["facts"] if fact["id"].startswith(("movement.", "kpi.mrr"))]
    assert theirs["narrative"].startswith("No MRR for")
    assert "cus_" not in str(theirs) and "cus_" not in str(await _ask(client, other_founder, "top customers"))


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("GET", "/api/v1/coach/insights", None, {"month": "2026-13"}),
        ("GET", "/api/v1/coach/insights", None, {"month": "March"}),
        ("POST", "/api/v1/coach/ask", {"question": ""}, None),
        ("POST", "/api/v1/coach/ask", {"question": "why" * 200}, None),
        ("POST", "/api/v1/coach/ask", {"query": "why did MRR drop?"}, None),
        ("PATCH", "/api/v1/coach/settings", {"length": 3}, None),
    ],
)
async def test_bad_input_is_a_clear_422(
    client: httpx.AsyncClient, founder: Account, method: str, path: str, body: Any, params: Any
) -> None:
    response = await client.request(method, path, headers=founder.headers, json=body, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
