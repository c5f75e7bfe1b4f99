"""Dashboard routes (seed 000 ``/api/dashboard``) and the metrics settings they depend on.

Founders, admins, members and analysts see every metric; investors see only the metrics the founder shared
(``investorMetrics``), and nothing at customer level.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Day, Envelope, JobAccepted, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Principal, Role
from northstar.datasets import service as datasets_service
from northstar.metrics import queries, service
from northstar.metrics.auth import (
    DashboardRead,
    GoalsCreate,
    GoalsDelete,
    GoalsUpdate,
    KpiExportCreate,
    MetricDetailsRead,
    SettingsRead,
    SettingsUpdate,
)
from northstar.metrics.models import Goal
from northstar.metrics.schemas import (
    AnomalyOut,
    CardOut,
    CohortOut,
    DashboardOut,
    ExplainedMovement,
    FxRateOut,
    FxRatesIn,
    GoalCreate,
    GoalProgress,
    GoalUpdate,
    MetricExport,
    MetricName,
    Money,
    Point,
    PolicyOut,
    PolicyUpdate,
    SeriesOut,
    SpendEntries,
    SpendOut,
    WaterfallMonth,
)

router = APIRouter(tags=["dashboard"], responses=ERROR_RESPONSES)

DateQuery = Annotated[Day | None, Query(description="YYYY-MM-DD")]
GOAL = "/dashboard/goals/{goal_id}"


async def _visible(session: DbSession, principal: Principal) -> set[str] | None:
    return await queries.visible_metrics(session, org_id=principal.org_id, investor=principal.role == Role.INVESTOR)


async def _reporting(session: DbSession, principal: Principal) -> tuple[dt.date, str]:
    """Today in the organization's time zone, and the currency its money is shown in."""
    policy = await service.policy_of(session, org_id=principal.org_id)
    return service.today_in(policy), policy.reporting_currency


async def _progress(session: DbSession, principal: Principal, goal: Goal) -> GoalProgress:
    today, currency = await _reporting(session, principal)
    return GoalProgress.model_validate(await queries.goal_status(session, goal=goal, today=today, currency=currency))


@router.get("/dashboard", response_model=Envelope[DashboardOut], name="queries.cards")
async def cards(principal: DashboardRead, session: DbSession) -> Envelope[DashboardOut]:
    """KPI cards: this month's value, last month's, the change, 12 months of sparkline and goal progress."""
    found = await service.headline(session, org_id=principal.org_id, investor=principal.role == Role.INVESTOR)
    return Envelope(
        data=DashboardOut(
            currency=found.currency,
            as_of=found.today,
            problem=found.problem,
            cards=[CardOut.model_validate(card) for card in found.cards],
        )
    )


@router.get("/dashboard/series", response_model=Envelope[SeriesOut], name="queries.series")
async def series(
    principal: DashboardRead,
    session: DbSession,
    metric: Annotated[MetricName, Query()],
    grain: Annotated[
        Literal["day", "week", "month"] | None,
        Query(description="default: day for daily metrics, month for monthly ones"),
    ] = None,
    start: DateQuery = None,
    end: DateQuery = None,
) -> Envelope[SeriesOut]:
    """Any metric over a range: daily metrics (MRR) by day, week or month; monthly metrics by month."""
    today, currency = await _reporting(session, principal)
    first, last = queries.parse_range(start, end, today=today, default_days=365)
    found, points = await queries.series(
        session,
        org_id=principal.org_id,
        metric=metric,
        grain=grain,
        start=first,
        end=last,
        visible=await _visible(session, principal),
    )
    return Envelope(
        data=SeriesOut(
            metric=metric,
            grain=found,
            points=[
                Point.model_validate({"day": day, "value": queries.metric_value(metric, value, currency)})
                for day, value in points
            ],
        )
    )


@router.get("/dashboard/waterfall", response_model=Envelope[list[WaterfallMonth]], name="queries.waterfall")
async def waterfall(
    principal: MetricDetailsRead, session: DbSession, start: DateQuery = None, end: DateQuery = None
) -> Envelope[list[WaterfallMonth]]:
    """MRR at the start of each month, its movements, and MRR at the end."""
    today, currency = await _reporting(session, principal)
    first, last = queries.parse_range(start, end, today=today, default_days=365)
    months = await queries.waterfall(
        session, org_id=principal.org_id, start=first, end=last, today=today, currency=currency
    )
    return Envelope(data=[WaterfallMonth.model_validate(month) for month in months])


@router.get("/dashboard/cohorts", response_model=Envelope[list[CohortOut]], name="queries.cohorts")
async def cohorts(principal: MetricDetailsRead, session: DbSession) -> Envelope[list[CohortOut]]:
    """Customers by the month they started: how many stay and what they pay (NRR, GRR) month after month."""
    _, currency = await _reporting(session, principal)
    return Envelope(
        data=[
            CohortOut(
                cohort=row.cohort,
                k=row.k,
                customers=row.customers,
                mrr=Money.model_validate(queries.money(row.mrr, currency)),
                nrr=row.nrr,
                grr=row.grr,
            )
            for row in await queries.cohort_rows(session, org_id=principal.org_id)
        ]
    )


@router.get("/dashboard/anomalies", response_model=Envelope[list[AnomalyOut]], name="queries.anomalies")
async def anomalies(
    principal: DashboardRead,
    session: DbSession,
    metric: Annotated[MetricName, Query()] = "mrr",
    start: DateQuery = None,
    end: DateQuery = None,
) -> Envelope[list[AnomalyOut]]:
    """Days far from the same weekday's usual value (median/MAD over eight weeks; for MRR, its daily change), up to
    today (later days have no values yet)."""
    today, currency = await _reporting(session, principal)
    first, last = queries.parse_range(start, end, today=today, default_days=90)
    last = min(last, today)
    flagged = await queries.anomalies(
        session,
        org_id=principal.org_id,
        metric=metric,
        start=first,
        end=last,
        visible=await _visible(session, principal),
    )
    return Envelope(
        data=[
            AnomalyOut.model_validate(
                {
                    **item,
                    **{
                        name: queries.metric_value(metric, item[name], currency)
                        for name in ("value", "baseline", "mad")
                    },
                }
            )
            for item in flagged
        ]
    )


@router.get("/metrics/explain", response_model=Envelope[list[ExplainedMovement]], name="metrics.explain")
async def explain(
    principal: MetricDetailsRead,
    session: DbSession,
    start: DateQuery = None,
    end: DateQuery = None,
    kind: Literal["new", "expansion", "reactivation", "contraction", "churn", "fx"] | None = None,
) -> Envelope[list[ExplainedMovement]]:
    """The movements behind MRR between two days (default today), with customers and invoice lines."""
    today, currency = await _reporting(session, principal)
    first, last = queries.parse_range(start, end or start, today=today, default_days=0)
    found = await queries.explain(session, org_id=principal.org_id, start=first, end=last, kind=kind, currency=currency)
    return Envelope(data=[ExplainedMovement.model_validate(item) for item in found])


@router.get("/dashboard/goals", response_model=Envelope[list[GoalProgress]], name="goals.list")
async def list_goals(principal: DashboardRead, session: DbSession) -> Envelope[list[GoalProgress]]:
    visible = await _visible(session, principal)
    today, currency = await _reporting(session, principal)
    goals = await queries.goal_statuses(session, org_id=principal.org_id, today=today, currency=currency)
    return Envelope(
        data=[GoalProgress.model_validate(goal) for goal in goals if visible is None or goal["metric"] in visible]
    )


@router.post(
    "/dashboard/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[GoalProgress],
    name="goals.create",
    dependencies=[Idempotent],
)
async def create_goal(
    body: GoalCreate, request: Request, principal: GoalsCreate, session: DbSession
) -> Envelope[GoalProgress]:
    goal = await service.create_goal(session, org_id=principal.org_id, user_id=principal.user_id, **body.model_dump())
    audit_target(request, "goal", goal.id, metric=goal.metric)
    return Envelope(data=await _progress(session, principal, goal))


@router.get(GOAL, response_model=Envelope[GoalProgress], name="goals.get")
async def get_goal(goal_id: uuid.UUID, principal: DashboardRead, session: DbSession) -> Envelope[GoalProgress]:
    goal = await service.get_goal(session, org_id=principal.org_id, goal_id=goal_id)
    queries.check_visible(goal.metric, await _visible(session, principal))
    return Envelope(data=await _progress(session, principal, goal))


@router.patch(GOAL, response_model=Envelope[GoalProgress], name="goals.update")
async def update_goal(
    goal_id: uuid.UUID, body: GoalUpdate, request: Request, principal: GoalsUpdate, session: DbSession
) -> Envelope[GoalProgress]:
    goal = await service.update_goal(
        session, principal=principal, goal_id=goal_id, target=body.target, target_date=body.target_date
    )
    audit_target(request, "goal", goal.id)
    return Envelope(data=await _progress(session, principal, goal))


@router.delete(GOAL, status_code=status.HTTP_204_NO_CONTENT, name="goals.delete")
async def delete_goal(goal_id: uuid.UUID, request: Request, principal: GoalsDelete, session: DbSession) -> None:
    await service.delete_goal(session, principal=principal, goal_id=goal_id)
    audit_target(request, "goal", goal_id)


@router.post(
    "/dashboard/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[JobAccepted],
    name="queries.export",
    dependencies=[Idempotent],
)
async def export_metric(
    body: MetricExport, request: Request, principal: KpiExportCreate, session: DbSession
) -> Envelope[JobAccepted]:
    """A metric's whole series to CSV, JSON or Parquet: the data service's export job, answered and followed as
    ``POST /export`` is (``{"data": {"jobId"}}``, then ``/status/{jobId}``)."""
    job = await datasets_service.export_source_rows(
        session,
        principal=principal,
        source="kpis",
        file_format=body.format,
        name=body.metric,
        where_equal={"metric": body.metric},
    )
    audit_target(request, "job", job.id, metric=body.metric)
    return Envelope(data=JobAccepted(job_id=job.id))


@router.get("/metrics/settings", response_model=Envelope[PolicyOut], name="metrics.settings.get")
async def get_policy(principal: SettingsRead, session: DbSession) -> Envelope[PolicyOut]:
    return Envelope(data=PolicyOut.model_validate(await service.stored_policy(session, org_id=principal.org_id)))


@router.patch("/metrics/settings", response_model=Envelope[PolicyOut], name="metrics.settings.update")
async def update_policy(
    body: PolicyUpdate, request: Request, principal: SettingsUpdate, session: DbSession
) -> Envelope[PolicyOut]:
    """How metrics count; a change of currency, time zone or discounts recomputes everything (queued)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    policy = await service.update_policy(session, org_id=principal.org_id, changes=changes)
    audit_target(
        request, "metrics_settings", principal.org_id, **body.model_dump(mode="json", exclude_none=True, by_alias=True)
    )
    return Envelope(data=PolicyOut.model_validate(policy))


@router.get("/metrics/fx-rates", response_model=PageEnvelope[FxRateOut], name="metrics.rates.list")
async def list_rates(
    principal: SettingsRead,
    session: DbSession,
    page: Page,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
) -> PageEnvelope[FxRateOut]:
    rates, total = await service.list_rates(
        session, org_id=principal.org_id, currency=currency, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[FxRateOut.model_validate(rate) for rate in rates], meta=page.meta(total))


@router.put("/metrics/fx-rates", response_model=Envelope[int], name="metrics.rates.set")
async def set_rates(body: FxRatesIn, request: Request, principal: SettingsUpdate, session: DbSession) -> Envelope[int]:
    """Daily rates (units per US dollar), added or replaced; metrics are recomputed (queued)."""
    stored = await service.set_rates(
        session, org_id=principal.org_id, rates=[(rate.currency, rate.day, rate.per_usd) for rate in body.rates]
    )
    await service.request_recompute(session, org_id=principal.org_id)
    audit_target(request, "fx_rates", principal.org_id, rates=stored)
    return Envelope(data=stored)


async def _spend(session: DbSession, principal: Principal) -> list[SpendOut]:
    _, currency = await _reporting(session, principal)
    return [
        SpendOut(
            month=entry.month, channel=entry.channel, amount=Money.model_validate(queries.money(entry.amount, currency))
        )
        for entry in await service.list_spend(session, org_id=principal.org_id)
    ]


@router.get("/metrics/spend", response_model=Envelope[list[SpendOut]], name="metrics.spend.list")
async def list_spend(principal: SettingsRead, session: DbSession) -> Envelope[list[SpendOut]]:
    """Spend in the reporting currency."""
    return Envelope(data=await _spend(session, principal))


@router.put("/metrics/spend", response_model=Envelope[list[SpendOut]], name="metrics.spend.set")
async def set_spend(
    body: SpendEntries, request: Request, principal: SettingsUpdate, session: DbSession
) -> Envelope[list[SpendOut]]:
    """Acquisition spend per month and channel, for CAC; metrics are recomputed (queued)."""
    for entry in body.entries:
        await service.set_spend(
            session, org_id=principal.org_id, month=entry.month, channel=entry.channel, amount=entry.amount
        )
    await service.request_recompute(session, org_id=principal.org_id)
    audit_target(request, "spend", principal.org_id, entries=len(body.entries))
    return Envelope(data=await _spend(session, principal))
