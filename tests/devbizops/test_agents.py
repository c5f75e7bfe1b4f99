"""An agent run in-process, traced through the OpenTelemetry SDK and reading through a fake language model: each step
is a span under the run's, its id kept with the step; the run keeps its trace id, generator, tokens and cost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from northstar.core.db import Database
from northstar.core.llm import llm_from_settings
from northstar.devbizops.models import AgentRun, Proposal
from northstar.devbizops.service import agents
from northstar.settings import LlmSettings, Settings
from tests.devbizops.transcripts import CALLS
from tests.factories import Account
from tests.fakes.llm_server import FakeLlm

CALL = CALLS[0].transcript


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


async def test_each_step_is_a_span_and_the_run_keeps_its_trace_and_cost(
    founder: Account, database: Database, spans: InMemorySpanExporter
) -> None:
    fake = FakeLlm()
    fake.answer(
        {
            "requirements": [
                {
                    "title": "Okta single sign-on",
                    "user_story": "As Globex, I want Okta SSO.",
                    "acceptance_criteria": ["Every admin logs in through Okta"],
                    "priority": "high",
                    "components": ["authentication"],
                    "quotes": ["We need SSO with Okta for all 400 employees before we sign."],
                }
            ]
        },
        prompt_tokens=900,
        completion_tokens=120,
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("northstar.devbizops.agents")
    run_id = uuid.uuid4()
    async with fake.running() as url:
        settings = Settings(
            llm=LlmSettings(
                base_url=url,
                api_key=fake.api_key,
                model=fake.model,
                input_micros_per_1k_tokens=150,
                output_micros_per_1k_tokens=600,
            )
        )
        model = llm_from_settings(settings)
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            session.add(
                AgentRun(
                    id=run_id,
                    org_id=founder.org_id,
                    agent=agents.TECH_TRANSLATOR,
                    status="running",  # queued nowhere: this test runs it itself
                    mode="llm",
                    input={"transcript": CALL, "customer": "Globex"},
                )
            )
            await session.flush()
            await agents.execute(session, org_id=founder.org_id, run_id=run_id, model=model, tracer=tracer)
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            run, steps, proposals = await agents.run_details(session, org_id=founder.org_id, run_id=run_id)
    assert run.status == "succeeded" and run.generator == "llm:fake-model-1"
    assert (run.input_tokens, run.output_tokens) == (900, 120)
    assert run.cost_micros == (900 * 150 + 999) // 1000 + (120 * 600 + 999) // 1000
    assert [proposal.payload["title"] for proposal in proposals] == ["Okta single sign-on"]
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {"agent tech_translator", "tech_translator.parse", "tech_translator.read", "tech_translator.propose"} <= set(
        finished
    )
    root = finished["agent tech_translator"]
    assert run.trace_id == format(root.context.trace_id, "032x")
    for step in steps:
        span = finished[f"tech_translator.{step.name}"]
        assert step.span_id == format(span.context.span_id, "016x")
        assert span.parent is not None and span.parent.span_id == root.context.span_id
    attributes = finished["tech_translator.read"].attributes
    assert attributes is not None and attributes["northstar.agent.generator"] == "llm:fake-model-1"


async def test_an_approved_proposal_is_claimed_once_before_any_tracker_hears_of_it(
    founder: Account, database: Database
) -> None:
    run_id = uuid.uuid4()
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        session.add(
            AgentRun(
                id=run_id,
                org_id=founder.org_id,
                agent=agents.TECH_TRANSLATOR,
                status="succeeded",
                mode="deterministic",
                input={"transcript": CALL},
            )
        )
        await session.flush()
        proposal = Proposal(
            org_id=founder.org_id,
            run_id=run_id,
            position=1,
            kind="add_to_work_item",
            payload={
                "title": "SSO",
                "user_story": "As Globex, I want SSO.",
                "acceptance_criteria": ["Works"],
                "evidence": [{"text": "We need SSO", "start": 0, "end": 11, "speaker": None}],
                "priority": "high",
            },
            status="approved",
        )
        session.add(proposal)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        [claimed] = await agents.claim_approved(session, org_id=founder.org_id)
        assert claimed.ticket.title == "SSO" and '"We need SSO"' in claimed.ticket.description
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await agents.claim_approved(session, org_id=founder.org_id) == []  # a second applier finds none
        found = await agents.get_proposal(session, org_id=founder.org_id, proposal_id=proposal.id)
    assert found.status == "filing"
