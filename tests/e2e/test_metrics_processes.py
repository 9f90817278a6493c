"""`backplane serve --workers 2`: the metrics of both API processes in one scrape (prometheus-client's
multiprocess mode), on the API port or on METRICS_PORT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_REDIS_URL
from tests.fixtures.net import free_port
from tests.fixtures.processes import _environment, _spawn, _stop

HEALTH = "/api/v1/health/"


@contextmanager
def two_api_processes(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    api = _spawn(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], _environment(env))
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, _stop(api)
            try:
                if httpx.get(base_url + HEALTH, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "backplane serve did not become healthy in 60 s"
            time.sleep(0.2)
        yield base_url
    finally:
        _stop(api)


def health_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "backplane_http_requests_total"
        and sample.labels == {"route": HEALTH, "method": "GET", "status": "200"}
    )


def _env(database_url: str, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRETS_DIR": str(tmp_path / ".secrets"),
        "STORAGE_DIR": str(tmp_path / "files"),
        **more,
    }


def test_two_api_processes_are_scraped_as_one(database_url: str, tmp_path: Path) -> None:
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (multiproc / "counter_99999999.db").write_bytes(b"left by an earlier run")
    env = _env(database_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    with two_api_processes(env) as base_url:
        # New connections each time, so the kernel spreads them over both processes.
        for _ in range(40):
            assert httpx.get(base_url + HEALTH, headers={"Connection": "close"}).status_code == 200
        scraped = httpx.get(base_url + "/metrics")
        assert scraped.status_code == 200
        files = {path.name.split("_")[-1] for path in multiproc.glob("counter_*.db")}
    assert not (multiproc / "counter_99999999.db").exists()  # emptied at start, not added in
    # Every request, whichever process answered it, from whichever process was scraped (the health
    # checks of the start-up wait count too, so at least the 40).
    assert health_requests(scraped.text) >= 40
    assert len(files) == 2, files  # both processes wrote their own values


def test_metrics_port_serves_every_api_process(database_url: str, tmp_path: Path) -> None:
    metrics_port = free_port()
    with two_api_processes(_env(database_url, tmp_path, METRICS_PORT=str(metrics_port))) as base_url:
        for _ in range(20):
            httpx.get(base_url + HEALTH, headers={"Connection": "close"})
        assert httpx.get(base_url + "/metrics").status_code == 404
        first = health_requests(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
        for _ in range(10):
            httpx.get(base_url + HEALTH, headers={"Connection": "close"})
        second = health_requests(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
    assert first >= 20
    assert second - first == 10
