"""The official `stripe` library, configured once: async (httpx), pointed at STRIPE_API_BASE if set."""

from __future__ import annotations

import stripe
from stripe._base_address import BaseAddresses

from backplane.core.config import StripeSettings


def create_stripe_client(settings: StripeSettings) -> stripe.StripeClient | None:
    """None in local billing mode."""
    if settings.local_mode or settings.stripe_secret_key is None:
        return None
    base_addresses: BaseAddresses = {}
    if settings.stripe_api_base:
        base = settings.stripe_api_base.rstrip("/")
        base_addresses = {"api": base, "meter_events": base, "files": base}
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base_addresses,
        http_client=stripe.HTTPXClient(timeout=20),
        max_network_retries=2,
    )


async def close_stripe_client(client: stripe.StripeClient | None) -> None:
    """Close the HTTP connections of a client from `create_stripe_client`.

    The library has no public close, so this reaches its requestor's HTTP client.
    """
    if client is None:
        return
    http_client = client._requestor._client
    if http_client is not None:
        await http_client.close_async()
