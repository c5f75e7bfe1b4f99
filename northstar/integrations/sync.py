"""How a sync runs: every planned stream page by page, each page committed with its cursor, then the metrics.

A page's records (kept as fetched), what they normalise into (``metrics.service.store_batch``, and for engineering
sources ``devbizops.service.store_batch``) and the stream's cursor after the page are written in one transaction,
so a sync killed at any point resumes after its last stored page and never stores a record twice. Then the metrics
the sync touched are brought up to date (``metrics.service.refresh``; an engineering source's sync queues the
DevBizOps recompute), also when it fails: the pages it stored stay, and the run that resumes after them touches
only what it fetches itself. A run that fails, on the provider's answers or on anything unexpected, is marked
failed, never left running (a running run blocks the next). Inbound webhook deliveries are applied the same way,
one object at a time. Approved DevBizOps proposals are filed in their trackers here too (``apply_proposals``).

Connectors are opened with the integration's credentials as ``grants.open_integration`` makes them usable (an OAuth
access token about to expire is refreshed first).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import Database, get_in_org
from northstar.core.queue import enqueue_named
from northstar.core.search.indexing import index_rows
from northstar.devbizops import service as devbizops_service
from northstar.devbizops.service import agents as agents_service
from northstar.integrations.connectors.base import (
    Connector,
    ConnectorError,
    CredentialsRejected,
    Page,
    without_nul,
)
from northstar.integrations.grants import open_integration
from northstar.integrations.models import Integration, Record, SyncRun, WebhookDelivery
from northstar.metrics import service as metrics_service

log = structlog.get_logger("northstar.integrations")


async def request_sync(session: AsyncSession, *, integration: Integration, trigger: str, queue: bool = True) -> SyncRun:
    """Queue a sync (in the caller's transaction); a sync already waiting or running is returned instead.

    ``queue=False`` records the run without queueing it, for a caller that runs it itself with ``run_sync``: the demo
    seed, whose Stripe API lives in its own process where no worker could reach it."""
    waiting = await session.scalar(
        select(SyncRun).where(
            SyncRun.org_id == integration.org_id,
            SyncRun.integration_id == integration.id,
            SyncRun.status.in_(("queued", "running")),
        )
    )
    if waiting is not None:
        return waiting
    run = SyncRun(
        id=uuid.uuid4(),
        org_id=integration.org_id,
        integration_id=integration.id,
        trigger=trigger,
        status="queued",
        fetched={},
    )
    session.add(run)
    await session.flush()
    if queue:
        await enqueue_named(session, "integrations.sync", org_id=integration.org_id, run_id=str(run.id))
    await session.refresh(run)
    return run


async def _integration(session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID) -> Integration:
    return await get_in_org(session, Integration, integration_id, org_id=org_id, missing="No such integration")


async def store_page(
    session: AsyncSession, *, integration: Integration, stream: str, records: list[dict[str, Any]], connector: Connector
) -> metrics_service.Touched:
    """Keep the records as fetched and what they normalise into; returns what that changed. A record named twice
    in a page is kept as its last copy; NUL characters, which PostgreSQL text and jsonb cannot hold, are dropped."""
    records = list({str(record["id"]): record for record in records}.values())
    if b"\\u0000" in orjson.dumps(records):
        records = without_nul(records)
    if records:
        rows = [
            {
                "org_id": integration.org_id,
                "integration_id": integration.id,
                "stream": stream,
                "external_id": str(record["id"]),
                "data": record,
            }
            for record in records
        ]
        statement = pg_insert(Record).values(rows)
        await session.execute(
            statement.on_conflict_do_update(
                constraint="pk_records", set_={"data": statement.excluded.data, "synced_at": dt.datetime.now(dt.UTC)}
            )
        )
    await devbizops_service.store_batch(
        session,
        org_id=integration.org_id,
        integration_id=integration.id,
        batch=connector.engineering(stream, records),
    )
    return await metrics_service.store_batch(
        session, org_id=integration.org_id, integration_id=integration.id, batch=connector.normalise(stream, records)
    )


async def _prefetched(pages: AsyncIterator[Page]) -> AsyncIterator[Page]:
    """The same pages, the next one fetched while the caller stores the current one: otherwise fetching and storing
    take turns, and a sync runs at the sum of both instead of at the provider's rate."""
    upcoming: asyncio.Future[Page | None] = asyncio.ensure_future(anext(pages, None))
    try:
        while (page := await upcoming) is not None:
            upcoming = asyncio.ensure_future(anext(pages, None))
            yield page
    finally:  # after the last page a no-op; when the caller stopped early, the fetch it will not use is dropped
        upcoming.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await upcoming


async def run_sync(database: Database, *, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """One sync: every planned stream page by page, each page committed with its cursor; then the metrics."""
    async with database.tenant_transaction(org_id=org_id) as session:
        run = await get_in_org(session, SyncRun, run_id, org_id=org_id, missing="No such sync")
        integration = await _integration(session, org_id=org_id, integration_id=run.integration_id)
        if run.status not in ("queued", "running"):
            return
        integration_id = integration.id
        started = dt.datetime.now(dt.UTC)
        try:
            connector = await open_integration(session, integration)
        except ConnectorError as exc:  # settings it cannot work with, a grant that will not refresh: said on the run
            run.status, run.started_at, run.finished_at, run.error = "failed", started, started, str(exc)
            integration.last_error, integration.last_error_at = str(exc), started
            return
        streams, state = connector.plan(integration.state, started)
        run.status, run.started_at, integration.last_sync_at, integration.state = "running", started, started, state
    touched = metrics_service.Touched()
    fetched: dict[str, int] = {}
    try:
        for stream in streams:
            async for page in _prefetched(connector.pages(stream, state.get(stream))):
                async with database.tenant_transaction(org_id=org_id) as session:
                    integration = await _integration(session, org_id=org_id, integration_id=integration_id)
                    touched |= await store_page(
                        session, integration=integration, stream=page.stream, records=page.records, connector=connector
                    )
                    if page.cursor is not None:
                        state = {**state, stream: page.cursor}
                        integration.state = state
                    count = len(page.records) if page.fetched is None else page.fetched
                    fetched[page.stream] = fetched.get(page.stream, 0) + count
                    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(fetched=fetched))
        async with database.tenant_transaction(org_id=org_id) as session:
            integration = await _integration(session, org_id=org_id, integration_id=integration_id)
            integration.state = connector.finish(state)
            await metrics_service.refresh(session, org_id=org_id, touched=touched)
            if connector.engineering_source:
                await devbizops_service.note_source(
                    session,
                    org_id=org_id,
                    integration_id=integration_id,
                    provider=integration.provider,
                    name=integration.name,
                    files_tickets=connector.files_tickets,
                )
                await devbizops_service.request_recompute(session, org_id=org_id)
            now = dt.datetime.now(dt.UTC)
            integration.last_success_at, integration.last_error, integration.last_error_at = now, None, None
            await session.execute(
                update(SyncRun).where(SyncRun.id == run_id).values(status="succeeded", finished_at=now, fetched=fetched)
            )
    except ConnectorError as exc:
        await _failed(
            database,
            org_id=org_id,
            integration_id=integration_id,
            run_id=run_id,
            error=str(exc),
            credentials=isinstance(exc, CredentialsRejected),
            touched=touched,
            engineering=connector.engineering_source,
        )
    except Exception:
        log.exception("sync_crashed", integration=str(integration_id), run=str(run_id))
        await _failed(
            database,
            org_id=org_id,
            integration_id=integration_id,
            run_id=run_id,
            error=UNEXPECTED,
            credentials=False,
            touched=touched,
            engineering=connector.engineering_source,
        )
    finally:
        await connector.close()


UNEXPECTED = "the sync stopped on an unexpected error; the next sync resumes after the last page it stored"


async def _failed(
    database: Database,
    *,
    org_id: uuid.UUID,
    integration_id: uuid.UUID,
    run_id: uuid.UUID,
    error: str,
    credentials: bool,
    touched: metrics_service.Touched,
    engineering: bool,
) -> None:
    """The run failed: said on it and on the integration; the metrics of what its stored pages touched are brought
    up to date (the next run resumes after those pages and touches only what it fetches itself)."""
    log.warning("sync_failed", integration=str(integration_id), error=error)
    async with database.tenant_transaction(org_id=org_id) as session:
        now = dt.datetime.now(dt.UTC)
        await session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(last_error=error, last_error_at=now, **({"status": "error"} if credentials else {}))
        )
        if credentials:  # its status, a facet of its search document
            await index_rows(session, Integration, Integration.id == integration_id)
        await session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(status="failed", finished_at=now, error=error)
        )
    if touched.customers or touched.domains or engineering:
        async with database.tenant_transaction(org_id=org_id) as session:
            await metrics_service.refresh(session, org_id=org_id, touched=touched)
            if engineering:
                await devbizops_service.request_recompute(session, org_id=org_id)


async def process_webhook(session: AsyncSession, *, delivery_id: uuid.UUID) -> None:
    """Apply a delivery's object as a sync page would, then bring the metrics it touched up to date."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "processed":
        return
    integration = await _integration(session, org_id=delivery.org_id, integration_id=delivery.integration_id)
    connector = await open_integration(session, integration)
    try:
        carried = await connector.webhook_record(delivery.payload, delivery.topic)
        touched = (
            metrics_service.Touched()
            if carried is None
            else await store_page(
                session, integration=integration, stream=carried[0], records=[carried[1]], connector=connector
            )
        )
    finally:
        await connector.close()
    await metrics_service.refresh(session, org_id=delivery.org_id, touched=touched)
    if carried is not None and connector.engineering_source:
        await devbizops_service.request_recompute(session, org_id=delivery.org_id)
    delivery.status, delivery.processed_at = "processed", dt.datetime.now(dt.UTC)


async def apply_proposals(database: Database, *, org_id: uuid.UUID) -> int:
    """File the org's approved DevBizOps proposals in their trackers (a new ticket, or a comment on the work item
    they repeat), store what was filed as a sync would, and report each back; returns how many were applied. They
    are claimed (``filing``) in a transaction of their own first, so none is filed twice; each is then filed and
    reported in its own."""
    async with database.tenant_transaction(org_id=org_id) as session:
        claimed = await agents_service.claim_approved(session, org_id=org_id)
    done = 0
    for found in claimed:
        async with database.tenant_transaction(org_id=org_id) as session:
            done += await _file(session, org_id=org_id, found=found)
    if done:
        async with database.tenant_transaction(org_id=org_id) as session:
            await devbizops_service.request_recompute(session, org_id=org_id)
    return done


async def _file(session: AsyncSession, *, org_id: uuid.UUID, found: agents_service.Approved) -> int:
    """One claimed proposal filed (1) or failed (0), said on the proposal."""
    integration = await session.get(Integration, found.integration_id) if found.integration_id is not None else None
    if integration is None or integration.org_id != org_id:
        await agents_service.failed(session, org_id=org_id, proposal_id=found.proposal_id, error="No such integration")
        return 0
    connector = await open_integration(session, integration)
    try:
        if found.existing is not None:
            external_id, key = found.existing
            await connector.comment_issue(external_id, key, f"{found.ticket.title}\n\n{found.ticket.description}")
            url = None
        else:
            stream, record = await connector.create_issue(found.ticket)
            await store_page(session, integration=integration, stream=stream, records=[record], connector=connector)
            made = connector.engineering(stream, [record])
            item = made.work_items[0] if made.work_items else None
            external_id = str(record["id"])
            key = item.key if item else str(record.get("key") or record.get("identifier") or record["id"])
            url = item.url if item else None
        await agents_service.applied(
            session,
            org_id=org_id,
            proposal_id=found.proposal_id,
            integration_id=integration.id,
            external_id=external_id,
            key=key,
            url=url,
        )
        return 1
    except ConnectorError as exc:
        log.warning("proposal_not_applied", proposal=str(found.proposal_id), error=str(exc))
        await agents_service.failed(session, org_id=org_id, proposal_id=found.proposal_id, error=str(exc))
        return 0
    finally:
        await connector.close()
