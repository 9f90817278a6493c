"""Imports every model module so that `Base.metadata` is complete (Alembic, tests)."""

from backplane.api_keys import models as api_keys  # noqa: F401
from backplane.auth import models as auth  # noqa: F401
from backplane.billing import models as billing  # noqa: F401
from backplane.core.db import Base
from backplane.events import models as events  # noqa: F401
from backplane.files import models as files  # noqa: F401
from backplane.idempotency import models as idempotency  # noqa: F401
from backplane.jobs import models as jobs  # noqa: F401
from backplane.licenses import models as licenses  # noqa: F401
from backplane.organizations import models as organizations  # noqa: F401
from backplane.staff import models as staff  # noqa: F401
from backplane.webhooks import models as webhooks  # noqa: F401

metadata = Base.metadata
