"""Outbound e-mail over SMTP. With no SMTP host configured, messages are written to the log instead."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import anyio
import structlog

from northstar.settings import SmtpSettings

log = structlog.get_logger("northstar.mailer")


def _deliver(config: SmtpSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=30) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username:
            smtp.login(config.username, config.password)
        smtp.send_message(message)


async def send_email(config: SmtpSettings, *, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if not config.host:
        log.info("email_not_sent_no_smtp", to=to, subject=subject)
        return
    await anyio.to_thread.run_sync(_deliver, config, message)
