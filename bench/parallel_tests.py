"""The test suite in parallel against serially: `uv run python bench/parallel_tests.py [PATHS...]`.

Runs pytest on PATHS (default: tests/billing tests/licenses, about 90 tests) in turns, serially
(`-n 0`, the baseline) and with `-n WORKERS` (`--workers`, default 2, as `make test`), `--rounds`
times each, alternating so that a machine whose load drifts treats both alike. Prints each run's
wall time (including each process's database creation and migration) and the ratio of the serial
median to the parallel one. Needs PostgreSQL and Redis as the tests do; TEST_REDIS_URL's index and
the WORKERS - 1 indexes below it are flushed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

DEFAULT_PATHS = ["tests/billing", "tests/licenses"]


def _run(paths: list[str], workers: int) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    if workers:
        command += ["--dist", "worksteal"]
    started = time.monotonic()
    done = subprocess.run([*command, *paths], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"pytest -n {workers} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=DEFAULT_PATHS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[int, list[float]] = {0: [], args.workers: []}
    for round_ in range(1, args.rounds + 1):
        for workers in (0, args.workers):
            times[workers].append(_run(args.paths, workers))
            print(f"round {round_}: -n {workers}: {times[workers][-1]:.1f} s", flush=True)
    serial, parallel = statistics.median(times[0]), statistics.median(times[args.workers])
    print(
        f"serial median {serial:.1f} s, -n {args.workers} median {parallel:.1f} s: "
        f"speed-up (serial / parallel) {serial / parallel:.2f}"
    )


if __name__ == "__main__":
    main()
