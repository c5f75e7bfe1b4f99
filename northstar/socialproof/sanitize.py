"""What visitors and merchants send, made safe for any renderer of the feed: plain text, and links to the site only.

The shipped widget writes text with ``textContent``, but the feed is a public JSON document that other renderers
read too, some with ``innerHTML``. So every text field is stored as plain text: nh3 (the Rust ammonia sanitizer)
parses it as an HTML fragment and keeps only its text, entities are decoded again so that "Tom & Jerry" stays as
written, and that repeats until nothing changes, so an escaped tag (``&lt;script&gt;``) cannot become a tag once
decoded. A link is kept only when it is ``http(s)`` on the site's domain or a subdomain, with no credentials,
backslashes, spaces or control characters (on which browsers and parsers disagree about the host).
"""

from __future__ import annotations

import html
import re
from functools import cache
from urllib.parse import urlsplit

import nh3

from northstar.core.http import is_visible

MAX_ROUNDS = 4
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")


def on_domain(host: str | None, domain: str) -> bool:
    """The site's domain itself or one of its subdomains (``shop.example.com`` for ``example.com``)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


@cache
def _text_only() -> nh3.Cleaner:
    """A sanitizer that keeps no element at all (built once: building one costs more than cleaning a name)."""
    return nh3.Cleaner(tags=set())


def plain_text(value: str) -> str:
    """``value`` without markup; empty when nothing but markup (or ever deeper escaped markup), or nothing visible
    (spaces, zero-width characters), was in it.

    Without ``<`` no tag or comment can start and without ``&`` no character reference, so most text (names,
    cities, products) is returned as it is without parsing."""
    if "<" not in value and "&" not in value:
        return value.strip() if is_visible(value) else ""
    text = value
    for _ in range(MAX_ROUNDS):
        cleaned = html.unescape(_text_only().clean(text))
        if cleaned == text:
            return cleaned.strip() if is_visible(cleaned) else ""
        text = cleaned
    return ""


def is_plain_text(value: str) -> bool:
    """True when ``value`` reads the same as plain text: no tags, comments or character references."""
    return plain_text(value) == value.strip()


def site_link(url: str | None, domain: str) -> str | None:
    """``url`` if a page of the site (``http``/``https`` on its domain or a subdomain), else None."""
    if not url or _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or "@" in parts.netloc or not on_domain(host, domain):
        return None
    return url
