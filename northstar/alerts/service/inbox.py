"""The in-app inbox: each member's notifications, unread counts, read marks; every new message is pushed to that
member's ``/events/stream`` (topic ``alerts.inbox``) when its transaction commits."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import InboxMessage
from northstar.core.db import execute_count, fetch_page
from northstar.core.http import NotFound
from northstar.core.pubsub import publish_on_commit

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
    message_id: uuid.UUID | None = await session.scalar(
        pg_insert(InboxMessage)
        .values(org_id=org_id, user_id=user_id, delivery_id=delivery_id, kind=kind, title=title, body=body, url=url)
        .on_conflict_do_nothing(constraint="uq_inbox_delivery_id")
        .returning(InboxMessage.id)
    )
    if message_id is None:
        return None
    unread = await unread_count(session, org_id=org_id, user_id=user_id)
    await publish_on_commit(
        session,
        org_id,
        TOPIC,
        {"id": str(message_id), "kind": kind, "title": title[:500], "url": url, "unread": unread},
        user_id=user_id,
    )
    return message_id


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
