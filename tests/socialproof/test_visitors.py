"""Cookieless visitor ids: a random salt per day shared by every process, so ids are stable within a day and
unlinkable across days; bot and spam-referrer detection."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from northstar.core.db import Database
from northstar.socialproof.visitors import SpamReferrers, VisitorIds, is_bot

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def test_salts_are_random_per_day_and_shared_by_processes(database: Database) -> None:
    first, second = VisitorIds(database, "secret"), VisitorIds(database, "other secret")
    day = dt.date(2031, 5, 17)  # a day no other test uses
    assert await first.salt(day) == await second.salt(day)  # the database decides, not the process
    assert await first.salt(day + dt.timedelta(days=1)) != await first.salt(day)
    assert len(await first.salt(day)) == 32


async def test_anonymous_ids_depend_on_site_address_and_browser(database: Database) -> None:
    visitors = VisitorIds(database, "secret")
    site, other_site = uuid.uuid4(), uuid.uuid4()
    same = await visitors.anonymous(site, "203.0.113.7", CHROME)
    assert same == await visitors.anonymous(site, "203.0.113.7", CHROME) and len(same) == 32
    assert same != await visitors.anonymous(other_site, "203.0.113.7", CHROME)  # not trackable across sites
    assert same != await visitors.anonymous(site, "203.0.113.8", CHROME)
    assert visitors.identified(site, "customer-1") == VisitorIds(database, "secret").identified(site, "customer-1")
    assert visitors.identified(site, "customer-1") != VisitorIds(database, "other").identified(site, "customer-1")
    assert visitors.device(site, "abc") != visitors.identified(site, "abc")


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (CHROME, False),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.0 Mobile/15E148 Safari/604.1",
            False,
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0 Safari/537.36",
            True,
        ),
        ("python-requests/2.32.3", True),
        ("", True),
    ],
)
def test_bots_are_recognised(agent: str, bot: bool) -> None:
    assert is_bot(agent) is bot


def test_spam_referrers_match_their_subdomains_only() -> None:
    spam = SpamReferrers.load(None)
    assert spam.is_spam("https://semalt.com/") and spam.is_spam("http://www.semalt.com/page?x=1")
    assert not spam.is_spam("https://notsemalt.com/") and not spam.is_spam("https://semalt.com.example.org/")
    assert not spam.is_spam(None) and not spam.is_spam("https://www.google.com/")
