"""TechTranslator's deterministic engine on ten calls (plain text, WebVTT, SRT) against the requirements a careful
reader takes from each; quotes verbatim at their offsets, an invented quote refused; duplicates of existing work
items found; and the preview route's input checks, roles and tenancy."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from northstar.core.db import Database
from northstar.devbizops import service
from northstar.devbizops.inputs import EngineeringBatch, WorkItem
from northstar.devbizops.translator import BadTranscript, translate, unsupported_numbers, verify_quote
from tests.devbizops.conftest import paused_integration
from tests.devbizops.transcripts import CALLS, Call
from tests.factories import Account, add_member

NOW = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("call", CALLS, ids=[call.name for call in CALLS])
def test_each_call_gives_the_requirements_a_careful_reader_finds(call: Call) -> None:
    found = translate(call.transcript, **call.options)
    assert len(found) == len(call.expected), [requirement.title for requirement in found]
    for requirement, expected in zip(found, call.expected, strict=True):
        assert expected.title in requirement.title.lower(), requirement.title
        assert requirement.priority == expected.priority, (requirement.title, requirement.priority)
        assert set(expected.components) <= set(requirement.components), (requirement.title, requirement.components)
        assert requirement.user_story.startswith(f"As {requirement.requested_by or 'a customer'}, I want ")
        assert requirement.acceptance_criteria
        for quote in requirement.quotes:
            assert call.transcript[quote.start : quote.end] == quote.text  # verbatim, at its offsets
            assert verify_quote(call.transcript, quote.text, quote.start) == quote.__class__(
                quote.text, quote.start, quote.end
            )


def test_the_reason_and_the_stated_constraints_are_kept() -> None:
    [sso, export, _] = translate(CALLS[0].transcript, customer="Globex")
    assert (
        export.user_story == "As Globex, I want to export the weekly report to CSV, so that finance can reconcile it."
    )
    assert "SSO with Okta for all 400 employees before we sign" in sso.acceptance_criteria
    assert any("within 5 minutes" in criterion for criterion in sso.acceptance_criteria)
    assert [quote.speaker for quote in sso.quotes] == ["Priya", "Priya", "Priya"]


def test_a_quote_that_is_not_in_the_transcript_is_refused() -> None:
    transcript = CALLS[1].transcript
    assert verify_quote(transcript, "we get an audit log of every change an admin makes") is not None
    assert verify_quote(transcript, "we get an audit log of every change any admin makes") is None  # altered
    assert verify_quote(transcript, "We need SAML by Friday") is None  # invented
    moved = verify_quote(transcript, "audit log", start=0)  # wrong offset: found where it is
    assert moved is not None and transcript[moved.start : moved.end] == "audit log"
    assert verify_quote(transcript, "") is None


def test_numbers_a_written_requirement_states_must_be_the_calls() -> None:
    transcript = CALLS[0].transcript
    assert unsupported_numbers("SSO for all 400 employees within 5 minutes", transcript) == []
    assert unsupported_numbers("SSO for 4,000 employees in 2 weeks", transcript) == ["2", "4000"]


def test_a_transcript_with_nothing_to_read_is_refused() -> None:
    for empty in ("", "   \n\n", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n"):
        with pytest.raises(BadTranscript):
            translate(empty)


async def _work_items(database: Database, account: Account, items: list[tuple[str, str]]) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        integration = await paused_integration(session, account.org_id, "jira")
        batch = EngineeringBatch(
            work_items=[
                WorkItem(
                    external_id=key, key=key, title=title, status="todo", created_at=dt.datetime.fromisoformat(NOW)
                )
                for key, title in items
            ]
        )
        await service.store_batch(session, org_id=account.org_id, integration_id=integration, batch=batch)


async def test_the_route_reads_a_call_and_points_at_existing_work_items(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    await _work_items(database, founder, [("ENG-1", "Single sign-on with Okta (SSO)"), ("ENG-2", "Mobile app")])
    await _work_items(database, other_founder, [("OPS-9", "Export the weekly report to CSV")])
    call = CALLS[0]
    response = await client.post(
        "/api/v1/devbizops/translate",
        headers=founder.headers,
        json={"transcript": call.transcript, "customer": "Globex"},
    )
    assert response.status_code == 200, response.text
    [sso, export, slack] = response.json()["data"]["requirements"]
    assert sso["duplicateOf"]["key"] == "ENG-1" and sso["duplicateOf"]["similarity"] >= 70
    assert export["duplicateOf"] is None  # another org's work item is not this org's
    assert slack["priority"] == "low"
    for requirement in (sso, export, slack):
        for quote in requirement["evidence"]:
            assert call.transcript[quote["start"] : quote["end"]] == quote["text"]
    only_dan = await client.post(
        "/api/v1/devbizops/translate",
        headers=founder.headers,
        json={"transcript": call.transcript, "customerSpeakers": ["Dan"]},
    )
    assert [found["requestedBy"] for found in only_dan.json()["data"]["requirements"]] == ["Dan", "Dan"]


async def test_bad_input_and_roles(client: httpx.AsyncClient, founder: Account) -> None:
    path = "/api/v1/devbizops/translate"
    for body in ({"transcript": ""}, {"transcript": "x" * 500_001}, {"transcript": "a", "format": "docx"}, {}):
        refused = await client.post(path, headers=founder.headers, json=body)
        assert refused.status_code == 422, (list(body), refused.text[:200])
    blank = await client.post(path, headers=founder.headers, json={"transcript": " \n \n"})
    assert blank.status_code == 422
    nul = await client.post(path, headers=founder.headers, json={"transcript": "Ana: we need SSO\u0000 now"})
    assert nul.status_code in (200, 422)
    for role, allowed in (("member", 200), ("analyst", 403), ("investor", 403)):
        account = await add_member(client, founder, role)
        answer = await client.post(path, headers=account.headers, json={"transcript": CALLS[2].transcript})
        assert answer.status_code == allowed, (role, answer.text)
