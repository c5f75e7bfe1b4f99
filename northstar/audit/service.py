"""Recording, listing and verifying the audit trail."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.audit.models import AuditCheckpoint, AuditEvent
from northstar.core.context import ClientMeta
from northstar.core.db import Database, fetch_page, list_tenant_ids
from northstar.core.permissions import Principal

GENESIS_HASH = "0" * 64


async def record(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    action: str,
    actor_type: str,
    actor_id: uuid.UUID | None,
    client: ClientMeta | None = None,
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry; the database trigger assigns ``seq`` and chains the hash."""
    await session.execute(
        insert(AuditEvent).values(
            org_id=org_id,
            action=action,
            actor_type=actor_type,
            actor_id=actor_id,
            target_type=target_type,
            target_id=target_id,
            ip=client.ip if client else "",
            user_agent=client.user_agent if client else "",
            request_id=client.request_id if client else "",
            details=details or {},
        )
    )


async def record_request(session: AsyncSession, request: Request, principal: Principal) -> None:
    """The generic entry for a successful state-changing request (plugged into ``request_session``)."""
    route = request.scope.get("route")
    action = getattr(route, "name", None) or f"{request.method} {request.url.path}"
    target_type, target_id = getattr(request.state, "audit_target", ("", ""))
    if not target_id and request.path_params:
        target_id = str(next(reversed(request.path_params.values())))
    await record(
        session,
        org_id=principal.org_id,
        action=action,
        actor_type=principal.actor_type,
        actor_id=principal.actor_id,
        client=ClientMeta.of(request),
        target_type=target_type,
        target_id=target_id,
        details=getattr(request.state, "audit_details", None),
    )


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor_id: uuid.UUID | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    session: AsyncSession, *, filters: AuditFilters, offset: int, limit: int
) -> tuple[list[AuditEvent], int]:
    query = select(AuditEvent).where(*_where(filters)).order_by(AuditEvent.seq.desc())
    return await fetch_page(session, query, offset=offset, limit=limit)


def _where(filters: AuditFilters) -> list[Any]:
    clauses: list[Any] = []
    if filters.action:
        clauses.append(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.actor_id:
        clauses.append(AuditEvent.actor_id == filters.actor_id)
    if filters.target_type:
        clauses.append(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        clauses.append(AuditEvent.target_id == filters.target_id)
    if filters.since:
        clauses.append(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        clauses.append(AuditEvent.occurred_at < filters.until)
    return clauses


@dataclass(frozen=True)
class ChainReport:
    org_id: uuid.UUID
    entries: int
    head_hash: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


_CANONICAL_ROWS = text("""
    SELECT seq, prev_hash, hash, personal_hash, pseudonymised_at IS NOT NULL AS pseudonymised,
           CASE WHEN personal_salt IS NOT NULL THEN
             concat_ws('|', personal_salt, coalesce(actor_id::text, ''), target_id, ip, user_agent, request_id,
                       details::text) END AS personal,
           concat_ws('|', prev_hash, org_id::text, seq::text,
             to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor_type, action,
             target_type, personal_hash) AS canonical
    FROM core.audit_events WHERE org_id = :org_id ORDER BY seq
""")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def verify_chain(session: AsyncSession, *, org_id: uuid.UUID) -> ChainReport:
    """Recompute every hash in Python and check the links: an edited, removed or reordered entry shows.

    The chain covers each entry's personal fields through ``personal_hash`` (salted). An entry pseudonymised on
    erasure has lost its salt, so its personal fields are no longer checked; everything else about it still is.
    Retention removes the oldest entries and leaves a checkpoint the next entry links to.
    """
    problems: list[str] = []
    checkpoint = await session.get(AuditCheckpoint, org_id)
    expected_prev, expected_seq = (checkpoint.hash, checkpoint.seq + 1) if checkpoint else (GENESIS_HASH, 1)
    entries = 0
    result = await session.stream(_CANONICAL_ROWS, {"org_id": org_id})
    async for seq, prev_hash, stored_hash, personal_hash, pseudonymised, personal, canonical in result:
        entries += 1
        if seq != expected_seq:
            problems.append(f"entry {seq}: expected sequence number {expected_seq} (entries missing)")
        if prev_hash != expected_prev:
            problems.append(f"entry {seq}: does not link to the entry before it")
        if (personal is None and not pseudonymised) or (personal is not None and _sha256(personal) != personal_hash):
            problems.append(f"entry {seq}: personal fields do not match their hash (modified)")
        if _sha256(canonical) != stored_hash:
            problems.append(f"entry {seq}: content does not match its hash (modified)")
        expected_prev, expected_seq = stored_hash, seq + 1
    return ChainReport(org_id=org_id, entries=entries, head_hash=expected_prev, problems=problems)


async def pseudonymise(
    session: AsyncSession, *, terms: list[str], pseudonym: str, actor_id: uuid.UUID | None = None
) -> int:
    """Replace a data subject's identifiers in the current org's trail (``terms`` in targets and details; the
    actor's id, address and user agent where they acted) without breaking the chain; returns the entries touched."""
    actor_pseudonym = uuid.uuid5(uuid.NAMESPACE_URL, f"northstar:erased:{pseudonym}") if actor_id else None
    changed = await session.scalar(
        text("SELECT core.audit_pseudonymise(CAST(:terms AS text[]), :pseudonym, :actor, :actor_pseudonym)"),
        {
            "terms": [t for t in terms if t],
            "pseudonym": pseudonym,
            "actor": actor_id,
            "actor_pseudonym": actor_pseudonym,
        },
    )
    return int(changed or 0)


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Remove the current org's entries older than ``before`` (retention), keeping a checkpoint for verification."""
    removed = await session.scalar(text("SELECT core.audit_prune(:before)"), {"before": before})
    return int(removed or 0)


async def verify_all(url: str) -> list[ChainReport]:
    """Verify every org's chain, each inside its own tenant transaction."""
    database = Database(url, pool_size=1)
    try:
        reports = []
        for org_id in await list_tenant_ids(database):
            async with database.tenant_transaction(org_id=org_id) as session:
                reports.append(await verify_chain(session, org_id=org_id))
        return reports
    finally:
        await database.dispose()
