"""Dates and date-times at the edges of the calendar, on every route that takes one: a 422 naming the field outside
1900-01-01..2999-12-31, an answer inside it, never a 500 (year 1 minus a month, or year 9999 plus an offset, is past
what Python can hold; an offset beyond ±15:59 is past what PostgreSQL reads)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account

DAY_ROUTES = [  # (method, path, where the date goes, the field the 422 names)
    ("GET", "/api/v1/dashboard/waterfall", "start", "query.start"),
    ("GET", "/api/v1/dashboard/waterfall", "end", "query.end"),
    ("GET", "/api/v1/dashboard/anomalies", "start", "query.start"),
    ("GET", "/api/v1/dashboard/anomalies", "end", "query.end"),
    ("GET", "/api/v1/dashboard/series", "start", "query.start"),
    ("GET", "/api/v1/dashboard/series", "end", "query.end"),
    ("GET", "/api/v1/metrics/explain", "start", "query.start"),
    ("GET", "/api/v1/metrics/explain", "end", "query.end"),
    ("POST", "/api/v1/dashboard/goals", "targetDate", "body.targetDate"),
    ("POST", "/api/v1/dashboard/goals", "startDate", "body.startDate"),
    ("PUT", "/api/v1/metrics/fx-rates", "day", "body.rates.0.day"),
    ("PUT", "/api/v1/metrics/spend", "month", "body.entries.0.month"),
]
INSTANT_ROUTES = [
    ("GET", "/api/v1/jobs", "from", "query.from"),
    ("GET", "/api/v1/jobs", "to", "query.to"),
    ("GET", "/api/v1/audit", "from", "query.from"),
    ("GET", "/api/v1/audit", "to", "query.to"),
]


def _request(method: str, path: str, name: str, value: str) -> dict[str, Any]:
    """The request with ``value`` as its date ``name``, everything else valid."""
    if path == "/api/v1/dashboard/goals":
        return {"json": {"metric": "mrr", "target": 100000, "targetDate": "2030-01-01", name: value}}
    if path == "/api/v1/metrics/fx-rates":
        return {"json": {"rates": [{"currency": "EUR", "day": value, "perUsd": "0.9"}]}}
    if path == "/api/v1/metrics/spend":
        return {"json": {"entries": [{"month": value, "amount": 1000}]}}
    if path == "/api/v1/dashboard/series":
        return {"params": {"metric": "mrr", name: value}}
    return {"params": {name: value}}


def _cases(routes: list[tuple[str, str, str, str]], values: list[str]) -> list[Any]:
    return [
        pytest.param(method, path, name, field, value, id=f"{method} {path} {name}={value}")
        for method, path, name, field in routes
        for value in values
    ]


@pytest.mark.parametrize(
    ("method", "path", "name", "field", "value"),
    [
        *_cases(DAY_ROUTES, ["0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01", "0", "2026-01-01T00:00"]),
        *_cases(
            INSTANT_ROUTES,
            [
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59-23:59",
                "0001-01-01",
                "9999-12-31T23:59:59Z",
                "1900-01-01T00:00:00+00:01",
                "1700000000",
            ],
        ),
    ],
)
async def test_a_date_outside_the_calendar_is_a_422_naming_it(
    client: httpx.AsyncClient, founder: Account, method: str, path: str, name: str, field: str, value: str
) -> None:
    response = await client.request(method, path, headers=founder.headers, **_request(method, path, name, value))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == [field], error


@pytest.mark.parametrize(
    ("method", "path", "name", "field", "value"),
    [
        *_cases(
            [route for route in DAY_ROUTES if route[2] in ("start", "targetDate", "day", "month")],
            ["1900-01-01", "2999-12-31"],
        ),
        *_cases(
            INSTANT_ROUTES,
            [
                "1900-01-01T00:00:00Z",
                "2999-12-31T23:59:59.999999Z",
                "2999-12-31T23:59:59+23:59",
                "2026-01-01T00:00:00-23:59",
                "2026-01-01",
            ],
        ),
    ],
)
async def test_the_calendar_edges_and_any_offset_are_answered(
    client: httpx.AsyncClient, founder: Account, method: str, path: str, name: str, field: str, value: str
) -> None:
    response = await client.request(method, path, headers=founder.headers, **_request(method, path, name, value))
    assert response.status_code < 500, response.text
    if response.status_code >= 400:  # refused for another reason (a start after the end, no values yet), not the day
        assert "between" not in response.text and response.status_code in (404, 422), response.text


async def test_the_widest_ranges_are_answered(client: httpx.AsyncClient, founder: Account) -> None:
    everything = {"start": "1900-01-01", "end": "2999-12-31"}
    for path in ("/api/v1/dashboard/waterfall", "/api/v1/dashboard/anomalies", "/api/v1/metrics/explain"):
        response = await client.get(path, headers=founder.headers, params=everything)
        assert response.status_code == 200, (path, response.text)
    months = (await client.get("/api/v1/dashboard/waterfall", headers=founder.headers, params=everything)).json()
    assert months["data"][0]["month"] == "1900-01-01"  # and none after this month: later months have no values
    for path in ("/api/v1/jobs", "/api/v1/audit"):
        response = await client.get(
            path,
            headers=founder.headers,
            params={"from": "1900-01-01T00:00:00+23:59", "to": "2999-12-31T23:59:59-23:59"},
        )
        assert response.status_code == 422, (path, response.text)  # both outside once their offsets apply
        response = await client.get(
            path,
            headers=founder.headers,
            params={"from": "1900-01-01T00:00:00-23:59", "to": "2999-12-31T23:59:59+23:59"},
        )
        assert response.status_code == 200, (path, response.text)
