from __future__ import annotations

from typing import Any

from backplane.core.config import Settings
from backplane.core.email import send_email


async def send_email_task(ctx: dict[str, Any], to: str, subject: str, body: str) -> None:
    settings: Settings = ctx["settings"]
    await send_email(settings.email, to, subject, body)
