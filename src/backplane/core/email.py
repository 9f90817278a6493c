"""Outgoing email: SMTP through aiosmtplib when SMTP_HOST is set, otherwise the log."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from backplane.core.config import EmailSettings

logger = logging.getLogger(__name__)


SEND_EMAIL = "email.send"  # the arq task that runs `send_email` (auth/tasks.py)


async def send_email(settings: EmailSettings, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if not settings.smtp_host:
        logger.info("email (SMTP_HOST unset, not sent) to=%s subject=%r\n%s", to, subject, body)
        return
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_tls,  # None: STARTTLS when the server offers it; True: required
        timeout=10,
    )
