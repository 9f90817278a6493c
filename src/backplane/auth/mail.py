"""Account mail: verification and password-reset links, at most 3 an hour per recipient (auth/throttle.py).

Forgot-password only queues `auth.mail_link` with the address, whether or not an account exists, so it
does the same work and takes the same time for every address; the worker looks the account up and
makes the token. Registration mails its verification link itself: the account was just created and
the answer says so anyway.

The only text of the requester's choosing in a mail is their name, reduced to plain words (see
`greeting_name`): a name is chosen at registration by whoever registers, possibly with someone else's
address, and must not turn our mail into theirs.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import EmailToken, EmailTokenPurpose, User
from backplane.auth.repository import EmailTokenRepository, UserRepository
from backplane.auth.throttle import may_mail
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.effects import effects
from backplane.core.email import SEND_EMAIL
from backplane.core.ratelimit import RateLimiter
from backplane.core.security import random_token, sha256_hex

logger = logging.getLogger(__name__)

MAIL_LINK_TASK = "auth.mail_link"
MAX_NAME_CHARS = 40
_NAME_PUNCTUATION = frozenset(" '\u2019-.,")  # \u2019: the typographic apostrophe
# Letters, combining marks, and spaces (Zs; not line or paragraph separators, which are Zl and Zp).
_NAME_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Zs"})
# A dot joining two words ("evil.example", "J.Smith") is enough for mail clients to make a link.
_DOT_INSIDE_A_WORD = re.compile(r"\w\.\w")


def greeting_name(full_name: str) -> str | None:
    """The name to greet with, or None to greet no one.

    Hand-written because no library states this policy: letters, combining marks, spaces and name
    punctuation (' - . ,) only; anything else (digits, symbols, line breaks, control and bidi
    characters, an `@`, `://`, a dotted word a mail client would link) drops the name altogether
    rather than leave a piece of it; cut at a word to MAX_NAME_CHARS.
    """
    name = unicodedata.normalize("NFKC", full_name).strip()
    allowed = (c in _NAME_PUNCTUATION or unicodedata.category(c) in _NAME_CATEGORIES for c in name)
    if not name or not all(allowed) or _DOT_INSIDE_A_WORD.search(name):
        return None
    name = " ".join(name.split())
    if len(name) > MAX_NAME_CHARS:
        cut = name[: MAX_NAME_CHARS - 1]
        name = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,-") + "…"
    return name


async def mail_link(
    session: AsyncSession,
    limiter: RateLimiter,
    settings: Settings,
    purpose: EmailTokenPurpose,
    email: str,
) -> bool:
    """Mail `email` a link for `purpose` if it should have one; True when a mail was queued."""
    user = await UserRepository(session).get_by_email(email)
    if user is None or not user.is_active:
        return False
    if purpose is EmailTokenPurpose.verify_email and user.email_verified_at is not None:
        return False
    if not await may_mail(limiter, settings, user.email):
        return False
    await _mail_token(session, settings, user, purpose)
    return True


async def mail_verification(session: AsyncSession, limiter: RateLimiter, settings: Settings, user: User) -> bool:
    """The verification link of a new account, unless its address has had its share of mail this hour."""
    if not await may_mail(limiter, settings, user.email):
        return False
    await _mail_token(session, settings, user, EmailTokenPurpose.verify_email)
    return True


_PAGES = {EmailTokenPurpose.verify_email: "verify-email", EmailTokenPurpose.reset_password: "reset-password"}


def link(settings: Settings, purpose: EmailTokenPurpose, token: str) -> str:
    """The page a mailed token opens: the dashboard's, when this server serves it (DASHBOARD_DIR built), else
    the API's own page."""
    base, page = settings.public_base_url.rstrip("/"), _PAGES[purpose]
    if settings.dashboard_built:
        return f"{base}/dashboard/{page}?token={token}"
    return f"{base}/api/v1/auth/{page}/?token={token}"


async def _mail_token(session: AsyncSession, settings: Settings, user: User, purpose: EmailTokenPurpose) -> None:
    token = random_token()
    ttl = (
        settings.auth.email_token_ttl_seconds
        if purpose is EmailTokenPurpose.verify_email
        else settings.auth.password_reset_ttl_seconds
    )
    EmailTokenRepository(session).add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=sha256_hex(token),
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    await session.flush()
    name = greeting_name(user.full_name)
    hello = f"Hello {name}," if name else "Hello,"
    base = settings.public_base_url.rstrip("/")
    if purpose is EmailTokenPurpose.verify_email:
        subject = "Verify your email address"
        body = (
            f"{hello}\n\nConfirm your email address by opening this link:\n\n"
            f"{link(settings, purpose, token)}\n\nThe link is valid for {ttl // 3600} hours."
        )
    else:
        subject = "Reset your password"
        body = (
            f"{hello}\n\nSomeone asked to reset the password of this account. To choose a new "
            f"password, open:\n\n{link(settings, purpose, token)}\n\nor send "
            f'POST {base}/api/v1/auth/reset-password/ with {{"token": "{token}", "new_password": "..."}}.\n\n'
            f"The link is valid for {max(1, ttl // 60)} minutes. If you did not ask for this, ignore this email."
        )
    effects(session).enqueue(SEND_EMAIL, user.email, subject, body)
