"""The licensing guide's authentication limit: 5 requests a minute per client address, on both surfaces."""

from __future__ import annotations

from fastapi import Depends

from backplane.core.ratelimit import Limit, per_ip

AUTHENTICATION = Limit("authentication", 5)
AuthenticationLimit = Depends(per_ip(AUTHENTICATION))

# The dashboard's token refresh and sign-out (`/v1/auth/session/refresh`, `DELETE /v1/auth/session`): a page
# refreshes on every load and in every tab, so the sign-in limit would sign out someone who opens six tabs; the
# cookie (a 256-bit signed token) is what guards them, not the rate.
BROWSER_SESSION = Limit("browser_session", 60, burst=20)
BrowserSessionLimit = Depends(per_ip(BROWSER_SESSION))
