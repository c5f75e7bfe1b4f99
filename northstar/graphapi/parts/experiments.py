"""A/B tests in the graph: a site's tests with their variants and results, and their life cycle (start, stop,
complete), through ``socialproof.service.abtests`` and behind the same gates as ``/sites/{siteId}/ab-tests``."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from northstar.core.context import require
from northstar.graphapi.context import context_of
from northstar.graphapi.wire import from_row, window
from northstar.socialproof.service import abtests

SITES_READ = require("sites", "read")
SITES_UPDATE = require("sites", "update")


@strawberry.enum
class AbTestStatus(enum.Enum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    COMPLETED = "completed"


@strawberry.type(description="One arm of a test: what it changes from the notification and its share of traffic.")
class Variant:
    id: uuid.UUID
    name: str
    is_control: bool
    weight: int
    message: str | None
    template_id: uuid.UUID | None
    display: JSON


@strawberry.type(description="An A/B test of a notification (seed 001 ab_tests).")
class AbTest:
    id: uuid.UUID
    site_id: uuid.UUID
    notification_id: uuid.UUID
    name: str
    status: str
    primary_metric: str
    min_sample: int
    auto_winner: bool
    winner_variant_id: uuid.UUID | None
    winner_selected_at: dt.datetime | None
    srm_flagged: bool
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    created_at: dt.datetime
    variants: list[Variant]

    @strawberry.field(
        description="As GET …/ab-tests/{testId}/results: per variant exposures, clicks, conversions, rates with "
        "95 % Wilson intervals, Holm-adjusted z-tests, chance to beat the control, and the sample-ratio check."
    )
    async def results(self, info: Info) -> JSON:
        ctx = context_of(info)
        principal = ctx.allow(SITES_READ)
        async with ctx.db() as session:
            found = await abtests.get_results(session, org_id=principal.org_id, site_id=self.site_id, test_id=self.id)
        return JSON(found.model_dump(mode="json", by_alias=True))


@strawberry.type
class AbTestPage:
    items: list[AbTest]
    page: int
    limit: int
    total: int


def _test(view: abtests.TestView) -> AbTest:
    return from_row(
        AbTest,
        view.test,
        variants=[from_row(Variant, variant, display=JSON(variant.display)) for variant in view.variants],
    )


@strawberry.type
class Query:
    @strawberry.field(description="As GET /sites/{siteId}/ab-tests: newest first.")
    async def ab_tests(
        self, info: Info, site_id: uuid.UUID, page: int = 1, limit: int = 20, status: AbTestStatus | None = None
    ) -> AbTestPage | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_READ)
        bounds = window(page, limit)
        async with ctx.db() as session:
            views, total = await abtests.list_tests(
                session,
                org_id=principal.org_id,
                site_id=site_id,
                status=status.value if status else None,
                offset=bounds.offset,
                limit=bounds.limit,
            )
        return AbTestPage(items=[_test(view) for view in views], page=bounds.page, limit=bounds.limit, total=total)

    @strawberry.field(description="As GET /sites/{siteId}/ab-tests/{testId}.")
    async def ab_test(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> AbTest | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_READ)
        async with ctx.db() as session:
            return _test(await abtests.get_test(session, org_id=principal.org_id, site_id=site_id, test_id=id))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="As POST …/ab-tests/{testId}/start: the feed splits visitors from now on.")
    async def start_ab_test(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> AbTest | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        async with ctx.mutation("startAbTest") as session:
            view = await abtests.start_test(session, principal=principal, site_id=site_id, test_id=id)
            ctx.changed("startAbTest", "ab_test", id, site=str(site_id))
        return _test(view)

    @strawberry.mutation(description="As POST …/ab-tests/{testId}/stop: without a winner.")
    async def stop_ab_test(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> AbTest | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        async with ctx.mutation("stopAbTest") as session:
            view = await abtests.stop_test(session, principal=principal, site_id=site_id, test_id=id)
            ctx.changed("stopAbTest", "ab_test", id, site=str(site_id))
        return _test(view)

    @strawberry.mutation(description="As POST …/ab-tests/{testId}/complete: the winner shows to everyone.")
    async def complete_ab_test(
        self, info: Info, site_id: uuid.UUID, id: uuid.UUID, winner_variant_id: uuid.UUID
    ) -> AbTest | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        async with ctx.mutation("completeAbTest") as session:
            view = await abtests.complete_test(
                session, principal=principal, site_id=site_id, test_id=id, winner_id=winner_variant_id
            )
            ctx.changed("completeAbTest", "ab_test", id, site=str(site_id), winner=str(winner_variant_id))
        return _test(view)
