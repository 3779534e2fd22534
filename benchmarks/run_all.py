"""Run every benchmark in turn (sequentially: they must not compete for the 2 cores).

Usage::

    python benchmarks/run_all.py [--quick]

``--quick`` uses fewer repetitions (a smoke run, minutes instead of ~20).
Each script writes ``benchmarks/results/NAME.json`` and prints its table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["extension_load.py"],
    ["capture_overhead.py"],
    ["slicing_scale.py"],
    ["long_session.py", "--full"],
    ["save_get.py"],
    ["save_breakdown.py"],
    ["storage_load.py"],
    ["lineage_render.py"],
]
QUICK = [
    ["extension_load.py", "--runs", "3"],
    ["capture_overhead.py", "--quick"],
    ["slicing_scale.py", "--sizes", "100,1000,2000", "--repeats", "7"],
    ["long_session.py", "--cells", "2000", "--pairs", "10"],
    ["save_get.py", "--reps", "1"],
    ["save_breakdown.py", "--reps", "5", "--children", "1"],
    ["storage_load.py", "--seconds", "2", "--rounds", "1"],
    ["lineage_render.py", "--repeats", "5"],
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for cmd in QUICK if quick else FULL:
        print(f"\n=== {' '.join(cmd)} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / cmd[0]), *cmd[1:]], cwd=HERE.parent)
        print(f"=== {cmd[0]}: exit {rc}, {time.perf_counter() - t0:.0f} s ===", flush=True)
        if rc:
            failed.append(cmd[0])
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
