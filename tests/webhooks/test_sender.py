"""One attempt's HTTP exchange (sender.py), against real loopback servers."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from backplane.core.config import Settings
from backplane.webhooks.sender import RESPONSE_BODY_LIMIT, new_client, send
from tests.fixtures.tls import self_signed_certificate


async def test_an_https_receiver_s_certificate_is_verified_before_anything_is_sent(
    settings: Settings, tmp_path: Path
) -> None:
    certificate, key = self_signed_certificate(tmp_path)  # for 127.0.0.1, signed by no one we trust
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(certificate, key)
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    allowed = settings.model_copy(update={"webhook_allow_private_targets": True})
    async with server, new_client(allowed) as client:
        result = await send(
            client, f"https://127.0.0.1:{port}/h", b"{}", {"Content-Type": "application/json"}, settings=allowed
        )
    assert (result.succeeded, result.status_code) == (False, None)
    assert result.error is not None and result.error.startswith("Could not connect"), result.error
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert requests == []  # not a byte of the request went out


async def test_an_attempt_asks_for_an_uncompressed_answer_and_keeps_only_its_first_2_kb(settings: Settings) -> None:
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        body = b"x" * 100_000
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    allowed = settings.model_copy(update={"webhook_allow_private_targets": True})
    async with server, new_client(allowed) as client:
        result = await send(
            client, f"http://127.0.0.1:{port}/h", b"{}", {"Content-Type": "application/json"}, settings=allowed
        )
    assert (result.succeeded, result.status_code, result.response_body) == (True, 200, "x" * RESPONSE_BODY_LIMIT)
    [head] = requests
    assert b"\r\nAccept-Encoding: identity\r\n" in head
