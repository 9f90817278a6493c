"""The three sign-in providers: their endpoints, and how each one says who the user is.

The code exchange goes through httpx-oauth's `BaseOAuth2` (PKCE S256 for all three: Google and
Microsoft as OpenID Connect providers, GitHub since July 2025). Reading the profile is one or two
plain GETs per provider, written here because httpx-oauth's own profile calls hard-code the
providers' hosts (and its Google one reads the People API, which has no "verified" flag).

Provider endpoints come from configuration set by the operator, not from customers, so they are
called directly rather than through `core.netguard` (the tests' stand-in lives on loopback).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from httpx_oauth.oauth2 import BaseOAuth2, GetAccessTokenError, OAuth2Token
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from backplane.core.config import OAuthSettings
from backplane.core.security import unverified_claims
from backplane.oauth.errors import OAuthFailure

ProviderName = Literal["google", "microsoft", "github"]
PROVIDERS: tuple[ProviderName, ...] = ("google", "microsoft", "github")
DISPLAY_NAMES: dict[str, str] = {"google": "Google", "microsoft": "Microsoft", "github": "GitHub"}

# Personal Microsoft accounts (outlook.com, hotmail.com...) sign in through this tenant; their
# email is the account's own verified sign-in address.
MICROSOFT_CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass(frozen=True, slots=True)
class Profile:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorize: str
    token: str
    userinfo: str  # GitHub: the API base (`/user`, `/user/emails` under it)


@dataclass(frozen=True, slots=True)
class Provider:
    name: ProviderName
    client_id: str
    client_secret: str
    endpoints: Endpoints
    scopes: tuple[str, ...]
    timeout_seconds: float

    @property
    def display_name(self) -> str:
        return DISPLAY_NAMES[self.name]

    def client(self) -> BaseOAuth2[dict[str, Any]]:
        return _Client(
            self.client_id,
            self.client_secret,
            self.endpoints.authorize,
            self.endpoints.token,
            name=self.name,
            base_scopes=list(self.scopes),
            token_endpoint_auth_method="client_secret_post",
            timeout_seconds=self.timeout_seconds,
        )

    async def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        extras: dict[str, Any] = {}
        if self.name == "microsoft":
            extras["response_mode"] = "query"
        return await self.client().get_authorization_url(
            redirect_uri,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method="S256",
            extras_params=extras,
        )

    async def profile(self, *, code: str, redirect_uri: str, code_verifier: str) -> Profile:
        """Exchange the code, then read the user's id and email; an `OAuthFailure` when that fails."""
        token = await self._exchange(code, redirect_uri, code_verifier)
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OAuthFailure("provider_error", f"{self.display_name} answered the code exchange without a token.")
        async with self._http() as http:
            try:
                if self.name == "github":
                    return await _github_profile(http, self.endpoints.userinfo, access_token)
                claims = await _get_json(http, self.endpoints.userinfo, access_token)
                if self.name == "microsoft":
                    return _microsoft_profile(claims, _id_token_claims(token), self.client_id)
                return _oidc_profile(claims)
            except (httpx.HTTPError, ValueError, ValidationError) as exc:
                raise OAuthFailure(
                    "provider_error", f"{self.display_name} did not return your profile. Try again."
                ) from exc

    async def _exchange(self, code: str, redirect_uri: str, code_verifier: str) -> OAuth2Token:
        try:
            token = await self.client().get_access_token(code, redirect_uri, code_verifier)
        except GetAccessTokenError as exc:
            if exc.response is not None and 400 <= exc.response.status_code < 500:
                raise _refused_code(self) from exc
            raise OAuthFailure(
                "provider_error", f"{self.display_name} could not be reached to finish signing in. Try again."
            ) from exc
        if "error" in token:  # GitHub answers a refused code with 200 and an `error` field
            raise _refused_code(self)
        return token

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as http:
            yield http


class _Client(BaseOAuth2[dict[str, Any]]):
    """httpx-oauth's generic client with a timeout of our choosing."""

    def __init__(self, *args: Any, timeout_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout = timeout_seconds

    def get_httpx_client(self) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return httpx.AsyncClient(timeout=self._timeout)


def _refused_code(provider: Provider) -> OAuthFailure:
    return OAuthFailure(
        "invalid_grant",
        f"{provider.display_name} refused the sign-in code: it expired or was already used. Sign in again.",
    )


def configured(settings: OAuthSettings, name: str) -> Provider | None:
    """The provider called `name`, or None while its client id or secret is not set."""
    timeout = settings.oauth_http_timeout_seconds
    if name == "google" and settings.google_client_id and settings.google_client_secret:
        base = settings.google_oauth_base_url
        return Provider(
            "google",
            settings.google_client_id,
            settings.google_client_secret.get_secret_value(),
            Endpoints(
                authorize=f"{base or 'https://accounts.google.com'}/o/oauth2/v2/auth",
                token=f"{base or 'https://oauth2.googleapis.com'}/token",
                userinfo=f"{base or 'https://openidconnect.googleapis.com'}/v1/userinfo",
            ),
            ("openid", "email", "profile"),
            timeout,
        )
    if name == "microsoft" and settings.microsoft_client_id and settings.microsoft_client_secret:
        base = settings.microsoft_oauth_base_url
        login = f"{base or 'https://login.microsoftonline.com'}/{settings.microsoft_tenant}/oauth2/v2.0"
        return Provider(
            "microsoft",
            settings.microsoft_client_id,
            settings.microsoft_client_secret.get_secret_value(),
            Endpoints(
                authorize=f"{login}/authorize",
                token=f"{login}/token",
                userinfo=f"{base or 'https://graph.microsoft.com'}/oidc/userinfo",
            ),
            ("openid", "email", "profile"),
            timeout,
        )
    if name == "github" and settings.github_client_id and settings.github_client_secret:
        base = settings.github_oauth_base_url
        return Provider(
            "github",
            settings.github_client_id,
            settings.github_client_secret.get_secret_value(),
            Endpoints(
                authorize=f"{base or 'https://github.com'}/login/oauth/authorize",
                token=f"{base or 'https://github.com'}/login/oauth/access_token",
                userinfo=base or "https://api.github.com",
            ),
            ("read:user", "user:email"),
            timeout,
        )
    return None


# --- reading profiles --------------------------------------------------------------------------


class _Claims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sub: str
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None


class _MicrosoftIdToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    aud: str | None = None
    tid: str | None = None
    email_verified: bool | None = None
    xms_edov: bool | None = None  # optional claim: the email's domain is verified by the tenant


class _GitHubUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    login: str
    name: str | None = None


class _GitHubEmail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str
    primary: bool = False
    verified: bool = False


_GITHUB_EMAILS = TypeAdapter(list[_GitHubEmail])


async def _get_json(http: httpx.AsyncClient, url: str, access_token: str, **headers: str) -> Any:
    response = await http.get(url, headers={"Authorization": f"Bearer {access_token}", **headers})
    response.raise_for_status()
    return response.json()


def _oidc_profile(claims: Any) -> Profile:
    parsed = _Claims.model_validate(claims)
    return Profile(parsed.sub, parsed.email, parsed.email_verified is True, parsed.name)


def _microsoft_profile(claims: Any, id_token: dict[str, Any], client_id: str) -> Profile:
    """Microsoft's `email` is verified only when it says so: `email_verified`, the `xms_edov` claim, or a
    personal account. Its userinfo carries no such flag, so it is read from the ID token."""
    parsed = _Claims.model_validate(claims)
    token = _MicrosoftIdToken.model_validate(id_token)
    if token.aud is not None and token.aud != client_id:
        raise ValueError("the ID token was issued to another client")
    verified = (
        parsed.email_verified is True
        or token.email_verified is True
        or token.xms_edov is True
        or token.tid == MICROSOFT_CONSUMER_TENANT
    )
    return Profile(parsed.sub, parsed.email, verified, parsed.name)


def _id_token_claims(token: OAuth2Token) -> dict[str, Any]:
    """The ID token's claims, unverified: it came straight from the token endpoint over TLS, which OpenID
    Connect Core 3.1.3.7 accepts in place of checking its signature. Absent or unreadable: no claims."""
    raw = token.get("id_token")
    return unverified_claims(raw) if isinstance(raw, str) else {}


async def _github_profile(http: httpx.AsyncClient, api: str, access_token: str) -> Profile:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    user = _GitHubUser.model_validate(await _get_json(http, f"{api}/user", access_token, **headers))
    emails = _GITHUB_EMAILS.validate_python(await _get_json(http, f"{api}/user/emails", access_token, **headers))
    primary = next((e for e in emails if e.primary), None)
    return Profile(
        str(user.id),
        primary.email if primary else None,
        primary is not None and primary.verified,
        user.name or user.login,
    )
