"""Save and get times of the mlflow backend per flavor, with and without given requirements.

Usage::

    python benchmarks/mlflow_save_get.py [--runs N] [--no-inferred]

One process, one private lineapy home, one SQLite MLflow tracking database
(created and warmed by a first save, which is reported separately: it pays
for ``import mlflow`` and MLflow's schema migrations).  For each model
(tiny data, so the numbers are MLflow's overhead, not serialization of big
models) three ways of saving are timed:

- ``pinned``: no requirements given; lineapy_ext pins the installed versions
  of the model's distributions (the default);
- ``given``: the user passes ``pip_requirements=[...]``;
- ``inferred``: the user passes ``extra_pip_requirements=[]``, so MLflow
  infers the requirements itself by loading the model in a subprocess (what
  a plain ``log_model`` without requirements costs).

``get`` is ``lineapy_ext.get(name).get_value()`` of the pinned save.
Writes ``benchmarks/results/mlflow_save_get.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The models are the ones the tests round-trip.
sys.path.insert(0, str(HERE.parent / "tests" / "lineapy_ext" / "backends"))


def use_isolated_env(tmp: Path) -> None:
    """Point lineapy_ext at a private home under ``tmp`` (before it is imported)."""
    for key in [k for k in os.environ if k.startswith("LINEAPY_")]:
        del os.environ[key]
    os.environ["LINEAPY_HOME_DIR"] = str(tmp / "lineapy_home")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def median(xs) -> float:
    return statistics.median(xs)


def table(headers, rows) -> str:
    cells = [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, cells)])


def write_results(name: str, data: dict) -> Path:
    path = HERE / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    data = {
        "benchmark": name,
        "machine": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg()},
        "command": " ".join(["python", *sys.argv]),
        **data,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each timed save/get (median)")
    parser.add_argument("--no-inferred", action="store_true", help="skip MLflow's own requirement inference")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lineapy-bench-mlflow-"))
    use_isolated_env(tmp)
    os.chdir(tmp)  # MLflow puts SQLite-tracked artifacts under the working directory
    import lineapy_ext
    from test_mlflow import FLAVOR_CASES

    lineapy_ext.options.set("mlflow_tracking_uri", f"sqlite:///{tmp / 'mlflow.db'}")
    models = {case: make()[0] for case, (_, make) in FLAVOR_CASES.items()}

    start = time.perf_counter()
    lineapy_ext.save(models["sklearn-pipeline"], "warmup")
    first = time.perf_counter() - start

    rows, results = [], {"first_save_s": first, "runs": args.runs, "cases": {}}
    for case, model in models.items():
        name = case.replace("-", "_")
        pins = lineapy_ext.save(model, name).get_metadata()  # warm this flavor's imports
        given = _requirements(pins)
        timings = {}
        for mode, kwargs in (("pinned", {}), ("given", {"pip_requirements": given})):
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                lineapy_ext.save(model, name, **kwargs)
                times.append(time.perf_counter() - t)
            timings[mode] = median(times)
        if not args.no_inferred:
            t = time.perf_counter()
            lineapy_ext.save(model, name, extra_pip_requirements=[])
            timings["inferred"] = time.perf_counter() - t
        gets = []
        for _ in range(args.runs):
            t = time.perf_counter()
            lineapy_ext.get(name).get_value()
            gets.append(time.perf_counter() - t)
        timings["get"] = median(gets)
        results["cases"][case] = timings
        rows.append([case, timings["pinned"], timings["given"], timings.get("inferred", float("nan")), timings["get"]])

    print(f"first save (import mlflow + create the tracking DB): {first:.2f} s")
    print(table(["model", "save pinned s", "save given s", "save inferred s", "get s"], rows))
    print(f"wrote {write_results('mlflow_save_get', results)}")


def _requirements(meta: dict) -> list[str]:
    """The requirements.txt lineapy_ext wrote for the model, to pass back as 'given'."""
    from lineapy_ext.backends.mlflow import _mlflow_uris

    with _mlflow_uris(meta["tracking_uri"], None) as mlflow:
        path = mlflow.pyfunc.get_model_dependencies(meta["model_uri"])
    return [line.strip() for line in open(path) if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    main()
