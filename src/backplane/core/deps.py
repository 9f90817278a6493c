"""Request dependencies every layer may use (the settings; the session and Redis live beside their clients)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.core.config import Settings


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]
