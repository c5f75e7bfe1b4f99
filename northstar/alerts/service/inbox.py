"""The in-app inbox: each member's notifications, unread counts, read marks; every new message is pushed to that
member's ``/events/stream`` (topic ``alerts.inbox``) when its transaction commits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import InboxMessage
from northstar.core.db import execute_count, fetch_page
from northstar.core.http import NotFound
from northstar.core.pubsub import publish_many_on_commit, publish_on_commit

TOPIC = "alerts.inbox"  # a new message: its id, kind, title, link and the unread count
READ_TOPIC = "alerts.inbox.read"  # messages marked read: the unread count
ADMIN_ROLES = ("founder", "admin")


async def unread_count(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                InboxMessage.org_id == org_id, InboxMessage.user_id == user_id, InboxMessage.read_at.is_(None)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class Message:
    """An in-app notification to write: to whom, and (for a delivery) which delivery it is."""

    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    url: str | None = None
    delivery_id: uuid.UUID | None = None


async def notify(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    url: str | None = None,
    delivery_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Put a message in the member's inbox and tell their open streams; a delivery writes its message once (None
    when it was written before)."""
    written = await notify_many(
        session, org_id=org_id, messages=[Message(user_id, kind, title, body, url, delivery_id)]
    )
    return written[0] if written else None


async def notify_many(session: AsyncSession, *, org_id: uuid.UUID, messages: Sequence[Message]) -> list[uuid.UUID]:
    """Messages in members' inboxes, each pushed to its member's streams with their unread count: one insert, one
    count and one publish however many there are (an alert to a thousand members). A delivery's message is written
    once; the ids of those written now are returned."""
    if not messages:
        return []
    rows = [{"org_id": org_id, **asdict(message)} for message in messages]
    written = (
        await session.execute(
            pg_insert(InboxMessage)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_inbox_delivery_id")
            .returning(InboxMessage.id, InboxMessage.user_id, InboxMessage.kind, InboxMessage.title, InboxMessage.url)
        )
    ).all()
    users = {row.user_id for row in written}
    unread = dict(
        (
            await session.execute(
                select(InboxMessage.user_id, func.count())
                .where(InboxMessage.org_id == org_id, InboxMessage.user_id.in_(users), InboxMessage.read_at.is_(None))
                .group_by(InboxMessage.user_id)
            )
        ).all()
    )
    await publish_many_on_commit(
        session,
        org_id,
        TOPIC,
        [
            (
                row.user_id,
                {
                    "id": str(row.id),
                    "kind": row.kind,
                    "title": row.title[:500],
                    "url": row.url,
                    "unread": unread[row.user_id],
                },
            )
            for row in written
        ],
    )
    return [row.id for row in written]


async def notify_admins(
    session: AsyncSession, *, org_id: uuid.UUID, title: str, body: str, also: uuid.UUID | None = None
) -> int:
    """Tell the organization's founders and admins (and ``also`` that member) in-app."""
    admins = {member.user_id for member in await accounts.members_of(session, org_id=org_id, roles=ADMIN_ROLES)}
    if also is not None and await accounts.members_of(session, org_id=org_id, user_ids=[also]):
        admins.add(also)
    for user_id in sorted(admins):
        await notify(session, org_id=org_id, user_id=user_id, kind="notice", title=title, body=body)
    return len(admins)


async def list_inbox(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, unread_only: bool, offset: int, limit: int
) -> tuple[list[InboxMessage], int]:
    query = select(InboxMessage).where(InboxMessage.org_id == org_id, InboxMessage.user_id == user_id)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    return await fetch_page(
        session, query.order_by(InboxMessage.created_at.desc(), InboxMessage.id), offset=offset, limit=limit
    )


async def mark_read(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, message_id: uuid.UUID
) -> InboxMessage:
    """One of the member's own messages read (another member's answers like a missing one)."""
    message = await session.get(InboxMessage, message_id)
    if message is None or message.org_id != org_id or message.user_id != user_id:
        raise NotFound("No such message")
    if message.read_at is None:
        message.read_at = dt.datetime.now(dt.UTC)
        await session.flush()
        await _tell_unread(session, org_id=org_id, user_id=user_id)
    return message


async def mark_all_read(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    marked = await execute_count(
        session,
        update(InboxMessage)
        .where(InboxMessage.org_id == org_id, InboxMessage.user_id == user_id, InboxMessage.read_at.is_(None))
        .values(read_at=func.now()),
    )
    if marked:
        await _tell_unread(session, org_id=org_id, user_id=user_id)
    return marked


async def _tell_unread(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The member's other tabs learn the new unread count."""
    unread = await unread_count(session, org_id=org_id, user_id=user_id)
    await publish_on_commit(session, org_id, READ_TOPIC, {"unread": unread}, user_id=user_id)
