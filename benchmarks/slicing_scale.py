"""Slicing time and captured-history memory vs. session length.

Usage::

    python benchmarks/slicing_scale.py [--sizes 100,1000,2000,20000] [--repeats 21]

For each size N a fresh child process runs N cells of mixed code (assignments,
in-place mutations of a list and a dict, function definitions and calls,
classes with a mutating method, loops, prints, rebinding of a running total)
in an ``InteractiveShell`` with ``%load_ext lineapy_ext`` and
``store_history=True``; cell output is swallowed.  Then it times
``tracker.slice([name])`` (what ``%lineapy save`` calls): the first call and
the median of ``--repeats`` further calls, for

- ``total``: rebound every 10 cells from values that depend on the shared
  list, so its slice reaches back through most of the session (the expensive case);
- a leaf: the last object built in the session (a short slice).

Memory held by the captured history is measured two ways:

- ``deep_bytes``: the size of everything reachable from the tracker's cell
  records and dependency graph (``sys.getsizeof`` over ``gc.get_referents``,
  stopping at the shell, the user namespace, modules, classes and functions);
- ``rss_delta``: the child's resident-set growth while running the cells
  (includes the user's own values and IPython's history; context only).

Also measured at the end of each session: the added cost of a trivial cell
(hooks off/on alternating, 40 pairs), since the per-cell namespace diff grows
with the namespace (IPython alone adds an ``_iN`` global per cell).

For N <= 2000 the slice of ``total`` is also executed in a clean namespace
and its value compared with the session's (a sanity check, not the replay test).

Target (issue 3/7): 2,000 cells under 100 ms, linear growth (ms per 1,000 cells).
Writes ``benchmarks/results/slicing_scale.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import time
import types

from _common import isolated_env, median, rss, run_child, table, write_results


def make_cell(i: int) -> str:
    """Cell ``i`` of the synthetic session (deterministic, small values)."""
    k = i % 10
    j = max(0, i - 1 - (i % 7))  # some earlier a-variable (every cell defines one)
    if i == 0:
        return "import math\nacc = []\nd = {}\ntotal = 0\na0 = 1"
    if k == 0:
        return f"a{i} = len(acc) + {i}\ntotal = (total + a{j} + a{i}) % 1_000_003"
    if k == 1:
        return f"a{i} = a{j} * 3 % 97\nacc.append(a{i})"
    if k == 2:
        return f"def fn{i}(x, y=2):\n    z = x * y + {i}\n    return z % 1013\n\na{i} = fn{i}(a{j})"
    if k == 3:
        return (f"class C{i}:\n    def __init__(self, v):\n        self.v = v\n\n"
                f"    def bump(self):\n        self.v += 1\n        return self\n\n"
                f"o{i} = C{i}(a{j})\no{i}.bump()\na{i} = o{i}.v")
    if k == 4:
        return f"for _k in range(5):\n    d[_k % 3] = d.get(_k % 3, 0) + a{j}\na{i} = sum(d.values()) % 10007"
    if k == 5:
        return f"print('step', {i}, a{j})\na{i} = a{j} + 1"
    if k == 6:
        f = i - 4  # the function defined at k == 2 in this block of ten
        return f"a{i} = fn{f}(a{j}, y=3) + math.floor(1.5)\nif a{i} % 2:\n    acc.append(a{i})"
    if k == 7:
        return f"a{i} = [a{j}, {i}]\na{i}.extend(acc[-3:])\na{i} = len(a{i})"
    if k == 8:
        return f"a{i} = a{j}\ndel acc[:-50]"
    return f"a{i} = max(a{j}, {i} % 13)\na{i}"  # display expression


def deep_size(roots, stop) -> int:
    """Bytes reachable from ``roots``, not entering ``stop`` ids or shared infrastructure."""
    skip_types = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                  types.CodeType, types.FrameType)
    seen = set(stop)
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        oid = id(obj)
        if oid in seen or isinstance(obj, skip_types):
            continue
        seen.add(oid)
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def child(n: int, repeats: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "lineapy_ext")
    from lineapy_ext.context import get_context

    tracker = get_context().tracker
    gc.collect()
    rss0 = rss()
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        for i in range(n):
            cell = make_cell(i)
            r = shell.run_cell(cell, store_history=True)
            if not r.success:
                raise RuntimeError(f"cell {i} failed: {cell!r}")
            if i % 1000 == 999:
                sink.seek(0)
                sink.truncate()
    run_s = time.perf_counter() - t0
    gc.collect()
    rss_delta = rss() - rss0

    ns = shell.user_ns
    leaf = f"a{n - 1}"
    out = {"n": n, "run_s": run_s, "rss_delta": rss_delta}
    for label, name in (("total", "total"), ("leaf", leaf)):
        t0 = time.perf_counter()
        s = tracker.slice([name])
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            s = tracker.slice([name])
            times.append(time.perf_counter() - t0)
        lines = s.code.count("\n")
        out[label] = {"name": name, "first_ms": first * 1e3, "median_ms": median(times) * 1e3,
                      "min_ms": min(times) * 1e3, "slice_lines": lines}
        if label == "total" and n <= 2000:
            g = {"__name__": "__main__"}
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(s.code, "<slice>", "exec"), g)
            out[label]["replay_equal"] = g.get("total") == ns["total"]

    # Per-cell capture cost at this session length: a trivial cell with the
    # hooks off and on, alternating (as in capture_overhead.py).
    cap = tracker.capture
    plain, ext = [], []
    for r in range(41):
        for mode in (("plain", "ext") if r % 2 else ("ext", "plain")):
            cap.uninstall() if mode == "plain" else cap.install(backfill=False)
            t0 = time.perf_counter()
            shell.run_cell("x = 1", store_history=True)
            (plain if mode == "plain" else ext).append(time.perf_counter() - t0)
    cap.install(backfill=False)
    out["trivial_cell_added_ms"] = (median(ext[1:]) - median(plain[1:])) * 1e3

    stop = [id(shell), id(ns), id(getattr(shell, "user_ns_hidden", None)), id(tracker)]
    cells = tracker.capture.cells
    out["captured_cells"] = len(cells)
    out["deep_bytes"] = deep_size([cells, tracker.capture._ids, tracker.graph], stop)
    out["graph_nodes"] = len(getattr(tracker.graph, "nodes", []) or [])
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,2000,20000")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.repeats)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    env = isolated_env()
    results = []
    for n in sizes:
        r = run_child([__file__, "--child", str(n), "--repeats", str(args.repeats)], env=env, timeout=3600)
        results.append(r)
        print(f"  {n} cells: slice(total) {r['total']['median_ms']:.1f} ms, ran in {r['run_s']:.1f} s", flush=True)
    rows = []
    for r in results:
        n = r["n"]
        rows.append([n, r["total"]["median_ms"], r["total"]["median_ms"] / n * 1000, r["total"]["first_ms"],
                     r["total"]["slice_lines"], r["leaf"]["median_ms"], r["deep_bytes"] / 2**20,
                     r["deep_bytes"] / n / 1024, r["rss_delta"] / 2**20, r["run_s"] / n * 1e3,
                     r["trivial_cell_added_ms"],
                     {True: "yes", False: "NO"}.get(r["total"].get("replay_equal"), "-")])
    print()
    print(table(["cells", "slice ms", "ms/1k cells", "first ms", "slice lines", "leaf ms", "history MiB",
                 "KiB/cell", "RSS +MiB", "ms/cell run", "+ms/trivial cell", "replay ok"], rows))
    by_n = {r["n"]: r for r in results}
    verdict = {}
    if 2000 in by_n:
        verdict["slice_2000_ms"] = by_n[2000]["total"]["median_ms"]
        verdict["met_2000_under_100ms"] = by_n[2000]["total"]["median_ms"] < 100
    if len(results) >= 2:
        a, b = results[0], results[-1]
        per_a = a["total"]["median_ms"] / a["n"]
        per_b = b["total"]["median_ms"] / b["n"]
        verdict["ms_per_1000_cells"] = {r["n"]: r["total"]["median_ms"] / r["n"] * 1000 for r in results}
        verdict["growth_exponent"] = None
        import math

        if b["n"] != a["n"] and a["total"]["median_ms"] > 0:
            verdict["growth_exponent"] = math.log(b["total"]["median_ms"] / a["total"]["median_ms"]) / math.log(
                b["n"] / a["n"])
        verdict["per_cell_cost_ratio_last_vs_first"] = per_b / per_a if per_a else None
    print(f"\n{verdict}")
    path = write_results("slicing_scale", {"sizes": sizes, "repeats": args.repeats, "results": results,
                                           "verdict": verdict})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
