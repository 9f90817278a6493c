"""The licensing guide's authentication limit: 5 requests a minute per client address, on both surfaces."""

from __future__ import annotations

from fastapi import Depends

from backplane.core.ratelimit import Limit, per_ip

AUTHENTICATION = Limit("authentication", 5)
AuthenticationLimit = Depends(per_ip(AUTHENTICATION))
