"""`backplane serve --workers`: one API process by default, as many as the machine's cores in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from backplane.cli import available_cores, build_parser, serve_workers


def _workers(argv: list[str], *, production: bool) -> int:
    args = build_parser().parse_args(argv)
    return serve_workers(args.workers, production=production)


def test_serve_runs_one_process_outside_production() -> None:
    assert _workers(["serve"], production=False) == 1


def test_serve_runs_one_process_per_core_in_production() -> None:
    assert _workers(["serve"], production=True) == available_cores()
    assert available_cores() >= 1


def test_workers_given_are_taken_in_every_environment() -> None:
    assert _workers(["serve", "--workers", "3"], production=True) == 3
    assert _workers(["serve", "--workers", "3"], production=False) == 3


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", value])
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("50000 100000\n", 1), ("150000 100000\n", 2)],
)
def test_cores_are_capped_by_the_containers_cpu_quota(tmp_path: Path, cpu_max: str, cores: int | None) -> None:
    unlimited = available_cores(cpu_max=tmp_path / "absent")
    (tmp_path / "cpu.max").write_text(cpu_max)
    expected = unlimited if cores is None else min(unlimited, cores)
    assert available_cores(cpu_max=tmp_path / "cpu.max") == expected
