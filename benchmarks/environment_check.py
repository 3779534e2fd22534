"""Cost of environment capture: recording at save, comparing at get, in fresh processes.

Usage::

    python benchmarks/environment_check.py [--runs N]

Each run is a fresh child process (nothing in ``sys.modules`` yet, ``.pyc``
warm).  The child times, with :mod:`lineapy_ext.environment`:

- ``capture`` of a slice importing numpy, pandas, scikit-learn and json
  (what every save adds): the first call in the process and a second one;
- ``capture`` of a slice that also imports a session's own module (a file
  in the working directory): recognised as local without the full
  distribution map;
- ``capture`` of a slice that also imports ``zmq`` (distribution pyzmq:
  the name says nothing), which builds
  ``importlib.metadata.packages_distributions()``, once per process;
- ``differences`` of a recorded environment of three distributions against
  the running interpreter (what every get adds), first call and again, and
  whether it imported :mod:`importlib.metadata` (the get path should not).

Writes ``benchmarks/results/environment_check.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import isolated_env, run_child, summary, table, write_results

SLICE = "import json\nimport numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import Ridge\nx = 1\n"


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1e3, out


def child(kind: str) -> None:
    from lineapy_ext import environment

    if kind == "get":
        recorded = {"python": environment.python_version(),
                    "packages": {"numpy": "1.26.4", "pandas": "2.2.2", "scikit-learn": "1.5.0"}}
        first, found = _timed(environment.differences, recorded)
        again, _ = _timed(environment.differences, recorded)
        print(json.dumps({"first_ms": first, "again_ms": again, "differences": len(found),
                          "imported_importlib_metadata": "importlib.metadata" in sys.modules}))
    else:
        if kind == "save_local":
            import os
            import tempfile

            os.chdir(tempfile.mkdtemp())
            with open("my_session_module.py", "w") as f:
                f.write("X = 1\n")
            sys.path.insert(0, os.getcwd())
        code = SLICE + {"save": "", "save_local": "import my_session_module\n", "save_map": "import zmq\n"}[kind]
        first, env = _timed(environment.capture, code)
        again, _ = _timed(environment.capture, code)
        print(json.dumps({"first_ms": first, "again_ms": again, "packages": sorted(env["packages"])}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--child", choices=["save", "save_local", "save_map", "get"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    env = isolated_env()
    results, rows = {}, []
    for kind, label in (("save", "save: capture (4 imports)"),
                        ("save_local", "save: + a session's own module"),
                        ("save_map", "save: + zmq (distribution map)"),
                        ("get", "get: differences (3 packages)")):
        runs = [run_child([__file__, "--child", kind], env=env) for _ in range(args.runs + 1)][1:]
        first = [r["first_ms"] for r in runs]
        again = [r["again_ms"] for r in runs]
        results[kind] = {"first_ms": summary(first), "again_ms": summary(again), "last_run": runs[-1]}
        rows.append([label, summary(first)["median"], summary(again)["median"]])
    print(table(["measure", "first call median ms", "again median ms"], rows))
    print(f"get path imported importlib.metadata: {results['get']['last_run']['imported_importlib_metadata']}")
    path = write_results("environment_check", {"runs": args.runs, **results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
