"""Verdicts of ``%lineapy verify --repair`` over the realistic notebook corpus.

Usage::

    python benchmarks/verify_corpus.py [--notebooks 01,02,...] [--vars N]

Each notebook of ``tests/corpus/notebooks`` runs cell by cell in a real
shell with the extension loaded (``tests.corpus.harness``), in a fresh dir
holding copies of its input files (dated an hour back: they were there
before the "kernel" started).  Then, for each of its last ``--vars`` bound
user variables (default 3; functions and modules aside), the value is saved
as ``%lineapy save VAR`` does and verified with ``Artifact.verify(repair=True)``.
Reported: verdict counts, how many slices needed a repair and whether the
repair verified, and the statements repairs added (each is a slicer miss).
Writes ``benchmarks/results/verify_corpus.json``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import REPO, table, use_isolated_env, write_results

sys.path.insert(0, str(REPO))


def _saved_variables(shell, limit: int) -> list[str]:
    import types

    from tests.corpus.harness import user_variables

    names = [n for n, v in user_variables(shell).items() if not isinstance(v, (types.FunctionType, type))]
    return names[-limit:]


def _verify_notebook(nb, root: Path, limit: int) -> list[dict]:
    from lineapy_ext import api
    from lineapy_ext.context import reset_context
    from tests.corpus.harness import INPUTS_DIR, _run_cells, SessionRun
    from tests.shells import close_shell, new_shell

    work = Path(tempfile.mkdtemp(prefix=f"{nb.name}-", dir=root))
    old = time.time() - 3600
    for name in nb.inputs:
        shutil.copy(INPUTS_DIR / name, work / name)
        os.utime(work / name, (old, old))
    reset_context()
    cwd, rows = os.getcwd(), []
    os.chdir(work)
    shell = new_shell()
    shell.enable_gui = lambda gui=None: None
    try:
        shell.run_line_magic("load_ext", "lineapy_ext")
        _run_cells(shell, nb, SessionRun())
        for var in _saved_variables(shell, limit):
            row = {"notebook": nb.name, "var": var}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    art = api.save_value(shell.user_ns[var], f"{nb.name}.{var}", var_names=[var], verify=False)
                first = art.verify()
                row["verdict"] = first.status
                row["detail"] = first.detail
                if first.status in ("differs", "failed", "nondeterministic"):
                    repaired = art.verify(repair=True)
                    row["after_repair"] = repaired.status
                    row["added"] = list(repaired.added_statements)
            except Exception as e:  # unpicklable values and the like: reported, not fatal
                row["verdict"] = f"not saved ({type(e).__name__})"
            rows.append(row)
    finally:
        shell.run_line_magic("unload_ext", "lineapy_ext")
        close_shell(shell)
        os.chdir(cwd)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", default="", help="comma-separated number prefixes (default: all)")
    parser.add_argument("--vars", type=int, default=3)
    args = parser.parse_args()
    use_isolated_env()
    from tests.corpus.harness import all_notebooks

    wanted = {p.strip() for p in args.notebooks.split(",") if p.strip()}
    notebooks = [nb for nb in all_notebooks() if not wanted or nb.name.split("_")[0] in wanted]
    root = Path(tempfile.mkdtemp(prefix="lineapy-verify-corpus-"))
    start, rows = time.perf_counter(), []
    for nb in notebooks:
        rows.extend(_verify_notebook(nb, root, args.vars))
        print(f"{nb.name}: " + ", ".join(f"{r['var']}={r['verdict']}" for r in rows if r["notebook"] == nb.name),
              file=sys.stderr, flush=True)
    counts = collections.Counter(r["verdict"] for r in rows)
    repaired = [r for r in rows if "after_repair" in r]
    fixed = [r for r in repaired if r["after_repair"] == "verified"]
    print(table(["verdict", "count"], sorted(counts.items())))
    print(f"{len(repaired)} repair(s) tried, {len(fixed)} verified after repair")
    for r in fixed:
        print(f"  {r['notebook']}.{r['var']}: added {r['added']}")
    path = write_results("verify_corpus", {
        "notebooks": len(notebooks), "verifications": len(rows), "verdicts": dict(counts),
        "repairs_tried": len(repaired), "repairs_verified": len(fixed),
        "seconds": time.perf_counter() - start, "rows": rows,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
