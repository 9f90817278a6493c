"""One source of truth (issue 20 item 4): the SDK's models and request parameters follow the service's
OpenAPI document. A change to a field the SDK models (added, dropped, renamed) fails here until the SDK
follows, and the SDK's version and changelog move with it."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import coexai
from backplane.app import create_app
from coexai import _client
from coexai._operations import JobParams
from coexai.models import MODELS, model_fields

SDK = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    document: dict[str, Any] = create_app().openapi()
    found: dict[str, Any] = document["components"]["schemas"]
    return found


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_models_fields_are_its_schemas_properties(model: type, schemas: dict[str, Any]) -> None:
    name = model.__schema__  # type: ignore[attr-defined]
    assert model_fields(model) == set(schemas[name]["properties"]), f"{model.__name__} differs from {name}"


def test_every_required_property_is_a_field_without_a_default(schemas: dict[str, Any]) -> None:
    """A field the service always sends may be a required argument; one it may omit must have a default."""
    for model in MODELS:
        required = set(schemas[model.__schema__].get("required", []))  # type: ignore[attr-defined]
        for item in dataclasses.fields(model):
            no_default = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
            if no_default:
                assert item.name in required, f"{model.__name__}.{item.name} is not always sent"


def test_job_creation_takes_every_field_of_JobCreate(schemas: dict[str, Any]) -> None:
    fields = set(schemas["JobCreate"]["properties"])
    for method in (_client.Jobs.create, _client.AsyncJobs.create):
        assert fields <= set(inspect.signature(method).parameters)
    assert fields <= set(JobParams.__annotations__)
    assert {"agent_id", "input_data"} <= set(schemas["JobCreate"]["properties"])


def test_the_other_request_bodies_the_sdk_sends(schemas: dict[str, Any]) -> None:
    acquire = {"license_key", "hardware_id", "ip_address", "client_version"}
    assert set(schemas["AcquireRequest"]["properties"]) == acquire
    assert set(schemas["WebhookCreate"]["properties"]) == {"url", "events", "description", "enabled", "ordering"}
    assert set(schemas["UploadUrlRequest"]["properties"]) == {"filename", "content_type", "size_bytes"}
    assert set(schemas["JobBatchCreate"]["properties"]) == {"jobs"}
    assert set(schemas["PlatformErrorBody"]["properties"]) == {"code", "message", "details", "request_id"}
    assert set(schemas["Page_JobRead_"]["properties"]) == {"data", "has_more", "next_cursor"}


def test_the_version_is_one_in_the_package_the_metadata_and_the_changelog() -> None:
    declared = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]["version"]
    assert coexai.__version__ == declared
    assert re.search(rf"^## {re.escape(declared)}$", (SDK / "CHANGELOG.md").read_text(), re.MULTILINE)
