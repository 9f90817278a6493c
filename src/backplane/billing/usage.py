"""Metered usage reported to Stripe as billing meter events.

Every report carries an `identifier` that Stripe keeps unique (for at least 24 hours): a report
retried with the same identifier, by the stripe library or by the arq task, is never billed twice.
Callers therefore pass an identifier that is stable for the thing being billed, such as
`job_<job id>` for a completed job, never a fresh random value per attempt.
"""

from __future__ import annotations

import logging

import stripe

logger = logging.getLogger(__name__)


REPORT_USAGE = "billing.report_usage"  # the arq task that runs `report_usage` (billing/tasks.py)


async def report_usage(
    client: stripe.StripeClient | None,
    *,
    customer_id: str | None,
    event_name: str,
    value: int,
    identifier: str,
    livemode: bool,
) -> bool:
    """Send one meter event of `value` for `customer_id`; True once Stripe has accepted it.

    Not reported (False, and logged why): test-mode resources (`livemode` False), local billing
    mode (no client) and organizations without a Stripe customer. Stripe errors propagate after
    the library's own retries (`max_network_retries`).
    """
    if not livemode:
        logger.info("usage %s (%s=%d) not reported: test-mode resource", identifier, event_name, value)
        return False
    if client is None:
        logger.info("usage %s (%s=%d) not reported: local billing mode", identifier, event_name, value)
        return False
    if customer_id is None:
        logger.info("usage %s (%s=%d) not reported: no Stripe customer", identifier, event_name, value)
        return False
    await client.v1.billing.meter_events.create_async(
        params={
            "event_name": event_name,
            "payload": {"value": str(value), "stripe_customer_id": customer_id},
            "identifier": identifier,
        }
    )
    logger.info("usage %s (%s=%d) reported for customer %s", identifier, event_name, value, customer_id)
    return True
