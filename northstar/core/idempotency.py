"""``Idempotency-Key`` on creating POSTs, with Stripe's semantics.

The first request with a key takes a lock row (committed at once, in its own transaction); its
response is stored when it completes. A retry with the same key and body replays that response; the
same key with another body is 422; a retry while the first is still running is 409. Keys are scoped
to the caller (user or API key) within its org and expire after 24 hours.

A lock whose request never finished (its process died, or the database went away before the lock could be
released) is taken over by a retry once it is older than twice the request timeout, so a client retrying after
an outage is not answered 409 for a day.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from northstar.core.context import CurrentPrincipal
from northstar.core.db import Base, Database, execute_count
from northstar.core.http import AppError, Conflict, Unprocessable
from northstar.core.permissions import Principal
from northstar.core.queue import periodic_per_org

KEY_TTL_HOURS = 24
MAX_KEY_LENGTH = 255


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = {"schema": "core"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class ReplayedResponse(AppError):
    """Raised to short-circuit a request whose key already has a stored response."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("replayed", status=status)
        self.body = body


def _principal_key(principal: Principal) -> str:
    return f"{principal.actor_type}:{principal.actor_id}"


async def idempotency_guard(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY_LENGTH)] = None,
) -> None:
    if not idempotency_key:
        return
    database: Database = request.app.state.database
    body = await request.body()
    request_hash = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    ident = {"org_id": principal.org_id, "principal": _principal_key(principal), "key": idempotency_key}
    async with database.tenant_transaction(org_id=principal.org_id) as session:
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(**ident, method=request.method, path=request.url.path, request_hash=request_hash)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is not None:
            request.state.idempotency = ident
            return
        stored = (await session.execute(select(IdempotencyKey).filter_by(**ident))).scalar_one()
        if stored.request_hash == request_hash and stored.response_status is None:
            lease = 2 * request.app.state.settings.http.request_timeout_seconds
            abandoned = await session.execute(
                update(IdempotencyKey)
                .filter_by(**ident, response_status=None)
                .where(IdempotencyKey.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, lease))
                .values(created_at=func.now())
                .returning(IdempotencyKey.key)
            )
            if abandoned.first() is not None:
                request.state.idempotency = ident
                return
    if stored.request_hash != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request; use a new key",
            code="idempotency_key_reused",
        )
    if stored.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
        )
    raise ReplayedResponse(stored.response_status, stored.response_body or b"")


Idempotent = Depends(idempotency_guard)


class IdempotencyRecorder:
    """ASGI middleware: stores the response of a request that took an idempotency lock.

    Responses below 500 are kept for replay; on a server error, or a request rejected before its handler
    ran (validation), the lock is released so the client can retry with the same key.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        captured: dict[str, Any] = {"status": 500, "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            state = scope.get("state", {})
            if state.get("idempotency") is not None:
                keep = captured["status"] < 500 and not state.get("rejected_before_handler")
                await self._store(scope, state["idempotency"], captured["status"], bytes(captured["body"]), keep)

    @staticmethod
    async def _store(scope: Scope, ident: dict[str, Any], status: int, body: bytes, keep: bool) -> None:
        database: Database = scope["app"].state.database
        async with database.tenant_transaction(org_id=ident["org_id"]) as session:
            if not keep:
                await session.execute(delete(IdempotencyKey).filter_by(**ident))
            else:
                await session.execute(
                    update(IdempotencyKey).filter_by(**ident).values(response_status=status, response_body=body)
                )


async def replay_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReplayedResponse)
    return Response(
        exc.body, status_code=exc.status, media_type="application/json", headers={"Idempotent-Replayed": "true"}
    )


@periodic_per_org("core.purge_idempotency_keys", cron="17 * * * *")
async def purge_expired_keys(session: AsyncSession) -> int:
    return await execute_count(
        session,
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - text(f"interval '{KEY_TTL_HOURS} hours'")
        ),
    )
