"""Account endpoints on both surfaces: `/api/v1/auth/...` (licensing) and `/v1/auth/...` (platform)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.access.requirements import Authenticated, Public, SignedInUser
from backplane.api_keys.models import is_api_key
from backplane.auth import service
from backplane.auth.limits import AuthenticationLimit
from backplane.auth.schemas import (
    AccessToken,
    EmailRequest,
    IdentityRead,
    LoginRequest,
    LoginResponse,
    MeAuth,
    MeResponse,
    Message,
    OrganizationBrief,
    PlatformRefreshRequest,
    PlatformTokens,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    TokenPair,
    TokenRequest,
    TokensResponse,
    UserRead,
    UserUpdate,
)
from backplane.auth.throttle import LimiterDep, SignInThrottleDep
from backplane.billing.deps import PlatformLimit
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors, platform_errors
from backplane.core.queue import QueueDep
from backplane.core.redis import RedisDep

licensing = APIRouter(
    prefix="/api/v1/auth",
    tags=["Licensing: authentication"],
    responses=licensing_errors(400, 429),
    dependencies=[AuthenticationLimit],
)
platform = APIRouter(prefix="/v1", tags=["Authentication"], responses=platform_errors(422, 429))

SIGN_IN_DESCRIPTION = (
    "Limited per client (5 a minute per IPv4 address or IPv6 /64) and per account: after 10 failed attempts "
    "in 15 minutes an address answers 429 with `Retry-After` (one more attempt every 90 seconds), except "
    "from a network the account signed in from in the last 30 days."
)
FORGOT_MESSAGE = "If an account exists for this email address, a password reset link has been sent."


def _platform_tokens(tokens: service.IssuedTokens) -> PlatformTokens:
    return PlatformTokens(
        access_token=tokens.access,
        refresh_token=tokens.refresh,
        expires_in=tokens.access_ttl_seconds,
    )


@licensing.post(
    "/register/",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterResponse,
    summary="Create an account and its organization",
    description="Creates the user and an organization named `company_name` that the user owns, and "
    "mails a verification link. A taken email address answers 409.",
    responses=licensing_errors(409),
    dependencies=[Public("anyone may sign up")],
)
async def register(
    body: RegisterRequest, session: SessionDep, settings: SettingsDep, limiter: LimiterDep
) -> RegisterResponse:
    user, organization = await service.register(
        session,
        settings,
        limiter,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        company_name=body.company_name,
    )
    return RegisterResponse(
        user=UserRead.model_validate(user),
        organization=OrganizationBrief.model_validate(organization),
        message="Account created. Check your email to verify your address.",
    )


@licensing.post(
    "/token/",
    response_model=TokenPair,
    summary="Obtain an access and refresh token pair",
    description=SIGN_IN_DESCRIPTION,
    responses=licensing_errors(401),
    dependencies=[Public("signing in: the email and password are the credentials")],
)
async def obtain_token(
    body: TokenRequest, session: SessionDep, settings: SettingsDep, throttle: SignInThrottleDep
) -> TokenPair:
    user = await service.sign_in(session, throttle, body.email, body.password)
    tokens = service.issue_tokens(user, settings)
    return TokenPair(access=tokens.access, refresh=tokens.refresh)


@licensing.post(
    "/token/refresh/",
    response_model=AccessToken,
    summary="Exchange a refresh token for a new access token",
    description="Refresh tokens are not rotated: the same one works until it expires or is revoked "
    "(logout, password reset, deactivation).",
    responses=licensing_errors(401),
    dependencies=[Public("the refresh token in the body is the credential")],
)
async def refresh_token(
    body: RefreshRequest, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> AccessToken:
    tokens = await service.refresh_access(session, redis, settings, body.refresh)
    return AccessToken(access=tokens.access)


LOGOUT_DESCRIPTION = (
    "Revokes the refresh token and every access token obtained with it (at sign-in or by refreshing). "
    "Send the access token you hold in `Authorization: Bearer` as well to have it revoked even if it came "
    "from another sign-in of yours; an expired one is ignored, another user's or an invalid one answers 401 "
    "and nothing is revoked."
)


async def _sent_access_token(request: Request) -> str | None:
    """The JWT in `Authorization: Bearer`, if any: logout revokes it too (an API key is not revoked here).

    Read from the request rather than declared as a security scheme: logout works without it.
    """
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and not is_api_key(token) else None


SentAccessToken = Annotated[str | None, Depends(_sent_access_token)]


@licensing.post(
    "/logout/",
    response_model=Message,
    summary="Revoke a refresh token and its access tokens",
    description=LOGOUT_DESCRIPTION,
    responses=licensing_errors(401),
    dependencies=[Public("the refresh token in the body is the credential")],
)
async def logout(
    body: RefreshRequest, access: SentAccessToken, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> Message:
    await service.logout(session, redis, settings, body.refresh, access)
    return Message(message="Logged out. The refresh token is revoked.")


@licensing.get(
    "/verify-email/",
    response_model=Message,
    summary="Confirm an email address from the mailed link",
    dependencies=[Public("the mailed single-use token is the credential")],
)
async def verify_email(token: Annotated[str, Query(min_length=1, max_length=256)], session: SessionDep) -> Message:
    await service.verify_email(session, token)
    return Message(message="Email address verified.")


@licensing.post(
    "/forgot-password/",
    response_model=Message,
    summary="Mail a password reset link",
    description="Always answers 200 with the same message, whether or not the account exists, after the same "
    "work (the link is made by the worker). At most 3 account mails an hour reach one address; beyond that "
    "none is sent and the answer is the same.",
    dependencies=[Public("anyone may ask; the answer never says whether the address has an account")],
)
async def forgot_password(body: EmailRequest, queue: QueueDep) -> Message:
    await service.forgot_password(queue, body.email)
    return Message(message=FORGOT_MESSAGE)


@licensing.get(
    "/reset-password/",
    response_model=Message,
    summary="Check a password reset link before using it",
    dependencies=[Public("the mailed single-use token is the credential")],
)
async def check_reset_link(token: Annotated[str, Query(min_length=1, max_length=256)], session: SessionDep) -> Message:
    await service.check_reset_token(session, token)
    return Message(message='The link is valid. POST {"token", "new_password"} to this URL to choose a new password.')


@licensing.post(
    "/reset-password/",
    response_model=Message,
    summary="Choose a new password with a reset token",
    description="Also signs the account out everywhere: every refresh token issued before now is revoked.",
    dependencies=[Public("the mailed single-use token is the credential")],
)
async def reset_password(
    body: ResetPasswordRequest,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> Message:
    await service.reset_password(session, redis, settings, body.token, body.new_password)
    return Message(message="Password changed. Sign in with the new password.")


@platform.post(
    "/auth/login",
    response_model=LoginResponse,
    summary="Sign in",
    description=SIGN_IN_DESCRIPTION,
    responses=platform_errors(401),
    dependencies=[Public("signing in: the email and password are the credentials"), AuthenticationLimit],
)
async def login(
    body: LoginRequest, session: SessionDep, settings: SettingsDep, throttle: SignInThrottleDep
) -> LoginResponse:
    user = await service.sign_in(session, throttle, body.email, body.password)
    return LoginResponse(
        user=UserRead.model_validate(user),
        tokens=_platform_tokens(service.issue_tokens(user, settings)),
    )


@platform.post(
    "/auth/refresh",
    response_model=TokensResponse,
    summary="Get a new access token",
    description="Returns a new access token; the refresh token is returned unchanged (not rotated).",
    responses=platform_errors(401),
    dependencies=[Public("the refresh token in the body is the credential"), AuthenticationLimit],
)
async def platform_refresh(
    body: PlatformRefreshRequest,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokensResponse:
    tokens = await service.refresh_access(session, redis, settings, body.refresh_token)
    return TokensResponse(tokens=_platform_tokens(tokens))


@platform.post(
    "/auth/logout",
    response_model=Message,
    summary="Revoke a refresh token and its access tokens",
    description=LOGOUT_DESCRIPTION,
    responses=platform_errors(401),
    dependencies=[Public("the refresh token in the body is the credential"), AuthenticationLimit],
)
async def platform_logout(
    body: PlatformRefreshRequest,
    access: SentAccessToken,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> Message:
    await service.logout(session, redis, settings, body.refresh_token, access)
    return Message(message="Logged out. The refresh token is revoked.")


async def _me(principal: Principal, session: AsyncSession) -> MeResponse:
    identities = []
    if principal.user is not None and principal.api_key is None:
        identities = [IdentityRead.model_validate(i) for i in await service.list_identities(session, principal.user)]
    return MeResponse(
        user=UserRead.model_validate(principal.user) if principal.user else None,
        organization=OrganizationBrief.model_validate(principal.organization) if principal.organization else None,
        role=str(principal.role) if principal.role else None,
        auth=MeAuth(
            type="api_key" if principal.api_key else "jwt",
            scopes=sorted(str(s) for s in principal.scopes),
            livemode=principal.livemode,
            api_key_id=principal.api_key.id if principal.api_key else None,
        ),
        identities=identities,
    )


@platform.get(
    "/users/me",
    response_model=MeResponse,
    tags=["Users"],
    dependencies=[PlatformLimit],
    summary="The caller: user, organization, role, credentials and linked sign-in providers",
    description="Works with a JWT or an API key (for a key, `user` is the user who created it and "
    "`identities` is empty).",
    responses=platform_errors(401, 403),
)
async def read_me(principal: Authenticated, session: SessionDep) -> MeResponse:
    return await _me(principal, session)


@platform.patch(
    "/users/me",
    response_model=MeResponse,
    tags=["Users"],
    dependencies=[PlatformLimit],
    summary="Update your profile",
    responses=platform_errors(401, 403),
)
async def update_me(body: UserUpdate, principal: SignedInUser, session: SessionDep) -> MeResponse:
    user = principal.require_user()
    user.full_name = body.full_name
    await session.flush()
    return await _me(principal, session)


@platform.delete(
    "/users/me/identities/{identity_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["Users"],
    dependencies=[PlatformLimit],
    summary="Unlink a sign-in provider",
    description="Removes a linked Google, Microsoft or GitHub account (an id from `identities` of "
    "`GET /v1/users/me`). Refused with 409 when it is your last way to sign in: no password and no other "
    "linked provider. Needs a signed-in user (a JWT), not an API key.",
    responses=platform_errors(401, 403, 404, 409),
)
async def unlink_identity(identity_id: uuid.UUID, principal: SignedInUser, session: SessionDep) -> None:
    await service.unlink_identity(session, principal.require_user(), identity_id)


@platform.delete(
    "/users/me",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["Users"],
    dependencies=[PlatformLimit],
    summary="Deactivate your account",
    description="Signs the account out everywhere (every token is revoked) and refuses further sign-ins. "
    "Refused with 409 while you are the only owner of an organization that has other members.",
    responses=platform_errors(401, 403, 409),
)
async def deactivate_me(principal: SignedInUser, session: SessionDep, redis: RedisDep, settings: SettingsDep) -> None:
    await service.deactivate_user(session, redis, settings, principal.require_user())
