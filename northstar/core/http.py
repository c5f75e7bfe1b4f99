"""The API envelope: success and error shapes, one error type, pagination, camelCase models."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
import zoneinfo
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException

T = TypeVar("T")


class CamelModel(BaseModel):
    """Responses: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class WireModel(CamelModel):
    """Requests: camelCase, and unknown fields are an error rather than silently dropped.

    Used as it is only where the raw body was checked for NUL as a whole (``json_has_nul``): the hot public paths,
    where a validator call per field would cost more than the rest of the validation.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


class RequestModel(WireModel):
    """Requests: as ``WireModel``, and text containing NUL is refused field by field (a 422 naming the field)."""

    @field_validator("*", mode="before")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


# Letters and symbols that draw nothing: Hangul fillers, the blank Braille pattern.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_visible(value: str) -> bool:
    """Shows something: not only spaces (any script's), zero-width, control or format characters, or marks with
    nothing to sit on (``"\u200b\u200b"``, ``"\u3000"``)."""
    return any(unicodedata.category(char)[0] not in "ZCM" and char not in _BLANK_GLYPHS for char in value)


def require_visible(value: str) -> str:
    """A name or title must show something."""
    if not is_visible(value):
        raise ValueError("must contain a visible character, not only spaces or invisible characters")
    return value


Name = Annotated[str, AfterValidator(require_visible)]
"""Every request field that names or titles something (users, orgs, projects, teams, sites, keys, datasets, ...);
length limits are added where it is used, e.g. ``name: Name = Field(min_length=1, max_length=200)``."""


def refuse_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL (0x00); refusing it in validation makes it a 422, not a database error."""
    if contains_nul(value):
        raise ValueError("Text must not contain NUL (\\u0000) characters")
    return value


def json_has_nul(body: bytes, document: Any) -> bool:
    """Whether a parsed JSON body holds a NUL anywhere (JSON can only write it escaped, so a byte scan comes first)."""
    return b"\\u0000" in body and contains_nul(document)


def contains_nul(value: Any) -> bool:
    """True when any string in a (nested) JSON value contains a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


# Every date and time a client sends falls within these (a 422 naming the field otherwise): wide enough for any
# business record, narrow enough that the arithmetic done with a date (a month or eight weeks before it, a range
# of days from it) stays far inside what Python (years 1 to 9999) and PostgreSQL can hold.
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2999, 12, 31)
_FIRST_INSTANT = dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC)
_LAST_INSTANT = dt.datetime.combine(LAST_DAY, dt.time.max, dt.UTC)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OUTSIDE = f"must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"


def _iso_day(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` (pydantic alone would also take ``0`` as 1970-01-01, or a midnight date-time)."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _iso_instant(value: Any) -> Any:
    """Only ISO 8601 text (pydantic alone would also take a number of seconds since 1970)."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise ValueError("must be a date-time as YYYY-MM-DDTHH:MM:SS with an offset (Z or ±HH:MM)")


def _day_in_calendar(value: dt.date) -> dt.date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(_OUTSIDE)
    return value


def _instant_in_calendar(value: dt.datetime) -> dt.datetime:
    """In bounds once its offset is applied (9999-12-31T23:59-23:59 is in year 10000), then in UTC: every offset
    Python allows (up to ±23:59) is accepted, while PostgreSQL refuses those beyond ±15:59 in text."""
    instant = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if not _FIRST_INSTANT <= instant <= _LAST_INSTANT:
        raise ValueError(_OUTSIDE)
    return instant.astimezone(dt.UTC)


Day = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_day_in_calendar)]
"""A date a client sends (query or body): ``YYYY-MM-DD`` from ``FIRST_DAY`` to ``LAST_DAY``, else a 422."""

Instant = Annotated[dt.datetime, BeforeValidator(_iso_instant), AfterValidator(_instant_in_calendar)]
"""A date-time a client sends: ISO 8601 within the same days (no offset means UTC), given to the code in UTC."""


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (like Europe/Berlin)") from None
    return value


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_time_zone)]
"""An IANA time zone a client names (``Europe/Berlin``), else a 422."""


class PageMeta(CamelModel):
    page: int
    limit: int
    total: int


class Envelope(CamelModel, Generic[T]):
    data: T


class JobAccepted(CamelModel):
    """The answer to long work (202): the queue job to poll at ``/api/v1/status/{jobId}`` or follow on
    ``/events/stream``, whichever module started it."""

    job_id: uuid.UUID


class PageEnvelope(CamelModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class AppError(Exception):
    """Raise anywhere; rendered once, by ``register_error_handlers``."""

    status = 400
    code = "bad_request"
    commit = False  # keep the request's writes although the request fails (e.g. a failed-login record)

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details
        self.headers = headers


class BadRequest(AppError):
    status, code = 400, "bad_request"


class NotFound(AppError):
    status, code = 404, "not_found"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str = "Authentication required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status, code = 403, "forbidden"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unprocessable(AppError):
    status, code = 422, "validation_error"


def invalid(message: str, exc: ValidationError, *, prefix: tuple[str, ...] = ("body",)) -> Unprocessable:
    """A 422 listing each pydantic error at its request path, for input validated outside the route signature."""
    return Unprocessable(
        message,
        details=[
            {
                "field": ".".join(str(part) for part in (*prefix, *error["loc"])),
                "message": error["msg"],
                "type": error["type"],
            }
            for error in exc.errors()
        ],
    )


class TooManyRequests(AppError):
    status, code = 429, "rate_limited"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class MethodNotAllowed(AppError):
    status, code = 405, "method_not_allowed"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class PageParams:
    """``page`` (1-based) and ``limit`` (≤ 100) query parameters."""

    def __init__(self, page: int = 1, limit: int = 20) -> None:
        self.page = page
        self.limit = limit

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> PageMeta:
        return PageMeta(page=self.page, limit=self.limit, total=total)


async def page_params(page: int = Query(1, ge=1, le=1_000_000), limit: int = Query(20, ge=1, le=100)) -> PageParams:
    """An async dependency: FastAPI runs a plain class or function dependency in a worker thread, a hop that cost
    more than the rest of the parameter parsing of a list."""
    return PageParams(page, limit)


Page = Annotated[PageParams, Depends(page_params)]


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return ORJSONResponse(body, status_code=status, headers=headers)


class ORJSONResponse(JSONResponse):
    """JSON rendering with orjson: several times faster than the stdlib on list endpoints."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Not allowed for this role",
        404: "Not found (also for objects of another organization)",
        409: "Conflict",
        413: "Request body too large",
        422: "Validation error; `details` lists each field path",
        429: "Rate limited; see Retry-After",
    }.items()
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        details.append(
            {
                "field": ".".join(str(part) for part in error.get("loc", ())),
                "message": error.get("msg", "invalid"),
                "type": error.get("type", "invalid"),
            }
        )
    return details


def register_error_handlers(app: FastAPI) -> None:
    async def app_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        request.state.rejected_before_handler = True  # nothing ran: an idempotency key stays unused
        return error_response(422, "validation_error", "The request is not valid", _validation_details(exc))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "No such route"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
