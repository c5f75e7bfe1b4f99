"""What every resolver gets: the request's principal and tenant transaction (the very ones REST routes get from
``core.context``), the permission gates, the DataLoaders of this request, and the record of what changed.

GraphQL runs sibling fields concurrently, but an ``AsyncSession`` takes one statement at a time: every use of the
session goes through ``ctx.db()``, which holds the request's lock for it. A resolver never awaits a DataLoader
while holding it (the loader's batch takes the lock itself).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from northstar.audit.service import record as record_audit
from northstar.core.context import ClientMeta, require
from northstar.core.http import Forbidden
from northstar.core.permissions import Principal

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Change:
    """One mutation that went through: its audit entry is written in its own savepoint."""

    field: str
    target_type: str
    target_id: str
    details: dict[str, Any] | None = None


@dataclass
class GraphContext:
    request: Request
    session: AsyncSession
    principal: Principal
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaders: dict[Hashable, DataLoader[Any, Any]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, for one resolver's statements at a time."""
        async with self.lock:
            yield self.session

    def allow(self, gate: require) -> Principal:
        """The REST gate (``require(resource, action)``) for this field: 403 ``forbidden`` where REST answers it."""
        return gate.check(self.request, self.principal)

    def user_id(self) -> uuid.UUID:
        """Fields about the caller as a person need a user's token, as their REST routes do."""
        if self.principal.user_id is None:
            raise Forbidden("This field needs a user's access token, not an API key", code="user_required")
        return self.principal.user_id

    def loader(self, key: Hashable, batch: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
        """This request's DataLoader named ``key`` (a name and the field's arguments), made on first use."""
        found = self.loaders.get(key)
        if found is None:
            found = self.loaders[key] = DataLoader(load_fn=batch, cache=True)
        return cast(DataLoader[K, V], found)

    def release(self) -> None:
        """Drop the loaders once the operation is answered. Each holds its batch function, whose closure holds this
        context: left as a cycle, a request's loaded rows waited for the cycle collector, whose full passes
        (tens of ms) then came every few requests."""
        self.loaders.clear()

    @asynccontextmanager
    async def mutation(self, name: str) -> AsyncIterator[AsyncSession]:
        """A mutation's work, in a savepoint under the lock: a mutation that fails leaves nothing behind, while the
        ones before it in the same request stay (GraphQL runs mutations one after another, each on its own).
        The caller reports what it changed with ``changed``; the audit entry goes in the same savepoint."""
        async with self.lock, self.session.begin_nested():
            before = len(self.changes)
            try:
                yield self.session
            except BaseException:
                del self.changes[before:]
                raise
            for change in self.changes[before:]:
                await record_audit(
                    self.session,
                    org_id=self.principal.org_id,
                    action=f"graphql.{change.field}",
                    actor_type=self.principal.actor_type,
                    actor_id=self.principal.actor_id,
                    client=ClientMeta.of(self.request),
                    target_type=change.target_type,
                    target_id=change.target_id,
                    details={"via": "graphql", **(change.details or {})},
                )

    def changed(self, field_name: str, target_type: str, target_id: object, **details: Any) -> None:
        self.changes.append(Change(field_name, target_type, str(target_id), details or None))


def context_of(info: Info[Any, Any]) -> GraphContext:
    context: GraphContext = info.context
    return context
