from __future__ import annotations

from tests.fixtures.stripe_fixture import stripe_client, stripe_server, stripe_server_session

__all__ = ["stripe_client", "stripe_server", "stripe_server_session"]
