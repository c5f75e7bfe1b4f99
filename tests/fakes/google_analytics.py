"""The Google Analytics 4 Data API, faked: ``runReport`` and ``metadata`` of one property, and Google's OAuth token
endpoint.

Reports are built from rows the test sets per day and channel (``rows``), filtered to the request's date range,
grouped by the requested dimensions, sorted by its ``orderBys`` (without them, by sessions, most first, as GA4 tends
to) and paged by ``limit``/``offset`` with ``rowCount``. GA4 may answer fewer rows than ``limit``: ``page_cap`` makes
it. A report without rows leaves ``rows`` and ``rowCount`` out, as proto3 JSON does; values are strings and dates
``YYYYMMDD``. Errors are Google's JSON, ``{"error": {"code", "message", "status"}}``: 401 ``UNAUTHENTICATED`` for an
unknown bearer token, 403 ``PERMISSION_DENIED`` for another property, 400 ``INVALID_ARGUMENT`` for unknown fields or
bad dates, 429 ``RESOURCE_EXHAUSTED`` when the quota is made to run out (``exhaust_quota``), 503 ``UNAVAILABLE``
during an outage (``break_after``).

Google's OAuth 2.0 server beside it: the consent page at ``/o/oauth2/v2/auth`` (PKCE S256 checked when a challenge
is sent), ``POST /token`` (form-encoded: the ``authorization_code`` grant with ``client_id``, ``client_secret``,
``redirect_uri``, ``code`` and ``code_verifier``, and the ``refresh_token`` grant), answering Google's token JSON
(access tokens for ``expires_in`` 3599 seconds) or its ``invalid_grant`` / ``invalid_client`` /
``unsupported_grant_type`` errors, and ``POST /revoke`` (``token``: a refresh token ends with every access token made
from it; an unknown one is 400 ``invalid_token``).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from northstar.demo.vendor_api import ConsentScreen, FakeVendor, beside

DIMENSIONS = ("date", "sessionDefaultChannelGroup")
METRIC_TYPES = {
    "sessions": "TYPE_INTEGER",
    "totalUsers": "TYPE_INTEGER",
    "newUsers": "TYPE_INTEGER",
    "keyEvents": "TYPE_FLOAT",
    "conversions": "TYPE_FLOAT",
}
MAX_LIMIT = 250_000
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"


@dataclass(frozen=True)
class Traffic:
    """One day of one channel: what GA4 would report for it."""

    sessions: int
    users: int
    new_users: int
    key_events: str

    def metric(self, name: str) -> Decimal:
        values = {"sessions": self.sessions, "totalUsers": self.users, "newUsers": self.new_users}
        return Decimal(values[name]) if name in values else Decimal(self.key_events)


def google_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, status_code=code)


def _number(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value)


@dataclass
class FakeGoogleAnalytics:
    property_id: str
    access_tokens: set[str]
    rows: dict[tuple[dt.date, str], Traffic] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    client_id: str = "1234-fake.apps.googleusercontent.com"
    client_secret: str = "GOCSPX-fake-secret"
    page_cap: int | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    bearers: list[str] = field(default_factory=list)
    token_grants: list[dict[str, str]] = field(default_factory=list)
    quota_refusals: int = 0
    _quota_exhausted_for: int = 0
    _served: int = 0
    _outage_after: int | None = None
    _outage_kind: Literal["server_error", "malformed"] = "server_error"
    _issued: itertools.count[int] = field(default_factory=itertools.count)
    made_from: dict[str, str] = field(default_factory=dict)  # access token: the refresh token it was made from
    revoked: list[str] = field(default_factory=list)
    vendor: FakeVendor = field(init=False)
    consent: ConsentScreen = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = FakeVendor(
            routes=[
                Route("/v1beta/properties/{property}:runReport", self.run_report, methods=["POST"]),
                Route("/v1beta/properties/{property}/metadata", self.metadata, methods=["GET"]),
            ],
            authorised=lambda request: True,
        )  # Google answers its own 401 body, below
        self.consent = ConsentScreen("Google", self.client_id, allow="Allow", deny="Cancel")

    @property
    def app(self) -> ASGIApp:
        """The Data API, and Google's OAuth server beside it."""
        return beside(
            self.vendor.app,
            [
                self.consent.route("/o/oauth2/v2/auth"),
                Route("/token", self.token, methods=["POST"]),
                Route("/revoke", self.revoke, methods=["POST"]),
            ],
        )

    @property
    def report_path(self) -> str:
        return f"/v1beta/properties/{self.property_id}:runReport"

    def exhaust_quota(self, requests: int) -> None:
        """The next ``requests`` reports are refused with 429 ``RESOURCE_EXHAUSTED``."""
        self._quota_exhausted_for = requests

    def break_after(self, reports: int, kind: Literal["server_error", "malformed"] = "server_error") -> None:
        """Answer ``reports`` more reports, then fail every one (503, or a body cut off) until ``repair``."""
        self._outage_after, self._outage_kind = self._served + reports, kind

    def repair(self) -> None:
        self._outage_after = None

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def _denied(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.access_tokens:
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected "
                "OAuth 2 access token, login cookie or other valid authentication credential.",
            )
        self.bearers.append(token)
        if request.path_params["property"] != self.property_id:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "User does not have sufficient permissions for this "
                "property. To learn more about Property ID, see https://developers.google.com/"
                "analytics/devguides/reporting/data/v1/property-id.",
            )
        return None

    async def metadata(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        return JSONResponse(
            {
                "name": f"properties/{self.property_id}/metadata",
                "dimensions": [
                    {"apiName": name, "uiName": name, "category": "Time" if name == "date" else "Traffic"}
                    for name in DIMENSIONS
                ],
                "metrics": [{"apiName": name, "uiName": name, "type": kind} for name, kind in METRIC_TYPES.items()],
            }
        )

    async def run_report(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        self.reports.append(body)
        if self._quota_exhausted_for > 0:
            self._quota_exhausted_for -= 1
            self.quota_refusals += 1
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Exhausted property tokens per hour for a project per "
                "property. These quota tokens will return in under an hour.",
            )
        if self._outage_after is not None and self._served >= self._outage_after:
            if self._outage_kind == "malformed":
                return PlainTextResponse(
                    '{"dimensionHeaders": [{"name": "date"}], "rows": [{"dimensionVal', media_type="application/json"
                )
            return google_error(503, "UNAVAILABLE", "The service is currently unavailable.")
        answer = self._report(body)
        if isinstance(answer, Response):
            return answer
        self._served += 1
        return JSONResponse(answer)

    def _report(self, body: Any) -> dict[str, Any] | Response:
        if not isinstance(body, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        dimensions = [item.get("name") for item in body.get("dimensions") or []]
        metrics = [item.get("name") for item in body.get("metrics") or []]
        unknown = [name for name in dimensions if name not in DIMENSIONS] + [
            name for name in metrics if name not in METRIC_TYPES
        ]
        if unknown or not metrics:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                f"Field {unknown[0] if unknown else 'metrics'} is not a "
                "valid dimension or metric. For a list of valid dimensions and metrics, see "
                "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema",
            )
        ranges = body.get("dateRanges") or []
        try:
            start, end = (dt.date.fromisoformat(ranges[0][key]) for key in ("startDate", "endDate"))
            limit, offset = int(body.get("limit") or 10000), int(body.get("offset") or 0)
        except (IndexError, KeyError, TypeError, ValueError):
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "A date range needs startDate and endDate (YYYY-MM-DD), and limit and offset are integers.",
            )
        if len(ranges) != 1 or start > end or not 0 < limit <= MAX_LIMIT or offset < 0:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid date range or paging: one range with startDate "
                "before endDate, 0 < limit <= 250000, offset >= 0.",
            )
        grouped: dict[tuple[str, ...], dict[str, Decimal]] = {}
        for (day, channel), traffic in self.rows.items():
            if start <= day <= end:
                key = tuple(day.strftime("%Y%m%d") if name == "date" else channel for name in dimensions)
                sums = grouped.setdefault(key, dict.fromkeys(metrics, Decimal(0)))
                for name in metrics:
                    sums[name] += traffic.metric(name)
        rows = [
            {
                "dimensionValues": [{"value": value} for value in key],
                "metricValues": [{"value": _number(sums[name])} for name in metrics],
            }
            for key, sums in grouped.items()
        ]
        try:
            rows = _ordered(rows, body.get("orderBys"), dimensions, metrics)
        except (AttributeError, KeyError, TypeError, ValueError):
            return google_error(400, "INVALID_ARGUMENT", "orderBys must name requested dimensions or metrics.")
        page = rows[offset : offset + min(limit, self.page_cap or limit)]
        report: dict[str, Any] = {
            "dimensionHeaders": [{"name": name} for name in dimensions],
            "metricHeaders": [{"name": name, "type": METRIC_TYPES[name]} for name in metrics],
            "metadata": {"currencyCode": "USD", "timeZone": "Europe/Berlin"},
            "kind": "analyticsData#runReport",
        }
        if page:
            report["rows"] = page
        if rows:
            report["rowCount"] = len(rows)
        return report

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_grants.append(form)
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant or ''}"},
                status_code=400,
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "The OAuth client was not found."}, status_code=401
            )
        answer: dict[str, Any] = {"expires_in": 3599, "scope": SCOPE, "token_type": "Bearer"}
        if grant == "authorization_code":
            allowed = self.consent.redeem(
                form.get("code", ""),
                client_id=self.client_id,
                redirect_uri=form.get("redirect_uri"),
                verifier=form.get("code_verifier"),
            )
            if allowed is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "Bad Request"}, status_code=400)
            refresh = f"1//0g-{secrets.token_urlsafe(24)}"
            self.refresh_tokens.add(refresh)
            answer |= {"refresh_token": refresh, "scope": " ".join(allowed.scopes)}
        else:
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                    status_code=400,
                )
        token = f"ya29.a0-issued-{next(self._issued)}"
        self.access_tokens.add(token)
        self.made_from[token] = refresh
        return JSONResponse({"access_token": token, **answer})

    async def revoke(self, request: Request) -> Response:
        """A refresh token's revocation ends the access tokens made from it; an access token's, itself."""
        token = str((await request.form()).get("token", ""))
        if token in self.refresh_tokens:
            self.refresh_tokens.discard(token)
            self.access_tokens -= {access for access, made in self.made_from.items() if made == token}
        elif token in self.access_tokens:
            self.access_tokens.discard(token)
        else:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, status_code=400
            )
        self.revoked.append(token)
        return JSONResponse({})


def _ordered(
    rows: list[dict[str, Any]], order_bys: Any, dimensions: list[str], metrics: list[str]
) -> list[dict[str, Any]]:
    """Rows sorted by the request's ``orderBys`` (dimension or metric), else by the first metric, most first."""
    if not order_bys:
        return sorted(rows, key=lambda row: -Decimal(row["metricValues"][0]["value"]))
    for order in reversed(order_bys):  # stable sorts, last key first
        rows = sorted(
            rows,
            key=functools.partial(_sort_value, order=order, dimensions=dimensions, metrics=metrics),
            reverse=bool(order.get("desc")),
        )
    return rows


def _sort_value(
    row: dict[str, Any], *, order: dict[str, Any], dimensions: list[str], metrics: list[str]
) -> str | Decimal:
    if "dimension" in order:
        return str(row["dimensionValues"][dimensions.index(order["dimension"]["dimensionName"])]["value"])
    return Decimal(row["metricValues"][metrics.index(order["metric"]["metricName"])]["value"])
