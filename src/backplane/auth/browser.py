"""A browser's sign-in (the dashboard's): the refresh token in an httpOnly cookie, CSRF by signed double submit.

`POST /v1/auth/session` signs in as `POST /v1/auth/login` does, but the refresh token goes into the cookie
`bp_refresh` (HttpOnly, SameSite=Strict, scoped to `/v1/auth/session`), never into the body, and the
cookie `bp_csrf` carries a token the page's script reads and sends back as `X-CSRF-Token`. The CSRF
token is a random nonce with an HMAC over it and the refresh token's id (OWASP's "signed double-submit
cookie"): a token planted by someone who can write cookies for the domain but does not hold SECRET_KEY
is refused, and one sign-in's token does not work with another's refresh cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from backplane.core.config import Settings
from backplane.core.errors import AppError
from backplane.core.security import InvalidToken, decode_token

REFRESH_COOKIE = "bp_refresh"
CSRF_COOKIE = "bp_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_COOKIE_PATH = "/v1/auth/session"
_CSRF_CONTEXT = b"backplane.browser-session.csrf:"


class CsrfFailed(AppError):
    status_code, code, title = 403, "CSRF_FAILED", "Forbidden"
    default_message = (
        "The request failed the CSRF check: send the `bp_csrf` cookie's value in the `X-CSRF-Token` header, "
        "from a page of this service."
    )


def _mac(settings: Settings, nonce: str, refresh_jti: str) -> str:
    message = _CSRF_CONTEXT + nonce.encode() + b"|" + refresh_jti.encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def new_csrf_token(settings: Settings, refresh_jti: str) -> str:
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_mac(settings, nonce, refresh_jti)}"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_secure(request: Request, settings: Settings) -> bool:
    """Cookies get `Secure` when the service is public over https or this request came over https."""
    return settings.public_base_url.startswith("https://") or request.url.scheme == "https"


def _own_origins(request: Request, settings: Settings) -> set[str]:
    """This service's origins: PUBLIC_BASE_URL's, and the one the browser addressed (its `Host`, which a page
    of another site cannot choose for a request to us)."""
    origins = {_origin(settings.public_base_url)}
    host = request.headers.get("host")
    if host:
        origins.add(f"{request.url.scheme}://{host}".lower())
    return {o for o in origins if o is not None}


def check_csrf(request: Request, settings: Settings, header: str | None) -> None:
    """The request's `X-CSRF-Token` equals its `bp_csrf` cookie (constant time) and comes from a page of
    this service, when the browser says where from (`Origin`, else `Referer`). The token's binding to the
    refresh token is checked by `check_binding` once the refresh token is known."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not header or not cookie or not hmac.compare_digest(header.encode(), cookie.encode()):
        raise CsrfFailed()
    sent_from = request.headers.get("origin") or request.headers.get("referer")
    if sent_from is not None and _origin(sent_from) not in _own_origins(request, settings):
        raise CsrfFailed("The request comes from a page of another site.")


def _refresh_jti(settings: Settings, refresh_token: str) -> str | None:
    try:
        return decode_token(refresh_token, "refresh", settings.secret_key, issuer=settings.token_issuer).jti
    except InvalidToken:
        return None


def check_binding(settings: Settings, csrf_token: str, refresh_token: str) -> None:
    """`csrf_token` was made by this service for `refresh_token`'s sign-in."""
    jti = _refresh_jti(settings, refresh_token)
    if jti is None:
        return  # not a live refresh token of ours: the caller answers 401 for it
    nonce, _, mac = csrf_token.partition(".")
    if not nonce or not hmac.compare_digest(mac.encode(), _mac(settings, nonce, jti).encode()):
        raise CsrfFailed()


def set_session_cookies(response: Response, request: Request, settings: Settings, refresh_token: str) -> None:
    refresh_jti = _refresh_jti(settings, refresh_token)
    assert refresh_jti is not None, "a refresh token just issued"
    secure = is_secure(request, settings)
    max_age = settings.auth.refresh_token_ttl_seconds
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=max_age,
        path=REFRESH_COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        new_csrf_token(settings, refresh_jti),
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,  # the page's script reads it to send it back as X-CSRF-Token
        samesite="strict",
    )


def clear_session_cookies(response: Response, request: Request, settings: Settings) -> None:
    secure = is_secure(request, settings)
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=False, samesite="strict")
