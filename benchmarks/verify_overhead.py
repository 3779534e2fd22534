"""What verifying a slice costs beyond running the slice itself.

Usage::

    python benchmarks/verify_overhead.py [--reps N] [--values small,array]

Values (each saved through the store, its slice set to the code below):

- ``small``: ``x = [i * i for i in range(1000)]`` (a list of 1,000 ints);
- ``array``: ``x = np.arange(62_500_000, dtype=np.float64) * 0.5`` (500 MB).

For each, one verification (``lineapy_ext.verify.verify_and_record``: load
the saved value, run the slice in a fresh ``python`` in a scratch dir,
unpickle its result, compare, record the verdict) is timed end to end, and
its parts are timed separately with the same engine functions:

- ``load saved``: ``store.load(record)`` (checksum + unpickle);
- ``child``: ``run_slice`` wall time minus the slice's own time measured in
  the child (interpreter start, runner, pickling the result to a file);
- ``unpickle``: loading the child's result file;
- ``compare``: ``first_difference(saved, recomputed)``;
- ``overhead`` = total - slice time; the slice time is what any re-run costs.

Peak RSS above baseline (``VmHWM`` reset before each verification) is
reported for the verifying process: it holds the saved and the recomputed
value at once, so ~2x the value is the floor.  One BLAS thread; medians.
Writes ``benchmarks/results/verify_overhead.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _common import median, peak, reset_peak, rss, table, use_isolated_env, write_results

CODE = {
    "small": "x = [i * i for i in range(1000)]\n",
    "array": "import numpy as np\nx = np.arange(62_500_000, dtype=np.float64) * 0.5\n",
}


def _store_with(name: str, code: str):
    import lineapy_ext
    from lineapy_ext.api import save_value
    from lineapy_ext.context import get_context
    from lineapy_ext.store.verifications import replace_slice

    ns: dict = {}
    exec(code, ns)
    art = save_value(ns["x"], name, var_names=["x"], verify=False)
    ctx = get_context()
    replace_slice(ctx.store.db, art._record.id, code, [(None, code)])
    del ns
    return ctx, lineapy_ext.get(name)._record


def _parts(ctx, record, code: str, cwd: str) -> dict:
    from lineapy_ext.compare import first_difference
    from lineapy_ext.verify import _load, run_slice

    t = time.perf_counter()
    saved = ctx.store.load(record)
    load_saved = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as scratch:
        t = time.perf_counter()
        run = run_slice(code, "x", scratch=os.path.join(scratch, "r"), cwd=cwd, inputs=[], timeout=600)
        wall = time.perf_counter() - t
        t = time.perf_counter()
        recomputed = _load(run.value_path)
        unpickle = time.perf_counter() - t
    t = time.perf_counter()
    assert first_difference(saved, recomputed) is None
    compare = time.perf_counter() - t
    return {"load_saved": load_saved, "slice": run.seconds, "child": wall - run.seconds,
            "unpickle": unpickle, "compare": compare}


def _total(ctx, record, cwd: str) -> tuple[float, int, str]:
    from lineapy_ext.verify import verify_and_record

    base = rss()
    reset_peak()
    t = time.perf_counter()
    verdict, _ = verify_and_record(ctx.store, record, ctx.options, cwd=cwd, since=None)
    total = time.perf_counter() - t
    return total, peak() - base, str(verdict)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--values", default="small,array")
    args = parser.parse_args()
    use_isolated_env()
    cwd = tempfile.mkdtemp(prefix="lineapy-bench-cwd-")
    results, rows = {}, []
    for name in args.values.split(","):
        ctx, record = _store_with(name, CODE[name])
        parts = [_parts(ctx, record, CODE[name], cwd) for _ in range(args.reps)]
        totals = [_total(ctx, record, cwd) for _ in range(args.reps)]
        med = {k: median([p[k] for p in parts]) for k in parts[0]}
        total = median([t[0] for t in totals])
        result = {**med, "total": total, "overhead": total - med["slice"],
                  "peak_rss_above_baseline_mb": median([t[1] for t in totals]) / 2**20,
                  "verdicts": sorted({t[2].split(" ")[0] for t in totals}), "reps": args.reps,
                  "samples": {"parts": parts, "totals": [t[:2] for t in totals]}}
        results[name] = result
        rows.append([name, total, med["slice"], result["overhead"], med["load_saved"], med["child"],
                     med["unpickle"], med["compare"], result["peak_rss_above_baseline_mb"]])
        print(f"{name}: {totals[-1][2]}", file=sys.stderr)
    print(table(["value", "total s", "slice s", "overhead s", "load saved", "child", "unpickle", "compare",
                 "peak MB"], rows))
    path = write_results("verify_overhead", {"values": results, "code": CODE})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
