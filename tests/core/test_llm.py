"""The language model layer against a fake OpenAI-compatible server on loopback: structured answers, the retry,
every way of being unavailable, budgets, redaction, spans and the usage table's tenancy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from northstar.app import create_app
from northstar.core.db import Database
from northstar.core.llm import (
    LanguageModel,
    LlmBudgetExceeded,
    LlmFailed,
    LlmUnavailable,
    LlmUsage,
    llm_from_settings,
)
from northstar.demo.loopback import free_port
from northstar.settings import LlmSettings, Settings, describe_error
from tests.factories import Account
from tests.fakes.llm_server import FakeLlm

INSTRUCTIONS = "You are a growth coach. Write a short narrative of the month from the facts given."


class Narrative(BaseModel):
    headline: str = Field(max_length=200)
    paragraphs: list[str]
    mrr_change_minor: int


VALID = {"headline": "MRR grew 4%", "paragraphs": ["New customers outweighed churn."], "mrr_change_minor": 120000}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Spans of this process, through the SDK (the layer itself only uses the API)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@asynccontextmanager
async def model_of(fake: FakeLlm, **config: Any) -> AsyncIterator[LanguageModel]:
    """The layer as the app builds it, pointed at the running fake."""
    async with fake.running() as url:
        settings = Settings(otel=True, llm=LlmSettings(base_url=url, api_key=fake.api_key, model=fake.model, **config))
        model = llm_from_settings(settings)
        assert model is not None
        yield model


async def narrate(
    database: Database, model: LanguageModel, account: Account, prompt: str = "MRR: 3,000,000 cents.", **kwargs: Any
) -> Narrative:
    """The model's narrative, in a transaction of the account's org."""
    answer = await attempt(database, model, account, prompt, **kwargs)
    assert isinstance(answer, Narrative), answer
    return answer


async def attempt(
    database: Database, model: LanguageModel, account: Account, prompt: str = "MRR: 3,000,000 cents.", **kwargs: Any
) -> Narrative | LlmUnavailable:
    """The narrative or why there is none, caught in the transaction as a caller falling back catches it: the
    transaction goes on and commits."""
    async with database.tenant_transaction(org_id=account.org_id) as session:
        try:
            return await model.generate(
                session,
                org_id=account.org_id,
                purpose="coach.narrative",
                instructions=INSTRUCTIONS,
                prompt=prompt,
                schema=Narrative,
                **kwargs,
            )
        except LlmUnavailable as exc:
            return exc


async def usage_of(database: Database, org_id: uuid.UUID) -> list[tuple[int, int, int, int, str]]:
    async with database.tenant_transaction(org_id=org_id) as session:
        rows = (await session.scalars(select(LlmUsage))).all()
    return [(row.calls, row.input_tokens, row.output_tokens, row.cost_micros, row.currency) for row in rows]


def test_without_a_base_url_there_is_no_model() -> None:
    assert llm_from_settings(Settings()) is None
    assert create_app(Settings()).state.llm is None
    assert isinstance(create_app(Settings(llm=LlmSettings(base_url="http://x/v1", model="m"))).state.llm, LanguageModel)
    with pytest.raises(ValidationError) as refused:
        Settings(llm={"base_url": "http://localhost:11434/v1"})
    assert "NORTHSTAR_LLM__MODEL: is required when NORTHSTAR_LLM__BASE_URL is set" in describe_error(refused.value)


async def test_a_valid_answer_is_returned_and_its_usage_recorded(database: Database, founder: Account) -> None:
    fake = FakeLlm()
    fake.answer(VALID, prompt_tokens=120, completion_tokens=30)
    fake.answer(VALID, prompt_tokens=80, completion_tokens=10)
    async with model_of(fake, input_micros_per_1k_tokens=150, output_micros_per_1k_tokens=600, currency="EUR") as model:
        assert await narrate(database, model, founder) == Narrative(**VALID)
        await narrate(database, model, founder)

    request = fake.requests[0]
    assert request["model"] == fake.model and request["temperature"] == 0.2
    assert [message["role"] for message in request["messages"]] == ["system", "user"]
    assert request["messages"][0]["content"].startswith(INSTRUCTIONS)
    assert request["messages"][1]["content"] == "MRR: 3,000,000 cents."
    response_format = request["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Narrative" and response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["headline", "paragraphs", "mrr_change_minor"]
    # 120 x 150 + 30 x 600 = 36,000 millionths per thousand tokens: 36; then 80 x 150 + 10 x 600 = 18
    assert await usage_of(database, founder.org_id) == [(2, 200, 40, 54, "EUR")]


@pytest.mark.parametrize(
    ("finish_reason", "told"),
    [("stop", "That answer is not valid: it is not JSON"), ("length", "That answer is not valid: it was cut off")],
)
async def test_an_invalid_answer_is_retried_with_what_was_wrong(
    database: Database, founder: Account, finish_reason: str, told: str
) -> None:
    fake = FakeLlm()
    fake.answer('{"headline": "MRR grew", "paragraphs": [', finish_reason=finish_reason)
    fake.answer(VALID)
    async with model_of(fake) as model:
        assert await narrate(database, model, founder) == Narrative(**VALID)
    retry = fake.requests[1]["messages"]
    assert [message["role"] for message in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == '{"headline": "MRR grew", "paragraphs": ['
    assert retry[3]["content"].startswith(told)
    assert await usage_of(database, founder.org_id) == [(2, 200, 40, 0, "USD")]


async def test_an_answer_still_invalid_after_the_retry_fails(
    database: Database, founder: Account, spans: InMemorySpanExporter
) -> None:
    fake = FakeLlm()
    fake.answer({"headline": "MRR grew", "paragraphs": "one"})
    fake.answer({"headline": "MRR grew", "paragraphs": ["one"], "mrr_change_minor": "a lot"})
    async with model_of(fake) as model:
        failed = await attempt(database, model, founder)
    assert isinstance(failed, LlmFailed) and failed.status == 503
    assert failed.message == (
        "coach.narrative: no valid answer in 2 attempts"
        " (last: mrr_change_minor: Input should be a valid integer, unable to parse string as an integer)"
    )
    assert "mrr_change_minor" in fake.requests[1]["messages"][-1]["content"]  # the first answer lacked it
    assert await usage_of(database, founder.org_id) == [(2, 200, 40, 0, "USD")]  # spent all the same
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "LlmFailed"
    assert span.attributes["northstar.llm.attempts"] == 2


async def test_a_fenced_answer_is_read_and_a_lying_one_is_not_judged(database: Database, founder: Account) -> None:
    """Checking the numbers an answer states against the facts is the caller's work: the layer checks form."""
    fake = FakeLlm()
    fake.answer("```json\n" + '{"headline": "h", "paragraphs": [], "mrr_change_minor": 1}' + "\n```")
    fake.answer({**VALID, "headline": "MRR tripled to 9,999,999 USD", "mrr_change_minor": 999_999_999})
    async with model_of(fake) as model:
        assert await narrate(database, model, founder) == Narrative(headline="h", paragraphs=[], mrr_change_minor=1)
        lying = await narrate(database, model, founder)
    assert lying.mrr_change_minor == 999_999_999 and len(fake.requests) == 2


async def test_a_server_that_refuses_json_schema_is_asked_for_a_json_object(
    database: Database, founder: Account
) -> None:
    fake = FakeLlm(json_schema=False)
    fake.answer(VALID)
    fake.answer(VALID)
    async with model_of(fake) as model:
        await narrate(database, model, founder)
        await narrate(database, model, founder)
    formats = [request["response_format"]["type"] for request in fake.requests]
    assert formats == ["json_schema", "json_object", "json_object"]  # refused once, remembered
    system = fake.requests[1]["messages"][0]["content"]
    assert '"mrr_change_minor"' in system and "valid against this JSON schema" in system


@pytest.mark.parametrize("trouble", ["slow", "error", "refused", "wrong key"])
async def test_a_server_that_does_not_answer_is_unavailable(
    database: Database, founder: Account, spans: InMemorySpanExporter, trouble: str
) -> None:
    fake = FakeLlm()
    if trouble == "slow":
        fake.stall()
    elif trouble == "error":
        fake.fail(500)
    else:
        fake.answer(VALID)
    async with model_of(fake, timeout_seconds=0.5) as model:
        if trouble == "refused":
            model = LanguageModel(model.config.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}/v1"}))
        elif trouble == "wrong key":
            model = LanguageModel(model.config.model_copy(update={"api_key": "sk-wrong"}))
        unavailable = await attempt(database, model, founder)
    assert type(unavailable) is LlmUnavailable
    assert await usage_of(database, founder.org_id) == []
    if trouble in ("slow", "error"):
        (span,) = spans.get_finished_spans()
        assert span.status.status_code == trace.StatusCode.ERROR
        assert span.attributes is not None and span.attributes["error.type"] == "LlmUnavailable"


@pytest.mark.parametrize(
    "budget",
    [{"monthly_tokens": 100}, {"monthly_tokens": 0, "monthly_cost_micros": 30, "input_micros_per_1k_tokens": 300}],
)
async def test_an_org_over_its_budget_sends_nothing(
    database: Database, founder: Account, other_founder: Account, budget: dict[str, int]
) -> None:
    fake = FakeLlm()
    fake.answer(VALID, prompt_tokens=100, completion_tokens=20)  # 120 tokens, 30 millionths at 300 per 1k input
    fake.answer(VALID)
    async with model_of(fake, **budget) as model:
        await narrate(database, model, founder)  # under the budget when asked
        assert isinstance(await attempt(database, model, founder), LlmBudgetExceeded)
        assert len(fake.requests) == 1
        await narrate(database, model, other_founder)  # another org's month is its own
    assert len(fake.requests) == 2


async def test_private_values_never_leave_and_come_back_in_the_answer(database: Database, founder: Account) -> None:
    fake = FakeLlm()
    fake.answer(
        {
            "headline": "[NAME_1] at [NAME_2] churned",
            "paragraphs": ["Write to [EMAIL_1] or call [PHONE_1] before [NAME_2] renews.", "[NAME_9] is unknown."],
            "mrr_change_minor": -4200,
        }
    )
    prompt = (
        "Churned: Jane Doe of Acme Corp (jane.doe@example.com, +1 415-555-0100); acme corp's plan was Pro. "
        "Also jane doe wrote from JANE.DOE@example.com. MRR 1234567 cents on 2026-12-01, +12.5%, 3,000,000 USD."
    )
    async with model_of(fake) as model:
        answer = await narrate(database, model, founder, prompt=prompt, private_terms=["Acme Corp", "Jane Doe", " "])
    sent = fake.sent()
    for private in ("Jane", "jane", "Acme", "acme", "example.com", "415", "0100"):
        assert private not in sent
    assert fake.requests[0]["messages"][1]["content"] == (
        "Churned: [NAME_1] of [NAME_2] ([EMAIL_1], [PHONE_1]); [NAME_2]'s plan was Pro. "
        "Also [NAME_1] wrote from [EMAIL_1]. MRR 1234567 cents on 2026-12-01, +12.5%, 3,000,000 USD."
    )
    assert "keep it as written" in fake.requests[0]["messages"][0]["content"]
    assert answer.headline == "Jane Doe at Acme Corp churned"
    assert answer.paragraphs == [
        "Write to jane.doe@example.com or call +1 415-555-0100 before Acme Corp renews.",
        "[NAME_9] is unknown.",
    ]


async def test_an_answer_too_long_with_its_private_values_back_fails(database: Database, founder: Account) -> None:
    fake = FakeLlm()
    fake.answer({**VALID, "headline": "[NAME_1] and [NAME_1]"})
    name = "Very Long Customer Name Incorporated " * 3
    async with model_of(fake) as model:
        failed = await attempt(database, model, founder, prompt=f"{name} churned.", private_terms=[name])
    assert isinstance(failed, LlmFailed)
    assert failed.message.startswith("the answer is not valid once private values are put back: headline:")
    assert "Customer" not in failed.message  # the error names the field, never the value


async def test_each_call_is_one_span_with_the_gen_ai_attributes(
    database: Database, founder: Account, spans: InMemorySpanExporter
) -> None:
    fake = FakeLlm()
    fake.answer("not json", prompt_tokens=90, completion_tokens=5)
    fake.answer(VALID, prompt_tokens=110, completion_tokens=25)
    async with model_of(fake) as model:
        await narrate(database, model, founder)
    (span,) = spans.get_finished_spans()
    assert isinstance(span, ReadableSpan)
    assert span.name == f"chat {fake.model}" and span.kind == trace.SpanKind.CLIENT
    assert span.status.status_code == trace.StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes.pop("gen_ai.response.id", "").startswith("chatcmpl-")
    assert attributes.pop("server.port") > 0
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": fake.model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.output.type": "json",
        "gen_ai.response.model": fake.model,
        "gen_ai.response.finish_reasons": ("stop", "stop"),
        "gen_ai.usage.input_tokens": 200,
        "gen_ai.usage.output_tokens": 30,
        "server.address": "127.0.0.1",
        "northstar.llm.purpose": "coach.narrative",
        "northstar.llm.attempts": 2,
    }


async def test_usage_rows_are_visible_to_their_org_only(
    database: Database, founder: Account, other_founder: Account
) -> None:
    fake = FakeLlm()
    fake.answer(VALID)
    async with model_of(fake) as model:
        await narrate(database, model, founder)
    assert len(await usage_of(database, founder.org_id)) == 1
    assert await usage_of(database, other_founder.org_id) == []
    async with database.tenant_transaction() as session:  # no tenant bound: no rows
        assert (await session.scalars(select(LlmUsage))).all() == []
