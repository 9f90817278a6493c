"""The ground floor imports nothing above it, and the access home imports no domain's logic."""

from __future__ import annotations

import ast
from pathlib import Path

import backplane

ROOT = Path(backplane.__file__).parent
IDENTITY_DATA = {
    "backplane.auth.models",
    "backplane.auth.revocation",
    "backplane.api_keys.models",
    "backplane.api_keys.repository",
    "backplane.organizations.models",
    "backplane.organizations.repository",
}


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        module = "backplane." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("backplane"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("backplane"))
        found[module] = names
    return found


def test_core_imports_only_core():
    above = {
        module: sorted(n for n in names if not n.startswith("backplane.core"))
        for module, names in _imports("core").items()
    }
    assert {m: n for m, n in above.items() if n} == {}


def test_access_imports_core_the_identity_data_and_itself_only():
    allowed = IDENTITY_DATA | {"backplane.idempotency.service"}
    outside = {
        module: sorted(
            n for n in names if not n.startswith(("backplane.core", "backplane.access")) and n not in allowed
        )
        for module, names in _imports("access").items()
    }
    assert {m: n for m, n in outside.items() if n} == {}


def test_no_identity_model_or_repository_imports_access():
    for package in ("auth", "api_keys", "organizations", "idempotency"):
        for module, names in _imports(package).items():
            if module in IDENTITY_DATA or module.startswith("backplane.idempotency"):
                assert not any(n.startswith("backplane.access") for n in names), module
