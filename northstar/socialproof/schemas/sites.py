"""Sites, templates and notifications: what merchants send and get back."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import re2
from publicsuffixlist import PublicSuffixList
from pydantic import AfterValidator, Field, computed_field, model_validator

from northstar.core.http import CamelModel, Name, RequestModel
from northstar.socialproof.sanitize import is_plain_text
from northstar.socialproof.schemas.profiles import Audience
from northstar.socialproof.templating import MAX_CSS, MAX_MESSAGE, SAMPLE, check_css, parse_message, render_message


def _plain(value: str) -> str:
    """Merchant text that reaches the public feed: plain text only, as any renderer of the feed may use HTML."""
    if not is_plain_text(value):
        raise ValueError("plain text only: no HTML tags, comments or character references (&amp; and the like)")
    return value


def _valid_message(value: str) -> str:
    parse_message(value)
    return _plain(value)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@cache
def _public_suffixes() -> PublicSuffixList:
    """The Public Suffix List as the package bundles it (ICANN and private sections); never fetched at run time."""
    return PublicSuffixList()


def normalize_domain(value: str) -> str:
    """The site's host name, lower-cased and in ASCII (IDNA): ``https://Shop.Example.com/`` → ``shop.example.com``.

    A URL is accepted for convenience but must not carry a path, query, port or credentials: the widget is
    allowed on a host (and its subdomains), never on part of a site. IP addresses, ``localhost`` and public
    suffixes (``co.uk``, ``github.io``: many owners' sites share them, and a site receives its domain's Origins)
    are refused; local development uses a name under ``localhost``, such as ``shop.localhost``.
    """
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if (
            parts.scheme not in ("http", "https")
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.port
            or parts.username
        ):
            raise ValueError("give the site's domain (like shop.example.com), not a page address")
        text = parts.hostname or ""
    host = text.rstrip(".").lower()
    if not host or any(char in host for char in "/:@ \\"):
        raise ValueError("give the site's domain (like shop.example.com)")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid internationalised domain name") from None
    labels = host.split(".")
    if host == "localhost":
        raise ValueError("localhost is every developer's machine; use a name under it, like shop.localhost")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a valid domain name")
    if not _TLD.match(labels[-1]):
        raise ValueError("not a valid domain name (IP addresses are not accepted)")
    if _public_suffixes().is_public(host):
        raise ValueError(f"{host} is a public suffix, shared by many owners' sites; give your own domain under it")
    return host


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("not an IANA time zone (like Europe/Berlin)")
    return value


Domain = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(normalize_domain)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_known_time_zone)]
Locale = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["en", "de-DE"])]
DataRegion = Literal["us", "eu"]


class SiteSettings(RequestModel):
    """How the widget shows on this site; every field has a sensible default."""

    position: Literal["bottom-left", "bottom-right", "top-left", "top-right"] = "bottom-left"
    theme: Literal["light", "dark", "auto"] = "auto"
    locale: Locale = "en"
    timezone: TimeZone = "UTC"
    persistent_visitor_id: bool = Field(
        False,
        description="keep a first-party id in the visitor's localStorage, "
        "so returning visitors are recognised across days (off: cookieless)",
    )


class SiteSettingsUpdate(RequestModel):
    position: Literal["bottom-left", "bottom-right", "top-left", "top-right"] | None = None
    theme: Literal["light", "dark", "auto"] | None = None
    locale: Locale | None = None
    timezone: TimeZone | None = None
    persistent_visitor_id: bool | None = None


class SiteCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    domain: Domain
    settings: SiteSettings = SiteSettings()
    data_region: DataRegion = Field("us", description="where this site's visitor data is kept; fixed once created")


class SiteUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=200)
    domain: Domain | None = None
    settings: SiteSettingsUpdate | None = Field(None, description="only the fields given change")


class SiteVerification(CamelModel):
    """Whether the site must prove control of its domain before the widget paths serve it, and how."""

    status: Literal["verified", "pending", "not_required"] = Field(
        description=(
            "pending: another organization's site on this domain, a parent or a subdomain of it came first or proved "
            "control, so this site serves nothing until it proves control too; not_required: nothing overlaps (proving "
            "control anyway keeps the site serving whatever is registered later)"
        )
    )
    token: str = Field(description="what the verification file must contain")
    file_url: str = Field(description="where the file is fetched from")
    verified_at: datetime | None
    instructions: str


class SiteOut(CamelModel):
    id: uuid.UUID
    name: str
    domain: str
    site_key: str = Field(description="public: the embed snippet carries it")
    settings: dict[str, Any]
    data_region: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    snippet: str = Field(
        "",
        description="paste before </body> on every page of the site: queues northstar(...) "
        "calls and loads the widget after the page has loaded",
    )
    script_tag: str = Field(
        "",
        description="the same as one plain script tag, for pages whose Content-Security-"
        "Policy forbids inline scripts (it loads with the page)",
    )
    verification: SiteVerification | None = None


Message = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_MESSAGE,
        examples=['{{firstName|default:"Someone"}} from {{city}} bought {{product}}'],
    ),
    AfterValidator(_valid_message),
]
Css = Annotated[str, Field(max_length=MAX_CSS), AfterValidator(check_css)]


class TemplateCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    message: Message
    css_content: Css = ""


class TemplateUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=200)
    message: Message | None = None
    css_content: Css | None = None


class TemplateOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID
    name: str
    message: str
    css_content: str
    created_at: datetime
    updated_at: datetime

    @computed_field(description="the message rendered with sample values, as a visitor would read it")
    def preview(self) -> str:
        return render_message(self.message, SAMPLE)


NotificationType = Literal["recent_activity", "live_visitors", "period_counter", "review_highlight", "announcement"]
EventType = Literal["purchase", "signup", "custom", "review"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Device = Literal["desktop", "mobile", "tablet"]
Channel = Literal["popup"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEVICES: tuple[Device, ...] = ("desktop", "mobile", "tablet")
CHANNELS: tuple[Channel, ...] = ("popup",)
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"])]


def _compiles(value: str) -> str:
    """URL rules run in RE2 (linear time: a rule can never stall the feed), so they must be RE2 syntax."""
    try:
        re2.compile(value)
    except re2.error:
        raise ValueError("not a valid regular expression (RE2 syntax: no backreferences or lookaround)") from None
    return value


class UrlRule(RequestModel):
    """Show on pages whose URL matches (or, with ``exclude``, never on them)."""

    match: Literal["exact", "contains", "regex"]
    value: Annotated[str, Field(min_length=1, max_length=500)]
    exclude: bool = False

    @model_validator(mode="after")
    def _regex_compiles(self) -> UrlRule:
        if self.match == "regex":
            _compiles(self.value)
        return self


class Schedule(RequestModel):
    """When to show, in the site's time zone."""

    weekdays: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=7)
    start: ClockTime | None = None
    end: ClockTime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays must not repeat")
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither")
        return self


class Targeting(RequestModel):
    urls: list[UrlRule] = Field(default_factory=list, max_length=50, description="empty: every page")
    devices: list[Device] = Field(default_factory=lambda: list(DEVICES), min_length=1, max_length=3)
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list, max_length=250, description="ISO 3166 codes; empty: everywhere"
    )
    visitors: Literal["all", "new", "returning"] = Field(
        "all", description="by the browser's own memory of earlier visits (the widget decides, with no lookup)"
    )
    schedule: Schedule | None = None
    audience: Audience | None = Field(
        None, description="by the visitor's profile: score range, new or returning, custom values"
    )


class DisplayRules(RequestModel):
    first_delay_seconds: int = Field(5, ge=0, le=600)
    duration_seconds: int = Field(6, ge=1, le=120)
    gap_seconds: int = Field(10, ge=0, le=3600)
    max_per_page: int = Field(5, ge=1, le=100)
    max_per_session: int = Field(20, ge=1, le=1000)
    loop_min_events: int = Field(0, ge=0, le=10_000, description="repeat events only when at least this many exist")
    skip_seen_hours: int = Field(24, ge=0, le=720, description="don't show a visitor the same event again within")
    hide_own_events: bool = True
    pause_when_hidden: bool = True


class Anonymization(RequestModel):
    """On by default: first names only (or "Someone"), city-level places, and names never to show."""

    enabled: bool = True
    name: Literal["first_name", "someone"] = "first_name"
    location: Literal["city", "country", "none"] = "city"
    excluded: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=500)


class EventSource(RequestModel):
    """Which events feed the notification, and how old they may be."""

    event_types: list[EventType] = Field(default_factory=list, max_length=4)
    custom_event: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain)] | None = None
    period: Literal["hour", "today", "week"] | None = Field(None, description="for period counters")
    scope: Literal["site", "page"] = Field(
        "site", description="live visitors and period counters: the whole site, or only the page being viewed"
    )
    window_minutes: int = Field(5, ge=1, le=60, description="live visitors: active within this many minutes")
    min_count: int = Field(
        1, ge=1, le=1_000_000, description="live visitors, period counters: shown only from this number"
    )
    min_age_seconds: int = Field(0, ge=0, le=30 * 86400)
    max_age_seconds: int = Field(7 * 86400, ge=60, le=90 * 86400)

    @model_validator(mode="after")
    def _consistent(self) -> EventSource:
        if self.min_age_seconds >= self.max_age_seconds:
            raise ValueError("minAgeSeconds must be below maxAgeSeconds")
        if ("custom" in self.event_types) != (self.custom_event is not None):
            raise ValueError("customEvent names the event exactly when eventTypes includes 'custom'")
        return self


GoalEvent = Literal["purchase", "signup", "custom", "review"]
DEFAULT_GOALS: tuple[GoalEvent, ...] = ("purchase", "signup")


class Goal(RequestModel):
    """What counts as a conversion: one of these events from a visitor within 7 days after clicking."""

    event_types: list[GoalEvent] = Field(default_factory=lambda: list(DEFAULT_GOALS), min_length=1, max_length=4)
    custom_event: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Goal:
        if ("custom" in self.event_types) != (self.custom_event is not None):
            raise ValueError("customEvent names the event exactly when eventTypes includes 'custom'")
        return self


_NEEDS_EVENTS = {"recent_activity", "period_counter", "review_highlight"}


NotificationName = Annotated[
    Name,
    Field(min_length=1, max_length=200, description="plain text; an announcement without a template shows it"),
    AfterValidator(_plain),
]


class NotificationFields(RequestModel):
    name: NotificationName
    type: NotificationType
    status: Literal["draft", "active", "paused"] = "draft"
    channels: list[Channel] = Field(
        default_factory=lambda: list(CHANNELS),
        min_length=1,
        max_length=len(CHANNELS),
        description="where it shows; more channels come with later releases",
    )
    template_id: uuid.UUID | None = Field(None, description="a template of the same site; none: the type's default")
    source: EventSource = EventSource()
    targeting: Targeting = Targeting()
    display: DisplayRules = DisplayRules()
    anonymization: Anonymization = Anonymization()
    goal: Goal = Goal()

    @model_validator(mode="after")
    def _fits_type(self) -> NotificationFields:
        if self.type in _NEEDS_EVENTS and not self.source.event_types:
            raise ValueError(f"a {self.type} notification needs source.eventTypes")
        if self.type == "period_counter" and self.source.period is None:
            raise ValueError("a period_counter notification needs source.period")
        if self.type in ("live_visitors", "announcement") and self.source.event_types:
            raise ValueError(f"a {self.type} notification takes no source.eventTypes")
        return self


class NotificationCreate(NotificationFields):
    pass


class NotificationUpdate(RequestModel):
    """Any fields of the notification; the result is validated as a whole."""

    name: NotificationName | None = None
    status: Literal["draft", "active", "paused"] | None = None
    template_id: uuid.UUID | None = None
    source: EventSource | None = None
    targeting: Targeting | None = None
    display: DisplayRules | None = None
    anonymization: Anonymization | None = None
    goal: Goal | None = None


class NotificationOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID
    name: str
    type: str
    status: str
    channels: list[str]
    template_id: uuid.UUID | None
    source: dict[str, Any]
    targeting: dict[str, Any]
    display: dict[str, Any]
    anonymization: dict[str, Any]
    goal: dict[str, Any]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
