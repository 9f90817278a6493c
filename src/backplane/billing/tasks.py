"""arq tasks of billing. The worker keeps one Stripe client in `ctx["stripe"]` (None in local mode)."""

from __future__ import annotations

import logging
from typing import Any

import stripe
from arq import Retry

from backplane.billing.sync import reconcile_all
from backplane.billing.usage import report_usage

logger = logging.getLogger(__name__)

RETRY_DELAYS_SECONDS: tuple[float, ...] = (10, 60, 300, 1800)  # after the 1st, 2nd, ... failed try


def _retry_delay(job_try: int) -> float:
    return RETRY_DELAYS_SECONDS[min(job_try, len(RETRY_DELAYS_SECONDS)) - 1]


def _is_transient(error: stripe.StripeError) -> bool:
    """Worth another try later: network trouble, rate limiting, conflicts and Stripe's own 5xx."""
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    status = error.http_status
    return status is None or status == 409 or status >= 500


async def report_usage_task(
    ctx: dict[str, Any],
    *,
    organization_id: str,
    customer_id: str | None,
    event_name: str,
    value: int,
    identifier: str,
    livemode: bool,
) -> bool:
    """`billing.report_usage`: one meter event, e.g. when a job completes.

    Enqueue it with a stable `identifier` (`job_<job id>`): arq may run it more than once (a retry
    after a timeout, a worker killed mid-task) and Stripe keeps one event per identifier, so the
    organization is billed once. Transient Stripe failures are retried with backoff (arq `Retry`,
    up to the function's max_tries); a request Stripe refuses (4xx) is logged and not retried.
    """
    try:
        return await report_usage(
            ctx["stripe"],
            customer_id=customer_id,
            event_name=event_name,
            value=value,
            identifier=identifier,
            livemode=livemode,
        )
    except stripe.StripeError as error:
        job_try = int(ctx.get("job_try", 1))
        if _is_transient(error):
            delay = _retry_delay(job_try)
            logger.warning(
                "usage %s of organization %s not reported (try %d: %s); retrying in %g s",
                identifier,
                organization_id,
                job_try,
                error,
                delay,
            )
            raise Retry(defer=delay) from error
        logger.error(
            "usage %s of organization %s refused by Stripe (HTTP %s): %s",
            identifier,
            organization_id,
            error.http_status,
            error,
        )
        return False


async def reconcile_task(ctx: dict[str, Any]) -> dict[str, int]:
    """`billing.reconcile` (daily cron): compare every non-free subscription with Stripe and repair drift."""
    results = await reconcile_all(ctx["sessionmaker"], ctx["stripe"], ctx["redis_app"], ctx["settings"])
    repaired = sum(bool(r["repaired"]) for r in results)
    failed = sum("error" in r for r in results)
    logger.info("billing reconciliation: %d checked, %d repaired, %d failed", len(results), repaired, failed)
    return {"checked": len(results), "repaired": repaired, "failed": failed}
