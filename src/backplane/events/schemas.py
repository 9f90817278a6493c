from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["evt_1a2b3c4d5e6f7a8b9c0d1e2f"])
    type: str = Field(examples=["job.completed"])
    data: dict[str, Any] = Field(
        description="What the event's webhook delivers as `data`.",
        examples=[{"id": "job_3f9c2a7b1e4d5c6a7b8c9d0e", "status": "completed"}],
    )
    livemode: bool
    created_at: datetime
