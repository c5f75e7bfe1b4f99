"""Who a widget event came from, without cookies and without storing an IP address.

* The visitor id is a keyed hash: ``HMAC(daily salt, site | ip | user agent)``. The salt is random, one per UTC
  day, kept in ``socialproof.visitor_salts`` and deleted after two days, after which nobody (us included) can
  link an old id to an address. When a merchant turns on ``persistentVisitorId``, the widget keeps a random
  first-party id in localStorage and the hash is ``HMAC(platform key, site | that id)`` instead, stable across
  days; a visitor the merchant identified (``northstar('identify', {id})``, or ``visitorId`` on a server-side
  event) is ``HMAC(platform key, site | user | id)``, so the merchant's user ids are never stored either.
* Bots are dropped before storage: crawler user agents (the CrawlerDetect patterns), headless and automated
  browsers, and referrers on the spam list.
* A place comes only from an offline GeoIP database (MaxMind format) when one is configured; the address is
  looked up in memory and forgotten.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import maxminddb
import structlog
from crawlerdetect import CrawlerDetect
from sqlalchemy import text

from northstar.core.crypto import derive_key
from northstar.core.db import Database, set_tenant_context

log = structlog.get_logger("northstar.socialproof.visitors")
SALT_BYTES = 32


def _hash(key: bytes, *parts: str) -> str:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


class VisitorIds:
    """Visitor ids for one platform secret; today's salt is read (or created) once per process per day."""

    def __init__(self, database: Database, secret_key: str) -> None:
        self.database = database
        self.platform_key = visitors_key(secret_key)
        self.salts: dict[dt.date, bytes] = {}
        self.loading = asyncio.Lock()

    async def salt(self, day: dt.date) -> bytes:
        found = self.salts.get(day)
        if found is not None:
            return found
        async with self.loading:  # the first requests of a day wait for one lookup, not one each
            return self.salts.get(day) or await self._load_salt(day)

    async def _load_salt(self, day: dt.date) -> bytes:
        async with self.database.sessionmaker() as session, session.begin():
            await set_tenant_context(session)
            await session.execute(
                text("INSERT INTO socialproof.visitor_salts (day, salt) VALUES (:day, :salt) ON CONFLICT DO NOTHING"),
                {"day": day, "salt": secrets.token_bytes(SALT_BYTES)},
            )
            salt = bytes(
                await session.scalar(text("SELECT salt FROM socialproof.visitor_salts WHERE day = :day"), {"day": day})
            )
        self.salts = {day: salt}  # yesterday's salt is never needed again in this process
        return salt

    async def anonymous(self, site_id: uuid.UUID, ip: str, user_agent: str) -> str:
        salt = await self.salt(dt.datetime.now(dt.UTC).date())
        return _hash(salt, str(site_id), ip, user_agent)

    def device(self, site_id: uuid.UUID, local_id: str) -> str:
        return device_visitor_id(self.platform_key, site_id, local_id)

    def identified(self, site_id: uuid.UUID, user_id: str) -> str:
        return identified_visitor_id(self.platform_key, site_id, user_id)


def visitors_key(secret_key: str) -> bytes:
    """The platform key of persistent and identified visitor ids."""
    return derive_key(secret_key, "socialproof/visitors")


def device_visitor_id(platform_key: bytes, site_id: uuid.UUID, local_id: str) -> str:
    """The stored id of a visitor with a first-party id (``persistentVisitorId`` on)."""
    return _hash(platform_key, str(site_id), "device", local_id)


def identified_visitor_id(platform_key: bytes, site_id: uuid.UUID, user_id: str) -> str:
    """The stored id of a visitor the merchant identified as ``user_id`` (their customer id or e-mail)."""
    return _hash(platform_key, str(site_id), "user", user_id)


def visitor_tag(site_key: str, user_id: str) -> int:
    """16 bits of FNV-1a over ``site key | user id``: lets the widget hide an identified visitor's own events.

    Deliberately tiny: about one user id in 65,536 shares a tag, so a tag says nothing about who bought what,
    while the chance of hiding someone else's event from a visitor is the same 1 in 65,536. The widget computes
    the same function (``widget.js``).
    """
    value = 0x811C9DC5
    for byte in f"{site_key}|{user_id}".encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return (value ^ (value >> 16)) & 0xFFFF


_HEADLESS_MARKERS = (
    "headlesschrome",
    "phantomjs",
    "electron/",
    "puppeteer",
    "playwright",
    "selenium",
    "lighthouse",
    "pagespeed",
    "prerender",
    "webdriver",
)


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()


@lru_cache(maxsize=20_000)
def is_bot(user_agent: str) -> bool:
    """Crawlers, headless browsers and HTTP libraries (cached: a site's visitors share few user agents)."""
    if not user_agent or len(user_agent) < 10:
        return True
    lowered = user_agent.lower()
    if any(marker in lowered for marker in _HEADLESS_MARKERS):
        return True
    return bool(_crawler_detect().isCrawler(user_agent))


_TABLET = re.compile(r"iPad|Tablet", re.I)
_ANDROID = re.compile(r"Android", re.I)
_MOBILE_WORD = re.compile(r"Mobile", re.I)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android", re.I)


@lru_cache(maxsize=20_000)
def device_class(user_agent: str) -> str:
    """desktop, mobile or tablet, by the same rules as the widget's ``device()`` (so targeting and profiles agree)."""
    if _TABLET.search(user_agent) or (_ANDROID.search(user_agent) and not _MOBILE_WORD.search(user_agent)):
        return "tablet"
    return "mobile" if _MOBILE.search(user_agent) else "desktop"


# Long-running referrer spam campaigns; a full list (Matomo's spammers.txt, one host a line) can be configured.
BUILTIN_SPAM_REFERRERS = frozenset(
    {
        "semalt.com",
        "buttons-for-website.com",
        "buttons-for-your-website.com",
        "darodar.com",
        "best-seo-offer.com",
        "ilovevitaly.com",
        "priceg.com",
        "blackhatworth.com",
        "hulfingtonpost.com",
        "econom.co",
        "social-buttons.com",
        "free-social-buttons.com",
        "trafficmonetize.org",
        "o-o-6-o-o.com",
        "7makemoneyonline.com",
        "savetubevideo.com",
        "get-free-traffic-now.com",
        "floating-share-buttons.com",
        "free-share-buttons.com",
        "event-tracking.com",
    }
)


class SpamReferrers:
    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts = frozenset(host.strip().lower() for host in hosts if host.strip())

    @classmethod
    def load(cls, path: Path | None) -> SpamReferrers:
        extra = path.read_text().splitlines() if path else []
        return cls([*BUILTIN_SPAM_REFERRERS, *(line for line in extra if not line.startswith("#"))])

    def is_spam(self, referrer: str | None) -> bool:
        """True when the referrer's host, or a domain it belongs to, is listed."""
        if not referrer:
            return False
        host = (urlsplit(referrer).hostname or "").lower()
        labels = host.split(".")
        return any(".".join(labels[index:]) in self.hosts for index in range(len(labels) - 1))


@dataclass(frozen=True)
class Place:
    country: str | None
    city: str | None


class GeoLocator:
    """City-level places from a MaxMind-format database (GeoLite2-City, DB-IP City Lite, …), read in memory."""

    def __init__(self, path: Path | None) -> None:
        self.reader = maxminddb.open_database(str(path), maxminddb.MODE_MMAP) if path else None

    def locate(self, ip: str) -> Place | None:
        if self.reader is None or not ip:
            return None
        try:
            found: Any = self.reader.get(ipaddress.ip_address(ip))
        except ValueError:
            return None
        if not isinstance(found, dict):
            return None
        country = (found.get("country") or {}).get("iso_code")
        city = ((found.get("city") or {}).get("names") or {}).get("en")
        return Place(
            country=country if isinstance(country, str) else None, city=city if isinstance(city, str) else None
        )

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
