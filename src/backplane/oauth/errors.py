"""How a sign-in fails: not an HTTP error, but a redirect to the frontend with `error` and `error_description`."""

from __future__ import annotations

from backplane.core.errors import NotFound


class OAuthFailure(Exception):
    """Ends the sign-in on the frontend callback with `?error=<error>&error_description=<description>`."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class ProviderNotConfigured(NotFound):
    code = "PROVIDER_NOT_CONFIGURED"
