"""A fake HubSpot account: deals behind the CRM search API, deal pipelines and account details, as HubSpot serves them.

``POST /crm/v3/objects/deals/search`` applies ``filterGroups`` (filters ANDed within a group, groups ORed; the
operators EQ, NEQ, GT, GTE, LT, LTE, HAS_PROPERTY, NOT_HAS_PROPERTY on any property, dates compared as epoch
milliseconds), ``sorts``, ``limit`` (at most 200) and the ``after`` offset, and answers ``total``, ``results`` (the
requested properties, as strings, plus ``hs_object_id``, ``createdate`` and ``hs_lastmodifieddate``) and
``paging.next.after`` while more results match. A query answers at most ``result_cap`` results (HubSpot's 10,000):
an ``after`` at or past it is a 400. Requests beyond 4 a second are refused by ``FakeVendor`` with a 429; every error
has HubSpot's body, ``{"status": "error", "message", "correlationId", "category"}``.

Its OAuth app, beside the API: the consent page at ``/oauth/authorize`` ("Connect app"), ``POST /oauth/v1/token``
(form-encoded ``grant_type`` ``authorization_code`` with ``client_id``, ``client_secret``, ``redirect_uri`` and
``code``, or ``refresh_token``; access tokens last ``access_ttl_seconds``, 30 minutes), ``GET
/oauth/v1/access-tokens/{token}`` (the hub and scopes a token is for) and ``DELETE /oauth/v1/refresh-tokens/{token}``
(revocation, which ends the access tokens made from it). Its refusals have HubSpot's OAuth body, ``{"status":
"BAD_AUTH_CODE", "message", "correlationId"}`` (``BAD_REFRESH_TOKEN``, ``BAD_CLIENT_ID``, …). The API takes the
issued access tokens while they last, besides ``token`` (a private app's).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from northstar.demo.vendor_api import ConsentScreen, FakeVendor, beside

SEARCH_PATH = "/crm/v3/objects/deals/search"
DEFAULT_PROPERTIES = ("hs_object_id", "createdate", "hs_lastmodifieddate")
MAX_LIMIT = 200
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND", 429: "RATE_LIMITS"}
_MESSAGES = {
    401: "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    429: "You have reached your secondly limit.",
    503: "Service temporarily unavailable.",
}


def iso(moment: dt.datetime) -> str:
    """HubSpot's datetime property format: ``2025-03-17T15:00:00.000Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def millis(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def default_pipeline() -> dict[str, Any]:
    """HubSpot's default sales pipeline, with its stages' metadata as the v3 API sends it (strings)."""
    stages = [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
        ("contractsent", "Contract Sent", "0.9", "false"),
        ("closedwon", "Closed Won", "1.0", "true"),
        ("closedlost", "Closed Lost", "0.0", "true"),
    ]
    made = "2024-01-01T00:00:00Z"
    return {
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "id": "default",
        "createdAt": made,
        "updatedAt": made,
        "archived": False,
        "stages": [
            {
                "label": label,
                "displayOrder": order,
                "metadata": {"isClosed": closed, "probability": probability},
                "id": stage,
                "createdAt": made,
                "updatedAt": made,
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for order, (stage, label, probability, closed) in enumerate(stages)
        ],
    }


class BadSearch(Exception):
    """A search body HubSpot would refuse with a 400."""


@dataclass
class FakeHubSpot:
    """One HubSpot account; tests add and change deals between syncs."""

    token: str = field(default_factory=lambda: "pat-na1-" + str(uuid.uuid4()))
    currency: str = "USD"
    result_cap: int = 10_000
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=lambda: [default_pipeline()])
    searches: list[dict[str, Any]] = field(default_factory=list)
    fail_after_searches: int | None = None  # after this many searches, the next ``failures`` answer 503
    failures: int = 6
    malformed_searches: set[int] = field(default_factory=set)  # these searches (1-based) answer a broken page
    hub_id: int = 62515
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_secret: str = field(default_factory=lambda: str(uuid.uuid4()))
    access_ttl_seconds: int = 1800
    issued: dict[str, tuple[float, str]] = field(default_factory=dict)  # access token: (expiry, its refresh token)
    refresh_tokens: dict[str, tuple[str, ...]] = field(default_factory=dict)  # refresh token: its scopes
    token_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # refresh tokens revoked through the API
    _ids: int = 0
    vendor: FakeVendor = field(init=False)
    consent: ConsentScreen = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = FakeVendor(
            routes=[
                Route(SEARCH_PATH, self._search, methods=["POST"]),
                Route("/crm/v3/pipelines/deals", self._pipelines, methods=["GET"]),
                Route("/account-info/v3/details", self._account, methods=["GET"]),
            ],
            authorised=self._authorised,
            requests_per_second=4,
        )
        self.consent = ConsentScreen("HubSpot", self.client_id, allow="Connect app", deny="Cancel")

    @property
    def app(self) -> ASGIApp:
        """The vendor's routes behind ``FakeVendor``, its errors in HubSpot's shape, and its OAuth app beside."""
        return beside(
            BaseHTTPMiddleware(self.vendor.app, dispatch=_hubspot_errors),
            [
                self.consent.route("/oauth/authorize"),
                Route("/oauth/v1/token", self._token, methods=["POST"]),
                Route("/oauth/v1/access-tokens/{token}", self._token_info, methods=["GET"]),
                Route("/oauth/v1/refresh-tokens/{token}", self._revoke, methods=["DELETE"]),
            ],
        )

    def _authorised(self, request: Request) -> bool:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        return scheme == "Bearer" and (bearer == self.token or self._live(bearer) is not None)

    def _live(self, access_token: str) -> str | None:
        """The refresh token an unexpired access token was made from."""
        expiry, refresh = self.issued.get(access_token, (0.0, ""))
        return refresh if expiry > time.time() else None

    def expire_access_tokens(self) -> None:
        """Every access token issued so far has expired."""
        self.issued = {token: (0.0, refresh) for token, (_, refresh) in self.issued.items()}

    def uninstall(self) -> None:
        """The account's admin uninstalled the app: its refresh tokens no longer refresh, its access tokens end."""
        self.refresh_tokens.clear()
        self.expire_access_tokens()

    async def _token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_requests.append(form)
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            return oauth_error("BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token")
        if form.get("client_id") != self.client_id:
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            return oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant == "authorization_code":
            allowed = self.consent.redeem(
                form.get("code", ""), client_id=self.client_id, redirect_uri=form.get("redirect_uri")
            )
            if allowed is None:
                return oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
            refresh = str(uuid.uuid4())
            self.refresh_tokens[refresh] = allowed.scopes
        else:
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        access = f"CJ{secrets.token_urlsafe(32)}"
        self.issued[access] = (time.time() + self.access_ttl_seconds, refresh)
        return JSONResponse(
            {
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": access,
                "expires_in": self.access_ttl_seconds,
            }
        )

    async def _token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        refresh = self._live(token)
        if refresh is None or refresh not in self.refresh_tokens:
            return hubspot_error(404, "Access token not found or expired")
        return JSONResponse(
            {
                "token": token,
                "user": "ada@example.com",
                "hub_domain": "demo.hubspot.com",
                "scopes": list(self.refresh_tokens[refresh]),
                "hub_id": self.hub_id,
                "app_id": 456789,
                "expires_in": int(self.issued[token][0] - time.time()),
                "user_id": 12345,
                "token_type": "access",
            }
        )

    async def _revoke(self, request: Request) -> Response:
        token = request.path_params["token"]
        if self.refresh_tokens.pop(token, None) is None:
            return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token", status=404)
        self.revoked.append(token)
        self.issued = {access: made for access, made in self.issued.items() if made[1] != token}
        return Response(status_code=204)

    def add_deal(self, *, created: dt.datetime, modified: dt.datetime | None = None, **properties: str | None) -> str:
        """A new deal (properties as HubSpot strings); returns its id."""
        self._ids += 1
        deal_id = str(1000 + self._ids)
        moment = modified or created
        self.deals[deal_id] = {
            "id": deal_id,
            "createdAt": iso(created),
            "updatedAt": iso(moment),
            "archived": False,
            "properties": {
                "hs_object_id": deal_id,
                "createdate": iso(created),
                "hs_lastmodifieddate": iso(moment),
                **properties,
            },
        }
        return deal_id

    def update_deal(self, deal_id: str, *, modified: dt.datetime, **properties: str | None) -> None:
        deal = self.deals[deal_id]
        deal["updatedAt"] = iso(modified)
        deal["properties"].update(properties, hs_lastmodifieddate=iso(modified))

    def revoke(self) -> None:
        self.token = "revoked"

    async def _pipelines(self, request: Request) -> Response:
        return JSONResponse({"results": self.pipelines})

    async def _account(self, request: Request) -> Response:
        return JSONResponse(
            {
                "portalId": 62515,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": self.currency,
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    async def _search(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            found, limit, offset, wanted = self._query(body)
        except (orjson.JSONDecodeError, BadSearch, TypeError, ValueError) as exc:
            return hubspot_error(400, f"Invalid search request: {exc}")
        self.searches.append(body)
        if len(self.searches) == self.fail_after_searches:
            self.vendor.fail_next("server_error", path_prefix=SEARCH_PATH, count=self.failures)
        if len(self.searches) in self.malformed_searches:
            return JSONResponse({"total": len(found), "results": {"id": "not a list"}})
        page = found[offset : min(offset + limit, self.result_cap)]
        answer: dict[str, Any] = {"total": len(found), "results": [_result(deal, wanted) for deal in page]}
        if offset + limit < len(found):
            answer["paging"] = {"next": {"after": str(offset + limit), "link": f"?after={offset + limit}"}}
        return JSONResponse(answer)

    def _query(self, body: Any) -> tuple[list[dict[str, Any]], int, int, list[str]]:
        if not isinstance(body, dict):
            raise BadSearch("the body is not an object")
        limit = int(body.get("limit", 10))
        if not 0 < limit <= MAX_LIMIT:
            raise BadSearch(f"limit must be between 1 and {MAX_LIMIT}")
        offset = int(body.get("after") or 0)
        if offset >= self.result_cap:
            raise BadSearch(f"paging past {self.result_cap} results is not supported")
        groups = body.get("filterGroups") or []
        found = [
            deal
            for deal in self.deals.values()
            if not groups or any(all(_matches(deal, rule) for rule in group["filters"]) for group in groups)
        ]
        for rule in reversed(body.get("sorts") or []):
            name = rule["propertyName"] if isinstance(rule, dict) else str(rule).lstrip("-")
            descending = (rule.get("direction") == "DESCENDING") if isinstance(rule, dict) else str(rule)[:1] == "-"
            found.sort(
                key=lambda deal, name=name: (
                    _comparable(deal["properties"].get(name)) is None,
                    _comparable(deal["properties"].get(name)) or 0,
                    int(deal["id"]),
                ),
                reverse=descending,
            )
        return found, limit, offset, list(dict.fromkeys([*DEFAULT_PROPERTIES, *(body.get("properties") or [])]))


def _comparable(value: Any) -> Decimal | None:
    """A property value as HubSpot compares it: numbers as numbers, datetimes as epoch milliseconds."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        return Decimal(text)
    except InvalidOperation:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return Decimal(millis(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)))


def _matches(deal: dict[str, Any], rule: dict[str, Any]) -> bool:
    value = deal["properties"].get(rule["propertyName"])
    operator = rule["operator"]
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return (value not in (None, "")) == (operator == "HAS_PROPERTY")
    have, given = _comparable(value), _comparable(rule.get("value"))
    if operator in ("EQ", "NEQ"):
        same = have == given if have is not None and given is not None else str(value) == str(rule.get("value"))
        return same == (operator == "EQ")
    if have is None or given is None:
        return False
    compare: dict[str, Callable[[Decimal, Decimal], bool]] = {
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
    }
    if operator not in compare:
        raise BadSearch(f"unsupported operator {operator}")
    return compare[operator](have, given)


def _result(deal: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    return {**deal, "properties": {name: deal["properties"].get(name) for name in wanted}}


def oauth_error(status_name: str, message: str, *, status: int = 400) -> JSONResponse:
    """HubSpot's OAuth refusals: the reason in ``status``."""
    return JSONResponse(
        {"status": status_name, "message": message, "correlationId": str(uuid.uuid4())}, status_code=status
    )


def hubspot_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": _CATEGORIES.get(status, "INTERNAL_ERROR"),
        },
        status_code=status,
    )


async def _hubspot_errors(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """``FakeVendor``'s refusals (401, 429, 503) in the body HubSpot sends, headers (``Retry-After``) kept."""
    response = await call_next(request)
    if response.status_code not in _MESSAGES:
        return response
    replaced = hubspot_error(response.status_code, _MESSAGES[response.status_code])
    if "retry-after" in response.headers:
        replaced.headers["Retry-After"] = response.headers["retry-after"]
    return replaced
