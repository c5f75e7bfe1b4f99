"""How an alert leaves the platform: the words of an e-mail (text and HTML) and of a Slack message (Block Kit),
and the Slack senders, one per kind of shared channel, registered in ``SENDERS``.

Slack is reached through the SSRF-guarded client (``core/outbound.py``): an incoming webhook is a URL the admin
gives, so it is checked like any user-supplied address; a bot token posts with ``chat.postMessage`` to the Web API
(``NORTHSTAR_ALERTS__SLACK_API_URL``). Any refusal, transport error or Slack ``ok: false`` is a ``DeliveryError``
for the delivery to retry and record.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from northstar.core.outbound import BlockedDestination, OutboundPolicy, outbound_client

HEADER_LIMIT = 150  # Block Kit: a header's plain text
SECTION_LIMIT = 3000  # a section's text
ERROR_LIMIT = 500  # what of an answer is kept as the delivery's error


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message says what it answered."""


@dataclass(frozen=True)
class Alert:
    """What one alert says, whatever the channel."""

    title: str
    body: str
    url: str | None
    context: str  # where it comes from: the rule and the organization


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_text(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup: escaped, a name cannot become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert) -> dict[str, Any]:
    """``text`` (the notification and fallback) and Block Kit ``blocks``: a header, the body, where it comes from,
    and a button to open it."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.title, HEADER_LIMIT), "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_slack_text(alert.body), SECTION_LIMIT)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(_slack_text(alert.context), 300)}]},
    ]
    if alert.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": alert.url}],
            }
        )
    return {"text": _cut(alert.title, SECTION_LIMIT), "blocks": blocks}


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str
    unsubscribe_url: str


def email_of(
    alerts: Sequence[Alert], *, subject: str, intro: str, unsubscribe_url: str, unsubscribe_page: str, footer: str
) -> Email:
    """One message for one alert or a digest of several: plain text and the same in HTML. Its own unsubscribe link
    opens a page that asks to confirm (a mail scanner opening it changes nothing); ``unsubscribe_url`` is the
    one-click address of its ``List-Unsubscribe`` header."""
    parts = [intro, ""] if intro else []
    for alert in alerts:
        parts += [alert.title, alert.body, *([alert.url] if alert.url else []), alert.context, ""]
    parts += ["--", footer, f"Unsubscribe: {unsubscribe_page}"]
    items = "".join(
        f'<div style="margin:0 0 20px">'
        f'<h2 style="font-size:16px;margin:0 0 6px">{html.escape(alert.title)}</h2>'
        f'<p style="margin:0 0 6px">{html.escape(alert.body)}</p>'
        + (f'<p style="margin:0 0 6px"><a href="{html.escape(alert.url)}">Open</a></p>' if alert.url else "")
        + f'<p style="margin:0;color:#666;font-size:12px">{html.escape(alert.context)}</p></div>'
        for alert in alerts
    )
    page = (
        '<!doctype html><html><body style="font-family:sans-serif;color:#111;max-width:640px">'
        + (f"<p>{html.escape(intro)}</p>" if intro else "")
        + items
        + f'<p style="color:#666;font-size:12px">{html.escape(footer)} '
        f'<a href="{html.escape(unsubscribe_page)}">Unsubscribe</a></p></body></html>'
    )
    return Email(subject=subject, text="\n".join(parts), html=page, unsubscribe_url=unsubscribe_url)


async def _post(policy: OutboundPolicy, url: str, *, json: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    try:
        async with outbound_client(policy) as client:
            response = await client.post(url, json=json, headers=headers)
            await response.aread()
            return response
    except BlockedDestination as exc:
        raise DeliveryError(exc.message) from None
    except httpx.HTTPError as exc:
        said = str(exc).replace(url, "the address")  # a webhook's URL is its secret
        raise DeliveryError(f"Slack could not be reached: {exc.__class__.__name__}: {said}"[:ERROR_LIMIT]) from None


class Sender(ABC):
    """One kind of shared channel: sends a Slack message with the channel's secret (and target)."""

    kind: ClassVar[str]

    @abstractmethod
    async def send(
        self, message: dict[str, Any], *, secret: str, target: str, policy: OutboundPolicy, api_url: str
    ) -> None: ...


class SlackWebhook(Sender):
    """An incoming webhook: the URL is the credential; Slack answers ``ok`` or an error text."""

    kind = "slack_webhook"

    async def send(
        self, message: dict[str, Any], *, secret: str, target: str, policy: OutboundPolicy, api_url: str
    ) -> None:
        response = await _post(policy, secret, json=message, headers={})
        if response.status_code != 200:
            raise DeliveryError(f"Slack answered {response.status_code}: {response.text}"[:ERROR_LIMIT])


class SlackBot(Sender):
    """A bot token posting with ``chat.postMessage``: Slack answers 200 with ``ok: false`` and an error code when
    it refuses (``channel_not_found``, ``invalid_auth``, ``not_in_channel``)."""

    kind = "slack_bot"

    async def send(
        self, message: dict[str, Any], *, secret: str, target: str, policy: OutboundPolicy, api_url: str
    ) -> None:
        response = await _post(
            policy,
            f"{api_url.rstrip('/')}/chat.postMessage",
            json={"channel": target, **message},
            headers={"Authorization": f"Bearer {secret}"},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict) or answer.get("ok") is not True:
            reason = answer.get("error") if isinstance(answer, dict) and answer.get("error") else response.text
            raise DeliveryError(f"Slack answered {response.status_code}: {reason}"[:ERROR_LIMIT])


SENDERS: dict[str, Sender] = {sender.kind: sender for sender in (SlackWebhook(), SlackBot())}
