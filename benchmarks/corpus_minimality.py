"""Minimality of slices on the realistic corpus (tests/corpus).

Usage::

    python benchmarks/corpus_minimality.py [--notebooks 03,10] [--per-notebook 4] [--workers 2]

1. Runs the corpus harness (:func:`tests.corpus.harness.run_corpus`): every
   notebook cell by cell in a shell with the extension, the determinism check
   by a second run, every deterministic variable sliced and replayed in a
   fresh ``python``.  Per notebook: targets, replayed, and the median of
   (slice lines / session lines) over its targets.
2. For a sample of the slices that replay (``--per-notebook`` targets per
   notebook, a fixed pseudo-random pick), drops one top-level non-import
   statement of the slice at a time and re-runs the rest; a statement is
   *removable* when the value is still the session's without it.  The
   variants of one slice run in one child ``python`` that imports the
   slice's modules once and forks per variant (each variant in its own
   fresh dir holding the notebook's inputs), so a slice costs one
   interpreter start, not one per statement.

Target (issue 10): fewer than 5% of kept non-import statements removable.
Writes ``benchmarks/results/corpus.json`` (per-notebook figures and every
removable statement, to show which families the engine over-keeps).
"""

from __future__ import annotations

import argparse
import ast
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import table, write_results  # noqa: E402

from tests.corpus.harness import (  # noqa: E402
    CANON_SOURCE, all_notebooks, child_env, fresh_workdir, isolated_home, run_corpus,
)

#: The child: import the slice's modules once, then one fork per variant.
_CHILD = CANON_SOURCE + r'''

import os, pickle, signal, sys
sys.path.insert(0, "")  # each variant's dir, as for a script run there
spec = pickle.load(open(sys.argv[1], "rb"))
for imp in spec["imports"]:
    try:
        exec(imp, {})
    except BaseException:
        pass
results = []
for code, workdir in zip(spec["variants"], spec["dirs"]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.chdir(workdir)
        signal.alarm(120)
        try:
            ns = {"__name__": "__main__"}
            exec(compile(code, "<slice>", "exec"), ns)
            out = ("ok", corpus_canon(ns[spec["target"]]))
        except BaseException as e:
            out = ("error", f"{type(e).__name__}: {e}"[:300])
        with os.fdopen(w, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    results.append(pickle.loads(data) if data else ("error", "child died"))
pickle.dump(results, open(sys.argv[2], "wb"))
'''


def statements(code: str) -> tuple[list[str], list[tuple[int, int, str]]]:
    """The slice's import statements, and (first line, last line, text) of every other top-level statement."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports, others = [], []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        text = "\n".join(lines[start - 1:node.end_lineno])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(text)
        else:
            others.append((start, node.end_lineno, text))
    return imports, others


def drop_one(code: str, nb, target: str, picture, root: Path) -> dict:
    """Re-run ``code`` without each non-import statement in turn; which ones were not needed."""
    imports, others = statements(code)
    lines = code.splitlines()
    variants = [code] + ["\n".join(lines[:s - 1] + lines[e:]) + "\n" for s, e, _ in others]
    dirs = [str(fresh_workdir(nb, root, "drop")) for _ in variants]
    spec, out = root / f"{nb.name}-{target}-spec.pkl", root / f"{nb.name}-{target}-out.pkl"
    spec.write_bytes(pickle.dumps({"imports": imports, "variants": variants, "dirs": dirs, "target": target}))
    script = root / "drop_child.py"
    script.write_text(_CHILD)
    proc = subprocess.run([sys.executable, str(script), str(spec), str(out)], env=child_env(),
                          cwd=dirs[0], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr[-500:]}
    results = pickle.loads(out.read_bytes())
    if results[0] != ("ok", picture):
        return {"error": f"the whole slice does not recompute the value here: {str(results[0])[:200]}"}
    removable = [text for (_, _, text), res in zip(others, results[1:]) if res == ("ok", picture)]
    return {"statements": len(others), "removable": removable}


def sample_targets(res, k: int) -> list[str]:
    """A fixed pseudo-random pick of ``k`` targets that replayed, favouring longer slices' variety."""
    ok = sorted(res.ok)
    return sorted(random.Random(res.name).sample(ok, min(k, len(ok))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebooks", default="", help="comma-separated name prefixes (default: all)")
    ap.add_argument("--per-notebook", type=int, default=4, help="slices sampled per notebook for drop-one")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    prefixes = [p for p in args.notebooks.split(",") if p]
    notebooks = [nb for nb in all_notebooks() if not prefixes or any(nb.name.startswith(p) for p in prefixes)]
    root = Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    os.environ.update(isolated_home(root))
    start = time.perf_counter()
    results = run_corpus(notebooks, root, workers=args.workers)
    corpus_seconds = time.perf_counter() - start

    per_nb, removable_all, kept_all = {}, [], 0
    by_name = {nb.name: nb for nb in notebooks}
    for name, res in results.items():
        rec = res.summary()
        rec["sampled"] = {}
        for target in sample_targets(res, args.per_notebook):
            out = drop_one(res.slices[target], by_name[name], target, res.pictures[target], root)
            rec["sampled"][target] = out
            if "statements" in out:
                kept_all += out["statements"]
                removable_all += [{"notebook": name, "variable": target, "statement": s} for s in out["removable"]]
        per_nb[name] = rec
    share = len(removable_all) / kept_all if kept_all else None
    ratios = [r["median_slice_ratio"] for r in per_nb.values() if r["median_slice_ratio"] is not None]
    data = {
        "notebooks": len(per_nb),
        "targets": sum(r["targets"] for r in per_nb.values()),
        "replayed_ok": sum(r["replayed_ok"] for r in per_nb.values()),
        "median_slice_ratio": round(statistics.median(ratios), 3) if ratios else None,
        "kept_non_import_statements_sampled": kept_all,
        "removable": len(removable_all),
        "removable_share": round(share, 4) if share is not None else None,
        "target_removable_share": 0.05,
        "corpus_seconds": round(corpus_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "per_notebook": per_nb,
        "removable_statements": removable_all,
    }
    path = write_results("corpus", data)
    rows = [[n, r["targets"], r["replayed_ok"], r["median_slice_ratio"],
             sum(s.get("statements", 0) for s in r["sampled"].values()),
             sum(len(s.get("removable", [])) for s in r["sampled"].values())] for n, r in per_nb.items()]
    print(table(["notebook", "targets", "replayed", "median slice/session", "sampled stmts", "removable"], rows))
    print(f"\nremovable share: {data['removable_share']} ({len(removable_all)}/{kept_all}); "
          f"median slice/session {data['median_slice_ratio']}; {data['total_seconds']} s -> {path}")


if __name__ == "__main__":
    main()
