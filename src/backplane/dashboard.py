"""`/dashboard/`: the web dashboard (dashboard/, built by `make install` into DASHBOARD_DIR), served by the API.

A single-page app: any path under /dashboard/ that is not a file of the build gets its index.html, whose
script routes in the browser. Vite names the files under assets/ by their content's hash, so those are
cached for a year; index.html (and any other unhashed file) is revalidated on every load, so a new build
shows at once. Every answer carries a Content Security Policy that lets the page load scripts, styles and
data from this service only, and no inline script. Starlette's StaticFiles serves a folder, but not the
fallback, the per-file cache policy, or the 503 while the folder is missing, hence this small router.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from backplane.access.requirements import Public
from backplane.core.config import Settings

logger = logging.getLogger(__name__)

PREFIX = "/dashboard"
ASSETS = "assets"
HASHED_CACHE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
NOT_BUILT = (
    "The dashboard is not built on this server. Run `make install` (it builds dashboard/ with npm), "
    "or point DASHBOARD_DIR at a built copy, then reload this page.\n"
)

_PUBLIC = [Public("the dashboard's static page and assets; the page signs in through the API")]
router = APIRouter(include_in_schema=False, dependencies=_PUBLIC)


def _with_policy(response: Response, cache_control: str) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = cache_control
    return response


def _file_in(root: Path, path: str) -> Path | None:
    """The file `path` names inside `root`, or None: missing, a folder, or outside `root` (`..`, a symlink
    out, an absolute path)."""
    try:
        candidate = (root / path).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    except (OSError, ValueError):  # a NUL byte, a name too long
        return None
    return None


@router.api_route(PREFIX, methods=["GET", "HEAD"])
async def dashboard_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD"])
async def dashboard_page(path: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    root = settings.dashboard_dir.resolve()
    index = root / "index.html"
    if not settings.dashboard_built:
        logger.warning("GET /dashboard/: no built dashboard in DASHBOARD_DIR=%s; run `make install`", root)
        return _with_policy(PlainTextResponse(NOT_BUILT, status_code=503), "no-store")
    found = _file_in(root, path) if path else None
    if found is not None:
        hashed = path.startswith(f"{ASSETS}/")
        return _with_policy(FileResponse(found), HASHED_CACHE if hashed else REVALIDATE)
    if path.startswith(f"{ASSETS}/"):
        # A missing script or stylesheet must not receive the page itself (served as HTML, it breaks the app
        # with a confusing type error): an old tab asking for a previous build's file learns it is gone.
        return _with_policy(PlainTextResponse("Not found.\n", status_code=404), "no-store")
    return _with_policy(FileResponse(index, media_type="text/html"), REVALIDATE)
