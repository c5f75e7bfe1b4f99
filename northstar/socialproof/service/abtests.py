"""A/B tests of notifications: setup, the life cycle, sticky assignment, results and the automatic winner.

* **Assignment** keeps no state: a visitor's variant is ``sha256(test id | visitor id)`` read as a number in
  [0, 1) and placed on the cumulative weights. The visitor id is the one the widget's events carry: the
  first-party id where the site keeps one (``persistentVisitorId``), so the split is sticky for as long as the
  browser keeps its localStorage; otherwise the cookieless daily id, so a visitor keeps their variant for the UTC
  day (and the same address and browser), and may get another the next day.
* The widget sends the variant it showed with each impression and click, and a conversion is credited to the
  variant of the click it follows, so a conversion is always credited to what the visitor actually saw.
* **Results** come from ``ab_test_counts`` (visitors exposed, clicking, converting per variant and day, kept by
  ingestion), never from raw events: statistics in ``abstats.py``.
* **Auto-winner**: a periodic task (``socialproof.ab_test_winners``) stops a running test with ``autoWinner`` and
  sets its winner once every variant has ``minSample`` exposed visitors, the exposures match the split (no SRM),
  and a variant beats the control significantly (Holm-adjusted z-test on the primary metric). From then on the
  notification shows the winner to everyone. ``announce_completion`` sends the ``ab_test.completed`` webhook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import fetch_page, flush_unique, get_in_org
from northstar.core.http import Conflict, NotFound, Unprocessable
from northstar.core.permissions import Principal
from northstar.socialproof import abstats
from northstar.socialproof.models import AbTest, AbTestCount, AbTestVariant, Notification, Template
from northstar.socialproof.schemas.abtests import (
    AbTestCreate,
    AbTestResults,
    AbTestUpdate,
    Rate,
    SampleRatio,
    VariantIn,
    VariantResult,
    VersusControl,
)
from northstar.socialproof.service.sites import get_site, site_for_change
from northstar.webhooks import service as webhooks

METHOD = (
    "Per visitor. Rates: 95 % Wilson score intervals. Each variant vs the control: pooled two-proportion z-test, "
    "two-sided, Holm-adjusted across variants, significant when adjusted p < 0.05. Chance to beat control: exact "
    "P(p_variant > p_control) with Beta(1 + successes, 1 + failures) posteriors. Sample ratio: Pearson χ² of "
    "exposures against the split, flagged when p < 0.001."
)
MISSING = "No such A/B test"


@dataclass(frozen=True)
class TestView:
    """A test with its variants in order (what the API and console show)."""

    test: AbTest
    variants: list[AbTestVariant]

    @property
    def control(self) -> AbTestVariant:
        return next(variant for variant in self.variants if variant.is_control)


# ---- assignment ----


def bucket(visitor_id: str, test_id: uuid.UUID) -> float:
    """Where a visitor falls in [0, 1) for a test: the same every time, independent across tests."""
    digest = hashlib.sha256(f"{test_id}|{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(visitor_id: str, test_id: uuid.UUID, weights: Sequence[tuple[uuid.UUID, int]]) -> uuid.UUID:
    """The variant (of ``(id, weight)`` in a fixed order) a visitor sees in a test."""
    point = bucket(visitor_id, test_id) * sum(weight for _, weight in weights)
    reached = 0
    for variant_id, weight in weights:
        reached += weight
        if point < reached:
            return variant_id
    return weights[-1][0]


@dataclass(frozen=True)
class ServedVariant:
    """What a variant changes in the feed: ``message``/``css`` None keep the notification's."""

    id: uuid.UUID
    weight: int
    message: str | None
    css: str | None
    display: dict[str, Any]


@dataclass(frozen=True)
class Serving:
    """How a notification is served: a running test's split (``test_id`` set), or a completed test's winner."""

    test_id: uuid.UUID | None
    variants: list[ServedVariant]


_SERVING = text("""
    SELECT t.id AS test_id, t.notification_id, t.status, v.id, v.weight, v.message, v.display,
           tp.message AS template_message, tp.css_content
    FROM socialproof.ab_tests t
    JOIN socialproof.ab_test_variants v ON v.org_id = t.org_id AND v.test_id = t.id
    LEFT JOIN socialproof.templates tp ON tp.org_id = v.org_id AND tp.id = v.template_id
    WHERE t.org_id = :org AND t.site_id = :site
      AND (t.status = 'running' OR (t.status = 'completed' AND v.id = t.winner_variant_id))
    ORDER BY t.notification_id, t.status DESC, t.winner_selected_at DESC NULLS LAST, v.position""")


async def load_serving(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID) -> dict[uuid.UUID, Serving]:
    """Per notification of the site: its running test, else the winner of its latest completed test."""
    servings: dict[uuid.UUID, Serving] = {}
    for row in (await session.execute(_SERVING, {"org": org_id, "site": site_id})).all():
        current = servings.get(row.notification_id)
        running = row.status == "running"
        if current is None:
            current = servings[row.notification_id] = Serving(test_id=row.test_id if running else None, variants=[])
        elif current.test_id != (row.test_id if running else None) or not running:
            continue  # a running test outranks winners; only the latest winner counts
        message = row.message if row.message is not None else row.template_message
        current.variants.append(
            ServedVariant(id=row.id, weight=row.weight, message=message, css=row.css_content, display=row.display)
        )
    return servings


# ---- setup and life cycle ----


async def _variants_of(session: AsyncSession, test: AbTest) -> list[AbTestVariant]:
    query = select(AbTestVariant).where(AbTestVariant.org_id == test.org_id, AbTestVariant.test_id == test.id)
    return list((await session.scalars(query.order_by(AbTestVariant.position))).all())


async def _view(session: AsyncSession, test: AbTest) -> TestView:
    return TestView(test, await _variants_of(session, test))


async def _test_of_site(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, test_id: uuid.UUID) -> AbTest:
    test = await get_in_org(session, AbTest, test_id, org_id=org_id, missing=MISSING)
    if test.site_id != site_id:
        raise NotFound(MISSING)
    return test


async def get_test(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, test_id: uuid.UUID) -> TestView:
    return await _view(session, await _test_of_site(session, org_id=org_id, site_id=site_id, test_id=test_id))


async def list_tests(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    site_id: uuid.UUID,
    notification_id: uuid.UUID | None = None,
    status: str | None = None,
    offset: int,
    limit: int,
) -> tuple[list[TestView], int]:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    query = select(AbTest).where(AbTest.org_id == org_id, AbTest.site_id == site.id)
    if notification_id is not None:
        query = query.where(AbTest.notification_id == notification_id)
    if status is not None:
        query = query.where(AbTest.status == status)
    tests, total = await fetch_page(
        session, query.order_by(AbTest.created_at.desc(), AbTest.id), offset=offset, limit=limit
    )
    if not tests:
        return [], total
    variants = (
        await session.scalars(
            select(AbTestVariant)
            .where(AbTestVariant.org_id == org_id, AbTestVariant.test_id.in_([test.id for test in tests]))
            .order_by(AbTestVariant.position)
        )
    ).all()
    return [TestView(test, [v for v in variants if v.test_id == test.id]) for test in tests], total


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        "The A/B test is not valid", details=[{"field": field, "message": message, "type": "value_error"}]
    )


async def _check_templates(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, variants: list[VariantIn]
) -> None:
    for position, variant in enumerate(variants):
        if variant.template_id is None:
            continue
        template = await session.get(Template, variant.template_id)
        if template is None or template.org_id != org_id or template.site_id != site_id:
            raise _invalid(f"body.variants.{position}.templateId", "no such template on this site")


def _new_variants(test: AbTest, variants: list[VariantIn]) -> list[AbTestVariant]:
    return [
        AbTestVariant(
            id=uuid.uuid4(),
            org_id=test.org_id,
            site_id=test.site_id,
            test_id=test.id,
            notification_id=test.notification_id,
            position=position,
            name=variant.name,
            is_control=variant.is_control,
            weight=variant.weight,
            message=variant.message,
            template_id=variant.template_id,
            display=variant.display,
        )
        for position, variant in enumerate(variants)
    ]


async def create_test(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, body: AbTestCreate
) -> TestView:
    site = await site_for_change(session, principal=principal, site_id=site_id)
    notification = await session.get(Notification, body.notification_id)
    if notification is None or notification.org_id != principal.org_id or notification.site_id != site.id:
        raise _invalid("body.notificationId", "no such notification on this site")
    await _check_templates(session, org_id=principal.org_id, site_id=site.id, variants=body.variants)
    test = AbTest(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        site_id=site.id,
        notification_id=notification.id,
        name=body.name,
        status="draft",
        primary_metric=body.primary_metric,
        min_sample=body.min_sample,
        auto_winner=body.auto_winner,
        srm_flagged=False,
        created_by=principal.user_id,
    )
    session.add(test)
    await session.flush()
    variants = _new_variants(test, body.variants)
    session.add_all(variants)
    await session.flush()
    return TestView(test, variants)


async def _test_for_change(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID
) -> AbTest:
    site = await site_for_change(session, principal=principal, site_id=site_id)
    test = await _test_of_site(session, org_id=principal.org_id, site_id=site.id, test_id=test_id)
    await session.refresh(test, with_for_update=True)  # one change at a time: start and stop race otherwise
    return test


async def update_test(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID, body: AbTestUpdate
) -> TestView:
    test = await _test_for_change(session, principal=principal, site_id=site_id, test_id=test_id)
    if test.status == "completed":
        raise Conflict("A completed test cannot change", code="ab_test_completed")
    if test.status != "draft" and (body.variants is not None or body.primary_metric is not None):
        raise Conflict(
            "The variants and the primary metric change only while the test is a draft", code="ab_test_started"
        )
    for field in ("name", "primary_metric", "min_sample", "auto_winner"):
        value = getattr(body, field)
        if value is not None:
            setattr(test, field, value)
    if body.variants is not None:
        await _check_templates(session, org_id=test.org_id, site_id=test.site_id, variants=body.variants)
        for variant in await _variants_of(session, test):
            await session.delete(variant)
        await session.flush()
        session.add_all(_new_variants(test, body.variants))
    test.updated_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return await _view(session, test)


async def delete_test(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID) -> None:
    test = await _test_for_change(session, principal=principal, site_id=site_id, test_id=test_id)
    if test.status == "running":
        raise Conflict("Stop the test before deleting it", code="ab_test_running")
    await session.delete(test)
    await session.flush()


async def start_test(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID
) -> TestView:
    test = await _test_for_change(session, principal=principal, site_id=site_id, test_id=test_id)
    if test.status != "draft":
        raise Conflict(f"The test is {test.status}; only a draft can start", code="ab_test_not_draft")
    test.status = "running"
    test.started_at = dt.datetime.now(dt.UTC)
    await flush_unique(session, "The notification already has a running test", code="ab_test_already_running")
    return await _view(session, test)


async def stop_test(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID) -> TestView:
    """Stop without a winner: the notification shows as it is again."""
    test = await _test_for_change(session, principal=principal, site_id=site_id, test_id=test_id)
    if test.status != "running":
        raise Conflict(f"The test is {test.status}; only a running test stops", code="ab_test_not_running")
    test.status = "stopped"
    test.stopped_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return await _view(session, test)


async def complete_test(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID, winner_id: uuid.UUID
) -> TestView:
    """Choose the winner by hand (a running or stopped test): the notification shows it from now on."""
    test = await _test_for_change(session, principal=principal, site_id=site_id, test_id=test_id)
    if test.status not in ("running", "stopped"):
        raise Conflict(
            f"The test is {test.status}; only a running or stopped test completes", code="ab_test_not_started"
        )
    variants = await _variants_of(session, test)
    if winner_id not in {variant.id for variant in variants}:
        raise _invalid("body.winnerVariantId", "not a variant of this test")
    await _complete(session, test, winner_id)
    return TestView(test, variants)


async def _complete(session: AsyncSession, test: AbTest, winner_id: uuid.UUID) -> None:
    now = dt.datetime.now(dt.UTC)
    test.status = "completed"
    test.stopped_at = test.stopped_at or now
    test.winner_variant_id = winner_id
    test.winner_selected_at = now
    await session.flush()
    await announce_completion(session, test)


async def announce_completion(session: AsyncSession, test: AbTest) -> None:
    """The one place a test's completion is announced: the ``ab_test.completed`` webhook, written in the completing
    transaction (so it goes out only if the completion commits)."""
    await webhooks.emit(
        session,
        org_id=test.org_id,
        event_type="ab_test.completed",
        data={
            "id": str(test.id),
            "notificationId": str(test.notification_id),
            "name": test.name,
            "primaryMetric": test.primary_metric,
            "winnerVariantId": str(test.winner_variant_id) if test.winner_variant_id else None,
            "winnerSelectedAt": test.winner_selected_at.isoformat() if test.winner_selected_at else None,
        },
    )


# ---- results ----


async def _totals(session: AsyncSession, test: AbTest) -> dict[uuid.UUID, tuple[int, int, int]]:
    rows = await session.execute(
        select(
            AbTestCount.variant_id,
            func.sum(AbTestCount.exposures),
            func.sum(AbTestCount.clicks),
            func.sum(AbTestCount.conversions),
        )
        .where(AbTestCount.org_id == test.org_id, AbTestCount.test_id == test.id)
        .group_by(AbTestCount.variant_id)
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows.all()}


def _rate(successes: int, trials: int) -> Rate:
    interval = abstats.wilson_interval(successes, trials)
    return Rate(
        rate=successes / trials if trials else None,
        low=interval.low if interval else None,
        high=interval.high if interval else None,
    )


def analyse(view: TestView, totals: dict[uuid.UUID, tuple[int, int, int]]) -> AbTestResults:
    """The results of a test from its per-variant totals (exposed, clicked, converted visitors)."""
    test = view.test
    counts = [totals.get(variant.id, (0, 0, 0)) for variant in view.variants]
    metric = 1 if test.primary_metric == "ctr" else 2
    control_index = next(index for index, variant in enumerate(view.variants) if variant.is_control)
    arms = [abstats.Arm(successes=count[metric], trials=count[0]) for count in counts]
    others = [index for index in range(len(arms)) if index != control_index]
    comparisons = dict(
        zip(others, abstats.compare_with_control(arms[control_index], [arms[index] for index in others]), strict=True)
    )
    srm = abstats.sample_ratio_mismatch([count[0] for count in counts], [variant.weight for variant in view.variants])
    results = []
    for index, (variant, (exposures, clicks, conversions)) in enumerate(zip(view.variants, counts, strict=True)):
        comparison = comparisons.get(index)
        results.append(
            VariantResult(
                variant_id=variant.id,
                name=variant.name,
                is_control=variant.is_control,
                weight=variant.weight,
                exposures=exposures,
                clicks=clicks,
                conversions=conversions,
                ctr=_rate(clicks, exposures),
                conversion_rate=_rate(conversions, exposures),
                versus_control=VersusControl(
                    z=comparison.z,
                    p_value=comparison.p_value,
                    adjusted_p_value=comparison.adjusted_p_value,
                    significant=comparison.significant,
                    chance_to_beat_control=comparison.chance_to_beat_control,
                    lift=comparison.lift,
                )
                if comparison
                else None,
            )
        )
    return AbTestResults(
        test_id=test.id,
        status=test.status,
        primary_metric=test.primary_metric,
        min_sample=test.min_sample,
        min_sample_reached=all(count[0] >= test.min_sample for count in counts),
        winner_variant_id=test.winner_variant_id,
        sample_ratio=SampleRatio(
            chi2=srm.chi2 if srm else None, p_value=srm.p_value if srm else None, flagged=bool(srm and srm.flagged)
        ),
        variants=results,
        method=METHOD,
    )


async def get_results(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, test_id: uuid.UUID
) -> AbTestResults:
    view = await get_test(session, org_id=org_id, site_id=site_id, test_id=test_id)
    return analyse(view, await _totals(session, view.test))


def winner_of(results: AbTestResults) -> uuid.UUID | None:
    """The variant to call the winner, if the evidence allows: every variant past the minimum sample, no SRM, and
    the best variant significantly better than the control on the primary metric."""
    if not results.min_sample_reached or results.sample_ratio.flagged:
        return None
    better = [
        variant
        for variant in results.variants
        if variant.versus_control is not None
        and variant.versus_control.significant
        and (variant.versus_control.z or 0) > 0
    ]
    if not better:
        return None
    metric = "ctr" if results.primary_metric == "ctr" else "conversion_rate"
    return max(better, key=lambda variant: getattr(variant, metric).rate or 0.0).variant_id


async def check_running_tests(session: AsyncSession, *, org_id: uuid.UUID) -> list[uuid.UUID]:
    """For each running test of the org: record the SRM flag, and complete it with its winner when it has
    ``autoWinner`` and a winner is called. Returns the tests completed."""
    tests = (
        await session.scalars(
            select(AbTest).where(AbTest.org_id == org_id, AbTest.status == "running").with_for_update(skip_locked=True)
        )
    ).all()
    completed = []
    for test in tests:
        results = analyse(await _view(session, test), await _totals(session, test))
        test.srm_flagged = results.sample_ratio.flagged
        test.srm_p_value = results.sample_ratio.p_value
        winner = winner_of(results) if test.auto_winner else None
        if winner is not None:
            await _complete(session, test, winner)
            completed.append(test.id)
    await session.flush()
    return completed


PRUNE_BATCH = 50_000


async def prune_finished_visitors(session: AsyncSession, *, org_id: uuid.UUID) -> int:
    """Forget the visitors of tests that no longer run (their counts are in the rollup, and nothing more is
    counted for them), a batch at a time. Returns how many rows went."""
    result = await session.execute(
        text("""
            DELETE FROM socialproof.ab_test_visitors v
            WHERE v.ctid = ANY (ARRAY(
              SELECT w.ctid FROM socialproof.ab_test_visitors w
              JOIN socialproof.ab_tests t ON t.org_id = w.org_id AND t.id = w.test_id
              WHERE w.org_id = :org AND t.status <> 'running' LIMIT :batch))"""),
        {"org": org_id, "batch": PRUNE_BATCH},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
