"""Bad input gets a clear GraphQL error with REST's code, never an internal error or a stack trace; the depth and
cost limits refuse an operation before it runs and say why."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from northstar.graphapi.limits import MAX_COST, MAX_DEPTH
from tests.factories import Account
from tests.graphapi.conftest import Graph, codes


async def _site(client: httpx.AsyncClient, owner: Account) -> str:
    response = await client.post(
        "/api/v1/sites",
        headers=owner.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _clear(body: dict[str, Any]) -> None:
    """Every error has a message and a code, none is internal, and nothing of Python's shows."""
    assert body["errors"], body
    for error in body["errors"]:
        assert error["message"] and error["extensions"]["code"] != "internal_error", error
        assert "Traceback" not in str(error) and 'File "' not in str(error), error


async def test_bad_input_gets_a_clear_error_with_rests_code(
    graph: Graph, client: httpx.AsyncClient, founder: Account
) -> None:
    site = await _site(client, founder)
    cases: list[tuple[str, dict[str, Any], str, str | None]] = [
        # (operation, variables, code, the field named in details)
        ("{ sites { items { id } ", {}, "bad_request", None),
        ("{ sites { items { nope } } }", {}, "bad_request", None),
        ('{ site(id: "not-a-uuid") { id } }', {}, "validation_error", None),
        ("query($id: UUID!) { site(id: $id) { id } }", {"id": "12"}, "validation_error", None),
        ("query($id: UUID!) { site(id: $id) { id } }", {}, "validation_error", None),
        ("{ sites(limit: 500) { total } }", {}, "validation_error", "limit"),
        ("{ sites(page: 0) { total } }", {}, "validation_error", "page"),
        (f'{{ site(id: "{site}") {{ notifications(first: 0) {{ id }} }} }}', {}, "validation_error", "first"),
        ('{ sites(q: "a\\u0000b") { total } }', {}, "validation_error", None),
        (
            'mutation { createSite(input: {name: "S", domain: "localhost"}) { id } }',
            {},
            "validation_error",
            "input.domain",
        ),
        (
            "mutation($input: SiteCreateInput!) { createSite(input: $input) { id } }",
            {"input": {"name": "S", "domain": "ok.example.org", "settings": {"theme": "neon"}}},
            "validation_error",
            "input.settings.theme",
        ),
        (
            "mutation($input: SiteCreateInput!) { createSite(input: $input) { id } }",
            {"input": {"name": "   ", "domain": "ok.example.org"}},
            "validation_error",
            "input.name",
        ),
        (
            "mutation($input: SiteCreateInput!) { createSite(input: $input) { id } }",
            {"input": {"name": "S", "domain": "ok.example.org", "settings": {"unknown": 1}}},
            "validation_error",
            "input.settings.unknown",
        ),
        (
            f'mutation {{ createNotification(siteId: "{site}", input: {{name: "N", type: "recent_activity"}}) '
            "{ id } }",
            {},
            "validation_error",
            "input",
        ),
        (
            f'mutation {{ createNotification(siteId: "{site}", input: {{name: "N", type: "announcement", '
            f'templateId: "{site}"}}) {{ id }} }}',
            {},
            "validation_error",
            "body.templateId",
        ),
        (
            f'mutation {{ updateTemplate(siteId: "{site}", id: "{site}", input: {{name: "T"}}) {{ id }} }}',
            {},
            "not_found",
            None,
        ),
        ('{ reports(kind: "weekly") { total } }', {}, "validation_error", None),
        (
            f'{{ site(id: "{site}") {{ analytics(start: "yesterday-ish") {{ totals {{ clicks }} }} }} }}',
            {},
            "validation_error",
            None,
        ),
        ("subscription { sites { total } }", {}, "bad_request", None),
    ]
    for query, variables, code, field in cases:
        response = await graph.post({"query": query, "variables": variables}, founder.headers)
        assert response.status_code == 200, (query, response.text)
        body = response.json()
        _clear(body)
        assert codes(body["errors"]) == [code], (query, body)
        if field is not None:
            fields = [detail["field"] for detail in body["errors"][0]["extensions"]["details"]]
            assert field in fields, (query, fields)
    listed = await graph.run(founder, "{ sites { total } }")
    assert listed["sites"]["total"] == 1  # nothing half-written


async def test_a_request_with_no_operation_to_run_is_a_400(graph: Graph, founder: Account) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for body in (b"not json", b"[]", b'{"query": ""}', b'{"query": "{ me { id } }", "variables": [1]}'):
            response = await http.post(
                graph.endpoint, content=body, headers={**founder.headers, "content-type": "application/json"}
            )
            assert response.status_code == 400, response.text
            assert codes(response.json()["errors"]) == ["bad_request"]


async def test_too_deep_and_too_costly_operations_are_refused_before_they_run(graph: Graph, founder: Account) -> None:
    nested = "id"
    for _ in range(MAX_DEPTH):
        nested = f"site {{ notifications {{ {nested} }} }}"
    deep = f"query Deep {{ sites {{ items {{ notifications {{ {nested} }} }} }} }}"
    errors = await graph.errors(founder, deep)
    assert codes(errors) == ["query_too_deep"]
    assert errors[0]["message"].startswith("Deep is ") and f"at most {MAX_DEPTH}" in errors[0]["message"]

    page = "sites(limit: 100) { items { notifications(first: 100) { id } templates(first: 100) { id } } }"
    costly = "query Costly { " + " ".join(f"a{n}: {page}" for n in range(2)) + " }"
    errors = await graph.errors(founder, costly)
    assert codes(errors) == ["query_too_complex"]
    assert errors[0]["extensions"]["cost"] > MAX_COST and f"at most {MAX_COST}" in errors[0]["message"]

    fine = "query Fine { " + page + " }"
    assert (await graph.run(founder, fine))["sites"]["items"] == []


async def test_introspection_is_on_and_not_counted_against_the_limits(graph: Graph, founder: Account) -> None:
    from graphql import get_introspection_query

    data = await graph.run(founder, get_introspection_query(descriptions=True))
    names = {kind["name"] for kind in data["__schema"]["types"]}
    assert {"Query", "Mutation", "Site", "Notification", "SiteAnalytics"} <= names
