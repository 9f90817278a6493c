"""Signed license files: download, the public key, offline verification, and `backplane license verify`."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backplane.app import create_app
from backplane.core.config import Settings
from backplane.licenses import signing
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account, Api
from tests.licenses.conftest import create_license

THIRTY_DAYS = timedelta(days=30)


async def download(account: Account, license_id: str, client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    response = await (client or account.client).get(f"/api/v1/licenses/{license_id}/download/", headers=account.headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def served_public_key(client: httpx.AsyncClient) -> Ed25519PublicKey:
    response = await client.get("/api/v1/licenses/public-key/")
    assert response.status_code == 200, response.text
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(response.json()["public_key"]))


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_download_is_an_attachment_with_the_licenses_payload(owner: Account, client: httpx.AsyncClient) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    created = await create_license(owner, tier="enterprise", seats=7, expiry_date=expiry.isoformat())
    before = datetime.now(UTC).replace(microsecond=0)

    response = await client.get(f"/api/v1/licenses/{created['id']}/download/", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == f'attachment; filename="license-{created["key_string"]}.json"'
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert set(document) == {"format", "algorithm", "key_id", "payload", "signature"}
    assert (document["format"], document["algorithm"]) == ("backplane-license-v1", "Ed25519")
    payload = document["payload"]
    issued_at = when(payload["issued_at"])
    assert {k: v for k, v in payload.items() if k not in ("issued_at", "expires_at")} == {
        "id": created["id"],
        "key": created["key_string"],
        "tier": "enterprise",
        "seats": 7,
        "expiry": expiry.isoformat().replace("+00:00", "Z"),
        "organization": owner.organization_id,
        "livemode": True,
    }
    assert before <= issued_at <= datetime.now(UTC)
    assert payload["issued_at"].endswith("Z") and payload["expires_at"].endswith("Z")
    assert when(payload["expires_at"]) == issued_at + THIRTY_DAYS  # LICENSE_FILE_TTL_SECONDS by default


async def test_the_file_verifies_with_the_served_public_key(owner: Account, client: httpx.AsyncClient) -> None:
    """Checked with `cryptography` alone, as a customer's program would, not with our own verifier."""
    created = await create_license(owner)
    document = await download(owner, created["id"])

    served = await client.get("/api/v1/licenses/public-key/")  # public: no credentials
    assert served.status_code == 200, served.text
    body = served.json()
    assert set(body) == {"algorithm", "key_id", "public_key_pem", "public_key"}
    assert body["algorithm"] == "Ed25519" and body["key_id"] == document["key_id"]
    raw = base64.b64decode(body["public_key"])
    assert len(raw) == 32
    key = Ed25519PublicKey.from_public_bytes(raw)
    from_pem = serialization.load_pem_public_key(body["public_key_pem"].encode())
    assert isinstance(from_pem, Ed25519PublicKey)
    assert from_pem.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw

    canonical = json.dumps(document["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    key.verify(base64.b64decode(document["signature"]), canonical)  # raises if it does not match
    assert signing.verify_license_file(document, key).ok


async def test_a_changed_payload_no_longer_matches_its_signature(owner: Account, client: httpx.AsyncClient) -> None:
    created = await create_license(owner, seats=5)
    document = await download(owner, created["id"])
    key = await served_public_key(client)

    tampered = copy.deepcopy(document)
    tampered["payload"]["seats"] = 500
    result = signing.verify_license_file(tampered, key)
    assert (result.ok, result.code, result.reason) == (
        False,
        "BAD_SIGNATURE",
        "signature does not match: the file was modified",
    )
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(tampered["signature"]), signing.canonical_bytes(tampered["payload"]))

    extended = copy.deepcopy(document)
    extended["payload"]["expires_at"] = "2099-01-01T00:00:00Z"
    assert signing.verify_license_file(extended, key).code == "BAD_SIGNATURE"

    stranger_key = Ed25519PrivateKey.generate().public_key()
    other = signing.verify_license_file(document, stranger_key)
    assert other.code == "BAD_SIGNATURE"
    assert other.reason == (
        f"signature does not match: the file names signing key {document['key_id']!r}, "
        f"this public key is {signing.key_id(stranger_key)!r}"
    )


async def test_verify_names_what_is_wrong_with_a_malformed_file(owner: Account, client: httpx.AsyncClient) -> None:
    document = await download(owner, (await create_license(owner))["id"])
    key = await served_public_key(client)

    def reason(data: object) -> str | None:
        result = signing.verify_license_file(data, key)
        assert not result.ok
        return result.reason

    assert reason([document]) == "not a license file: expected a JSON object, got an array"
    assert reason({"payload": {}}) == "not a license file: missing 'format', 'signature'"
    assert reason({**document, "format": "other-v9"}) == (
        "unknown license file format 'other-v9' (expected 'backplane-license-v1')"
    )
    assert reason({**document, "algorithm": "RS256"}) == "unsupported signature algorithm 'RS256' (expected 'Ed25519')"
    assert reason({**document, "payload": "x"}) == "not a license file: 'payload' is a string, not an object"
    assert reason({**document, "signature": "not base64!"}) == (
        "not a license file: 'signature' is not base64 of 64 bytes"
    )


async def test_a_file_expires_after_the_configured_ttl(owner: Account, settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"license_file_ttl_seconds": 60}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as short_client:
            created = await create_license(owner)
            document = await download(owner, created["id"], short_client)
            key = await served_public_key(short_client)

    issued_at = when(document["payload"]["issued_at"])
    expires_at = when(document["payload"]["expires_at"])
    assert expires_at == issued_at + timedelta(seconds=60)
    assert signing.verify_license_file(document, key, now=issued_at + timedelta(seconds=59)).ok
    late = signing.verify_license_file(document, key, now=expires_at)
    assert (late.code, late.reason) == (
        "FILE_EXPIRED",
        f"file expired on {document['payload']['expires_at']}; download a fresh one",
    )


async def test_a_file_never_outlives_its_license(owner: Account, client: httpx.AsyncClient) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    created = await create_license(owner, expiry_date=expiry.isoformat())
    document = await download(owner, created["id"])
    key = await served_public_key(client)

    assert when(document["payload"]["expires_at"]) == expiry  # not 30 days after issue
    assert signing.verify_license_file(document, key, now=expiry - timedelta(seconds=1)).ok
    result = signing.verify_license_file(document, key, now=expiry + timedelta(days=1))
    assert (result.code, result.reason) == ("LICENSE_EXPIRED", f"license expired on {document['payload']['expiry']}")


async def test_no_file_is_signed_for_an_unusable_license(owner: Account, client: httpx.AsyncClient, sql) -> None:  # type: ignore[no-untyped-def]
    suspended = await create_license(owner)
    await client.patch(f"/api/v1/licenses/{suspended['id']}/", json={"suspended": True}, headers=owner.headers)
    response = await client.get(f"/api/v1/licenses/{suspended['id']}/download/", headers=owner.headers)
    assert_licensing_error(response, 403, "Forbidden", "This license is suspended. Contact your administrator.")

    expired = await create_license(owner)
    await sql("UPDATE licenses SET expiry_date = now() - interval '1 day' WHERE id = :id", id=expired["id"])
    response = await client.get(f"/api/v1/licenses/{expired['id']}/download/", headers=owner.headers)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("This license expired on ")


async def test_download_is_for_readers_of_the_licenses_organization_only(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    created = await create_license(owner)
    url = f"/api/v1/licenses/{created['id']}/download/"

    stranger = await api.register("stranger@example.com")
    assert_licensing_error(await client.get(url, headers=stranger.headers), 404, "Not found", "License not found.")
    unauthenticated = await client.get(url)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "Unauthorized"
    malformed = await client.get("/api/v1/licenses/not-a-uuid/download/", headers=owner.headers)
    assert malformed.status_code == 404 and malformed.json()["error"] == "Not found"

    viewer = await api.register("viewer@example.com")
    await api.add_member(owner, viewer, "viewer")
    assert (await client.get(url, headers=viewer.in_org(owner.organization_id))).status_code == 200
    read_key = await owner.create_key(scopes=["read"])
    assert (await client.get(url, headers={"Authorization": f"Bearer {read_key['key']}"})).status_code == 200


async def test_public_key_is_not_taken_for_a_license_id(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/api/v1/licenses/public-key/")
    assert response.status_code == 200
    expected = signing.public_key(settings)
    assert response.json()["public_key_pem"] == signing.public_key_pem(expected)
    assert response.json()["key_id"] == signing.key_id(expected)


# `backplane license verify`, run as a real process.


async def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backplane.cli", "license", "verify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
async def license_file(owner: Account, client: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[tuple[Path, Path]]:
    created = await create_license(owner, tier="pro", seats=3)
    document = await download(owner, created["id"])
    path = tmp_path / "license.json"
    path.write_text(json.dumps(document, indent=2))
    pem = tmp_path / "public.pem"
    pem.write_text((await client.get("/api/v1/licenses/public-key/")).json()["public_key_pem"])
    yield path, pem


async def test_cli_accepts_a_valid_file(license_file: tuple[Path, Path]) -> None:
    path, pem = license_file
    document = json.loads(path.read_text())
    result = await cli(str(path), "--public-key", str(pem))
    assert result.returncode == 0, result.stderr
    payload = document["payload"]
    assert result.stdout.strip() == (
        f"valid: license {payload['key']} (pro, 3 seats), valid until {payload['expires_at']} "
        "(the license itself never expires)"
    )


async def test_cli_says_a_tampered_file_was_modified(license_file: tuple[Path, Path]) -> None:
    path, pem = license_file
    document = json.loads(path.read_text())
    document["payload"]["seats"] = 300
    path.write_text(json.dumps(document))
    result = await cli(str(path), "--public-key", str(pem))
    assert result.returncode == 1
    assert result.stderr.strip() == f"backplane: {path}: signature does not match: the file was modified"
    assert result.stdout == ""


async def test_cli_refuses_a_file_that_is_not_json(tmp_path: Path, license_file: tuple[Path, Path]) -> None:
    _, pem = license_file
    path = tmp_path / "notes.txt"
    path.write_text("this is not a license\n")
    result = await cli(str(path), "--public-key", str(pem))
    assert result.returncode == 1
    assert result.stderr.startswith(f"backplane: {path}: not a license file: not JSON (")


async def test_cli_needs_a_usable_public_key(tmp_path: Path, license_file: tuple[Path, Path]) -> None:
    path, _ = license_file
    not_a_key = tmp_path / "garbage.pem"
    not_a_key.write_text("hello")
    result = await cli(str(path), "--public-key", str(not_a_key))
    assert result.returncode == 2
    assert result.stderr.strip() == f"backplane: {not_a_key}: not a PEM public key ('-----BEGIN PUBLIC KEY-----')"


async def test_cli_uses_the_configured_signing_key_by_default(
    license_file: tuple[Path, Path], settings: Settings
) -> None:
    path, _ = license_file
    env = {**os.environ, "LICENSE_SIGNING_KEY": settings.license_signing_pem}
    assert (await cli(str(path), env=env)).returncode == 0
    other = Ed25519PrivateKey.generate()
    env["LICENSE_SIGNING_KEY"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    wrong = await cli(str(path), env=env)
    assert wrong.returncode == 1
    assert "signature does not match: the file names signing key" in wrong.stderr
