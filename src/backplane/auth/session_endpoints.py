"""`/v1/auth/session`: sign-in for a browser (the dashboard), the refresh token kept in an httpOnly cookie.

See auth/browser.py for the cookies and the CSRF check. A script never sees the refresh token: it keeps the
access token in memory and, on load or on a 401, asks `POST /v1/auth/session/refresh` for another.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Header, Request, Response, status
from pydantic import BaseModel, Field

from backplane.access.requirements import Public
from backplane.auth import browser, service
from backplane.auth.endpoints import SIGN_IN_DESCRIPTION, SentAccessToken
from backplane.auth.limits import AuthenticationLimit, BrowserSessionLimit
from backplane.auth.schemas import LoginRequest, UserRead
from backplane.auth.throttle import SignInThrottleDep
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.errors import Unauthorized
from backplane.core.openapi import platform_errors
from backplane.core.redis import RedisDep

router = APIRouter(prefix="/v1/auth/session", tags=["Authentication"], responses=platform_errors(422, 429))

NO_SESSION = "No browser session: the `bp_refresh` cookie is missing. Sign in again."

RefreshCookie = Annotated[
    str | None,
    Cookie(
        alias=browser.REFRESH_COOKIE,
        max_length=4096,
        description="Set by `POST /v1/auth/session` (httpOnly); the browser sends it by itself.",
    ),
]
CsrfHeader = Annotated[
    str | None,
    Header(
        alias=browser.CSRF_HEADER,
        max_length=256,
        description="The value of the `bp_csrf` cookie, which the page's script reads.",
    ),
]
_CSRF_DOC = (
    "Needs the `bp_refresh` cookie and the header `X-CSRF-Token` equal to the `bp_csrf` cookie; a request whose "
    "`Origin` (or, without one, `Referer`) is another site's is refused. A missing or forged CSRF token answers "
    "403 `CSRF_FAILED`."
)


class SessionAccess(BaseModel):
    access_token: str = Field(description="Access JWT: keep it in memory only.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])


class SessionCreated(SessionAccess):
    user: UserRead = Field(description="The signed-in user, as `user` of `GET /v1/users/me`.")


@router.post(
    "",
    response_model=SessionCreated,
    summary="Sign in a browser (cookie session)",
    description="The same credentials and checks as `POST /v1/auth/login`, for a web page: the answer carries "
    "the access token, and sets the cookies `bp_refresh` (the refresh token: HttpOnly, SameSite=Strict, "
    "Path=/v1/auth/session, Secure over https, for REFRESH_TOKEN_TTL_SECONDS) and `bp_csrf` (the CSRF token "
    "the page sends back as `X-CSRF-Token`: readable by scripts, SameSite=Strict, Path=/). The refresh token "
    "is never in the body. " + SIGN_IN_DESCRIPTION,
    responses={
        200: {"headers": {"Set-Cookie": {"schema": {"type": "string"}, "description": "`bp_refresh`, `bp_csrf`."}}},
        **platform_errors(401),
    },
    dependencies=[Public("signing in: the email and password are the credentials"), AuthenticationLimit],
)
async def create_session(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    throttle: SignInThrottleDep,
) -> SessionCreated:
    user = await service.sign_in(session, throttle, body.email, body.password)
    tokens = service.issue_tokens(user, settings)
    browser.set_session_cookies(response, request, settings, tokens.refresh)
    response.headers["Cache-Control"] = "no-store"
    return SessionCreated(
        access_token=tokens.access, expires_in=tokens.access_ttl_seconds, user=UserRead.model_validate(user)
    )


@router.post(
    "/refresh",
    response_model=SessionAccess,
    summary="A new access token for a browser session",
    description=_CSRF_DOC + " A missing, expired or revoked refresh cookie (signed out, password reset, "
    "account deactivated) answers 401: sign in again.",
    responses=platform_errors(401, 403),
    dependencies=[Public("the bp_refresh cookie with the CSRF token is the credential"), BrowserSessionLimit],
)
async def refresh_session(
    request: Request,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    refresh: RefreshCookie = None,
    csrf: CsrfHeader = None,
) -> SessionAccess:
    browser.check_csrf(request, settings, csrf)
    if not refresh:
        raise Unauthorized(NO_SESSION)
    browser.check_binding(settings, csrf or "", refresh)
    tokens = await service.refresh_access(session, redis, settings, refresh)
    response.headers["Cache-Control"] = "no-store"
    return SessionAccess(access_token=tokens.access, expires_in=tokens.access_ttl_seconds)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Sign a browser out",
    description=_CSRF_DOC + " Revokes the refresh token and every access token of its sign-in (as "
    "`POST /v1/auth/logout` does; an access token sent in `Authorization: Bearer` is revoked too) and clears "
    "both cookies. Answers 204 also when the refresh cookie is missing or no longer valid: the browser is "
    "signed out either way.",
    responses={
        204: {"headers": {"Set-Cookie": {"schema": {"type": "string"}, "description": "Both cookies, Max-Age=0."}}},
        **platform_errors(401, 403),
    },
    dependencies=[Public("the bp_refresh cookie with the CSRF token is the credential"), BrowserSessionLimit],
)
async def delete_session(
    request: Request,
    access: SentAccessToken,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    refresh: RefreshCookie = None,
    csrf: CsrfHeader = None,
) -> Response:
    browser.check_csrf(request, settings, csrf)
    if refresh:
        browser.check_binding(settings, csrf or "", refresh)
        if await _still_valid(session, redis, settings, refresh):
            await service.logout(session, redis, settings, refresh, access)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    browser.clear_session_cookies(response, request, settings)
    return response


async def _still_valid(session: SessionDep, redis: RedisDep, settings: SettingsDep, refresh: str) -> bool:
    try:
        await service.check_refresh_token(session, redis, settings, refresh)
    except Unauthorized:
        return False
    return True
