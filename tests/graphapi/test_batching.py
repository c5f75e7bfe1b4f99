"""DataLoaders: a page of sites with their notifications and templates costs the same few SQL statements whether it
holds 5 sites or 50, counted on the serving app's engine."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.factories import Account
from tests.graphapi.conftest import Graph

SITES = 50
PER_SITE = 2
LIST = (
    "query($limit: Int!) { sites(limit: $limit) { total items { id name "
    "notifications { id name status site { id } } templates { id } } } }"
)


@contextmanager
def statements(graph: Graph) -> Iterator[list[str]]:
    """The SQL statements the served app sends while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = graph.app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _fill(graph: Graph, founder: Account) -> list[str]:
    """50 sites with 2 notifications each, made by two GraphQL requests of aliased mutations."""
    sites = " ".join(
        f's{n}: createSite(input: {{name: "Shop {n}", domain: "s{n}-{secrets.token_hex(3)}.example.com"}}) {{ id }}'
        for n in range(SITES)
    )
    created = await graph.run(founder, f"mutation {{ {sites} }}")
    ids = [created[f"s{n}"]["id"] for n in range(SITES)]
    notifications = " ".join(
        f'n{n}_{k}: createNotification(siteId: "{site}", input: {{name: "N{k}", type: "announcement", '
        f"status: ACTIVE}}) {{ id }}"
        for n, site in enumerate(ids)
        for k in range(PER_SITE)
    )
    await graph.run(founder, f"mutation {{ {notifications} }}")
    return ids


async def test_fifty_sites_with_their_notifications_cost_as_few_statements_as_five(
    graph: Graph, founder: Account
) -> None:
    await _fill(graph, founder)
    counts = {}
    for limit in (5, SITES):
        with statements(graph) as seen:
            data = await graph.run(founder, LIST, limit=limit)
        items = data["sites"]["items"]
        assert len(items) == limit and all(len(site["notifications"]) == PER_SITE for site in items)
        assert all(n["site"]["id"] == site["id"] for site in items for n in site["notifications"])
        counts[limit] = len(seen)
    # the credential and tenant binding, the page of sites, all their notifications, all their templates, the
    # notifications' sites: the same for 5 sites as for 50
    assert counts[5] == counts[SITES] <= 6, counts
