"""deploy/'s Kubernetes manifests agree with the service they run (their schema is checked by `make lint`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from backplane.agents import catalog

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _resources() -> dict[tuple[str, str], dict[str, Any]]:
    resources = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            resources[(document["kind"], document["metadata"]["name"])] = document
    return resources


def _container(resource: dict[str, Any]) -> dict[str, Any]:
    (container,) = resource["spec"]["template"]["spec"]["containers"]
    return container


def test_the_worker_is_given_longer_to_stop_than_the_longest_agent_run() -> None:
    worker = _resources()[("Deployment", "backplane-worker")]
    longest = max(agent.time_limit_seconds for agent in catalog.product_agents())
    # arq gives a run its time limit plus 120 s (workers/settings.py) before it cancels it.
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= longest + 120


async def test_the_api_probes_ask_routes_that_answer(client: httpx.AsyncClient) -> None:
    api = _container(_resources()[("Deployment", "backplane-api")])
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready/"
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert (await client.get(api[probe]["httpGet"]["path"])).status_code == 200, probe


def test_the_pieces_run_the_right_commands() -> None:
    resources = _resources()
    assert _container(resources[("Job", "backplane-migrate")])["command"] == ["backplane", "migrate"]
    assert _container(resources[("Deployment", "backplane-api")])["command"][:2] == ["backplane", "serve"]
    worker = _container(resources[("Deployment", "backplane-worker")])
    assert worker["command"][:2] == ["backplane", "worker"]
    assert {worker["readinessProbe"]["httpGet"]["path"], worker["livenessProbe"]["httpGet"]["path"]} == {
        "/health/ready",
        "/health",
    }
    hpa = resources[("HorizontalPodAutoscaler", "backplane-api")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "backplane-api"
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]


def test_every_setting_named_is_one_the_readme_documents() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    resources = _resources()
    named = set(resources[("ConfigMap", "backplane-config")]["data"]) | set(
        resources[("Secret", "backplane-secrets")]["stringData"]
    )
    assert named - documented == set()
    assert {"SECRET_KEY", "ENCRYPTION_KEYS", "LICENSE_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"} <= named


def _metric_families() -> set[str]:
    from prometheus_client import REGISTRY

    from backplane.core import metrics  # noqa: F401  (defines them)

    return {family.name for family in REGISTRY.collect() if family.name.startswith("backplane_")}


def test_the_grafana_dashboard_reads_every_metric_and_only_ours() -> None:
    import json

    dashboard = json.loads((DEPLOY / "grafana" / "backplane.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    read = {
        re.sub(r"_(total|bucket|count|sum)$", "", name) for expr in exprs for name in re.findall(r"backplane_\w+", expr)
    }
    families = _metric_families()
    assert len(families) >= 20
    assert read - families == set()  # a panel over a metric nobody writes shows nothing, silently
    assert families - read == set()  # a metric no panel shows


def test_prometheus_finds_the_metrics_where_they_are_served() -> None:
    resources = _resources()
    config = resources[("ConfigMap", "backplane-config")]["data"]
    api_deployment, worker_deployment = (
        resources[("Deployment", "backplane-api")],
        resources[("Deployment", "backplane-worker")],
    )
    api, worker = api_deployment["spec"]["template"], worker_deployment["spec"]["template"]
    assert api["metadata"]["annotations"]["prometheus.io/port"] == config["METRICS_PORT"]
    ports = {port["name"]: port["containerPort"] for port in _container(api_deployment)["ports"]}
    assert ports["metrics"] == int(config["METRICS_PORT"])
    service = resources[("Service", "backplane-api")]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]  # not exposed through it
    command = _container(worker_deployment)["command"]
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == command[command.index("--health-port") + 1]


# --- the Dockerfile (docker is not run here: its text is read, as the manifests' are) ----------------------


def _stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's stages in order, by name (`AS …`, else their position), each a list of (instruction,
    args) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else str(len(stages))
            current = stages.setdefault(name, [])
        current.append((instruction.upper(), args.strip()))
    return stages


def _copied(stage: list[tuple[str, str]]) -> list[str]:
    """The build-context paths a stage copies (not `--from` copies)."""
    sources: list[str] = []
    for instruction, args in stage:
        if instruction == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    return sources


def test_the_image_builds_the_dashboard_in_a_node_stage_and_serves_its_dist() -> None:
    stages = _stages()
    node = stages["dashboard"]
    image = node[0][1].split()[0]
    major = int(re.match(r"node:(\d+)", image).group(1))  # type: ignore[union-attr]
    engines = json.loads((ROOT / "dashboard" / "package.json").read_text())["engines"]["node"]
    assert major >= int(engines.removeprefix(">=")), (image, engines)
    runs = [args for instruction, args in node if instruction == "RUN"]
    # What scripts/build-dashboard.sh does: locked installs, then the dashboard's build (which builds the SDK).
    assert "cd sdks/typescript && npm ci" in runs
    assert "cd dashboard && npm ci" in runs
    assert any(run.startswith("cd dashboard && npm run build") for run in runs)
    assert "npm ci" in (ROOT / "scripts" / "build-dashboard.sh").read_text()
    # Every source file the build reads is in the stage (a file left out would fail `docker build`).
    sources = [Path(source) for source in _copied(node)]
    needed = [
        path.relative_to(ROOT)
        for folder in (ROOT / "dashboard", ROOT / "sdks" / "typescript" / "src")
        for path in folder.rglob("*")
        if path.is_file() and not {"node_modules", "dist"} & set(path.relative_to(ROOT).parts)
    ]
    needed += [Path("sdks/typescript") / name for name in ("package.json", "package-lock.json", "tsconfig.json")]
    missing = [
        str(path)
        for path in needed
        if path.name != ".gitignore" and not any(path == s or s in path.parents for s in sources)
    ]
    assert missing == []

    runtime = list(stages.values())[-1]  # the image
    copies = [args.split() for instruction, args in runtime if instruction == "COPY" and args.startswith("--from")]
    assert ["--from=dashboard", "/build/dashboard/dist", "./dashboard/dist"] in copies
    workdir = next(args for instruction, args in runtime if instruction == "WORKDIR")
    env = dict(
        part.split("=", 1)
        for instruction, args in runtime
        if instruction == "ENV"
        for part in args.split()
        if "=" in part
    )
    assert env["DASHBOARD_DIR"] == f"{workdir}/dashboard/dist"
    # The build context leaves out what a developer's checkout has built or installed (the stage makes its own).
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/node_modules", "dashboard/dist", "sdks/typescript/dist", ".venv"} <= set(ignored)
