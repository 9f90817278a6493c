from __future__ import annotations

from typing import Any

from backplane.auth.mail import mail_link
from backplane.auth.models import EmailTokenPurpose
from backplane.core.config import Settings
from backplane.core.email import send_email
from backplane.workers.context import session_scope


async def send_email_task(ctx: dict[str, Any], to: str, subject: str, body: str) -> None:
    settings: Settings = ctx["settings"]
    await send_email(settings.email, to, subject, body)


async def mail_link_task(ctx: dict[str, Any], purpose: str, email: str) -> bool:
    """`auth.mail_link`: a verification or reset link for `email`, if it has an account that should get one."""
    async with session_scope(ctx) as session:
        purpose_ = EmailTokenPurpose(purpose)
        return await mail_link(session, ctx["limiter"], ctx["settings"], purpose_, email)
