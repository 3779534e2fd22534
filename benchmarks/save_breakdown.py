"""Where a small model's save goes: ``pickle.dump`` vs ``lineapy_ext.save``, part by part.

Usage::

    python benchmarks/save_breakdown.py [--reps N] [--children N]

The value is ``save_get.py``'s random forest (100 trees, ~2.2 MB pickled).
Each child process alternates, ``--reps`` times (after one untimed run of
each): ``raw`` (open a new file, ``pickle.dump`` protocol 5, close: what
``save_get.py`` compares with) and ``store`` (``lineapy_ext.save(model,
NAME)`` on the default store, the version deleted again outside the timed
region, as ``save_get.py`` does).  During the store's save, timers around
the store's own functions split it into:

- ``begin``: the first transaction (the ``writing`` row, which allocates the
  version: crash safety, issue 12);
- ``value_file``: ``value_file.write_value``, i.e. cloudpickle, the layout
  and the xxh3 checksum; compared with ``raw`` it is what pickling through
  the store adds;
- ``open_temp`` (the name's folder when missing, and the temporary file) and
  ``rename`` (the atomic publish);
- ``finish``: the second transaction (the row becomes ``ready``);
- ``other``: the rest (API, names, secrets scrubbing, records).

``hash_stream`` times xxh3-128 over the pickled bytes alone (in memory, once
per rep, outside both timed regions), the part of ``value_file`` that the
checksum needs.  ``floor`` adds to ``raw`` what the store's guarantees cost
at least, as measured in the same run: the checksum (``hash_stream``), the
two transactions and the rename; ``raw / floor`` is the best ratio this
design could reach with every other cost at zero.

Medians per child, then the median over children.  Writes
``benchmarks/results/save_breakdown.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

from _common import isolated_env, median, run_child, table, write_results

PARTS = ("begin", "open_temp", "value_file", "rename", "finish")


def _timed(owner, attr: str, label: str, spent: dict) -> None:
    """Replace ``owner.attr`` by a wrapper adding its wall time to ``spent[label]``."""
    fn = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - t0

    setattr(owner, attr, wrapper)


def child(work: Path, reps: int) -> None:
    import gc

    import sklearn  # noqa: F401 - imported before timing, on both sides (as save_get.py does)
    import xxhash

    import lineapy_ext
    from lineapy_ext.backends import lineapy as lineapy_backend
    from lineapy_ext.backends import value_file
    from lineapy_ext.store.metadata import MetadataDB

    with open(work / "model.source.pkl", "rb") as f:
        model = pickle.load(f)
    stream = pickle.dumps(model, protocol=5)
    spent: dict = collections.defaultdict(float)
    _timed(MetadataDB, "begin_artifact", "begin", spent)
    _timed(MetadataDB, "finish_artifact", "finish", spent)
    _timed(value_file, "write_value", "value_file", spent)
    _timed(lineapy_backend.LineaPyBackend, "_open_new", "open_temp", spent)
    _timed(lineapy_backend.LocalFiles, "mv", "rename", spent)
    target = work / f"raw-{os.getpid()}.pkl"

    def raw():
        with open(target, "wb") as f:
            pickle.dump(model, f, protocol=5)

    lineapy_ext.save(1, "warmup")  # opens the store
    samples = collections.defaultdict(list)
    for rep in range(-1, reps):
        for side in (("raw", "store") if rep % 2 else ("store", "raw")):
            gc.collect()
            spent.clear()
            t0 = time.perf_counter()
            if side == "raw":
                raw()
            else:
                art = lineapy_ext.save(model, "model")
            elapsed = time.perf_counter() - t0
            if side == "raw":
                target.unlink()
            else:
                lineapy_ext.delete("model", art.version)
            if rep < 0:
                continue
            samples[side].append(elapsed)
            if side == "store":
                for part in PARTS:
                    samples[part].append(spent[part])
                samples["other"].append(elapsed - sum(spent[p] for p in PARTS))
        t0 = time.perf_counter()
        xxhash.xxh3_128(stream).digest()
        if rep >= 0:
            samples["hash_stream"].append(time.perf_counter() - t0)
    print(json.dumps({k: median(v) for k, v in samples.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30, help="alternating raw/store saves per child")
    ap.add_argument("--children", type=int, default=5, help="child processes")
    ap.add_argument("--child", metavar="WORK", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.reps)
        return
    from save_get import make_sources

    with tempfile.TemporaryDirectory(prefix="lineapy-bench-breakdown-") as tmp:
        work = Path(tmp)
        make_sources(work, {"model"})
        env = isolated_env(work)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        runs = [run_child([__file__, "--child", str(work), "--reps", str(args.reps)], env=env)
                for _ in range(args.children)]
    ms = {k: median([r[k] for r in runs]) * 1e3 for k in runs[0]}
    floor = ms["raw"] + ms["hash_stream"] + ms["begin"] + ms["finish"] + ms["rename"]
    out = {
        "command": "python benchmarks/save_breakdown.py " + " ".join(sys.argv[1:]),
        "reps": args.reps,
        "children": args.children,
        "median_ms": ms,
        "per_child_ms": [{k: v * 1e3 for k, v in r.items()} for r in runs],
        "store_vs_raw": ms["raw"] / ms["store"],
        "pickling_added_ms": ms["value_file"] - ms["raw"],
        "floor_ms": floor,
        "raw_vs_floor": ms["raw"] / floor,
        "target": 0.8,
    }
    rows = [[k, round(v, 3)] for k, v in ms.items()]
    rows += [["floor (raw + hash + 2 transactions + rename)", round(floor, 3)],
             ["raw / store", round(out["store_vs_raw"], 3)], ["raw / floor", round(out["raw_vs_floor"], 3)]]
    print(table(["part", "ms (median over children)"], rows))
    print("wrote", write_results("save_breakdown", out))


if __name__ == "__main__":
    main()
