"""The ASGI application: `create_app()` builds both API surfaces over one domain core."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from backplane import __version__
from backplane.access.openapi import install_access_openapi
from backplane.agents import registry as agents
from backplane.api_docs import install_docs
from backplane.api_keys.endpoints import router as api_keys_router
from backplane.auth import endpoints as auth_endpoints
from backplane.auth import session_endpoints
from backplane.billing import connect_endpoints, invoice_endpoints
from backplane.billing import endpoints as billing_endpoints
from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
from backplane.core import metrics, versioned
from backplane.core.body_limit import install_body_limit
from backplane.core.client_ip import parse_networks
from backplane.core.config import Settings, get_settings
from backplane.core.crypto import Encryptor
from backplane.core.db import create_engine, create_sessionmaker
from backplane.core.errors import install_error_handlers
from backplane.core.openapi import install_openapi
from backplane.core.queue import create_queue
from backplane.core.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from backplane.core.redis import ScriptBatcher, create_redis
from backplane.core.request_id import RequestIdMiddleware
from backplane.core.security_headers import SecurityHeadersMiddleware
from backplane.core.tracing import install as install_tracing
from backplane.core.tracing import instrument_engine
from backplane.dashboard import router as dashboard_router
from backplane.events.endpoints import router as events_router
from backplane.events.endpoints import types_router as event_types_router
from backplane.files.endpoints import router as files_router
from backplane.files.endpoints import signed_uploads
from backplane.files.storage import create_storage
from backplane.files.upload_endpoints import router as uploads_router
from backplane.files.upload_endpoints import signed_parts
from backplane.health import endpoints as health_endpoints
from backplane.idempotency.service import install_idempotency
from backplane.jobs import endpoints as jobs_endpoints
from backplane.jobs.lifecycle import Dispatcher
from backplane.licenses.endpoints import router as licenses_router
from backplane.licenses.endpoints import seats_router
from backplane.licenses.fast_path import SeatFastPath
from backplane.licenses.files import router as license_files_router
from backplane.licenses.leases import Leases
from backplane.licenses.recovery import LeaseRestorer
from backplane.licenses.repository import session_history
from backplane.oauth.endpoints import router as oauth_router
from backplane.organizations.endpoints import invitations_router
from backplane.organizations.endpoints import router as organizations_router
from backplane.staff.endpoints import router as staff_router
from backplane.webhooks.endpoints import router as webhooks_router

logger = logging.getLogger(__name__)

DESCRIPTION = """
Backplane serves two API surfaces over one domain core.

* **Licensing** (`/api/v1/...`, trailing slashes): JWT pair `{access, refresh}` from
  `/api/v1/auth/token/`; errors `{"error", "detail"}`, field errors 400 `{"errors": {field: [msg]}}`.
* **Platform** (`/v1/...`): API keys `coexai_live_…` / `coexai_test_…` or JWTs from `/v1/auth/login`;
  errors `{"error": {"code", "message", "details", "request_id"}}`, field errors 422 `VALIDATION_ERROR`.

Every protected route takes `Authorization: Bearer <access JWT or API key>`. JWT callers choose an
organization with `X-Organization-ID` (default: their oldest membership) and may act in test mode with
`X-Backplane-Mode: test` (an API key's mode is its own). Every response carries `X-Request-ID`.
"""

TAGS = [
    {
        "name": "Licensing: authentication",
        "description": "Register, tokens, email verification, password reset.",
    },
    {
        "name": "Authentication",
        "description": "Platform sign-in (password, or Google, Microsoft and GitHub) and token refresh.",
    },
    {"name": "Users", "description": "The caller."},
    {
        "name": "Organizations",
        "description": "Tenants, members and roles (owner, admin, member, viewer).",
    },
    {
        "name": "API keys",
        "description": "Scoped, revocable keys; the full key is shown once.",
    },
    {"name": "Licenses", "description": "Software licenses and the public key check."},
    {"name": "License seats", "description": "Seats leased to machines; a lease expires unless heartbeated."},
    {"name": "Subscriptions", "description": "Plans, checkout, seats and cancellation."},
    {"name": "Stripe webhooks", "description": "Stripe's events in, verified and applied once."},
    {"name": "Files", "description": "Uploads for the agents: streamed, size-limited, type-checked."},
    {"name": "Webhooks", "description": "Signed event deliveries to your URLs, retried, every attempt logged."},
    {"name": "Events", "description": "Everything that happened, delivered or not."},
    {"name": "Health", "description": "Liveness and readiness."},
]


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes, as they are, onto the app.

    Each route of an APIRouter is complete when it is declared: its full path, the router's dependencies,
    tags and responses. `app.include_router` keeps the router instead and, for each app, builds its own copy
    of every route on first use, the whole dependency tree with a pydantic adapter per parameter: about a
    second of CPU per app, at every start of `serve` and of every test's app. Nothing of ours needs that copy
    (no router is included with options, nothing overrides dependencies), so the routes are added as they are.
    tests/test_docs.py checks the OpenAPI document, which lists every route, route by route."""
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.encryptor = Encryptor(settings.encryption_key_ring)
        agents.load(test_agents=settings.agent_test_mode)
        app.state.engine = create_engine(settings)
        metrics.forget_dead_processes()
        metrics.declare_routes(app.routes)
        app.state.redis = create_redis(settings)
        app.state.queue = create_queue(settings.redis.url)
        app.state.sessionmaker = create_sessionmaker(app.state.engine, redis=app.state.redis, queue=app.state.queue)
        app.state.dispatcher = Dispatcher(app.state.sessionmaker, app.state.redis, app.state.queue, settings)
        # The seat scripts' batches: a client without a time-out on each read, each batch bounded as a whole.
        app.state.script_redis = create_redis(settings, timed_reads=False)
        script_batch = ScriptBatcher(app.state.script_redis, timeout=settings.redis.timeout_seconds)
        app.state.leases = Leases(app.state.redis, restore=LeaseRestorer(settings), batch=script_batch)
        app.state.shared_fills = versioned.SharedFills()
        app.state.session_history = session_history(settings)
        app.state.limiter = RateLimiter(app.state.redis)
        app.state.storage = await create_storage(settings)
        instrument_engine(app.state.engine)  # with tracing on (core/tracing.py)
        instrument_engine(app.state.session_history.engine)
        app.state.stripe = create_stripe_client(settings.stripe)
        logger.info(
            "billing mode: %s",
            "local (checkouts complete on this service, without payment)" if app.state.stripe is None else "stripe",
        )
        app.state.trusted_proxies = parse_networks(settings.trusted_proxies.split(","))
        logger.info("backplane %s started (environment=%s)", __version__, settings.environment)
        # Everything built so far (modules, agents, routes) lives as long as the process: out of the
        # cyclic collector's sight, so that its collections, which requests trigger, walk only what
        # requests allocate (a full collection otherwise walks the whole heap, pausing every request).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # what start-up froze is collectable again once the app stops (tests start many)
            await app.state.storage.aclose()
            await close_stripe_client(app.state.stripe)
            await app.state.queue.aclose(close_connection_pool=True)
            await app.state.redis.aclose()
            await app.state.script_redis.aclose()
            await app.state.engine.dispose()
            await app.state.session_history.aclose()
            await app.state.session_history.engine.dispose()

    app = FastAPI(
        title="Backplane API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # api_docs.py serves the pages with their assets, when the docs are public
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_public_enabled else None,
    )
    install_tracing(app)  # OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set
    if settings.seat_fast_path:  # the innermost middleware: every other one wraps the seat routes as before
        app.add_middleware(SeatFastPath)
    install_idempotency(app)
    app.add_middleware(RateLimitHeadersMiddleware)
    install_body_limit(app, settings.max_request_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.public_base_url.startswith("https://"))
    app.add_middleware(metrics.RequestMetrics)  # outermost of ours: times everything the others do
    install_error_handlers(app)
    install_openapi(app)
    install_access_openapi(app)
    for router in (
        # The hot paths first: routing tries the routes in this order.
        health_endpoints.licensing,
        health_endpoints.platform,
        seats_router,
        auth_endpoints.licensing,
        auth_endpoints.platform,
        session_endpoints.router,
        oauth_router,
        organizations_router,
        invitations_router,
        staff_router,
        api_keys_router,
        license_files_router,  # before licenses_router: `public-key/` is not an id
        uploads_router,  # before files_router: `uploads` is not a file id
        files_router,
        signed_uploads,
        signed_parts,
        jobs_endpoints.router,
        jobs_endpoints.agents_router,
        licenses_router,
        billing_endpoints.licensing,
        billing_endpoints.platform,
        billing_endpoints.usage_router,
        billing_endpoints.stripe_webhooks,
        invoice_endpoints.licensing,
        invoice_endpoints.platform,
        connect_endpoints.platform,
        connect_endpoints.connect_webhooks,
        webhooks_router,
        events_router,
        event_types_router,
        dashboard_router,
    ):
        add_routes(app, router)
    if settings.metrics_port is None:
        add_routes(app, health_endpoints.metrics)
    if settings.docs_public_enabled:
        install_docs(app)
    return app
