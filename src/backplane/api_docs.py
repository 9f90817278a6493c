"""/docs (Swagger UI) and /redoc (ReDoc) with their scripts, styles and favicon served by this service.

FastAPI's own pages load them from a CDN, so on a machine without internet access, or behind a strict
Content Security Policy, they stay blank. The assets come from the `fastapi-offline` package (pinned in
uv.lock) and are served under /docs/assets/; each page carries a Content Security Policy that lets it load
from this service only, its own inline start-up script allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from backplane.access.requirements import Public

ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# ReDoc's sidebar shows a logo from its vendor's CDN, with no option to turn it off; pointed at an empty
# data: URL it fails to load and ReDoc hides it (tests/e2e/test_docs_browser.py fails if it comes back).
_REDOC_LOGO = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@cache
def _redoc_script() -> bytes:
    return (ASSETS_DIR / "redoc.standalone.js").read_bytes().replace(_REDOC_LOGO, b'src:"data:,"')


def content_security_policy(html: str) -> str:
    """Nothing from another host; inline scripts only those of this page (by hash); inline styles and
    data: images (both UIs use them), ReDoc's search in a blob: worker."""
    scripts = ["'self'"] + [
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(scripts)}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = content_security_policy(bytes(response.body).decode())
    return response


def install_docs(app: FastAPI) -> None:
    """The two pages, the OAuth2 redirect page and their assets; call only when the docs are public."""
    assert app.openapi_url is not None, "the docs pages need the OpenAPI document"
    openapi_url = app.openapi_url
    public = [Public("the API documentation, served only while DOCS_PUBLIC is on")]

    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False, dependencies=public)
    async def redoc_script() -> Response:
        return Response(_redoc_script(), media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def _asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @app.get("/docs", include_in_schema=False, dependencies=public)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=OAUTH2_REDIRECT_URL,
                swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
                swagger_css_url=_asset(request, "swagger-ui.css"),
                swagger_favicon_url=_asset(request, "favicon.png"),
                swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False, dependencies=public)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False, dependencies=public)
    async def redoc(request: Request) -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=_asset(request, "redoc.standalone.js"),
                redoc_favicon_url=_asset(request, "favicon.png"),
                with_google_fonts=False,
            )
        )
