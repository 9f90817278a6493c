"""Outgoing email: SMTP through aiosmtplib when SMTP_HOST is set, otherwise a file in EMAIL_OUTBOX_DIR.

Not the log: emails carry single-use links (password resets, invitations) that no log line may hold."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

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
        path = await asyncio.to_thread(_write_to_outbox, settings.email_outbox_dir, message)
        logger.info("email (SMTP_HOST unset, not sent) to=%s subject=%r written to %s", to, subject, path)
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


def _write_to_outbox(directory: Path, message: EmailMessage) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}.eml"
    path.write_bytes(message.as_bytes())
    return path
