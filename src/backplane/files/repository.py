from __future__ import annotations

from backplane.core.tenancy import LivemodeRepository
from backplane.files.models import File


class FileRepository(LivemodeRepository[File]):
    """Files of one organization, and of one mode: test-mode keys see only test-mode files."""

    model = File
    id_prefix = "file"
