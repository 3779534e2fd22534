"""Prints the corpus record (per notebook: targets, replayed, median slice/session size) after the run."""

from __future__ import annotations

#: Filled by the ``corpus`` fixture of test_corpus.py: notebook name -> summary dict.
CORPUS_SUMMARY: dict[str, dict] = {}


def pytest_terminal_summary(terminalreporter):
    if not CORPUS_SUMMARY:
        return
    terminalreporter.section("realistic corpus")
    for name, s in CORPUS_SUMMARY.items():
        terminalreporter.write_line(
            f"{name:28s} targets {s['targets']:3d}  replayed {s['replayed_ok']:3d}  "
            f"refused {len(s['refused_after_failed_cell']):2d}  wrong {len(s['failed']):2d}  "
            f"nondeterministic {len(s['nondeterministic']):2d}  median slice/session {s['median_slice_ratio']}")
