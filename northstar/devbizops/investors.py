"""InvestorDashboardAgent's deterministic engine: the KPIs shared with investors, the overall DORA and velocity
series, and the roadmap in; the dashboard's facts, top risks, narrative, charts and tables out.

Every sentence it writes is a fact (an id and a sentence whose numbers are written by ``core.numbers``; the KPIs'
are the metrics' own statements) or is made of facts' sentences, so the whole text passes the number check of the
coach's reports. The month reported is the
last one that is over (the current month is still partial); trends run over the twelve months before it.

* **Engineering.** Deployments, lead time for changes, change failure rate and time to restore service of the
  month, each with the month before and its DORA band; merged changes and finished work items; how deployments and
  finished work items moved over the window.
* **Roadmap.** Items by status; the current quarter's shipped share; each open item's progress and the ARR and open
  pipeline waiting on it.
* **Risks**, most pressing first (``RISK_ORDER``): roadmap items projected to miss their quarter at the measured
  throughput (RoadmapAgent's slip rule) with revenue waiting on them, shared goals missed, a DORA key that fell a
  band or sits in the low band, MRR falling, shared goals at risk, and slips nothing waits on. Up to ``TOP_RISKS``.

Pure: ``docs/devbizops.md`` ("InvestorDashboardAgent") states every rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from northstar.core.documents import Chart, Document, Table, blocks_of
from northstar.core.numbers import count, decimal, money, percent
from northstar.devbizops import dora, roadmap
from northstar.metrics.statements import Fact, label

TOP_RISKS = 5
ROADMAP_ROWS = 10  # open items shown, by rank
RISK_ORDER = ("slip_with_demand", "goal_missed", "band", "mrr_down", "goal_at_risk", "slip")
STATUS_WORDS = {"planned": "planned", "in_progress": "in progress", "shipped": "shipped", "canceled": "canceled"}
KEYS = (  # metric, band metric, name, how a value is written
    ("deployments", "deployment_frequency_band", "Deployments", "count"),
    ("lead_time_hours", "lead_time_band", "Lead time for changes", "hours"),
    ("change_failure_rate", "change_failure_band", "Change failure rate", "percent"),
    ("time_to_restore_hours", "time_to_restore_band", "Time to restore service", "hours"),
)


@dataclass(frozen=True)
class Kpis:
    """The month's KPIs and goals the founder shares with investors, as the metrics state them, and MRR by month
    when MRR is shared."""

    facts: list[Fact]
    mrr: Chart | None


@dataclass(frozen=True)
class Engineering:
    """The overall scope's monthly series (``service.dora_report``): metric -> value per month, None where none."""

    months: list[dt.date]
    values: dict[str, list[Any]]


@dataclass(frozen=True)
class RoadmapState:
    items: list[roadmap.ItemFacts]
    pace: Fraction  # work items finished a week
    currency: str
    exponent: int


@dataclass(frozen=True)
class Risk:
    kind: str  # one of RISK_ORDER
    weight: int  # within a kind, larger first (the revenue waiting, for slips)
    fact: Fact


@dataclass(frozen=True)
class Dashboard:
    title: str
    today: dt.date  # the org's
    month: dt.date | None  # the engineering month reported (None: no month is over yet)
    facts: list[Fact]
    prose: tuple[str, ...]  # the narrative a language model may rewrite from the same facts
    risks: list[Risk]
    metrics: list[tuple[str, str]]
    charts: list[Chart]
    tables: list[Table]

    def document(self, paragraphs: tuple[str, ...], *, subtitle: str, footer: str) -> Document:
        """The dashboard as a document, with ``paragraphs`` for its narrative (the engine's or a model's)."""
        return Document(
            title=self.title,
            subtitle=subtitle,
            blocks=blocks_of(paragraphs),
            metrics=self.metrics,
            charts=self.charts,
            tables=self.tables,
            footer=footer,
        )

    def risk_block(self) -> str:
        """The risks as a paragraph with its list, always the engine's own words."""
        if not self.risks:
            return (
                "No risk stands out: no roadmap item is projected to miss its quarter, no DORA key fell a band, and "
                "no shared goal is at risk."
            )
        return "Top risks:\n" + "\n".join(f"- {risk.fact.text}" for risk in self.risks)


def month_name(day: dt.date) -> str:
    return day.strftime("%B %Y")


def _written(value: Any, how: str) -> str:
    if how == "count":
        return count(int(value))
    if how == "percent":
        return percent(float(value))
    return f"{decimal(value, 1)} hours"


def reported_month(engineering: Engineering, today: dt.date) -> int | None:
    """The position of the last month that is over and has any value (None: no such month)."""
    current = today.replace(day=1)
    for position in range(len(engineering.months) - 1, -1, -1):
        month = engineering.months[position]
        if month < current and any(values[position] is not None for values in engineering.values.values()):
            return position
    return None


def _band(value: Any) -> str | None:
    return dora.BAND_NAMES.get(int(value)) if value is not None else None


def engineering_facts(engineering: Engineering, at: int) -> list[Fact]:
    """The reported month's four keys (with the month before and their bands), velocity, and the window's trend."""
    month = engineering.months[at]
    before = at - 1 if at > 0 else None
    found = []
    for metric, band_metric, name, how in KEYS:
        value = engineering.values[metric][at]
        band = _band(engineering.values[band_metric][at])
        previous = engineering.values[metric][before] if before is not None else None
        previous_band = _band(engineering.values[band_metric][before]) if before is not None else None
        if value is None:
            text = f"{name}: no value for {month_name(month)}."
        else:
            text = f"{name} in {month_name(month)}: {_written(value, how)}"
            if previous is not None and before is not None:
                text += f" ({month_name(engineering.months[before])}: {_written(previous, how)})"
            text += f", {band} band." if band else "."
        data = {"metric": metric, "value": value, "band": band, "previous": previous, "previous_band": previous_band}
        found.append(Fact(f"eng.{metric}", text, _plain(data)))
    merged, done = engineering.values["throughput"][at], engineering.values["work_items_done"][at]
    if merged is not None or done is not None:
        text = f"In {month_name(month)} the team merged {count(int(merged or 0))} changes"
        text += f" and finished {count(int(done or 0))} work items."
        found.append(Fact("eng.velocity", text, {"merged": merged, "done": done}))
    for metric, what in (("deployments", "Deployments a month"), ("work_items_done", "Work items finished a month")):
        shown = [
            (engineering.months[position], value)
            for position, value in enumerate(engineering.values[metric][: at + 1])
            if value is not None
        ]
        if len(shown) >= 2:
            (first_month, first), (last_month, last) = shown[0], shown[-1]
            moved = "rose" if last > first else "fell" if last < first else "held"
            text = f"{what} {moved} from {count(int(first))} in {month_name(first_month)}"
            text += f" to {count(int(last))} in {month_name(last_month)}."
            found.append(Fact(f"eng.trend.{metric}", text, {"first": first, "last": last}))
    return found


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: decimals as strings."""
    return {key: str(value) if isinstance(value, Decimal) else value for key, value in data.items()}


def roadmap_facts(state: RoadmapState, today: dt.date) -> tuple[list[Fact], Table | None]:
    """The roadmap by status, the current quarter's progress, and each open item (up to ``ROADMAP_ROWS``) as a
    fact and a table row."""
    items = state.items
    if not items:
        return [], None
    by_status = {status: sum(item.status == status for item in items) for status in STATUS_WORDS}
    parts = [f"{count(number)} {STATUS_WORDS[status]}" for status, number in by_status.items() if number]
    found = [Fact("roadmap.summary", f"The roadmap holds {count(len(items))} items: {', '.join(parts)}.", by_status)]
    quarter = roadmap.quarter_of(today)
    this_quarter = [item for item in items if item.target_quarter == quarter and item.status != "canceled"]
    if this_quarter:
        shipped = sum(item.status == "shipped" for item in this_quarter)
        verb = "is" if shipped == 1 else "are"
        text = f"Of the {count(len(this_quarter))} items targeted for {quarter}, {count(shipped)} {verb} shipped."
        found.append(
            Fact("roadmap.quarter", text, {"quarter": quarter, "items": len(this_quarter), "shipped": shipped})
        )
    rows: list[tuple[str, ...]] = []
    open_items = [item for item in items if item.status in roadmap.OPEN]
    for position, item in enumerate(open_items[:ROADMAP_ROWS], start=1):
        waiting = money(item.demand, state.currency, state.exponent) if item.demand else ""
        progress = f"{count(item.done)} of {count(item.total)}" if item.total else "none linked yet"
        text = f"{item.title} ({STATUS_WORDS[item.status]}, {item.target_quarter}): "
        text += f"{progress} work items done" if item.total else "no work items linked yet"
        text += f"; {waiting} of ARR and open pipeline waits on it." if waiting else "."
        found.append(Fact(f"roadmap.item.{position}", text, {"id": str(item.id), "demand": item.demand}))
        rows.append((item.title, STATUS_WORDS[item.status], item.target_quarter, progress, waiting or "none"))
    table = Table("Roadmap", ("Item", "Status", "Target", "Work items done", "Waiting on it"), rows) if rows else None
    return found, table


def risks(engineering_found: list[Fact], kpis: Kpis, state: RoadmapState, today: dt.date) -> list[Risk]:
    """Every risk the rules find, most pressing first; each a fact of its own."""
    found: list[tuple[str, int, str, dict[str, Any]]] = []
    for proposed in roadmap.propose(state.items, today=today, pace=state.pace):
        if proposed.kind != "roadmap_slip":
            continue
        item = next(item for item in state.items if item.id == proposed.item_id)
        numbers = proposed.numbers
        text = (
            f"{item.title} may miss {item.target_quarter}: {count(numbers['remaining'])} work items remain and "
            f"{decimal(numbers['weeks_left'], 1)} weeks are left at {decimal(numbers['per_week'], 2)} finished a "
            f"week; the pace points to {proposed.change['target_quarter']}."
        )
        if item.demand:
            text += f" {money(item.demand, state.currency, state.exponent)} of ARR and open pipeline waits on it."
        kind = "slip_with_demand" if item.demand else "slip"
        found.append((kind, item.demand, text, {"roadmap_item_id": str(item.id)}))
    for fact in engineering_found:
        data = fact.data
        if "band" not in data or data["band"] is None:
            continue
        fell = data["previous_band"] is not None and _rank(data["band"]) < _rank(data["previous_band"])
        if fell or data["band"] == "low":
            moved = f"fell from the {data['previous_band']} band to the {data['band']} band" if fell else "is low"
            text = f"{_key_name(fact)} {moved}. {fact.text}"
            found.append(("band", 4 - _rank(data["band"]), text, {"metric": data["metric"]}))
    mrr = next((fact for fact in kpis.facts if fact.id == "kpi.mrr"), None)
    if mrr is not None and (mrr.data.get("change") or 0) < 0:
        found.append(("mrr_down", -int(mrr.data["change"]), f"MRR is falling. {mrr.text}", {"metric": "mrr"}))
    for fact in kpis.facts:
        status = fact.data.get("status") if fact.id.startswith("goal.") else None
        if status in ("missed", "at_risk"):
            kind = "goal_missed" if status == "missed" else "goal_at_risk"
            found.append((kind, 0, f"A shared goal {'was missed' if status == 'missed' else 'is at risk'}. "
                          f"{fact.text}", {"goal": fact.id}))  # fmt: skip
    found.sort(key=lambda risk: (RISK_ORDER.index(risk[0]), -risk[1]))
    return [
        Risk(kind, weight, Fact(f"risk.{position}", text, {"kind": kind, **data}))
        for position, (kind, weight, text, data) in enumerate(found[:TOP_RISKS], start=1)
    ]


def _rank(band: str) -> int:
    return next(code for code, name in dora.BAND_NAMES.items() if name == band)


def charts(engineering: Engineering, at: int | None, kpis: Kpis) -> list[Chart]:
    """MRR (when shared) and the engineering trends up to the reported month."""
    shown = [kpis.mrr] if kpis.mrr is not None else []
    if at is None:
        return shown
    labels = [month.strftime("%b %Y") for month in engineering.months[: at + 1]]
    for metric, title, unit, places in (
        ("deployments", "Deployments a month", "deployments", 0),
        ("lead_time_hours", "Lead time for changes (median)", "hours", 1),
        ("change_failure_rate", "Change failure rate", "%", 1),
        ("work_items_done", "Work items finished a month", "work items", 0),
    ):
        values = [None if value is None else Decimal(value) for value in engineering.values[metric][: at + 1]]
        if any(value is not None for value in values):
            shown.append(Chart(title, labels, values, unit, places))
    return shown


def chart_data(chart: Chart) -> dict[str, Any]:
    """A chart as the console's charts.js draws it (values in the chart's unit, a percentage as a fraction)."""
    shown: dict[str, str | int]
    if chart.unit == "%":
        values, shown = [None if value is None else float(value) / 100 for value in chart.values], {"unit": "percent"}
    else:
        values = [None if value is None else float(value) for value in chart.values]
        shown = {"unit": "hour"} if chart.unit == "hours" else {}
        if len(chart.unit) == 3 and chart.unit.isupper():  # a currency, in major units
            shown = {"currency": chart.unit, "exponent": 0}
    return {
        "title": chart.title,
        "x": chart.labels,
        "xLabel": "Month",
        "series": [{"label": chart.title, "values": values}],
        "format": shown,
    }


def build(*, org_name: str, kpis: Kpis, engineering: Engineering, state: RoadmapState, today: dt.date) -> Dashboard:
    at = reported_month(engineering, today)
    engineering_found = engineering_facts(engineering, at) if at is not None else []
    roadmap_found, table = roadmap_facts(state, today)
    top = risks(engineering_found, kpis, state, today)
    paragraphs = [" ".join(fact.text for fact in kpis.facts)] if kpis.facts else []
    if engineering_found:
        keys = [fact.text for fact in engineering_found if fact.id.startswith("eng.") and "trend" not in fact.id]
        trends = [fact.text for fact in engineering_found if fact.id.startswith("eng.trend.")]
        paragraphs.append(" ".join([*keys, *trends]))
    else:
        paragraphs.append("Engineering: no month of engineering data is complete yet.")
    if roadmap_found:
        paragraphs.append(" ".join(fact.text for fact in roadmap_found if not fact.id.startswith("roadmap.item.")))
    shared = [(label(fact.data["metric"]), fact.text) for fact in kpis.facts if fact.id.startswith("kpi.")]
    metrics = [*shared, *((_key_name(fact), fact.text) for fact in engineering_found if "band" in fact.data)]
    stated = [*kpis.facts, *engineering_found, *roadmap_found, *(risk.fact for risk in top)]
    title_month = month_name(engineering.months[at]) if at is not None else month_name(today)
    return Dashboard(
        title=f"{org_name}: investor dashboard, {title_month}",
        today=today,
        month=engineering.months[at] if at is not None else None,
        facts=stated,
        risks=top,
        prose=tuple(paragraphs),
        metrics=metrics,
        charts=charts(engineering, at, kpis),
        tables=[table] if table else [],
    )


def _key_name(fact: Fact) -> str:
    return next(name for metric, _, name, _ in KEYS if metric == fact.data["metric"])
