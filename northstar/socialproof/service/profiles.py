"""Visitor profiles: read, searched and erased here; written only by ingestion (``socialproof.ingest_profiled``).

``audience_matches`` decides whether a visitor, by their profile, is in a notification's audience (score range,
new or returning, custom values); a visitor without a profile yet is a new visitor with score 0 and no values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import execute_count, fetch_page
from northstar.core.http import NotFound
from northstar.socialproof.models import Conversion, VisitorProfile
from northstar.socialproof.schemas.profiles import ProfileSort, VisitorProfileOut
from northstar.socialproof.service.sites import get_site

_SORTS: dict[str, tuple[Any, ...]] = {
    "-lastSeenAt": (VisitorProfile.last_seen_at.desc(), VisitorProfile.id),
    "lastSeenAt": (VisitorProfile.last_seen_at.asc(), VisitorProfile.id),
    "-behaviorScore": (VisitorProfile.behavior_score.desc(), VisitorProfile.last_seen_at.desc(), VisitorProfile.id),
    "behaviorScore": (VisitorProfile.behavior_score.asc(), VisitorProfile.last_seen_at.desc(), VisitorProfile.id),
}


@dataclass(frozen=True)
class ProfileSearch:
    """Filters of ``GET /sites/{siteId}/visitors``; None means any."""

    score_min: float | None = None
    score_max: float | None = None
    visitors: str = "all"
    country: str | None = None
    device: str | None = None
    last_seen_after: dt.datetime | None = None
    last_seen_before: dt.datetime | None = None
    visitor_ids: tuple[str, ...] = field(default_factory=tuple)
    sort: ProfileSort = "-lastSeenAt"


def profile_out(profile: VisitorProfile) -> VisitorProfileOut:
    return VisitorProfileOut(
        id=profile.id,
        visitor_id=profile.visitor_id,
        first_seen_at=profile.first_seen_at,
        last_seen_at=profile.last_seen_at,
        session_count=profile.session_count,
        returning=profile.session_count > 1,
        page_views=profile.page_views,
        clicks=profile.clicks,
        conversions=profile.conversions,
        behavior_score=profile.behavior_score,
        country=profile.country,
        device=profile.device,
        custom=dict(profile.custom),
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


async def search_profiles(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, search: ProfileSearch, offset: int, limit: int
) -> tuple[list[VisitorProfile], int]:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    conditions: list[ColumnElement[bool]] = [VisitorProfile.org_id == org_id, VisitorProfile.site_id == site.id]
    if search.score_min is not None:
        conditions.append(VisitorProfile.behavior_score >= search.score_min)
    if search.score_max is not None:
        conditions.append(VisitorProfile.behavior_score <= search.score_max)
    if search.visitors == "new":
        conditions.append(VisitorProfile.session_count <= 1)
    elif search.visitors == "returning":
        conditions.append(VisitorProfile.session_count > 1)
    if search.country is not None:
        conditions.append(VisitorProfile.country == search.country)
    if search.device is not None:
        conditions.append(VisitorProfile.device == search.device)
    if search.last_seen_after is not None:
        conditions.append(VisitorProfile.last_seen_at >= search.last_seen_after)
    if search.last_seen_before is not None:
        conditions.append(VisitorProfile.last_seen_at < search.last_seen_before)
    if search.visitor_ids:
        conditions.append(VisitorProfile.visitor_id.in_(search.visitor_ids))
    query = select(VisitorProfile).where(*conditions).order_by(*_SORTS[search.sort])
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_profile(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, visitor_id: str
) -> VisitorProfile:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    profile = await session.scalar(
        select(VisitorProfile).where(
            VisitorProfile.org_id == org_id, VisitorProfile.site_id == site.id, VisitorProfile.visitor_id == visitor_id
        )
    )
    if profile is None:
        raise NotFound("No such visitor profile")
    return profile


async def erase_profile(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, visitor_id: str) -> uuid.UUID:
    """The profile (with its custom values) and the visitor's attributed conversions. Counts already rolled up
    stay (they name nobody); raw events are erased by the privacy workflow, and a later event starts a new profile.
    Returns the erased profile's id (for the audit entry, which so never names the visitor)."""
    profile = await get_profile(session, org_id=org_id, site_id=site_id, visitor_id=visitor_id)
    await execute_count(
        session,
        delete(Conversion).where(
            Conversion.org_id == org_id, Conversion.site_id == profile.site_id, Conversion.visitor_id == visitor_id
        ),
    )
    await session.delete(profile)
    await session.flush()
    return profile.id


@dataclass(frozen=True)
class ProfileFacts:
    """What audience rules read of a profile."""

    score: float = 0.0
    sessions: int = 0
    custom: Mapping[str, Any] = field(default_factory=dict)


NEW_VISITOR = ProfileFacts()


async def profile_facts(session: AsyncSession, *, site_id: uuid.UUID, visitor_id: str) -> ProfileFacts:
    """One indexed read (the session is bound to the site's organization)."""
    row = (
        await session.execute(
            select(VisitorProfile.behavior_score, VisitorProfile.session_count, VisitorProfile.custom).where(
                VisitorProfile.site_id == site_id, VisitorProfile.visitor_id == visitor_id
            )
        )
    ).one_or_none()
    return NEW_VISITOR if row is None else ProfileFacts(score=row[0], sessions=row[1], custom=row[2])


def _compare(operator: str, have: Any, want: Any) -> bool:
    if operator == "exists":
        return have is not None
    if have is None:
        return operator == "ne"
    if operator == "eq":
        return bool(have == want and isinstance(have, bool) == isinstance(want, bool))
    if operator == "ne":
        return not (have == want and isinstance(have, bool) == isinstance(want, bool))
    if operator == "in":
        return any(_compare("eq", have, item) for item in want)
    numbers = all(isinstance(value, int | float) and not isinstance(value, bool) for value in (have, want))
    texts = isinstance(have, str) and isinstance(want, str)  # dates as YYYY-MM-DD order as text
    if not (numbers or texts):
        return False
    if operator == "gt":
        return bool(have > want)
    if operator == "gte":
        return bool(have >= want)
    if operator == "lt":
        return bool(have < want)
    return bool(have <= want)


def audience_matches(audience: Mapping[str, Any], facts: ProfileFacts) -> bool:
    """True when the profile meets every rule of the audience (a camelCase document, as stored)."""
    score_min, score_max = audience.get("scoreMin"), audience.get("scoreMax")
    if score_min is not None and facts.score < score_min:
        return False
    if score_max is not None and facts.score > score_max:
        return False
    visitors = audience.get("visitors", "all")
    if (visitors == "new" and facts.sessions > 1) or (visitors == "returning" and facts.sessions <= 1):
        return False
    return all(
        _compare(str(rule.get("operator", "eq")), facts.custom.get(str(rule.get("key"))), rule.get("value"))
        for rule in audience.get("custom") or []
    )
