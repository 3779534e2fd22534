"""Load speed of the value backend before/after verify-before-unpickle, paired in one process.

Usage::

    python benchmarks/verify_before_unpickle.py [--rev e0b4acb] [--reps 12] [--mb 500]

The ``lineapy`` backend of git revision ``--rev`` (hashing while unpickling,
buffers read lazily) and the current one (the whole file hashed into its
final buffers first, unpickled only when the digests match) load the same
value file (a float64 array of ``--mb`` MB, file format unchanged) in
alternating order (ABBA), warm page cache.  On a shared machine the paired
medians are what to compare; ``benchmarks/save_get.py`` gives the peak
memory (1.0x the value size either way).  Writes
``benchmarks/results/verify_before_unpickle.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import REPO, median, write_results


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="e0b4acb", help="revision with the old backend (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--mb", type=int, default=500)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lineapy-bench-verify-"))
    try:
        old_src = subprocess.run(["git", "show", f"{args.rev}:lineapy_ext/backends/lineapy.py"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout
        (work / "old_backend.py").write_text(old_src)
        old = _module("old_backend", work / "old_backend.py")
        new = _module("new_backend", REPO / "lineapy_ext" / "backends" / "lineapy.py")
        value = np.random.default_rng(0).random(args.mb * 1_000_000 // 8)
        meta = new.LineaPyBackend(str(work / "store")).save(value, "arr")
        del value
        times: dict = {"before": [], "after": []}
        for i in range(args.reps):
            order = (("before", old), ("after", new)) if i % 2 == 0 else (("after", new), ("before", old))
            for label, mod in order:
                backend = mod.LineaPyBackend(str(work / "store"))
                t0 = time.perf_counter()
                loaded = backend.load(meta)
                times[label].append(time.perf_counter() - t0)
                del loaded
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = meta["size"]
    results = {k: {"median_s": median(v), "min_s": min(v), "median_MBps": size / median(v) / 1e6, "samples_s": v}
               for k, v in times.items()}
    results["after_vs_before_median"] = results["after"]["median_s"] / results["before"]["median_s"]
    for k in ("before", "after"):
        r = results[k]
        print(f"{k:6}  median {r['median_s']:.3f} s ({r['median_MBps']:.0f} MB/s)  min {r['min_s']:.3f} s")
    print(f"after/before (median time): {results['after_vs_before_median']:.2f}")
    path = write_results("verify_before_unpickle", {"rev": args.rev, "reps": args.reps, "file_bytes": size,
                                                    "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
