"""The realistic corpus: every deterministic variable of every notebook replays.

Each notebook of ``tests/corpus/notebooks`` runs cell by cell in a real
shell with the extension loaded (see :mod:`tests.corpus.harness`); every
top-level variable whose value is the same in a second, independent run of
the notebook is sliced as ``%lineapy save`` does and the slice is replayed
by a plain ``python`` in a fresh dir holding only the notebook's input
files.  The value recomputed there must equal the session's.

The heavy part runs once per test session for all selected notebooks (the
replays on a pool of two workers) and is marked slow; the per-notebook
record (targets, replayed, median slice/session size) is printed in the
terminal summary (tests/corpus/conftest.py) and written to
``$LINEAPY_CORPUS_REPORT`` when set.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.corpus.conftest import CORPUS_SUMMARY
from tests.corpus.harness import INPUTS_DIR, all_notebooks, isolated_home, run_corpus

NOTEBOOKS = all_notebooks()
IDS = [nb.name for nb in NOTEBOOKS]


def test_corpus_is_well_formed():
    assert len(NOTEBOOKS) >= 30, f"the corpus has {len(NOTEBOOKS)} notebooks, at least 30 wanted"
    for nb in NOTEBOOKS:
        assert len(nb.cells) >= 4, f"{nb.name}: {len(nb.cells)} cells"
        assert set(nb.order) <= {c.number for c in nb.cells}, f"{nb.name}: order {nb.order} names missing cells"
        for name in nb.inputs:
            assert (INPUTS_DIR / name).is_file(), f"{nb.name}: input {name} missing from {INPUTS_DIR}"


def _selected(request) -> list:
    """The notebooks whose replay test is selected in this session (all when run alone)."""
    wanted = {item.callspec.params["nb"].name for item in request.session.items
              if getattr(item, "callspec", None) is not None and "nb" in item.callspec.params
              and item.originalname == "test_notebook_replays"}
    return [nb for nb in NOTEBOOKS if nb.name in wanted] or NOTEBOOKS


@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory):
    """Run, slice and replay the selected notebooks; results by notebook name."""
    from lineapy_ext.context import reset_context

    root = tmp_path_factory.mktemp("corpus")
    env = isolated_home(root)
    with pytest.MonkeyPatch.context() as mp:
        for var in ("LINEAPY_MLFLOW_TRACKING_URI", "LINEAPY_DEFAULT_STORAGE_BACKEND", "LINEAPY_LOGGING_LEVEL"):
            mp.delenv(var, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        cwd = os.getcwd()
        try:
            results = run_corpus(_selected(request), root)
        finally:
            os.chdir(cwd)
            reset_context()
    summary = {name: r.summary() for name, r in results.items()}
    report = os.environ.get("LINEAPY_CORPUS_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(summary, f, indent=1)
    CORPUS_SUMMARY.update(summary)
    return results


@pytest.mark.slow
# The first test also runs the whole corpus (the module fixture): ~4 min on two
# idle cores, much more on a shared, loaded machine.
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_notebook_replays(nb, corpus):
    res = corpus[nb.name]
    if res.broken or res.unreadable or not res.targets:
        pytest.fail(f"{nb.name}: notebook misbehaved {res.broken}; values the harness cannot compare "
                    f"{res.unreadable}; targets {res.targets}", pytrace=False)
    if res.failures:
        report = "\n\n".join(f"--- {name}: {status}: {detail}\n{code}"
                             for name, (status, detail, code) in sorted(res.failures.items()))
        pytest.fail(f"{nb.name}: {len(res.failures)} of {len(res.targets)} slices do not recompute the "
                    f"session's value:\n{report}", pytrace=False)
    assert sorted(res.ok + list(res.refused)) == sorted(res.targets)
