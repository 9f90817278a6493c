"""Accounts: registration, credentials, tokens, email verification and password reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.api_keys.models import RevokedReason
from backplane.api_keys.repository import revoke_created_by
from backplane.auth import revocation
from backplane.auth.mail import MAIL_LINK_TASK, mail_verification
from backplane.auth.models import EmailToken, EmailTokenPurpose, OAuthIdentity, User
from backplane.auth.repository import EmailTokenRepository, IdentityRepository, UserRepository
from backplane.auth.throttle import SignInThrottle
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Conflict, NotFound, Unauthorized
from backplane.core.queue import enqueue
from backplane.core.ratelimit import RateLimiter
from backplane.core.security import (
    ExpiredToken,
    InvalidToken,
    TokenClaims,
    create_token,
    decode_token,
    hash_password,
    sha256_hex,
    verify_password,
)
from backplane.organizations.models import Organization
from backplane.organizations.repository import MembershipRepository
from backplane.organizations.service import found_organization

BAD_CREDENTIALS = "No active account found with the given credentials."
ACCESS_INVALID = "Access token is invalid."


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
    settings: Settings,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    full_name: str,
    company_name: str,
) -> tuple[User, Organization]:
    user = await _add_user(session, email=email, full_name=full_name, password_hash=await hash_password(password))
    organization = await found_organization(session, settings, company_name, user)
    await mail_verification(session, limiter, settings, user)
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


async def sign_in(session: AsyncSession, throttle: SignInThrottle, email: str, password: str) -> User:
    """`authenticate`, counted per account (auth/throttle.py): refused with 429 before the password is
    even checked once the account has had too many failures; a success does not count."""
    attempt = await throttle.attempt(email)
    user = await authenticate(session, email, password)
    await throttle.succeeded(attempt)
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await UserRepository(session).get_by_email(email)
    # Nothing was written, so end the read and give its connection back to the pool before the hash is
    # verified (behind other sign-ins in the hashing pool, perhaps for seconds): a burst of sign-ins must
    # not hold every pooled connection while other requests wait for one. `user` stays readable, detached.
    await session.close()
    if not await verify_password(password, user.password_hash if user else None) or user is None or not user.is_active:
        raise Unauthorized(BAD_CREDENTIALS)
    return user


def issue_tokens(user: User, settings: Settings) -> IssuedTokens:
    """A new sign-in: a refresh token, and an access token of the same sign-in (`sid`)."""
    refresh, refresh_claims = create_token(
        str(user.id),
        "refresh",
        settings.auth.refresh_token_ttl_seconds,
        settings.secret_key,
        issuer=settings.token_issuer,
    )
    return IssuedTokens(
        access=_access_token(user, settings, refresh_claims),
        refresh=refresh,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
    )


def _access_token(user: User, settings: Settings, refresh: TokenClaims) -> str:
    access, _ = create_token(
        str(user.id),
        "access",
        settings.auth.access_token_ttl_seconds,
        settings.secret_key,
        issuer=settings.token_issuer,
        session_id=refresh.session_id or refresh.jti,
    )
    return access


async def check_refresh_token(
    session: AsyncSession, redis: Redis, settings: Settings, token: str
) -> tuple[User, TokenClaims]:
    try:
        claims = decode_token(token, "refresh", settings.secret_key, issuer=settings.token_issuer)
    except InvalidToken as exc:
        raise Unauthorized("Refresh token is invalid or expired. Sign in again.") from exc
    if await revocation.is_revoked(redis, claims):
        raise Unauthorized("Refresh token has been revoked. Sign in again.")
    user = await _user_of(session, claims)
    if user is None or not user.is_active:
        raise Unauthorized("Refresh token is invalid or expired. Sign in again.")
    return user, claims


async def refresh_access(session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str) -> IssuedTokens:
    user, claims = await check_refresh_token(session, redis, settings, refresh_token)
    return IssuedTokens(
        access=_access_token(user, settings, claims),
        refresh=refresh_token,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
    )


async def logout(
    session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str, access_token: str | None = None
) -> None:
    """Revoke the refresh token, with every access token of its sign-in, and `access_token` (the one the
    caller sent) if it is another of the same user's. An expired `access_token` is dead already and
    ignored; one that is not the user's, or not valid, refuses the logout before anything is revoked."""
    user, claims = await check_refresh_token(session, redis, settings, refresh_token)
    access = _access_claims_to_revoke(settings, access_token, user) if access_token else None
    await revocation.revoke_token(redis, claims, outlived_by_seconds=settings.auth.access_token_ttl_seconds)
    if access is not None:
        await revocation.revoke_token(redis, access)


def _access_claims_to_revoke(settings: Settings, token: str, user: User) -> TokenClaims | None:
    try:
        claims = decode_token(token, "access", settings.secret_key, issuer=settings.token_issuer)
    except ExpiredToken:
        return None
    except InvalidToken as exc:
        raise Unauthorized(ACCESS_INVALID) from exc
    if claims.subject != str(user.id):
        raise Unauthorized(ACCESS_INVALID)
    return claims


async def verify_email(session: AsyncSession, token: str) -> User:
    _, user = await _consume_token(session, token, EmailTokenPurpose.verify_email)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await session.flush()
    return user


async def forgot_password(queue: ArqRedis, email: str) -> None:
    """Queue the reset mail for `email`, account or not: the request does the same work either way, and
    the worker decides whether anyone gets a mail (auth/mail.py)."""
    await enqueue(queue, MAIL_LINK_TASK, EmailTokenPurpose.reset_password.value, email)


async def check_reset_token(session: AsyncSession, token: str) -> None:
    await _usable_token(session, token, EmailTokenPurpose.reset_password)


async def reset_password(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    token: str,
    new_password: str,
) -> None:
    # Hashed before the token is looked up and locked, so no connection or row lock is held meanwhile.
    password_hash = await hash_password(new_password)
    _, user = await _consume_token(session, token, EmailTokenPurpose.reset_password)
    user.password_hash = password_hash
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
