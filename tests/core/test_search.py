"""One search box over an org's documents (``core/search``), through ``GET /api/v1/search``: the query language
(prefixes, typos, phrases, exclusions, type filters), accent folding and the four stemming languages, visibility by
role and project grant, tenancy through the route and in SQL under RLS, and bad queries (never a 500)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from northstar.cli import app
from northstar.core.db import Database
from northstar.core.search import indexing
from tests.factories import Account, add_member, signup
from tests.rows import rows_of
from tests.workers import Workers


async def project(client: httpx.AsyncClient, account: Account, name: str, description: str = "") -> str:
    made = await client.post(
        "/api/v1/projects", json={"name": name, "description": description}, headers=account.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def found(client: httpx.AsyncClient, account: Account, query: str, **params: Any) -> list[str]:
    """The titles a search answers, best first."""
    answered = await client.get("/api/v1/search", params={"q": query, **params}, headers=account.headers)
    assert answered.status_code == 200, answered.text
    return [hit["title"] for hit in answered.json()["data"]]


async def test_prefixes_typos_phrases_exclusions_and_types(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    await project(client, founder, "Acme Rocket", "Churn analysis for March")
    await project(client, founder, "Globex launch", "Pricing experiment, churn of annual plans")
    await project(client, founder, "Initech", "Quarterly board deck")

    assert await found(client, founder, "acme") == ["Acme Rocket"]
    assert await found(client, founder, "acm") == ["Acme Rocket"]  # as you type
    assert await found(client, founder, "ACME") == ["Acme Rocket"]
    assert await found(client, founder, "acne") == ["Acme Rocket"]  # one edit away
    assert await found(client, founder, "quartelry") == ["Initech"]  # two edits in a longer word
    assert sorted(await found(client, founder, "churn")) == ["Acme Rocket", "Globex launch"]
    assert await found(client, founder, "churn march") == ["Acme Rocket"]  # every word must match
    assert await found(client, founder, '"churn analysis"') == ["Acme Rocket"]
    assert await found(client, founder, '"analysis churn"') == []  # a phrase keeps its order
    assert await found(client, founder, "churn -acme") == ["Globex launch"]
    assert await found(client, founder, 'churn -"annual plans"') == ["Acme Rocket"]
    assert await found(client, founder, "type:project rocket") == ["Acme Rocket"]
    assert await found(client, founder, "type:member rocket") == []
    assert await found(client, founder, "rocket", type="member") == []

    answered = await client.get("/api/v1/search", params={"q": "acne"}, headers=founder.headers)
    body = answered.json()
    assert body["meta"]["corrections"] == {"acne": ["acme"]} and body["meta"]["total"] == 1
    assert body["data"][0]["titleHighlight"] == "<mark>Acme</mark> Rocket"
    assert body["data"][0]["url"].startswith("/app/projects/")

    everything = (await client.get("/api/v1/search", params={"q": "test"}, headers=founder.headers)).json()
    assert everything["meta"]["counts"] == {"member": 1}  # the founder, "Test User", by name


async def test_exact_words_rank_above_corrections_and_titles_above_bodies(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    await project(client, founder, "Notes", "about the roadmap")
    await project(client, founder, "Roadmap", "the plan")
    await project(client, founder, "Roadmaps archive", "")
    assert (await found(client, founder, "roadmap"))[0] == "Roadmap"
    await project(client, founder, "Bolt", "")
    await project(client, founder, "Boltz", "")
    assert (await found(client, founder, "boltz"))[0] == "Boltz"


async def test_accents_and_case_are_folded(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    await project(client, founder, "Café Crème", "Straße des Müller")
    assert await found(client, founder, "cafe creme") == ["Café Crème"]
    assert await found(client, founder, "CAFÉ") == ["Café Crème"]
    assert await found(client, founder, "muller strasse") == ["Café Crème"]
    answered = await client.get("/api/v1/search", params={"q": "muller"}, headers=founder.headers)
    assert "<mark>Müller</mark>" in answered.json()["data"][0]["snippet"]


@pytest.mark.parametrize(
    ("language", "stored", "asked"),
    [
        ("english", "Running experiments", "runs"),
        ("german", "Das Haus am See", "Häusern"),
        ("french", "Les chevaux du moulin", "cheval"),
        ("spanish", "Corriendo en el verano", "correr"),
    ],
)
async def test_words_are_stemmed_in_the_orgs_language(
    client: httpx.AsyncClient, database: Database, language: str, stored: str, asked: str
) -> None:
    founder = await signup(client)
    await project(client, founder, stored)
    if language != "english":
        assert await found(client, founder, asked) == []  # English stemming does not know these forms
        changed = await client.put("/api/v1/search/settings", json={"language": language}, headers=founder.headers)
        assert changed.status_code == 200 and changed.json()["data"]["language"] == language
        assert await indexing.reindex(database, founder.org_id) >= 2  # the project and the founder
    assert await found(client, founder, asked) == [stored]
    settings = (await client.get("/api/v1/search/settings", headers=founder.headers)).json()["data"]
    assert settings["language"] == language


async def test_each_role_finds_only_what_it_may_read(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    secret = await project(client, founder, "Zephyr plan")
    shared = await project(client, founder, "Zephyr shared")
    member = await add_member(client, founder, "member")
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")
    assert sorted(await found(client, founder, "zephyr")) == ["Zephyr plan", "Zephyr shared"]
    assert sorted(await found(client, member, "zephyr")) == ["Zephyr plan", "Zephyr shared"]
    assert sorted(await found(client, analyst, "zephyr")) == ["Zephyr plan", "Zephyr shared"]
    assert await found(client, investor, "zephyr") == []  # investors read no projects
    assert await found(client, investor, "test user") == []  # nor the member list

    granted = await client.put(
        f"/api/v1/projects/{shared}/members/{investor.user_id}", json={"role": "analyst"}, headers=founder.headers
    )
    assert granted.status_code in (200, 201), granted.text
    assert await found(client, investor, "zephyr") == ["Zephyr shared"]  # only the project granted
    answered = await client.get("/api/v1/search", params={"q": "zephyr"}, headers=investor.headers)
    assert answered.json()["meta"]["counts"] == {"project": 1}
    assert secret not in answered.text


async def test_an_org_never_sees_another_orgs_documents(client: httpx.AsyncClient, database: Database) -> None:
    first, second = await signup(client), await signup(client)
    await project(client, first, "Quokka merger")
    assert await found(client, first, "quokka") == ["Quokka merger"]
    assert await found(client, second, "quokka") == []
    crossing = {**second.headers, "X-Org-Id": str(first.org_id)}
    assert (await client.get("/api/v1/search", params={"q": "quokka"}, headers=crossing)).status_code == 401

    count = "SELECT count(*) FROM core.search_documents WHERE org_id = :org"
    assert await rows_of(database, second.org_id, count, org=first.org_id) == [(0,)]
    assert await rows_of(database, None, count, org=first.org_id) == [(0,)]  # no tenant: nothing
    words = "SELECT count(*) FROM core.search_words WHERE org_id = :org"
    assert await rows_of(database, second.org_id, words, org=first.org_id) == [(0,)]
    assert (await rows_of(database, first.org_id, count, org=first.org_id))[0][0] >= 2


async def test_a_change_is_findable_in_the_next_request_and_a_deletion_is_gone(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    made = await project(client, founder, "Wombat")
    assert await found(client, founder, "wombat") == ["Wombat"]
    renamed = await client.patch(f"/api/v1/projects/{made}", json={"name": "Numbat"}, headers=founder.headers)
    assert renamed.status_code == 200
    assert await found(client, founder, "numbat") == ["Numbat"]
    assert await found(client, founder, "wombat") == []
    assert (await client.delete(f"/api/v1/projects/{made}", headers=founder.headers)).status_code == 204
    assert await found(client, founder, "numbat") == []


async def test_reindex_rebuilds_and_drops_what_is_gone(client: httpx.AsyncClient, database: Database) -> None:
    founder = await signup(client)
    await project(client, founder, "Platypus")
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(text("DELETE FROM core.search_documents WHERE org_id = :org"), {"org": founder.org_id})
        await session.execute(
            text(
                "INSERT INTO core.search_documents (org_id, doc_type, doc_id, title, resource, url, search)"
                " VALUES (:org, 'project', :ghost, 'Ghost', 'projects', '/app/',"
                " to_tsvector('ghost') || array_to_tsvector(ARRAY['org' || replace(CAST(:org AS text), '-', '')]))"
            ),
            {"org": founder.org_id, "ghost": str(uuid.uuid4())},
        )
    assert await found(client, founder, "platypus") == []
    assert await found(client, founder, "ghost") == ["Ghost"]
    assert await indexing.reindex(database, founder.org_id) == 2
    assert await found(client, founder, "platypus") == ["Platypus"]
    assert await found(client, founder, "ghost") == []
    progress = (await client.get("/api/v1/search/settings", headers=founder.headers)).json()["data"]
    assert progress["reindexTotal"] == 2 and progress["reindexDone"] == 2 and progress["reindexedAt"]
    queued = await client.post("/api/v1/search/reindex", headers=founder.headers)
    assert queued.status_code == 202 and queued.json()["data"]["queueJobId"]
    again = await client.post("/api/v1/search/reindex", headers=founder.headers)  # one is waiting already
    assert again.status_code == 202 and again.json()["data"]["queueJobId"] is None
    changed = await client.put("/api/v1/search/settings", json={"language": "french"}, headers=founder.headers)
    assert changed.status_code == 200 and changed.json()["data"]["language"] == "french"
    member = await add_member(client, founder, "member")
    assert (await client.post("/api/v1/search/reindex", headers=member.headers)).status_code == 403
    assert (
        await client.put("/api/v1/search/settings", json={"language": "german"}, headers=member.headers)
    ).status_code == 403


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 200),
        ("   ", 200),
        ("-", 200),
        ('""', 200),
        ('- "" -"" type:', 200),
        ("-acme", 200),
        ("'", 200),
        ("&|!:*()<->", 200),
        ("a\x00b", 422),
        ("x" * 10_000, 422),
        ("type:nonsense acme", 422),
        (" ".join(["word"] * 13), 422),
    ],
)
async def test_bad_queries_are_a_422_or_nothing_never_a_500(client: httpx.AsyncClient, query: str, status: int) -> None:
    founder = await signup(client)
    await project(client, founder, "Acme")
    answered = await client.get("/api/v1/search", params={"q": query}, headers=founder.headers)
    assert answered.status_code == status, answered.text
    if status == 200:
        assert answered.json()["data"] == []
    else:
        assert answered.json()["error"]["code"] in ("invalid_query", "validation_error")
    unknown = await client.get("/api/v1/search", params={"q": "acme", "type": "nonsense"}, headers=founder.headers)
    assert unknown.status_code == 422
    too_long = await client.get("/api/v1/search", params={"q": "x" * 20_000}, headers=founder.headers)
    assert too_long.status_code == 422


async def test_the_command_queues_a_reindex_that_the_worker_runs(
    client: httpx.AsyncClient, database: Database, database_url: str, worker: Workers
) -> None:
    founder = await signup(client)
    await project(client, founder, "Axolotl")
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(text("DELETE FROM core.search_documents WHERE org_id = :org"), {"org": founder.org_id})
    assert await found(client, founder, "axolotl") == []
    command = ["search", "reindex", "--org", str(founder.org_id), "--interval", "0.2"]
    result = await asyncio.to_thread(CliRunner().invoke, app, command)
    assert result.exit_code == 0, result.output
    assert "Queued a reindex of 1 organization" in result.output and "reindexed 2 documents" in result.output
    assert await found(client, founder, "axolotl") == ["Axolotl"]


async def test_highlights_escape_what_the_text_holds(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    await project(client, founder, '<img src=x onerror="alert(1)"> Zebra', "<b>zebra</b> & co")
    hit = (await client.get("/api/v1/search", params={"q": "zebra"}, headers=founder.headers)).json()["data"][0]
    assert hit["titleHighlight"] == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <mark>Zebra</mark>"
    assert hit["snippet"] == "&lt;b&gt;<mark>zebra</mark>&lt;/b&gt; &amp; co"


async def test_keys_dates_and_file_names_are_found_as_typed(client: httpx.AsyncClient) -> None:
    founder = await signup(client)
    await project(client, founder, "ENG-123 migration", "due 2027-03-31, see q3-revenue.csv")
    for typed in ("ENG-123", "eng 123", "2027-03-31", "q3-revenue.csv", "revenue.csv"):
        assert await found(client, founder, typed) == ["ENG-123 migration"], typed


async def test_members_are_sealed_in_the_index_and_found_by_whole_words(
    client: httpx.AsyncClient, database: Database
) -> None:
    founder = await signup(client)
    renamed = await client.patch("/api/v1/users/me", json={"name": "Zebulon Quartermaine"}, headers=founder.headers)
    assert renamed.status_code == 200
    answered = await client.get("/api/v1/search", params={"q": "quartermaine"}, headers=founder.headers)
    [hit] = answered.json()["data"]
    assert hit["type"] == "member" and hit["title"] == "Zebulon Quartermaine"
    assert hit["titleHighlight"] == "Zebulon <mark>Quartermaine</mark>" and founder.email in hit["snippet"]
    assert await found(client, founder, founder.email) == ["Zebulon Quartermaine"]
    assert await found(client, founder, "quarterm") == []  # no prefixes, typos or stems of personal data
    stored = await rows_of(
        database,
        founder.org_id,
        "SELECT title || body || search::text FROM core.search_documents WHERE doc_type = 'member'",
    )
    assert "quartermaine" not in stored[0][0].lower() and founder.email.split("@")[0] not in stored[0][0]
    words = await rows_of(database, founder.org_id, "SELECT word FROM core.search_words WHERE word LIKE 'quarter%'")
    assert words == []
