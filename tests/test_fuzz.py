"""Schemathesis over the whole OpenAPI document, against the real application in-process.

Each operation is one test: schemathesis generates requests from the document (its examples, the
coverage phase's boundary and invalid values, then random ones), sends them to the app with an
organization admin's API key (a JWT where the route takes a signed-in user only), and fails on a
server error, a response outside the documented schema, or an undocumented status code or content
type. `test_workflows_answer_as_documented` is the stateful phase. The run is bounded and
deterministic: a fixed seed and `FUZZ_MAX_EXAMPLES` generated cases per operation (small in
`make test`; `make fuzz` runs a longer one, with another seed if `FUZZ_SEED` says so).
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backplane.app import create_app
from backplane.core.config import AuthSettings, DatabaseSettings, Environment, RedisSettings, Settings
from tests.conftest import TEST_REDIS_URL, TEST_SECRET_KEY
from tests.fixtures.auth import PASSWORD

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261127"))

# What the issue asks of the run. The other checks schemathesis has (positive data accepted, negative
# data rejected, resources reachable after creation, ...) judge behaviour rather than the document.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _fuzz_settings(database_url: str, storage_dir: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        public_base_url="http://testserver",
        database=DatabaseSettings(url=database_url, pool_size=5),
        redis=RedisSettings(url=TEST_REDIS_URL),
        auth=AuthSettings(secret_key=TEST_SECRET_KEY),
        storage_dir=storage_dir,
        rate_limits_enabled=False,
        free_license_seats=1,
    )


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app serves it (building it touches neither database nor Redis)."""
    return create_app(
        _fuzz_settings("postgresql+asyncpg://postgres@127.0.0.1:5432/unused", Path("/nonexistent"))
    ).openapi()


schema = schemathesis.openapi.from_dict(
    _document(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES},
            "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app for the module; schemathesis runs its lifespan in its own event loop thread, and it is
    stopped here, before the session's database is dropped."""
    app = create_app(_fuzz_settings(database_url, tmp_path_factory.mktemp("fuzz-files")))
    yield app
    asgi.shutdown_lifespans()


class Caller:
    """An organization owner's access token and `admin` API key, and the ids of real resources of theirs."""

    def __init__(self, api_key: str, access: str, ids: dict[str, str]) -> None:
        self.api_key, self.access, self.ids = api_key, access, ids

    def headers_for(self, access: dict[str, Any]) -> dict[str, str]:
        token = self.access if access.get("caller") == "user" else self.api_key
        return {"Authorization": f"Bearer {token}"}

    def aim(self, case: Any) -> None:
        """Point about half the generated cases at real resources (a random id only ever finds the
        404), chosen from the generated value itself so that a seed still gives the same run."""
        for name, value in (case.path_parameters or {}).items():
            if name in self.ids and zlib.crc32(repr(value).encode()) % 2 == 0:
                case.path_parameters[name] = self.ids[name]


@pytest.fixture
def caller(fuzz_app: Any) -> Caller:
    """Every test starts from empty tables, so each operation gets its own owner and organization."""
    return make_caller(fuzz_app, "fuzz-owner@example.com")


def make_caller(app: Any, email: str) -> Caller:
    """An organization owner, signed in, with an `admin` API key, its free license with one seat
    taken, and a pending upload, all made through the API."""
    with asgi.get_client(app) as http:
        registered = http.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Fuzz Owner", "company_name": "Fuzz Inc"},
        )
        assert registered.status_code == 201, registered.text
        access = _json(http.post("/api/v1/auth/token/", json={"email": email, "password": PASSWORD}), 200)["access"]
        signed_in = {"Authorization": f"Bearer {access}"}
        key = _json(
            http.post("/v1/api-keys", json={"name": "fuzz", "scopes": ["read", "write", "admin"]}, headers=signed_in),
            201,
        )
        [license_] = _json(http.get("/api/v1/licenses/", headers=signed_in), 200)["licenses"]
        seat = _json(
            http.post(
                "/api/v1/licenses/acquire/",
                json={"license_key": license_["key_string"], "hardware_id": "fuzz-machine"},
                headers=signed_in,
            ),
            200,
        )
        upload = _json(
            http.post(
                "/v1/files/upload-url",
                json={"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 1000},
                headers=signed_in,
            ),
            201,
        )
        ids = {
            "organization_id": registered.json()["organization"]["id"],
            "user_id": registered.json()["user"]["id"],
            "key_id": key["id"],
            "license_id": license_["id"],
            "session_id": seat["session_id"],
            "file_id": upload["file_id"],
        }
        return Caller(key["key"], access, ids)


def _json(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@schema.parametrize()
# The caller is made per operation, not per generated case: the same owner and key serve all of them.
# No example database: a run depends on its seed and budget only, not on what an earlier run found.
@settings(
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_operation_answers_as_documented(case: Any, fuzz_app: Any, caller: Caller) -> None:
    headers = caller.headers_for(case.operation.definition.raw.get("x-access", {}))
    caller.aim(case)
    case.call_and_validate(app=fuzz_app, headers=headers, checks=CHECKS)


def test_workflows_answer_as_documented(fuzz_app: Any) -> None:
    """The stateful phase: sequences of calls that feed one answer's ids into the next request (links
    schemathesis infers from the document: list, then get, patch or delete what it listed). Each
    scenario has an organization of its own, so that replaying one (Hypothesis does, to shrink it)
    meets the same state. The sign-up routes are left out: as roots they crowd out every other."""

    calls: list[str] = []
    scenarios = itertools.count(1)

    class Workflow(schema.exclude(path_regex="^/api/v1/auth/").as_state_machine()):  # type: ignore[misc]
        caller: Caller

        def setup(self) -> None:
            self.caller = make_caller(fuzz_app, f"fuzz-scenario{next(scenarios)}@example.com")

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            calls.append(case.operation.label)
            caller = self.caller
            caller.aim(case)
            return {"app": fuzz_app, "headers": caller.headers_for(case.operation.definition.raw.get("x-access", {}))}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=10,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"{len(calls)} calls, {len(set(calls))} operations")
    assert len(set(calls)) > 10, calls  # the links were found and followed
