"""Outbound e-mail over SMTP. With no SMTP host configured, messages are written to the log instead.

A message is plain text, or plain text with an HTML alternative (``multipart/alternative``: clients that show HTML
show it, the rest the text), and may carry extra headers (``List-Unsubscribe``, ``Auto-Submitted``, …). Refusals
by the server (a recipient refused, the server down) raise ``smtplib.SMTPException`` or ``OSError`` for the caller
to retry or record.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, make_msgid

import anyio
import structlog

from northstar.settings import SmtpSettings

log = structlog.get_logger("northstar.mailer")
# Headers are written on one line up to RFC 5322's limit: folded, a long ``List-Unsubscribe`` URL would be written
# as RFC 2047 encoded words, which no mail client reads as a URL.
POLICY = default.clone(max_line_length=998)


def _deliver(config: SmtpSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=30) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username:
            smtp.login(config.username, config.password)
        smtp.send_message(message)


def compose(
    config: SmtpSettings,
    *,
    to: str,
    subject: str,
    body: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """The message as it is sent: From, To, Subject, Date, a Message-ID, the extra headers and its parts."""
    message = EmailMessage(policy=POLICY)
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2].strip("> ") or None)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send_email(
    config: SmtpSettings,
    *,
    to: str,
    subject: str,
    body: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Send one message; False when no SMTP server is configured (the message is only logged)."""
    message = compose(config, to=to, subject=subject, body=body, html=html, headers=headers)
    if not config.host:
        log.info("email_not_sent_no_smtp", to=to, subject=subject)
        return False
    await anyio.to_thread.run_sync(_deliver, config, message)
    return True
