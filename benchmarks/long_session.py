"""A long session: per-cell capture cost and save time as the session grows.

Usage::

    python benchmarks/long_session.py            # 5,000 cells (~2 min)
    python benchmarks/long_session.py --full     # 20,000 cells (issue 13)
    python benchmarks/long_session.py --cells 3000 --checkpoints 1000,3000 --save-every 1000

One ``InteractiveShell`` with ``%load_ext lineapy_ext`` runs the mixed cells
of ``slicing_scale.py`` (assignments, in-place mutations, functions, classes,
loops, prints, a running total rebound from most of the session; every cell
binds a new global, every tenth displays a value) with ``store_history=True``
and its output swallowed.  The store is opened before the session (a tiny
save, timed apart: importing SQLAlchemy and creating the database are paid
once per process, whatever the session's length).

At each checkpoint (1k, 2k, 5k by default; 1k, 2k, 5k, 10k, 20k with
``--full``):

- the added cost of a trivial cell ``x = 1``: the capture hooks are
  uninstalled/reinstalled between single runs (plain and extension
  alternating, ABBA, as in ``capture_overhead.py``), medians and the median
  of paired differences, plus the time spent inside the hooks;
- the time of the mixed cells of the last block, per cell (extension on);
- the last save: every ``--save-every`` cells (2,000) the session runs
  ``lineapy_ext.save(total, "total")``: the slice of ``total`` (cut through
  most of the session) plus the cells not persisted yet (all of them at the
  first save, the 2,000 since the previous save after that); the slice alone
  is timed too, with the cyclic collector paused (``verify_slices`` is off: verification is measured by
  ``verify_overhead.py``, and in the background it would compete with the
  timed cells); then a cell binds ``recent`` (a one-line slice) and it is
  saved too (``small_save_ms``): what a save costs, however long the
  session, when what it stores is small.

Between two timed trivial cells the benchmark sleeps 20 ms (untimed), as a
person would: IPython's history thread writes each cell to its SQLite file
and holds a lock across the commit, so back-to-back cells of a few ms wait
for its fsync now and then, which has nothing to do with the capture.  Both
sides run in the same shell with ``store_history=True``, so IPython's history
is the same for both; the time IPython spends storing the input
(``HistoryManager.store_inputs``, where a wait for that lock would show) is
reported per side (``history_plain_ms``/``history_ext_ms``).

Before/after (``--before DIR``, DIR an export of an older commit, e.g.
``git archive C lineapy_ext kernel_hooks | tar -x -C DIR``; ``--after DIR``
another export, default this checkout): whole runs of this script in child
processes, the two versions alternating (ABBA, ``--series`` runs of each), each on the same cells; the
report gives per checkpoint and per save the median over the runs of each
version.

Targets (issue 13): trivial cell at most +1 ms at every checkpoint, the first
save after 2,000 cells under 100 ms, and both flat as the session grows.
Writes ``benchmarks/results/long_session.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time

from _common import REPO, abba_runs, median, table, use_isolated_env, version_run, write_results

TRIVIAL = "x = 1"


def _trivial_cost(shell, cap, pairs: int) -> dict:
    """Plain vs extension runs of the trivial cell, alternating (hooks toggled);
    also the time IPython's history takes to store each input, per side."""
    from capture_overhead import _time_cell

    hm = shell.history_manager
    store_inputs, spent = hm.store_inputs, [0.0]

    def timed_store_inputs(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return store_inputs(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    hm.store_inputs = timed_store_inputs
    samples = {"plain": [], "ext": [], "history_plain": [], "history_ext": []}
    try:
        for r in range(-2, pairs):
            for mode in (("plain", "ext") if r % 2 == 0 else ("ext", "plain")):
                cap.uninstall() if mode == "plain" else cap.install(backfill=False)
                time.sleep(0.02)
                spent[0] = 0.0
                dt = _time_cell(shell, TRIVIAL)
                if r >= 0:
                    samples[mode].append(dt)
                    samples["history_" + mode].append(spent[0])
    finally:
        del hm.store_inputs
        cap.install(backfill=False)
    plain, ext = samples["plain"], samples["ext"]
    return {"plain_ms": median(plain) * 1e3, "ext_ms": median(ext) * 1e3,
            "added_ms": (median(ext) - median(plain)) * 1e3,
            "paired_added_ms": median([e - p for p, e in zip(plain, ext)]) * 1e3,
            "history_plain_ms": median(samples["history_plain"]) * 1e3,
            "history_ext_ms": median(samples["history_ext"]) * 1e3}


def _in_hooks_ms(shell, tracker, runs: int) -> float:
    from capture_overhead import _hook_time

    return _hook_time(shell, tracker, {"trivial": (TRIVIAL,)}, runs)["trivial"]


def _save(shell, tracker, api, ctx) -> dict:
    import gc

    before = ctx.cells_persisted
    gc.disable()  # the slice alone, without whatever collection its allocations trigger
    try:
        t0 = time.perf_counter()
        tracker.slice(["total"])
        slice_s = time.perf_counter() - t0
    finally:
        gc.enable()
    t0 = time.perf_counter()
    art = api.save(shell.user_ns["total"], "total")
    save_s = time.perf_counter() - t0
    # A value with a one-line slice, right after: what a save costs when what it
    # stores is small, however long the session (one new cell to persist).
    shell.run_cell(f"recent = list(range({art.version}))", store_history=True)
    t0 = time.perf_counter()
    api.save(shell.user_ns["recent"], "recent")
    small_s = time.perf_counter() - t0
    return {"save_ms": save_s * 1e3, "slice_ms": slice_s * 1e3, "version": art.version,
            "cells_persisted": ctx.cells_persisted - before, "small_save_ms": small_s * 1e3}


def run(cells: int, checkpoints: list[int], save_every: int, pairs: int) -> dict:
    from IPython.core.interactiveshell import InteractiveShell

    from slicing_scale import make_cell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "lineapy_ext")
    import lineapy_ext
    from lineapy_ext import api
    from lineapy_ext.context import get_context

    ctx = get_context()
    tracker = ctx.tracker
    # Verifying slices has its own benchmark (verify_overhead.py); done in the
    # background after each save it would compete with the timed cells.
    ctx.options.verify_slices = "off"
    t0 = time.perf_counter()
    lineapy_ext.save(0, "warmup")  # one-off: imports, database creation
    open_ms = (time.perf_counter() - t0) * 1e3

    rows, done, saves = [], 0, []
    sink = io.StringIO()
    for cp in checkpoints:
        block_s = 0.0
        with contextlib.redirect_stdout(sink):
            for i in range(done, cp):
                t0 = time.perf_counter()
                r = shell.run_cell(make_cell(i), store_history=True)
                block_s += time.perf_counter() - t0
                if not r.success:
                    raise RuntimeError(f"cell {i} failed: {make_cell(i)!r}")
                if i % 1000 == 999:
                    sink.seek(0)
                    sink.truncate()
                if (i + 1) % save_every == 0:
                    saves.append({"cells": i + 1, **_save(shell, tracker, api, ctx)})
        block_ms = block_s * 1e3 / max(1, cp - done)
        done = cp
        row = {"cells": cp, "mixed_cell_ms": block_ms, "user_ns_size": len(shell.user_ns)}
        row.update(_trivial_cost(shell, tracker.capture, pairs))
        row["in_hooks_ms"] = _in_hooks_ms(shell, tracker, pairs)
        if saves:
            row.update({k: v for k, v in saves[-1].items() if k != "cells"}, saved_at=saves[-1]["cells"])
        rows.append(row)
        print(f"  {cp} cells: trivial +{row['added_ms']:.2f} ms (in hooks {row['in_hooks_ms']:.2f} ms), "
              f"save {row.get('save_ms', float('nan')):.0f} ms "
              f"(small {row.get('small_save_ms', float('nan')):.1f} ms)", flush=True)
    return {"store_open_ms": open_ms, "checkpoints": rows, "saves": saves, "lineapy_ext": lineapy_ext.__file__}


# -- before/after: whole runs of this script, alternating ------------------------------------

_ROW_FIELDS = ("added_ms", "paired_added_ms", "in_hooks_ms", "plain_ms", "ext_ms", "history_plain_ms",
               "history_ext_ms", "mixed_cell_ms", "save_ms", "slice_ms")


def _series_run(args, before: str | None) -> dict:
    fwd = ["--cells", str(args.cells_n), "--checkpoints", ",".join(map(str, args.cps)),
           "--save-every", str(args.save_every), "--pairs", str(args.pairs)]
    return version_run(__file__, fwd, before or args.after or str(REPO), "before" if before else "after")


def series_main(args) -> None:
    """``--before DIR``: ABBA whole runs of both versions; medians over runs per checkpoint and save."""
    runs = abba_runs(args.series, args.before, lambda before: _series_run(args, before))
    rows = []
    for k, cp in enumerate(args.cps):
        row = {"cells": cp}
        for version in ("before", "after"):
            got = [r["checkpoints"][k] for r in runs if r["version"] == version]
            row[version] = {f: {"median": median([g[f] for g in got]), "runs": [g[f] for g in got]}
                            for f in _ROW_FIELDS if f in got[0]}
        rows.append(row)
    saves = []
    for k, s in enumerate(runs[0]["saves"]):
        saves.append({"cells": s["cells"], **{
            version: median([r["saves"][k]["save_ms"] for r in runs if r["version"] == version])
            for version in ("before", "after")}})
    print(f"Before ({args.before}) / after ({args.after or 'this checkout'}): medians over {args.series} runs of each, alternating")
    print(table(["cells", "+ms before", "+ms after", "in hooks ms before", "in hooks ms after",
                 "history ms plain/ext after", "save ms before", "save ms after", "slice ms after"],
                [[r["cells"], r["before"]["added_ms"]["median"], r["after"]["added_ms"]["median"],
                  r["before"]["in_hooks_ms"]["median"], r["after"]["in_hooks_ms"]["median"],
                  f"{r['after']['history_plain_ms']['median']:.2f}/{r['after']['history_ext_ms']['median']:.2f}",
                  r["before"].get("save_ms", {}).get("median", "-"), r["after"].get("save_ms", {}).get("median", "-"),
                  r["after"].get("slice_ms", {}).get("median", "-")] for r in rows]))
    print(table(["save at cells", "save ms before", "save ms after"], [[s["cells"], s["before"], s["after"]] for s in saves]))
    after_rows = [r["after"] for r in rows]
    verdict = {
        "after_trivial_max_added_ms": max(r["added_ms"]["median"] for r in after_rows),
        "after_met_trivial_1ms": all(r["added_ms"]["median"] <= 1.0 for r in after_rows),
        "after_first_save_ms": saves[0]["after"] if saves else None,
        "after_met_first_save_100ms": bool(saves and saves[0]["after"] < 100),
        "after_save_ms_every_save": [round(s["after"], 1) for s in saves],
        "before_save_ms_every_save": [round(s["before"], 1) for s in saves],
    }
    print(f"\n{verdict}")
    path = write_results("long_session", {
        "method": "before/after: whole runs of this script in child processes (PYTHONPATH = the --before export "
                  "or the --after one / this checkout), ABBA; per checkpoint and per save the median over runs of "
                  "each version",
        "before": args.before, "after": args.after or str(REPO), "series": args.series, "cells": args.cells_n, "checkpoints": args.cps,
        "pairs": args.pairs, "rows": rows, "saves": saves, "verdict": verdict, "runs": runs})
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="20,000 cells, checkpoints 1k/2k/5k/10k/20k")
    ap.add_argument("--cells", type=int, default=None, help="session length (default 5,000)")
    ap.add_argument("--checkpoints", default=None, help="comma-separated cell counts")
    ap.add_argument("--save-every", type=int, default=2000, help="cells between two saves")
    ap.add_argument("--pairs", type=int, default=30, help="plain/extension pairs per checkpoint")
    ap.add_argument("--before", metavar="DIR", help="also run an export of an older commit, alternating (see above)")
    ap.add_argument("--series", type=int, default=2, help="with --before: runs of each version")
    ap.add_argument("--after", metavar="DIR", help="with --before: run this export as 'after' (default: this checkout)")
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cells = args.cells or (20_000 if args.full else 5_000)
    if args.checkpoints:
        cps = sorted(int(c) for c in args.checkpoints.split(","))
    else:
        cps = [c for c in (1_000, 2_000, 5_000, 10_000, 20_000) if c <= cells]
        cps = cps if cps and cps[-1] == cells else cps + [cells]
    if args.before:
        args.cells_n, args.cps = cells, cps
        series_main(args)
        return
    use_isolated_env()
    t0 = time.perf_counter()
    res = run(cells, cps, args.save_every, args.pairs)
    seconds = time.perf_counter() - t0
    if args.out:  # one run of a --before series
        with open(args.out, "w") as f:
            json.dump({"seconds": seconds, **res}, f)
        return
    rows = res["checkpoints"]
    print()
    print(f"store opened (one-off, before the session): {res['store_open_ms']:.0f} ms")
    print(table(["cells", "mixed cell ms", "trivial plain ms", "trivial ext ms", "+ms", "paired +ms",
                 "in hooks ms", "history ms plain/ext", "last save at", "save ms", "of which slice ms",
                 "cells persisted"],
                [[r["cells"], r["mixed_cell_ms"], r["plain_ms"], r["ext_ms"], r["added_ms"], r["paired_added_ms"],
                  r["in_hooks_ms"], f"{r['history_plain_ms']:.2f}/{r['history_ext_ms']:.2f}", r.get("saved_at", "-"),
                  r.get("save_ms", "-"), r.get("slice_ms", "-"), r.get("cells_persisted", "-")] for r in rows]))
    saves = res["saves"]
    first = saves[0] if saves else None
    verdict = {
        "trivial_max_added_ms": max(r["added_ms"] for r in rows),
        "trivial_in_hooks_ms_first_last": [rows[0]["in_hooks_ms"], rows[-1]["in_hooks_ms"]],
        "met_trivial_1ms": all(r["added_ms"] <= 1.0 for r in rows),
        "first_save_ms": first and first["save_ms"],
        "first_save_cells": first and first["cells"],
        "met_first_save_100ms": bool(first and first["save_ms"] < 100),
        "save_ms_every_save": [round(x["save_ms"], 1) for x in saves],
        "small_save_ms_every_save": [round(x["small_save_ms"], 1) for x in saves],
    }
    print(f"\n{verdict}")
    path = write_results("long_session", {"cells": cells, "checkpoints": cps, "pairs": args.pairs,
                                          "seconds": seconds, **res, "verdict": verdict})
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
