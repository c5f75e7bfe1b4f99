"""Every kind of thing the modules make findable, through the paths that really make, change and remove it (the API,
the worker, a sync's store): findable in the very next request, found by its new words and not its old ones once
changed, gone once deleted. Also: every source's table forgets deleted rows by trigger, and a reindex rebuilds an
org's documents."""

from __future__ import annotations

import datetime as dt
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from northstar.core.db import Database
from northstar.core.queue import tasks_using
from northstar.core.search import indexing
from northstar.core.search.documents import SOURCES
from northstar.datasets.tasks import retention_sweep
from northstar.devbizops import service as devbizops_service
from northstar.devbizops.inputs import EngineeringBatch, WorkItem
from tests.devbizops.conftest import paused_integration
from tests.factories import PASSWORD, Account, account_from, add_member, invite, unique_email
from tests.rows import rows_of

Run = Callable[[], Awaitable[None]]


def word() -> str:
    """A word no other document of the org holds, nor one within two typos of it."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


async def found(
    client: httpx.AsyncClient, account: Account, query: str, doc_type: str | None = None
) -> list[dict[str, Any]]:
    """The hits of a search (of one kind, or every kind)."""
    params = {"q": query, **({"type": doc_type} if doc_type else {})}
    answered = await client.get("/api/v1/search", params=params, headers=account.headers)
    assert answered.status_code == 200, answered.text
    hits: list[dict[str, Any]] = answered.json()["data"]
    return hits


async def ids(client: httpx.AsyncClient, account: Account, query: str, doc_type: str) -> list[str]:
    return [hit["id"] for hit in await found(client, account, query, doc_type)]


async def data(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answered: dict[str, Any] = response.json()["data"]
    return answered


async def lifecycle(
    client: httpx.AsyncClient,
    account: Account,
    doc_type: str,
    *,
    create: Callable[[str], Awaitable[str]],
    rename: Callable[[str, str], Awaitable[object]],
    delete: Callable[[str], Awaitable[object]],
) -> dict[str, Any]:
    """Made under one word, renamed to another, deleted: what a search of each answers after each step. Returns the
    hit as it was found after the rename."""
    first, second = word(), word()
    made = await create(first)
    assert await ids(client, account, first, doc_type) == [made]
    await rename(made, second)
    hits = await found(client, account, second, doc_type)
    assert [hit["id"] for hit in hits] == [made]
    assert await ids(client, account, first, doc_type) == []
    await delete(made)
    assert await ids(client, account, second, doc_type) == []
    return hits[0]


def rest(
    client: httpx.AsyncClient, account: Account, collection: str, *, field: str = "name", **extra: Any
) -> dict[str, Callable[..., Awaitable[Any]]]:
    """Create, rename and delete through a collection's REST routes (POST, PATCH and DELETE)."""

    async def create(name: str) -> str:
        made = await data(await client.post(collection, json={field: name, **extra}, headers=account.headers), 201)
        return str(made["id"])

    async def rename(item_id: str, name: str) -> None:
        await data(await client.patch(f"{collection}/{item_id}", json={field: name}, headers=account.headers))

    async def delete(item_id: str) -> None:
        assert (await client.delete(f"{collection}/{item_id}", headers=account.headers)).status_code == 204

    return {"create": create, "rename": rename, "delete": delete}


async def test_projects_teams_and_members(client: httpx.AsyncClient, founder: Account) -> None:
    project = await lifecycle(client, founder, "project", **rest(client, founder, "/api/v1/projects"))
    assert project["url"] == f"/app/projects/{project['id']}"
    await lifecycle(client, founder, "team", **rest(client, founder, "/api/v1/teams"))

    members: dict[str, Account] = {}

    async def join(name: str) -> str:
        email = unique_email()
        invitation = await invite(client, founder, email=email, role="member")
        body = {"email": email, "password": PASSWORD, "name": name, "invitationToken": invitation["token"]}
        account = account_from(await client.post("/api/v1/auth/signup", json=body), email=email, role="member")
        members[str(account.user_id)] = account
        return str(account.user_id)

    async def rename(user_id: str, name: str) -> None:
        await data(await client.patch("/api/v1/users/me", json={"name": name}, headers=members[user_id].headers))

    async def remove(user_id: str) -> None:
        await data(await client.delete(f"/api/v1/members/{user_id}", headers=founder.headers))

    member = await lifecycle(client, founder, "member", create=join, rename=rename, delete=remove)
    assert member["facets"] == {"role": "member"} and member["url"] == "/app/members"


async def test_sites_templates_and_notifications(client: httpx.AsyncClient, founder: Account) -> None:
    sites = rest(client, founder, "/api/v1/sites", domain=f"{uuid.uuid4().hex[:12]}.example.com")
    site = await lifecycle(client, founder, "site", **sites)
    assert site["url"] == f"/app/sites/{site['id']}"

    site_id = await sites["create"]("Storefront")
    base = f"/api/v1/sites/{site_id}"
    template = await lifecycle(
        client, founder, "template", **rest(client, founder, f"{base}/templates", message="{{firstName}} just bought")
    )
    assert template["url"] == f"/app/sites/{site_id}/templates/{template['id']}"
    notification = await lifecycle(
        client,
        founder,
        "notification",
        **rest(client, founder, f"{base}/notifications", status="active", type="announcement"),
    )
    assert notification["url"] == f"/app/sites/{site_id}/notifications/{notification['id']}"
    assert notification["facets"] == {"type": "announcement", "status": "active"}


async def test_integrations_alert_rules_and_roadmap_items(client: httpx.AsyncClient, founder: Account) -> None:
    stripe = {"provider": "stripe", "credentials": {"apiKey": "sk_test_" + uuid.uuid4().hex}, "test": False}
    integration = await lifecycle(
        client, founder, "integration", **rest(client, founder, "/api/v1/integrations", **stripe)
    )
    assert integration["facets"] == {"provider": "stripe", "status": "active"}
    assert integration["url"] == f"/app/integrations/{integration['id']}"

    rules = rest(client, founder, "/api/v1/notifications/rules", condition={"kind": "goal"})
    rule = await lifecycle(client, founder, "alert_rule", **rules)
    assert rule["facets"] == {"kind": "goal"} and rule["url"] == "/app/alerts"

    roadmap = rest(client, founder, "/api/v1/devbizops/roadmap", field="title", targetQuarter="2027-Q1")
    item = await lifecycle(client, founder, "roadmap_item", **roadmap)
    assert item["facets"] == {"status": "planned", "quarter": "2027-Q1"}


async def test_goals_are_titled_with_their_target_and_date(client: httpx.AsyncClient, founder: Account) -> None:
    goals = "/api/v1/dashboard/goals"
    body = {"metric": "mrr", "target": "3133700", "targetDate": "2027-03-31"}
    goal = await data(await client.post(goals, json=body, headers=founder.headers), 201)
    goal_id = str(goal["id"])
    [hit] = await found(client, founder, "mrr 31,337", "goal")
    assert hit["title"] == "MRR goal: 31,337.00 USD by 2027-03-31" and hit["url"] == f"/app/goals/{goal_id}"

    await data(await client.patch(f"{goals}/{goal_id}", json={"target": "4800000"}, headers=founder.headers))
    assert await ids(client, founder, "mrr 48,000", "goal") == [goal_id]
    assert await ids(client, founder, "31,337", "goal") == []
    assert (await client.delete(f"{goals}/{goal_id}", headers=founder.headers)).status_code == 204
    assert await ids(client, founder, "mrr", "goal") == []


async def test_datasets_by_name_then_by_their_columns(
    client: httpx.AsyncClient, founder: Account, run_jobs: Run
) -> None:
    name, column = word(), word()
    body = {"rows": 5, "name": name, "columns": [{"name": column, "type": "int"}]}
    job = await data(await client.post("/api/v1/generate", json=body, headers=founder.headers), 202)
    dataset_id = (await data(await client.get(f"/api/v1/status/{job['jobId']}", headers=founder.headers)))["result"][
        "datasetId"
    ]
    assert await ids(client, founder, name, "dataset") == [dataset_id]  # while it is being built
    assert await ids(client, founder, column, "dataset") == []  # its columns are not known yet

    await run_jobs()
    [hit] = await found(client, founder, f"{column} int", "dataset")
    assert hit["id"] == dataset_id and hit["url"] == f"/app/datasets/{dataset_id}"
    assert (await client.delete(f"/api/v1/datasets/{dataset_id}", headers=founder.headers)).status_code == 204
    assert await ids(client, founder, name, "dataset") == []


async def test_files_until_they_expire(
    client: httpx.AsyncClient, founder: Account, run_jobs: Run, database: Database, database_url: str
) -> None:
    name = word()
    body = {
        "rows": 5,
        "name": name,
        "columns": [{"name": "n", "type": "int"}],
        "output": {"dataset": False, "file": {"format": "csv"}},
    }
    job = await data(await client.post("/api/v1/generate", json=body, headers=founder.headers), 202)
    await run_jobs()
    file_id = (await data(await client.get(f"/api/v1/status/{job['jobId']}", headers=founder.headers)))["result"][
        "fileId"
    ]
    [hit] = await found(client, founder, f"{name} csv", "file")
    assert hit["id"] == file_id and hit["title"] == f"{name}.csv" and hit["facets"] == {"kind": "export"}
    assert hit["url"] == f"/app/jobs/{job['jobId']}"

    with psycopg.connect(database_url) as connection:
        connection.execute("UPDATE jobs.files SET expires_at = now() - interval '1 minute' WHERE id = %s", (file_id,))
    with tasks_using(database):
        assert await retention_sweep(timestamp=0) >= 1
    assert await ids(client, founder, name, "file") == []


async def test_reports_once_made(client: httpx.AsyncClient, founder: Account, run_jobs: Run) -> None:
    report = await data(
        await client.post("/api/v1/reports", json={"kind": "weekly_digest"}, headers=founder.headers), 202
    )
    assert await ids(client, founder, "weekly digest", "report") == []  # queued: nothing to find yet

    await run_jobs()
    made = await data(await client.get(f"/api/v1/reports/{report['id']}", headers=founder.headers))
    assert made["status"] == "completed", made
    [hit] = await found(client, founder, "weekly digest", "report")
    assert hit["id"] == report["id"] and hit["title"] == made["title"] and hit["facets"] == {"kind": "weekly_digest"}
    assert hit["url"] == f"/app/reports/{report['id']}"
    investor = await add_member(client, founder, "investor")
    assert await ids(client, investor, "weekly digest", "report") == []  # investors read investor updates only
    assert (await client.delete(f"/api/v1/reports/{report['id']}", headers=founder.headers)).status_code == 204
    assert await ids(client, founder, "weekly digest", "report") == []


async def test_work_items_as_a_sync_stores_them(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        integration_id = await paused_integration(session, founder.org_id, "github")

    async def store(title: str) -> str:
        item = WorkItem(
            external_id="issue-1",
            key="acme/api#1",
            title=title,
            status="in_progress",
            created_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            body="Checkout times out for carts over 50 items",
            repository="acme/api",
            labels=("bug", "checkout"),
        )
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            batch = EngineeringBatch(work_items=[item])
            await devbizops_service.store_batch(
                session, org_id=founder.org_id, integration_id=integration_id, batch=batch
            )
        [stored] = await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items")
        return str(stored.id)

    async def rename(item_id: str, title: str) -> None:
        assert await store(title) == item_id

    async def disconnect(item_id: str) -> None:
        gone = await client.delete(f"/api/v1/integrations/{integration_id}", headers=founder.headers)
        assert gone.status_code == 204, gone.text

    item = await lifecycle(client, founder, "work_item", create=store, rename=rename, delete=disconnect)
    assert item["title"].startswith("acme/api#1 ") and item["url"] == f"/app/engineering/work-items/{item['id']}"
    assert item["facets"] == {"status": "in_progress", "repository": "acme/api"}


async def test_every_source_table_forgets_deleted_rows(database_url: str) -> None:
    """A source without its ``core.search_forget`` trigger would leave the documents of deleted rows behind."""
    with psycopg.connect(database_url) as connection:
        triggers = dict(
            connection.execute(
                """
                SELECT c.relnamespace::regnamespace::text || '.' || c.relname,
                       split_part(encode(t.tgargs, 'escape'), '\\000', 1)
                FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE p.proname = 'search_forget' AND NOT t.tgisinternal
                """
            ).fetchall()
        )
    assert {source.table: source.doc_type for source in SOURCES.values()} == triggers


async def test_reindex_rebuilds_an_orgs_documents(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    name = word()
    for account in (founder, other_founder):
        await data(await client.post("/api/v1/projects", json={"name": name}, headers=account.headers), 201)
        await data(
            await client.post(
                "/api/v1/notifications/rules",
                json={"name": name, "condition": {"kind": "goal"}},
                headers=account.headers,
            ),
            201,
        )
    before = await found(client, founder, name)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(text("DELETE FROM core.search_documents WHERE org_id = :org"), {"org": founder.org_id})
    assert await found(client, founder, name) == []
    assert len(await found(client, other_founder, name)) == 2  # another org's documents are left alone

    assert await indexing.reindex(database, founder.org_id) == 3  # the project, the rule and the founder
    after = await found(client, founder, name)
    assert sorted((hit["type"], hit["id"], hit["title"], hit["url"]) for hit in after) == sorted(
        (hit["type"], hit["id"], hit["title"], hit["url"]) for hit in before
    )
    assert {hit["type"] for hit in after} == {"project", "alert_rule"}
