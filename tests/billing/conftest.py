from __future__ import annotations

from tests.billing.stripe_mode import http, owner, stripe_app
from tests.fixtures.stripe_fixture import stripe_client, stripe_server, stripe_server_session

__all__ = ["http", "owner", "stripe_app", "stripe_client", "stripe_server", "stripe_server_session"]
