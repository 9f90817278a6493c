"""The plans, defined once: the rate limiter, the job queue and uploads all read this table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MB = 1024 * 1024


class PlanName(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


@dataclass(frozen=True, slots=True)
class Plan:
    name: PlanName
    requests_per_minute: int
    burst: int
    concurrent_jobs: int
    jobs_per_month: int | None  # None: unlimited
    max_upload_bytes: int


PLANS: dict[PlanName, Plan] = {
    PlanName.free: Plan(PlanName.free, 60, 10, 1, 100, 25 * MB),
    PlanName.pro: Plan(PlanName.pro, 600, 100, 5, 10_000, 100 * MB),
    PlanName.enterprise: Plan(PlanName.enterprise, 6000, 1000, 25, None, 500 * MB),
}
DEFAULT_PLAN = PLANS[PlanName.free]
