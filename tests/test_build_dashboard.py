"""scripts/build-dashboard.sh (run by `make install`): builds dashboard/ when there is one and it changed.

Run against a copy of the script in a temporary tree, with a stand-in `npm` on PATH that records its calls
and makes dist/index.html as a build would: no Node.js needed, nothing fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from backplane.core.config import REPOSITORY_DIR

FAKE_NPM = """#!/bin/sh
echo "$*" >> "$CALLS"
if [ "$1" = "ci" ]; then mkdir -p node_modules && cp package-lock.json node_modules/.package-lock.json; fi
if [ "$1" = "run" ]; then mkdir -p dist && echo '<html>' > dist/index.html; fi
"""


def _tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPOSITORY_DIR / "scripts" / "build-dashboard.sh", root / "scripts")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls")}
    return root, env


def _run(root: Path, env: dict[str, str]) -> list[str]:
    calls = Path(env["CALLS"])
    calls.unlink(missing_ok=True)
    subprocess.run([root / "scripts" / "build-dashboard.sh"], env=env, check=True, capture_output=True, timeout=60)
    return calls.read_text().splitlines() if calls.exists() else []


def test_without_a_dashboard_nothing_is_built(tmp_path: Path) -> None:
    root, env = _tree(tmp_path)

    assert _run(root, env) == []


def test_it_builds_once_then_only_when_a_source_changes(tmp_path: Path) -> None:
    root, env = _tree(tmp_path)
    dashboard = root / "dashboard"
    (dashboard / "src").mkdir(parents=True)
    (dashboard / "package.json").write_text('{"name": "dashboard"}')
    (dashboard / "package-lock.json").write_text("{}")
    (dashboard / "src" / "main.tsx").write_text("export {};")
    (root / "sdks" / "typescript" / "src").mkdir(parents=True)

    assert _run(root, env) == ["ci --no-audit --no-fund --loglevel=error", "run build --silent"]
    assert (dashboard / "dist" / "index.html").is_file()
    assert _run(root, env) == []  # up to date: not even npm

    time.sleep(1.1)  # past the filesystem's timestamp granularity
    (root / "sdks" / "typescript" / "src" / "client.ts").write_text("export {};")
    assert _run(root, env) == ["run build --silent"]  # the lock did not change: no `npm ci`

    time.sleep(1.1)
    (dashboard / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert _run(root, env) == ["ci --no-audit --no-fund --loglevel=error", "run build --silent"]
