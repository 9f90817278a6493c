from __future__ import annotations

from backplane.core.tenancy import LivemodeRepository
from backplane.jobs.models import Job


class JobRepository(LivemodeRepository[Job]):
    """Jobs of one organization, and of one mode: test-mode keys see only test-mode jobs."""

    model = Job
    id_prefix = "job"
