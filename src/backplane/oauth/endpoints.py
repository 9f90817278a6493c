"""`/v1/auth/oauth/{provider}` and its callback: sign in with Google, Microsoft or GitHub.

A web app sends its user to `GET /v1/auth/oauth/google`; the user comes back to the frontend callback
signed in (tokens in the URL fragment, or httpOnly cookies with OAUTH_TOKEN_DELIVERY=cookie) or with
`?error=...&error_description=...`. The dashboard served by this service (`redirect_uri=/dashboard/...`)
comes back with the cookies of a browser session instead (auth/browser.py), and no token in the URL.
Only a request the browser cannot usefully be sent on with (an unknown or unconfigured provider, a
`redirect_uri` not on the allowlist) is answered with a JSON error.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from backplane.access.requirements import Public
from backplane.auth import browser
from backplane.auth import service as auth_service
from backplane.auth.limits import AuthenticationLimit
from backplane.core.config import Settings
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.errors import InvalidInput, NotFound
from backplane.core.openapi import platform_errors
from backplane.core.redis import RedisDep
from backplane.oauth import service, state
from backplane.oauth.errors import OAuthFailure, ProviderNotConfigured
from backplane.oauth.providers import DISPLAY_NAMES, PROVIDERS, Provider, configured

router = APIRouter(prefix="/v1/auth/oauth", tags=["Authentication"])

ACCESS_COOKIE = "backplane_access_token"
REFRESH_COOKIE = "backplane_refresh_token"

# Errors a provider may send back (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6), passed on as they are;
# anything else arrives on the frontend as `provider_error`.
_PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "consent_required",
        "interaction_required",
        "invalid_request",
        "invalid_scope",
        "login_required",
        "server_error",
        "temporarily_unavailable",
        "unauthorized_client",
        "unsupported_response_type",
    }
)

_REDIRECT_DOC = {
    "description": "A redirect (see the description).",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "Where the browser goes next."}},
}
_PROVIDER_PARAM_DOC = "`google`, `microsoft` or `github`."


def _provider(settings: Settings, name: str) -> Provider:
    if name not in PROVIDERS:
        raise NotFound("Unknown sign-in provider. Supported: google, microsoft, github.")
    provider = configured(settings.oauth, name)
    if provider is None:
        raise ProviderNotConfigured(
            f"Sign-in with {DISPLAY_NAMES[name]} is not configured on this server.", details={"provider": name}
        )
    return provider


DASHBOARD_PREFIX = "/dashboard/"


def _allowed_redirects(settings: Settings) -> frozenset[str]:
    return settings.oauth.redirect_allowlist | {settings.oauth_frontend_callback_url}


def _is_allowed(settings: Settings, url: str) -> bool:
    return url in _allowed_redirects(settings) or _dashboard_target(settings, url) is not None


def _dashboard_target(settings: Settings, url: str) -> str | None:
    """A page of the dashboard this service serves, as a path (`/dashboard/...`, query kept): `url` given as that
    path or under PUBLIC_BASE_URL; None for anything else. A path only, so never a redirect to another host."""
    base = settings.public_base_url.rstrip("/")
    path = url[len(base) :] if url.startswith(base + DASHBOARD_PREFIX) else url
    parts = urlsplit(path)
    if (
        len(path) > 2000
        or parts.scheme
        or parts.netloc
        or parts.fragment
        or not parts.path.startswith(DASHBOARD_PREFIX)
        or "\\" in path
        or ".." in parts.path.split("/")
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path)
    ):
        return None
    return path


def _callback_url(settings: Settings, provider: str) -> str:
    """This service's own callback, which must be registered with the provider exactly as it is here."""
    return f"{settings.public_base_url.rstrip('/')}/v1/auth/oauth/{provider}/callback"


def _secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def _code_challenge(verifier: str) -> str:
    # RFC 7636 4.2 (S256): one line, so not worth a dependency; httpx-oauth takes the challenge ready-made.
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class ProviderRead(BaseModel):
    id: str = Field(examples=["google"])
    name: str = Field(examples=["Google"])


class ProviderList(BaseModel):
    providers: list[ProviderRead] = Field(description="Only the providers configured on this server.")


@router.get(
    "/providers",
    response_model=ProviderList,
    summary="The sign-in providers this server offers",
    description="Google, Microsoft and GitHub, each only when its client id and secret are configured: what a "
    "sign-in page shows buttons for. Starts nothing (no state, no cookie) and is not counted against the "
    "sign-in limit.",
    dependencies=[Public("which sign-in buttons to show, before anyone signs in")],
)
async def list_providers(settings: SettingsDep) -> ProviderList:
    return ProviderList(
        providers=[
            ProviderRead(id=name, name=DISPLAY_NAMES[name])
            for name in PROVIDERS
            if configured(settings.oauth, name) is not None
        ]
    )


@router.get(
    "/{provider}",
    status_code=302,
    response_class=RedirectResponse,
    summary="Sign in with Google, Microsoft or GitHub",
    description="Redirects the browser to the provider's sign-in page. Send the user here with a plain "
    "navigation (`window.location.href = '/v1/auth/oauth/google'`); they come back to the frontend callback "
    "(OAUTH_FRONTEND_CALLBACK_URL, or `redirect_uri`) signed in: `#access_token=…&refresh_token=…&"
    "token_type=Bearer&expires_in=900` in the URL fragment, or, with OAUTH_TOKEN_DELIVERY=cookie, the httpOnly "
    "cookies `backplane_access_token` and `backplane_refresh_token`. With `redirect_uri` a page of the dashboard "
    "this service serves (`/dashboard/...`, or that path under PUBLIC_BASE_URL), the user lands there with the "
    "cookies of `POST /v1/auth/session` (`bp_refresh`, `bp_csrf`) and no token in the URL; the page then calls "
    "`POST /v1/auth/session/refresh`. A failed sign-in comes back with "
    "`?error=<code>&error_description=<text>` instead; the codes are `access_denied` (and the provider's other "
    "standard errors), `invalid_state`, `invalid_request`, `invalid_grant`, `provider_error`, "
    "`email_not_verified`, `account_disabled`, `account_conflict`.\n\n"
    "An existing user is signed in when the provider's account is linked to them, or linked on the spot when "
    "the provider vouches for their email address (a verified email only). Anyone else gets a new account and "
    "an organization of their own. An unknown or unconfigured provider answers 404, and a `redirect_uri` that "
    "is not exactly one of OAUTH_REDIRECT_ALLOWLIST answers 422: neither is ever a redirect.",
    responses={302: _REDIRECT_DOC, **platform_errors(404, 422, 429)},
    dependencies=[Public("signing in with an identity provider"), AuthenticationLimit],
)
async def start_sign_in(
    provider: Annotated[str, Path(description=_PROVIDER_PARAM_DOC)],
    redis: RedisDep,
    settings: SettingsDep,
    redirect_uri: Annotated[
        str | None,
        Query(
            description="The frontend page to come back to; exactly one of OAUTH_REDIRECT_ALLOWLIST, or a page "
            "of this service's dashboard (`/dashboard/...`). Default: OAUTH_FRONTEND_CALLBACK_URL.",
            examples=["https://app.example.com/auth/callback"],
        ),
    ] = None,
) -> RedirectResponse:
    chosen = _provider(settings, provider)
    frontend = settings.oauth_frontend_callback_url
    if redirect_uri is not None:
        if not _is_allowed(settings, redirect_uri):
            raise InvalidInput(
                {
                    "redirect_uri": [
                        "This URL is not allowed; it must be one of OAUTH_REDIRECT_ALLOWLIST, or a page of this "
                        "service's dashboard (/dashboard/...)."
                    ]
                }
            )
        frontend = _dashboard_target(settings, redirect_uri) or redirect_uri
    state_value = state.new_state()
    verifier = state.new_code_verifier()
    await state.save(redis, settings, state_value, state.Pending(provider, verifier, frontend))
    url = await chosen.authorization_url(
        redirect_uri=_callback_url(settings, provider), state=state_value, code_challenge=_code_challenge(verifier)
    )
    response = _redirect(url)
    response.set_cookie(
        state.COOKIE_NAME,
        state.sign_cookie(settings, state.Started(state_value, provider, frontend)),
        max_age=settings.oauth.oauth_state_ttl_seconds,
        path=state.COOKIE_PATH,
        secure=_secure(settings),
        httponly=True,
        samesite="lax",  # "lax" still comes along on the provider's top-level redirect back to us
    )
    return response


@router.get(
    "/{provider}/callback",
    status_code=302,
    response_class=RedirectResponse,
    summary="Where the provider sends the browser back",
    description="Register this URL (`{PUBLIC_BASE_URL}/v1/auth/oauth/{provider}/callback`) with the provider. "
    "It checks the state against this browser's cookie and uses it once, exchanges the code (with the PKCE "
    "verifier) and redirects to the frontend callback, signed in or with `?error=…&error_description=…`.",
    responses={302: _REDIRECT_DOC, **platform_errors(404)},
    dependencies=[Public("the provider's answer, bound to the browser by the single-use state")],
)
async def finish_sign_in(
    provider: Annotated[str, Path(description=_PROVIDER_PARAM_DOC)],
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(description="The provider's authorization code.")] = None,
    state_param: Annotated[str | None, Query(alias="state", description="The state sent to the provider.")] = None,
    error: Annotated[str | None, Query(description="The provider's error, e.g. `access_denied`.")] = None,
) -> RedirectResponse:
    chosen = _provider(settings, provider)
    started = state.read_cookie(settings, request.cookies.get(state.COOKIE_NAME))
    frontend = started.redirect_uri if started and _is_allowed(settings, started.redirect_uri) else None
    try:
        pending = await _take_pending(redis, provider, started, state_param)
        frontend = pending.redirect_uri
        if error is not None:
            raise _provider_error(chosen, error)
        if not code:
            raise OAuthFailure("invalid_request", f"{chosen.display_name} sent no authorization code. Sign in again.")
        profile = await chosen.profile(
            code=code, redirect_uri=_callback_url(settings, provider), code_verifier=pending.code_verifier
        )
        user = await service.sign_in(session, redis, settings, provider, profile)
        response = _signed_in(request, settings, frontend, auth_service.issue_tokens(user, settings))
    except OAuthFailure as failure:
        target = frontend or settings.oauth_frontend_callback_url
        response = _redirect(_with_query(target, error=failure.error, error_description=failure.description))
    response.delete_cookie(
        state.COOKIE_NAME, path=state.COOKIE_PATH, secure=_secure(settings), httponly=True, samesite="lax"
    )
    return response


async def _take_pending(
    redis: Redis, provider: str, started: state.Started | None, state_param: str | None
) -> state.Pending:
    if not state_param:
        raise OAuthFailure("invalid_state", "The sign-in response carries no state. Sign in again.")
    if not state.matches(started, provider, state_param):
        raise OAuthFailure(
            "invalid_state", "This sign-in was not started in this browser, or it took too long. Sign in again."
        )
    pending = await state.take(redis, state_param)
    if pending is None or pending.provider != provider:
        raise OAuthFailure("invalid_state", "This sign-in was already completed or has expired. Sign in again.")
    return pending


def _provider_error(provider: Provider, error: str) -> OAuthFailure:
    if error == "access_denied":
        return OAuthFailure("access_denied", f"You did not allow signing in with {provider.display_name}.")
    code = error if error in _PROVIDER_ERRORS else "provider_error"
    return OAuthFailure(code, f"{provider.display_name} could not sign you in. Try again.")


def _signed_in(
    request: Request, settings: Settings, frontend: str, tokens: auth_service.IssuedTokens
) -> RedirectResponse:
    if _dashboard_target(settings, frontend) is not None:
        # The dashboard's own session: the refresh token in its cookie, and the page gets an access token
        # from POST /v1/auth/session/refresh. Nothing in the URL.
        response = _redirect(frontend)
        browser.set_session_cookies(response, request, settings, tokens.refresh)
        return response
    if settings.oauth.oauth_token_delivery == "cookie":
        response = _redirect(frontend)
        for name, value, max_age in (
            (ACCESS_COOKIE, tokens.access, tokens.access_ttl_seconds),
            (REFRESH_COOKIE, tokens.refresh, settings.auth.refresh_token_ttl_seconds),
        ):
            response.set_cookie(
                name, value, max_age=max_age, path="/", secure=_secure(settings), httponly=True, samesite="lax"
            )
        return response
    fragment = urlencode(
        {
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
            "token_type": "Bearer",
            "expires_in": tokens.access_ttl_seconds,
        }
    )
    return _redirect(f"{frontend}#{fragment}")
