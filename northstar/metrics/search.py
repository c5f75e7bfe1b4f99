"""What of the metrics one search finds: goals, titled as the console shows them ("MRR goal: 12,000.00 USD by
2027-03-31"), read under ``dashboards`` (core/search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.metrics import engine, queries
from northstar.metrics.console import label, show
from northstar.metrics.models import Goal, MetricsPolicy


def _goal(row: Any, session: Session) -> Document:
    """A money target is kept in minor units of the org's reporting currency, which the goal does not hold: the
    org's policy says which (read once per session, from its identity map after that)."""
    policy = session.get(MetricsPolicy, row.org_id)
    currency = policy.reporting_currency if policy else engine.Policy().reporting_currency
    target = show(row.metric, queries.metric_value(row.metric, row.target, currency))
    return Document(
        doc_id=str(row.id),
        title=f"{label(row.metric)} goal: {target} by {row.target_date.isoformat()}",
        body=f"{label(row.metric)} from {row.start_date.isoformat()} to {row.target_date.isoformat()}",
        url=f"/app/goals/{row.id}",
        facets={"metric": row.metric},
    )


SOURCES = (SearchSource("goal", "Goals", Goal, "dashboards", _goal),)
