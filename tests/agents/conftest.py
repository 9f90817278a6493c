"""Agents run as a worker runs them: an AgentContext with real settings, a real HTTP client, files on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backplane.agents.base import AgentContext, AgentFile, LLMCall
from backplane.core.config import Settings
from backplane.files.types import detect


@pytest.fixture
def agent_settings(settings: Settings) -> Settings:
    """The test settings with loopback fetch targets allowed (the stand-in sites run on 127.0.0.1)."""
    return settings.model_copy(update={"webhook_allow_private_targets": True})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


MakeContext = Callable[..., AgentContext]


@pytest.fixture
def make_ctx(agent_settings: Settings, http: httpx.AsyncClient, tmp_path: Path) -> MakeContext:
    """`make_ctx(files={"name.pdf": bytes}, settings=..., llm=..., now=...)`: files are written to disk
    and typed from their bytes as uploads are; `read_file` reads them back."""
    folder = tmp_path / "agent-files"
    folder.mkdir()

    def make(
        files: dict[str, bytes] | None = None,
        *,
        settings: Settings | None = None,
        llm: LLMCall | None = None,
        now: Callable[[], Any] | None = None,
    ) -> AgentContext:
        agent_files = []
        for number, (name, data) in enumerate((files or {}).items(), start=1):
            kind = detect(data[:8192], name)
            assert kind is not None, f"{name} is not a supported file"
            (folder / f"file_{number}").write_bytes(data)
            agent_files.append(
                AgentFile(
                    id=f"file_{number}",
                    filename=name,
                    content_type=kind.content_type,
                    type_name=kind.name,
                    size_bytes=len(data),
                    storage_key=f"file_{number}",
                )
            )

        async def read_file(file: AgentFile) -> bytes:
            return (folder / file.storage_key).read_bytes()

        return AgentContext(
            job_id="job_test",
            settings=settings or agent_settings,
            http=http,
            files=agent_files,
            read_file=read_file,
            llm=llm,
            now=now,
        )

    return make
