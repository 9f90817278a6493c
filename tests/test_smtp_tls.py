"""SMTP: STARTTLS whenever the server offers it; SMTP_TLS=true requires it."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from backplane.core.config import EmailSettings, Settings
from tests.fixtures.auth import Api
from tests.fixtures.net import free_port
from tests.fixtures.tls import self_signed_certificate


@dataclass
class Received:
    """What an SMTP server was sent, and whether each message came over TLS."""

    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.over_tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Received, int]]:
    """A loopback SMTP server; `offers_starttls` (indirect parameter) says whether it offers STARTTLS."""
    received = Received()
    tls_context = None
    if request.param == "offers_starttls":
        cert_path, key_path = self_signed_certificate(tmp_path)
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(cert_path, key_path)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # the client trusts it like a real CA's
    port = free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port, tls_context=tls_context)
    controller.start()
    yield received, port
    controller.stop()


@pytest.fixture
def smtp_tls() -> bool | None:
    return None


@pytest.fixture
def settings(settings: Settings, smtp_server: tuple[Received, int], smtp_tls: bool | None) -> Settings:
    email = EmailSettings(smtp_host="127.0.0.1", smtp_port=smtp_server[1], smtp_tls=smtp_tls)
    return settings.model_copy(update={"email": email})


async def _register(client: httpx.AsyncClient, run_tasks: Callable[[], Awaitable[int]]) -> None:
    await Api(client).register("mail-tls@example.com")
    await run_tasks()  # the verification email is sent by the worker


@pytest.mark.parametrize("smtp_server", ["offers_starttls"], indirect=True)
async def test_mail_goes_over_starttls_when_the_server_offers_it(
    client: httpx.AsyncClient, run_tasks: Callable[[], Awaitable[int]], smtp_server: tuple[Received, int]
) -> None:
    await _register(client, run_tasks)
    assert smtp_server[0].over_tls == [True]


@pytest.mark.parametrize("smtp_server", ["plain"], indirect=True)
async def test_mail_goes_in_the_clear_to_a_server_without_starttls(
    client: httpx.AsyncClient, run_tasks: Callable[[], Awaitable[int]], smtp_server: tuple[Received, int]
) -> None:
    await _register(client, run_tasks)
    assert smtp_server[0].over_tls == [False]


@pytest.mark.parametrize("smtp_tls", [True])
@pytest.mark.parametrize("smtp_server", ["plain"], indirect=True)
async def test_smtp_tls_true_sends_nothing_to_a_server_without_starttls(
    client: httpx.AsyncClient, run_tasks: Callable[[], Awaitable[int]], smtp_server: tuple[Received, int]
) -> None:
    await _register(client, run_tasks)
    assert smtp_server[0].over_tls == []


@pytest.mark.parametrize("smtp_tls", [True])
@pytest.mark.parametrize("smtp_server", ["offers_starttls"], indirect=True)
async def test_smtp_tls_true_sends_over_starttls(
    client: httpx.AsyncClient, run_tasks: Callable[[], Awaitable[int]], smtp_server: tuple[Received, int]
) -> None:
    await _register(client, run_tasks)
    assert smtp_server[0].over_tls == [True]


def test_smtp_tls_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EmailSettings().smtp_tls is None
    monkeypatch.setenv("SMTP_TLS", "true")
    assert EmailSettings().smtp_tls is True
    monkeypatch.delenv("SMTP_TLS")
    monkeypatch.setenv("SMTP_STARTTLS", "false")  # the name it had before
    assert EmailSettings().smtp_tls is False
