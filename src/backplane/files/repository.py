from __future__ import annotations

from backplane.core.tenancy import LivemodeRepository
from backplane.files.models import File, Upload


class FileRepository(LivemodeRepository[File]):
    """Files of one organization, and of one mode: test-mode keys see only test-mode files."""

    model = File
    id_prefix = "file"


class UploadRepository(LivemodeRepository[Upload]):
    """Multipart uploads of one organization and mode."""

    model = Upload
    id_prefix = "upl"
