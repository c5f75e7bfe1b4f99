"""A visitor's data in the social proof module, for data-subject requests (``northstar.privacy`` calls these).

A visitor is named either by the id the merchant knows them by (their customer id or e-mail, as passed to
``identify`` or as ``visitorId`` on server-side events), which is hashed per site exactly as ingestion does, or by
the stored visitor id itself (anonymous and device visitors, whose id the merchant can only copy from our data).

``erase_visitor`` and ``export_visitor`` are the one place that knows which tables hold a visitor: visitor
profiles and custom field values join here when they land.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import settings_of
from northstar.core.http import Forbidden, NotFound
from northstar.socialproof.models import Site
from northstar.socialproof.sanitize import on_domain
from northstar.socialproof.service.sites import load_public_site
from northstar.socialproof.visitors import device_visitor_id, identified_visitor_id, visitors_key


@dataclass(frozen=True)
class VisitorKeys:
    """The (site, stored visitor id) pairs a data subject has in the current org."""

    pairs: list[tuple[uuid.UUID, str]]

    @property
    def site_ids(self) -> list[uuid.UUID]:
        return [site_id for site_id, _ in self.pairs]

    @property
    def visitor_ids(self) -> list[str]:
        return [visitor_id for _, visitor_id in self.pairs]


async def visitor_keys(
    session: AsyncSession, *, org_id: uuid.UUID, identifier: str | None = None, visitor_id: str | None = None
) -> VisitorKeys:
    """Every site of the org, with the visitor's stored id there (RLS keeps it to the org)."""
    site_ids = list((await session.scalars(select(Site.id).where(Site.org_id == org_id))).all())
    if identifier is not None:
        key = visitors_key(settings_of(session).resolved_secret_key())
        return VisitorKeys([(site_id, identified_visitor_id(key, site_id, identifier)) for site_id in site_ids])
    return VisitorKeys([(site_id, visitor_id) for site_id in site_ids if visitor_id])


# Each site has its own id for an identified visitor (128-bit hashes), so matching any of the sites and any of the
# ids finds exactly the pairs, and lets the (visitor_id, site_id) index answer.
_MATCH = "site_id = ANY(CAST(:sites AS uuid[])) AND visitor_id = ANY(CAST(:visitors AS text[]))"
# Every table that holds a visitor id, each erased by ``_MATCH``.
VISITOR_TABLES = ("notification_events", "conversions", "visitor_profiles", "ab_test_visitors")


async def export_visitor(session: AsyncSession, *, keys: VisitorKeys) -> dict[str, Any]:
    """Everything stored about the visitor: their events (with what the events carried), their conversions, their
    profiles (with the custom values events gave) and the A/B test variants they were shown."""
    params = {"sites": keys.site_ids, "visitors": keys.visitor_ids}
    events = (
        await session.execute(
            text(
                "SELECT id, site_id, event_type, event_name, notification_id, visitor_id, url, payload, occurred_at, "  # noqa: S608 - a constant clause
                f"received_at FROM socialproof.notification_events WHERE {_MATCH} ORDER BY occurred_at"
            ),
            params,
        )
    ).mappings()
    conversions = (
        await session.execute(
            text(
                "SELECT site_id, notification_id, visitor_id, clicked_at, converted_at, event_id "  # noqa: S608 - a constant clause
                f"FROM socialproof.conversions WHERE {_MATCH} ORDER BY converted_at"
            ),
            params,
        )
    ).mappings()
    profiles = (
        await session.execute(
            text(f"SELECT * FROM socialproof.visitor_profiles WHERE {_MATCH} ORDER BY first_seen_at"),  # noqa: S608 - a constant clause
            params,
        )
    ).mappings()
    tests = (
        await session.execute(
            text(
                "SELECT site_id, test_id, variant_id, exposed_at, clicked_at "  # noqa: S608 - a constant clause
                f"FROM socialproof.ab_test_visitors WHERE {_MATCH} ORDER BY exposed_at"
            ),
            params,
        )
    ).mappings()
    return {
        "events": [dict(row) for row in events],
        "conversions": [dict(row) for row in conversions],
        "profiles": [dict(row) for row in profiles],
        "abTests": [dict(row) for row in tests],
    }


async def erase_visitor(session: AsyncSession, *, keys: VisitorKeys) -> dict[str, int]:
    """Delete the visitor's events, conversions, profiles (their custom values with them) and A/B test memberships;
    returns how many rows went, by table.

    The aggregates (counts per bucket, A/B counts per day, HyperLogLog registers) hold no visitor id and stay: they
    are not personal.
    """
    params = {"sites": keys.site_ids, "visitors": keys.visitor_ids}
    erased = {table: 0 for table in VISITOR_TABLES}
    if not keys.pairs:
        return erased
    for table in VISITOR_TABLES:
        result = await session.execute(text(f"DELETE FROM socialproof.{table} WHERE {_MATCH}"), params)  # noqa: S608 - constant names
        erased[table] = int(getattr(result, "rowcount", 0) or 0)
    return erased


async def forget_creator(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """An erased user no longer shows as the creator of the org's sites."""
    result = await session.execute(
        text("UPDATE socialproof.sites SET created_by = NULL WHERE created_by = :user"), {"user": user_id}
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class WidgetVisitor:
    """Where a widget's consent change came from: the site, and the visitor's stored id when it is stable."""

    org_id: uuid.UUID
    site_id: uuid.UUID
    visitor_id: str | None


async def widget_visitor(
    session: AsyncSession, *, site_key: str, origin: str | None, user_id: str | None, local_id: str | None
) -> WidgetVisitor:
    """The site of a widget request from one of its pages (404 unknown key, 403 another origin), and the visitor's id
    as ingestion stores it for an identified or a device visitor. An anonymous visitor's id changes daily and needs
    their address, which is not kept for this: their consent is logged without an id."""
    site = await load_public_site(session, site_key=site_key) if len(site_key) <= 64 else None
    if site is None:
        raise NotFound("No site has this key", code="unknown_site")
    if not site.serving:
        raise Forbidden("This site has not proved control of its domain yet", code="site_unverified")
    if not origin or origin == "null" or not on_domain(urlsplit(origin).hostname, site.domain):
        raise Forbidden("Consent is accepted only from pages of the site", code="origin_not_allowed")
    key = visitors_key(settings_of(session).resolved_secret_key())
    visitor_id = None
    if user_id:
        visitor_id = identified_visitor_id(key, site.id, user_id)
    elif local_id and site.persistent_visitor_id:
        visitor_id = device_visitor_id(key, site.id, local_id)
    return WidgetVisitor(org_id=site.org_id, site_id=site.id, visitor_id=visitor_id)
