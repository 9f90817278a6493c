"""Who a provider's profile signs in: the linked user, an existing user with that verified email, or a new one."""

from __future__ import annotations

import unicodedata

from pydantic import TypeAdapter
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth import revocation
from backplane.auth import service as auth_service
from backplane.auth.models import OAuthIdentity, User
from backplane.auth.repository import IdentityRepository, UserRepository
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import Conflict
from backplane.core.fields import Email
from backplane.oauth.errors import OAuthFailure
from backplane.oauth.providers import DISPLAY_NAMES, Profile

_NAME_LIMIT = 200
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


async def sign_in(session: AsyncSession, redis: Redis, settings: Settings, provider: str, profile: Profile) -> User:
    """The user `profile` signs in, linking or creating them as needed. Every write happens in one savepoint,
    so a refusal (or a lost race) leaves nothing half-done behind."""
    try:
        async with session.begin_nested():
            return await _resolve(session, redis, settings, provider, profile)
    except (IntegrityError, Conflict) as exc:  # a concurrent sign-in linked or registered the same account
        raise OAuthFailure("account_conflict", "This account was changed while you signed in. Sign in again.") from exc


async def _resolve(session: AsyncSession, redis: Redis, settings: Settings, provider: str, profile: Profile) -> User:
    identities = IdentityRepository(session)
    users = UserRepository(session)
    identity = await identities.get_by_subject(provider, profile.subject)
    if identity is not None:
        user = await users.get_by_id(identity.user_id)
        _check_active(user)
        assert user is not None
        if profile.email and profile.email_verified:
            identity.email = _verified_email(profile, provider)
        await session.flush()
        return user
    email = _verified_email(profile, provider)
    user = await users.get_by_email(email)
    if user is not None:
        _check_active(user)
        if user.email_verified_at is None:
            await _take_over_unverified(session, redis, settings, user)
    else:
        name = _clean_name(profile.name) or email.split("@", 1)[0][:_NAME_LIMIT]
        user, _ = await auth_service.register_external(
            session, settings, email=email, full_name=name, company_name=_organization_name(name)
        )
    identities.add(OAuthIdentity(user_id=user.id, provider=provider, subject=profile.subject, email=email))
    await session.flush()
    return user


def _verified_email(profile: Profile, provider: str) -> str:
    display = DISPLAY_NAMES[provider]
    if not profile.email:
        raise OAuthFailure("email_not_verified", f"Your {display} account did not share an email address.")
    if not profile.email_verified:
        raise OAuthFailure(
            "email_not_verified",
            f"Your {display} account's email address is not verified. Verify it with {display}, then sign in again.",
        )
    try:
        email: str = _EMAIL.validate_python(profile.email)
    except ValueError as exc:
        raise OAuthFailure("email_not_verified", f"Your {display} account's email address is not usable.") from exc
    return email


def _check_active(user: User | None) -> None:
    if user is None or not user.is_active:
        raise OAuthFailure("account_disabled", "This account is deactivated.")


async def _take_over_unverified(session: AsyncSession, redis: Redis, settings: Settings, user: User) -> None:
    """The provider proves the address; the account's owner never did. Whoever set its password may not be
    the address's owner (an account "pre-hijacked" before its owner arrived), so the password stops
    working and every token issued so far is revoked. The owner can choose a password with forgot-password."""
    user.email_verified_at = utcnow()
    user.password_hash = None
    await revocation.revoke_all_for_user(redis, user.id, settings.auth.refresh_token_ttl_seconds)


def _clean_name(name: str | None) -> str:
    if not name:
        return ""
    # Control characters (U+0000 among them, which PostgreSQL refuses) have no place in a display name.
    printable = "".join(c for c in name if unicodedata.category(c) != "Cc")
    return " ".join(printable.split())[:_NAME_LIMIT]


def _organization_name(full_name: str) -> str:
    suffix = "'s organization"
    return full_name[: _NAME_LIMIT - len(suffix)] + suffix
