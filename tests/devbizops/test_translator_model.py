"""TechTranslator with a language model (a fake OpenAI-compatible server on loopback): an honest reading is used with
its quotes placed in the call; a requirement quoting words the call never had is refused; a model that lies about
everything, or does not answer, leaves the deterministic reading; without a model the route says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from northstar.core.llm import llm_from_settings
from northstar.settings import LlmSettings
from tests.devbizops.transcripts import CALLS
from tests.factories import Account
from tests.fakes.llm_server import FakeLlm

CALL = CALLS[0].transcript
PATH = "/api/v1/devbizops/translate"


@pytest.fixture
async def fake(app: FastAPI) -> AsyncIterator[FakeLlm]:
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


def _requirement(title: str, *quotes: str, priority: str = "high") -> dict[str, Any]:
    return {
        "title": title,
        "user_story": f"As Globex, I want {title.lower()}.",
        "acceptance_criteria": ["Every admin logs in through Okta"],
        "priority": priority,
        "components": ["authentication"],
        "quotes": list(quotes),
    }


def _model_answer(*requirements: dict[str, Any]) -> dict[str, Any]:
    return {"requirements": list(requirements)}


async def _translate(client: httpx.AsyncClient, founder: Account, **options: Any) -> dict[str, Any]:
    response = await client.post(
        PATH, headers=founder.headers, json={"transcript": CALL, "customer": "Globex", "mode": "llm", **options}
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def test_an_honest_reading_is_used_with_its_quotes_placed(
    client: httpx.AsyncClient, founder: Account, fake: FakeLlm
) -> None:
    fake.answer(
        _model_answer(
            _requirement("Okta single sign-on", "We need SSO with Okta for all 400 employees before we sign."),
            _requirement(
                "Weekly report as CSV", "is there a way to export the weekly report to CSV", priority="medium"
            ),
        )
    )
    found = await _translate(client, founder)
    assert found["generator"] == "llm:fake-model-1" and found["rejected"] == [] and found["checks"] == []
    assert [requirement["title"] for requirement in found["requirements"]] == [
        "Okta single sign-on",
        "Weekly report as CSV",
    ]
    for requirement in found["requirements"]:
        for quote in requirement["evidence"]:
            assert CALL[quote["start"] : quote["end"]] == quote["text"]
    assert "[NAME_1]" in fake.sent() and "Globex" not in fake.requests[0]["messages"][1]["content"]


async def test_a_requirement_with_an_invented_quote_is_refused(
    client: httpx.AsyncClient, founder: Account, fake: FakeLlm
) -> None:
    fake.answer(
        _model_answer(
            _requirement("Okta single sign-on", "We need SSO with Okta for all 400 employees before we sign."),
            _requirement("SAML by Friday", "We need SAML support by Friday or we walk."),  # never said
        )
    )
    found = await _translate(client, founder)
    assert [requirement["title"] for requirement in found["requirements"]] == ["Okta single sign-on"]
    assert found["rejected"] == [
        "SAML by Friday: the quote 'We need SAML support by Friday or we walk.' is not in the call"
    ]


async def test_a_requirement_stating_a_number_the_call_never_did_is_refused(
    client: httpx.AsyncClient, founder: Account, fake: FakeLlm
) -> None:
    inflated = _requirement("SSO for 4,000 employees", "We need SSO with Okta for all 400 employees before we sign.")
    fake.answer(
        _model_answer(
            inflated, _requirement("SSO for 400 employees", "Honestly, the blocker for us is single sign-on.")
        )
    )
    found = await _translate(client, founder)
    assert [requirement["title"] for requirement in found["requirements"]] == ["SSO for 400 employees"]
    assert found["rejected"] == ["SSO for 4,000 employees: the number 4000 is not in the call"]


async def test_a_model_that_lies_about_everything_or_is_down_leaves_the_deterministic_reading(
    client: httpx.AsyncClient, founder: Account, fake: FakeLlm
) -> None:
    fake.answer(_model_answer(_requirement("Blockchain", "We want everything on the blockchain.")))
    lied = await _translate(client, founder)
    assert lied["generator"] == "deterministic" and len(lied["rejected"]) == 1
    assert lied["checks"] == ["the language model's reading had no requirement with verbatim evidence"]
    assert lied["requirements"][0]["title"] == "Single sign-on"
    fake.fail(500)
    down = await _translate(client, founder)
    assert down["generator"] == "deterministic" and "500" in down["checks"][0]
    assert len(down["requirements"]) == 3


async def test_without_a_model_the_route_says_so(client: httpx.AsyncClient, founder: Account) -> None:
    found = await _translate(client, founder)
    assert found["generator"] == "deterministic" and found["checks"] == ["no language model is configured"]
