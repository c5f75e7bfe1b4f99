"""The coach with a language model (a fake OpenAI-compatible server on loopback): an honest text is used, a text
with a number no fact states is sent back once and then replaced by the deterministic one, customers' names never
leave the platform, and a model that does not answer changes nothing the founder sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from northstar.core.db import Database
from northstar.core.llm import llm_from_settings
from northstar.core.numbers import unsupported
from northstar.settings import LlmSettings
from tests.fakes.llm_server import FakeLlm
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)

NAMED = "Globex Corporation"  # cus_c, who churned this month


@pytest.fixture
async def fake(app: FastAPI) -> AsyncIterator[FakeLlm]:
    """The app's language model pointed at a fake server while the test runs, as NORTHSTAR_LLM__* would point it."""
    server = FakeLlm()
    async with server.running() as url:
        configured = app.state.settings.model_copy(
            update={"llm": LlmSettings(base_url=url, api_key=server.api_key, model=server.model)}
        )
        before, app.state.llm = app.state.llm, llm_from_settings(configured)
        try:
            yield server
        finally:
            app.state.llm = before


@pytest.fixture
async def named(billing: Billing, database: Database) -> Billing:  # noqa: F811
    async with database.tenant_transaction(org_id=billing.account.org_id) as session:
        await session.execute(
            text("UPDATE metrics.customers SET name = :name WHERE external_id = 'cus_c'"), {"name": NAMED}
        )
    return billing


async def _insights(client: httpx.AsyncClient, history: Billing) -> dict[str, Any]:
    response = await client.get("/api/v1/coach/insights", headers=history.account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _honest(month: str) -> dict[str, Any]:
    return {
        "title": f"{month}: a dip to fix",
        "paragraphs": [
            f"MRR fell by 40.00 USD (15.1 %) to 225.00 USD in {month}.",
            "[NAME_1] churned (-30.00 USD), the largest loss. Call them this week.",
        ],
    }


async def test_an_honest_text_is_told_with_the_names_put_back(
    client: httpx.AsyncClient, fake: FakeLlm, named: Billing
) -> None:
    month = named.month(0).strftime("%B %Y")
    fake.answer(_honest(month))
    found = await _insights(client, named)
    assert found["generator"] == "llm:fake-model-1" and found["checks"] == []
    assert found["title"] == f"{month}: a dip to fix"
    assert found["paragraphs"][1] == f"{NAMED} churned (-30.00 USD), the largest loss. Call them this week."
    assert NAMED not in fake.sent() and "[NAME_1]" in fake.sent()
    [request] = fake.requests
    assert "Write every number exactly as a fact writes it" in request["messages"][0]["content"]
    assert "[kpi.mrr] MRR in" in request["messages"][1]["content"]


async def test_a_lying_model_never_reaches_the_founder(
    client: httpx.AsyncClient, fake: FakeLlm, named: Billing
) -> None:
    month = named.month(0).strftime("%B %Y")
    lie = _honest(month)
    lie["paragraphs"][0] = f"MRR fell by 13 % to 225.00 USD in {month}, the worst month since 2019."
    fake.answer(lie)
    fake.answer({**lie, "paragraphs": ["Churn cost you 4,200.00 USD, up 3x."]})
    found = await _insights(client, named)
    assert found["generator"] == "deterministic"
    assert found["narrative"].startswith("A tougher month, with a clear place to start. MRR fell by 40.00 USD")
    assert "13 %" not in found["narrative"] and "4,200.00" not in found["narrative"]
    assert unsupported(found["narrative"], [fact["text"] for fact in found["facts"]]) == []
    assert found["checks"] == [
        "the language model wrote numbers no fact states: 13 (percent), 2019 (plain)",
        "the language model wrote numbers no fact states: 4200.00 (money:USD), 3 (times)",
        "the deterministic text is used",
    ]
    retry = fake.requests[1]["messages"][1]["content"]
    assert "Your last text wrote numbers that are not in the facts: 13 (percent), 2019 (plain)" in retry


async def test_a_model_corrected_once_is_used(client: httpx.AsyncClient, fake: FakeLlm, named: Billing) -> None:
    month = named.month(0).strftime("%B %Y")
    fake.answer({"title": "Dip", "paragraphs": [f"MRR fell by 40 USD to 225.00 USD in {month}."]})
    fake.answer(_honest(month))
    found = await _insights(client, named)
    assert found["generator"] == "llm:fake-model-1"
    assert found["checks"] == ["the language model wrote numbers no fact states: 40 (money:USD)"]


async def test_a_model_that_does_not_answer_leaves_the_deterministic_text(
    client: httpx.AsyncClient, fake: FakeLlm, named: Billing
) -> None:
    fake.fail(500)
    fake.fail(500)
    found = await _insights(client, named)
    assert found["generator"] == "deterministic" and found["narrative"].startswith("A tougher month")
    assert found["checks"][0].startswith("the language model gave no answer")


async def test_answers_from_the_model_cite_real_facts_and_lies_fall_back(
    client: httpx.AsyncClient, fake: FakeLlm, named: Billing
) -> None:
    headers = named.account.headers
    fake.answer({"answer": "[NAME_1] churned: -30.00 USD MRR.", "cites": ["movement.1", "movement.99"]})
    asked = await client.post("/api/v1/coach/ask", headers=headers, json={"question": "Why did MRR drop this month?"})
    answer = asked.json()["data"]
    assert answer["generator"] == "llm:fake-model-1" and answer["answer"] == f"{NAMED} churned: -30.00 USD MRR."
    assert [fact["id"] for fact in answer["citations"]] == ["movement.1"]  # an id no fact has is dropped

    fake.answer({"answer": "You lost 7 customers.", "cites": []})
    fake.answer({"answer": "You lost 8 customers.", "cites": []})
    lied = (await client.post("/api/v1/coach/ask", headers=headers, json={"question": "why did MRR drop?"})).json()
    assert lied["data"]["generator"] == "deterministic" and "customers." not in lied["data"]["answer"]
    assert lied["data"]["intent"] == "why_changed" and lied["data"]["checks"][-1] == "the deterministic text is used"
