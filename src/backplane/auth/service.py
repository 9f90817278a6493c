"""Accounts: registration, credentials, tokens, email verification and password reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.api_keys.models import RevokedReason
from backplane.api_keys.repository import revoke_created_by
from backplane.auth import revocation
from backplane.auth.models import EmailToken, EmailTokenPurpose, OAuthIdentity, User
from backplane.auth.repository import EmailTokenRepository, IdentityRepository, UserRepository
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Conflict, NotFound, Unauthorized
from backplane.core.queue import enqueue_after_commit
from backplane.core.security import (
    InvalidToken,
    TokenClaims,
    create_token,
    decode_token,
    hash_password,
    random_token,
    sha256_hex,
    verify_password,
)
from backplane.organizations.models import Organization
from backplane.organizations.repository import MembershipRepository
from backplane.organizations.service import found_organization

BAD_CREDENTIALS = "No active account found with the given credentials."


class InvalidEmailToken(AppError):
    status_code, code, title = 400, "INVALID_TOKEN", "Invalid token"
    default_message = "This link is invalid, has expired or was already used. Request a new one."


class LastSignInMethod(Conflict):
    default_message = (
        "This is your only way to sign in. Set a password (forgot-password) or link another provider first."
    )


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access: str
    refresh: str
    access_ttl_seconds: int


async def register(
    session: AsyncSession,
    queue: ArqRedis,
    settings: Settings,
    *,
    email: str,
    password: str,
    full_name: str,
    company_name: str,
) -> tuple[User, Organization]:
    user = await _add_user(session, email=email, full_name=full_name, password_hash=hash_password(password))
    organization = await found_organization(session, settings, company_name, user)
    await _mail_token(session, queue, settings, user, EmailTokenPurpose.verify_email)
    return user, organization


async def register_external(
    session: AsyncSession, settings: Settings, *, email: str, full_name: str, company_name: str
) -> tuple[User, Organization]:
    """An account for someone an identity provider vouches for: its email is verified, it has no password
    (the provider signs them in; forgot-password can give them one), and an organization of its own."""
    user = await _add_user(session, email=email, full_name=full_name, password_hash=None, email_verified_at=utcnow())
    organization = await found_organization(session, settings, company_name, user)
    return user, organization


async def _add_user(
    session: AsyncSession,
    *,
    email: str,
    full_name: str,
    password_hash: str | None,
    email_verified_at: datetime | None = None,
) -> User:
    users = UserRepository(session)
    if await users.get_by_email(email) is not None:
        raise Conflict("A user with this email address already exists.")
    try:
        async with session.begin_nested():
            user = users.add(
                User(
                    id=uuid.uuid4(),
                    email=email.lower(),
                    full_name=full_name,
                    password_hash=password_hash,
                    email_verified_at=email_verified_at,
                )
            )
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration with the same address won
        raise Conflict("A user with this email address already exists.") from exc
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await UserRepository(session).get_by_email(email)
    if not verify_password(password, user.password_hash if user else None) or user is None or not user.is_active:
        raise Unauthorized(BAD_CREDENTIALS)
    return user


def issue_tokens(user: User, settings: Settings) -> IssuedTokens:
    access, _ = create_token(
        str(user.id),
        "access",
        settings.auth.access_token_ttl_seconds,
        settings.secret_key,
    )
    refresh, _ = create_token(
        str(user.id),
        "refresh",
        settings.auth.refresh_token_ttl_seconds,
        settings.secret_key,
    )
    return IssuedTokens(
        access=access,
        refresh=refresh,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
    )


async def check_refresh_token(
    session: AsyncSession, redis: Redis, settings: Settings, token: str
) -> tuple[User, TokenClaims]:
    try:
        claims = decode_token(token, "refresh", settings.secret_key)
    except InvalidToken as exc:
        raise Unauthorized("Refresh token is invalid or expired. Sign in again.") from exc
    if await revocation.is_revoked(redis, claims):
        raise Unauthorized("Refresh token has been revoked. Sign in again.")
    user = await _user_of(session, claims)
    if user is None or not user.is_active:
        raise Unauthorized("Refresh token is invalid or expired. Sign in again.")
    return user, claims


async def refresh_access(session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str) -> IssuedTokens:
    user, _ = await check_refresh_token(session, redis, settings, refresh_token)
    access, _ = create_token(
        str(user.id),
        "access",
        settings.auth.access_token_ttl_seconds,
        settings.secret_key,
    )
    return IssuedTokens(
        access=access,
        refresh=refresh_token,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
    )


async def logout(session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str) -> None:
    _, claims = await check_refresh_token(session, redis, settings, refresh_token)
    await revocation.revoke_token(redis, claims)


async def verify_email(session: AsyncSession, token: str) -> User:
    _, user = await _consume_token(session, token, EmailTokenPurpose.verify_email)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await session.flush()
    return user


async def forgot_password(session: AsyncSession, queue: ArqRedis, settings: Settings, email: str) -> None:
    user = await UserRepository(session).get_by_email(email)
    if user is not None and user.is_active:
        await _mail_token(session, queue, settings, user, EmailTokenPurpose.reset_password)


async def check_reset_token(session: AsyncSession, token: str) -> None:
    await _usable_token(session, token, EmailTokenPurpose.reset_password)


async def reset_password(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    token: str,
    new_password: str,
) -> None:
    _, user = await _consume_token(session, token, EmailTokenPurpose.reset_password)
    user.password_hash = hash_password(new_password)
    # Receiving the mail proves the address, as a verification link would.
    user.email_verified_at = user.email_verified_at or utcnow()
    await EmailTokenRepository(session).use_all_for_user(user.id, EmailTokenPurpose.reset_password, utcnow())
    await session.flush()
    await revocation.revoke_all_for_user(redis, user.id, settings.auth.refresh_token_ttl_seconds)


async def deactivate_user(session: AsyncSession, redis: Redis, settings: Settings, user: User) -> None:
    stranded = await MembershipRepository(session).organizations_only_owned_by(user.id)
    if stranded:
        raise Conflict(
            "You are the only owner of an organization that has other members; make someone else owner first.",
            details={"organization_ids": [str(o) for o in stranded]},
        )
    user.is_active = False
    # Their API keys go with them, in every organization (each shows why it stopped).
    await revoke_created_by(session, user.id, RevokedReason.creator_deactivated, utcnow())
    await session.flush()
    await revocation.revoke_all_for_user(redis, user.id, settings.auth.refresh_token_ttl_seconds)


async def list_identities(session: AsyncSession, user: User) -> list[OAuthIdentity]:
    return await IdentityRepository(session).list_for_user(user.id)


async def unlink_identity(session: AsyncSession, user: User, identity_id: uuid.UUID) -> None:
    """Remove a linked provider account, unless it is the user's last way to sign in."""
    locked = await UserRepository(session).get_for_update(user.id)  # two unlinks at once cannot strand the user
    identities = IdentityRepository(session)
    identity = await identities.get_for_user(user.id, identity_id) if locked is not None else None
    if locked is None or identity is None:
        raise NotFound("Identity not found.")
    if locked.password_hash is None and await identities.count_for_user(user.id) <= 1:
        raise LastSignInMethod()
    await identities.delete(identity)
    await session.flush()


async def _user_of(session: AsyncSession, claims: TokenClaims) -> User | None:
    try:
        user_id = uuid.UUID(claims.subject)
    except ValueError:
        return None
    return await UserRepository(session).get_by_id(user_id)


async def _usable_token(session: AsyncSession, token: str, purpose: EmailTokenPurpose) -> tuple[EmailToken, User]:
    email_token = await EmailTokenRepository(session).get_by_hash_for_update(sha256_hex(token), purpose)
    if email_token is None or email_token.used_at is not None or email_token.expires_at <= utcnow():
        raise InvalidEmailToken()
    user = await UserRepository(session).get_by_id(email_token.user_id)
    if user is None or not user.is_active:
        raise InvalidEmailToken()
    return email_token, user


async def _consume_token(session: AsyncSession, token: str, purpose: EmailTokenPurpose) -> tuple[EmailToken, User]:
    email_token, user = await _usable_token(session, token, purpose)
    email_token.used_at = utcnow()
    return email_token, user


async def _mail_token(
    session: AsyncSession,
    queue: ArqRedis,
    settings: Settings,
    user: User,
    purpose: EmailTokenPurpose,
) -> None:
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
    base = settings.public_base_url.rstrip("/")
    if purpose is EmailTokenPurpose.verify_email:
        subject = "Verify your email address"
        body = (
            f"Hello {user.full_name},\n\nConfirm your email address by opening this link:\n\n"
            f"{base}/api/v1/auth/verify-email/?token={token}\n\nThe link is valid for {ttl // 3600} hours."
        )
    else:
        subject = "Reset your password"
        body = (
            f"Hello {user.full_name},\n\nSomeone asked to reset the password of this account. To choose a new "
            f"password, open:\n\n{base}/api/v1/auth/reset-password/?token={token}\n\nor send "
            f'POST {base}/api/v1/auth/reset-password/ with {{"token": "{token}", "new_password": "..."}}.\n\n'
            f"The link is valid for {max(1, ttl // 60)} minutes. If you did not ask for this, ignore this email."
        )
    enqueue_after_commit(session, queue, "email.send", user.email, subject, body)
