"""``%load_ext lineapy_ext`` in a fresh process: wall time and the modules it imports.

Usage::

    python benchmarks/extension_load.py [--runs N]

Each run is a fresh child process (so nothing is cached in ``sys.modules``;
``.pyc`` files are warm after the first run, as on a user's machine).  The
child creates an ``InteractiveShell``, records ``sys.modules``, then times
``shell.run_line_magic("load_ext", "lineapy_ext")`` and lists the top-level
packages that appeared.  mlflow, s3fs, pandas and sqlalchemy must not be among
them (the store is opened lazily, on the first save/get).  A first cell run
after loading is timed too (first-cell cost, e.g. lazy imports in the hooks).

Writes ``benchmarks/results/extension_load.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import isolated_env, median, run_child, summary, table, write_results

FORBIDDEN = ("mlflow", "s3fs", "pandas", "sqlalchemy", "numpy", "fsspec", "sklearn", "cloudpickle", "psycopg")
MUST_NOT = ("mlflow", "s3fs", "pandas", "sqlalchemy")


def child() -> None:
    t_start = time.perf_counter()
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    t_shell = time.perf_counter() - t_start
    before = set(sys.modules)
    t0 = time.perf_counter()
    shell.run_line_magic("load_ext", "lineapy_ext")
    load = time.perf_counter() - t0
    new = sorted(set(sys.modules) - before)
    t0 = time.perf_counter()
    shell.run_cell("x = 1", store_history=True)
    first_cell = time.perf_counter() - t0
    top = sorted({m.split(".")[0] for m in new})
    print(json.dumps({"load_s": load, "shell_s": t_shell, "first_cell_s": first_cell,
                      "new_modules": len(new), "new_top_level": top}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child()
        return
    env = isolated_env()
    runs = [run_child([__file__, "--child"], env=env) for _ in range(args.runs + 1)][1:]  # first run: cold .pyc
    load = [r["load_s"] * 1e3 for r in runs]
    first = [r["first_cell_s"] * 1e3 for r in runs]
    top = runs[-1]["new_top_level"]
    present = [m for m in FORBIDDEN if m in top]
    bad = [m for m in MUST_NOT if m in top]
    print(table(["measure", "median ms", "min ms", "max ms"],
                [["%load_ext lineapy_ext", median(load), min(load), max(load)],
                 ["first cell after load", median(first), min(first), max(first)]]))
    print(f"\nnew modules: {runs[-1]['new_modules']} ({len(top)} top-level packages): {', '.join(top)}")
    print(f"heavy packages imported: {present or 'none'}; must-not list {MUST_NOT}: "
          f"{'VIOLATED: ' + ', '.join(bad) if bad else 'ok'}")
    path = write_results("extension_load", {
        "runs": len(runs),
        "load_ms": summary(load),
        "first_cell_ms": summary(first),
        "new_modules": runs[-1]["new_modules"],
        "new_top_level_packages": top,
        "heavy_packages_imported": present,
        "must_not_import": list(MUST_NOT),
        "met": not bad,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
