"""CPU time of other processes, read from Linux's /proc, for the benchmarks' CPU-per-operation figures
(the benchmarks run as scripts: `python bench/x.py`, which puts this folder on the path)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def _ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of a /proc/<pid>/stat (fields after the name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system) the processes have used so far; NaN when one of them is gone
    (or this is not Linux), so that a figure made from it says it is unknown rather than wrong."""
    total = 0
    for pid in pids:
        try:
            total += _ticks(Path(f"/proc/{pid}/stat").read_text())
        except OSError:
            return math.nan
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds used so far by this machine's processes named `postgres` (its server and backends;
    a backend that exited during the run takes its time along). NaN when there are none."""
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if text.partition("(")[2].rpartition(")")[0].startswith("postgres"):
            total, found = total + _ticks(text), True
    return total / os.sysconf("SC_CLK_TCK") if found else math.nan
