"""Requests and responses of the social proof module: sites and templates."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, computed_field

from northstar.core.http import CamelModel, RequestModel
from northstar.socialproof.templating import MAX_CSS, MAX_MESSAGE, SAMPLE, check_css, parse_message, render_message


def _valid_message(value: str) -> str:
    parse_message(value)
    return value

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


def normalize_domain(value: str) -> str:
    """The site's host name, lower-cased and in ASCII (IDNA): ``https://Shop.Example.com/`` → ``shop.example.com``.

    A URL is accepted for convenience but must not carry a path, query, port or credentials: the widget is
    allowed on a host (and its subdomains), never on part of a site. IP addresses are refused.
    """
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query or parts.fragment \
                or parts.port or parts.username:
            raise ValueError("give the site's domain (like shop.example.com), not a page address")
        text = parts.hostname or ""
    host = text.rstrip(".").lower()
    if not host or any(char in host for char in "/:@ \\"):
        raise ValueError("give the site's domain (like shop.example.com)")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid internationalised domain name") from None
    if host == "localhost":
        return host
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a valid domain name")
    if not _TLD.match(labels[-1]):
        raise ValueError("not a valid domain name (IP addresses are not accepted)")
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


class SiteSettingsUpdate(RequestModel):
    position: Literal["bottom-left", "bottom-right", "top-left", "top-right"] | None = None
    theme: Literal["light", "dark", "auto"] | None = None
    locale: Locale | None = None
    timezone: TimeZone | None = None


class SiteCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    domain: Domain
    settings: SiteSettings = SiteSettings()
    data_region: DataRegion = Field("us", description="where this site's visitor data is kept; fixed once created")


class SiteUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    domain: Domain | None = None
    settings: SiteSettingsUpdate | None = Field(None, description="only the fields given change")


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


Message = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE,
                               examples=['{{firstName|default:"Someone"}} from {{city}} bought {{product}}']),
                    AfterValidator(_valid_message)]
Css = Annotated[str, Field(max_length=MAX_CSS), AfterValidator(check_css)]


class TemplateCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    message: Message
    css_content: Css = ""


class TemplateUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=200)
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
