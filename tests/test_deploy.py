"""deploy/'s Kubernetes manifests agree with the service they run (their schema is checked by `make lint`)."""

from __future__ import annotations

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
