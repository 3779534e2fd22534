"""The tracker inside a loaded extension: late loading, reloading, saves
inside blocks, artifacts loaded and re-saved, failed statements."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.exceptions import SliceError


def run(shell, src: str):
    result = shell.run_cell(src, store_history=True)
    result.raise_error()
    return result


def replay(code: str, expr: str, tmp_path) -> str:
    proc = subprocess.run([sys.executable, "-c", code + f"\nprint(repr({expr}))"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_reload_keeps_the_captured_session(ipython):
    run(ipython, "a = [1]\nb = a")
    tracker = get_context().tracker
    with capture_output() as out:
        run(ipython, "%reload_ext lineapy_ext")
    assert get_context().tracker is tracker
    assert "recovered" not in out.stdout
    run(ipython, "b.append(2)")
    code = tracker.slice(["a"]).code
    assert "b.append(2)" in code  # aliasing seen at run time survives the reload
    assert code.count("a = [1]") == 1


def test_cells_run_while_unloaded_are_recovered_once(ipython):
    run(ipython, "x = 1")
    run(ipython, "%unload_ext lineapy_ext")
    run(ipython, "x = x + 10")
    with capture_output() as out:
        run(ipython, "%load_ext lineapy_ext")
    assert "1 cell(s)" in out.stdout
    code = get_context().tracker.slice(["x"]).code
    assert code.split() == "x = 1 x = x + 10".split()


def test_magic_only_cells_are_not_reported_as_recovered(ipython):
    run(ipython, "%unload_ext lineapy_ext")
    run(ipython, "%colors nocolor")
    run(ipython, "y = 2")
    with capture_output() as out:
        run(ipython, "%load_ext lineapy_ext")
    assert "1 cell(s)" in out.stdout  # y = 2 only


def test_save_inside_a_with_block_in_the_same_cell(ipython, tmp_path):
    run(ipython, "import contextlib\nx = []")
    run(ipython, "with contextlib.nullcontext():\n    x.append(1)\n    %lineapy save x xw\n")
    code = lineapy_ext.get("xw").get_code()
    assert "x.append(1)" in code and "lineapy" not in code and "get_ipython" not in code
    assert replay(code, "x", tmp_path) == "[1]"


def test_inlined_artifact_is_the_version_that_was_loaded(ipython, tmp_path):
    run(ipython, "a = 1\n%lineapy save a art")
    run(ipython, "%lineapy get art --as=b")
    run(ipython, "c = b + 1\na = 100\n%lineapy save a art")
    run(ipython, "%lineapy save c cc")
    code = lineapy_ext.get("cc").get_code()
    assert replay(code, "c", tmp_path) == "2"


def test_save_of_an_underscore_variable_slices_on_it(ipython):
    run(ipython, "import lineapy_ext\nbase = 20\n_tmp = base + 1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(ipython, "art = lineapy_ext.save(_tmp, 'ut')")
    assert not [w for w in caught if "no variable holds this value" in str(w.message)]
    art = ipython.user_ns["art"]
    assert art.get_metadata()["var_names"] == ["_tmp"]
    assert "base = 20" in art.get_code() and "_tmp = base + 1" in art.get_code()


def test_partial_effects_of_a_failed_statement_are_warned_about(ipython, caplog):
    run(ipython, "lst = []\ndef add_then_fail(xs):\n    xs.append(1)\n    raise ValueError('late')")
    ipython.run_cell("add_then_fail(lst)", store_history=True)
    with caplog.at_level(logging.WARNING, logger="lineapy_ext.tracking"):
        get_context().tracker.slice(["lst"])
    assert any("raised part-way" in r.getMessage() and "'lst'" in r.getMessage() for r in caplog.records)


def test_list_half_filled_by_a_loop_that_raised_is_refused(ipython):
    # Earlier iterations appended: the slice could not recompute [0, 1].
    run(ipython, "lst = []")
    ipython.run_cell("for i in range(3):\n    lst.append(i)\n    if i == 1:\n        raise ValueError", store_history=True)
    with pytest.raises(SliceError, match=r"cannot slice 'lst'.*raised part-way \(ValueError"):
        get_context().tracker.slice(["lst"])


def test_a_failing_hook_never_breaks_the_cell(ipython, monkeypatch):
    tracker = get_context().tracker

    def broken(*args, **kwargs):
        raise RuntimeError("analysis bug")

    monkeypatch.setattr(tracker.graph, "add_cell", broken)
    result = ipython.run_cell("y = 41 + 1", store_history=True)
    assert result.success and ipython.user_ns["y"] == 42


# --- issue 10: loops that raised, magics wrapping the API, lost facts -----------------


@pytest.mark.parametrize("cell", [
    "for i in range(5):\n    if i == 3:\n        raise ValueError('stop')",
    "warm = 1\nfor i in range(5):\n    if i == 3:\n        raise ValueError('stop')",
])
def test_loop_variable_of_a_loop_that_raised_is_refused(ipython, cell):
    run(ipython, "i = -1")
    ipython.run_cell(cell, store_history=True)
    assert ipython.user_ns["i"] == 3
    with pytest.raises(SliceError, match=r"cannot slice 'i'.*raised part-way.*re-run"):
        get_context().tracker.slice(["i"])


def test_time_around_lineapy_get_is_inlined(ipython, tmp_path):
    run(ipython, "base = [1, 2, 3]\ntotal = sum(base)")
    run(ipython, "%lineapy save total")
    run(ipython, "%time %lineapy get total")
    run(ipython, "%%time\n%lineapy get total --as again")
    run(ipython, "double = total * 2 + again")
    code = get_context().tracker.slice(["double"]).code
    assert "left out" not in code and "get_ipython" not in code
    assert replay(code, "double", tmp_path) == "18"


def test_lost_runtime_facts_are_reported_by_the_next_slice(ipython, caplog):
    run(ipython, "class Weird:\n    pass\nw = Weird()")
    tracker = get_context().tracker
    tracker.capture.cells[-1].problems.append("no runtime facts for 'w': KeyError: 'x'")
    tracker.graph.problems.append((None, "no runtime facts for 'w': KeyError: 'x'"))
    run(ipython, "v = 1")
    with caplog.at_level(logging.WARNING, logger="lineapy_ext.tracking"):
        tracker.slice(["v"])
    assert "no runtime facts for 'w'" in caplog.text


def test_dict_filled_by_a_loop_that_raised_is_refused(ipython):
    run(ipython, "counts = {}")
    ipython.run_cell("for i, c in enumerate('abcab'):\n    counts[c] = counts.get(c, 0) + 1\n"
                     "    if i == 3:\n        raise RuntimeError('x')", store_history=True)
    for name in ("counts", "i", "c"):
        with pytest.raises(SliceError, match=rf"cannot slice '{name}'.*raised part-way"):
            get_context().tracker.slice([name])


def test_a_failed_read_only_cell_does_not_cry_wolf(ipython, caplog):
    run(ipython, "data = {'a': [1, 2]}")
    ipython.run_cell("oops = data['no_such_column'].mean()", store_history=True)
    run(ipython, "total = sum(data['a'])")
    with caplog.at_level(logging.WARNING, logger="lineapy_ext.tracking"):
        get_context().tracker.slice(["total"])
    assert not any("raised part-way" in r.getMessage() for r in caplog.records)


# --- issue 13: huge cells are analysed when the graph is next needed ------------------


def _huge(before: str, after: str) -> str:
    """A cell of DEFER_STATEMENTS filler statements between ``before`` and ``after``."""
    from lineapy_ext.tracking import DEFER_STATEMENTS

    filler = "\n".join(f"pad{i % 50} = {i}" for i in range(DEFER_STATEMENTS))
    return f"{before}\n{filler}\n{after}"


def test_a_huge_cell_is_analysed_at_the_next_slice_with_the_same_slice(ipython, tmp_path):
    tracker = get_context().tracker
    run(ipython, "base = [1]")
    run(ipython, _huge("a = base[0] + 1\nbase.append(a)", "b = a * len(base)"))
    run(ipython, "c = b + 1")
    run(ipython, "unrelated = 5")
    assert len(tracker._pending) == 3  # the huge cell, and the cells behind it
    code = tracker.slice(["c"]).code
    assert tracker._pending == []
    assert [ln for ln in code.splitlines() if ln and not ln.startswith("#")] == [
        "base = [1]", "a = base[0] + 1", "base.append(a)", "b = a * len(base)", "c = b + 1"]
    assert replay(code, "c", tmp_path) == "5"


def test_a_cell_using_lineapy_adds_the_deferred_cells_first(ipython):
    # %lineapy get pins the version saved when its cell ends, not at the next save.
    tracker = get_context().tracker
    run(ipython, _huge("h = 1", "k = h + 1"))
    assert len(tracker._pending) == 1
    run(ipython, "import lineapy_ext")
    assert tracker._pending == [] and {"h", "k", "lineapy_ext"} <= set(tracker._graph.bindings)


def test_a_loop_that_raised_in_a_huge_cell_is_still_refused(ipython):
    run(ipython, "lst = []")
    ipython.run_cell(_huge("first = 1", "for i in range(3):\n    lst.append(i)\n    if i == 1:\n"
                                        "        raise ValueError('stop')\nnever = 2"), store_history=True)
    tracker = get_context().tracker
    assert len(tracker._pending) == 1 and "never" not in ipython.user_ns
    for name in ("lst", "i"):
        with pytest.raises(SliceError, match=rf"cannot slice '{name}'.*raised part-way \(ValueError"):
            tracker.slice([name])
    assert tracker.slice(["first"]).code.strip().endswith("first = 1")


def test_a_save_from_another_thread_adds_the_deferred_cells(ipython):
    import threading

    run(ipython, _huge("u = [3]", "v = u * 2"))
    tracker, got = get_context().tracker, {}
    t = threading.Thread(target=lambda: got.update(code=tracker.slice(["v"]).code))
    t.start()
    t.join(60)
    assert [ln for ln in got["code"].splitlines() if ln and not ln.startswith("#")] == ["u = [3]", "v = u * 2"]
    assert tracker._pending == []


def test_cells_waiting_behind_a_huge_cell_are_bounded(ipython):
    from lineapy_ext.tracking import MAX_PENDING_CELLS

    tracker = get_context().tracker
    run(ipython, _huge("n0 = 0", "n1 = n0 + 1"))
    for i in range(2, MAX_PENDING_CELLS + 3):
        run(ipython, f"n{i} = n{i - 1} + 1")
        assert len(tracker._pending) <= MAX_PENDING_CELLS
    assert len(tracker._pending) < MAX_PENDING_CELLS  # they were added on the way
    code = tracker.slice([f"n{MAX_PENDING_CELLS + 2}"]).code
    assert code.count("\nn") == MAX_PENDING_CELLS + 2 and "pad" not in code


def test_a_deferred_cell_whose_analysis_fails_is_kept_and_said(ipython, monkeypatch, caplog):
    tracker = get_context().tracker
    real = tracker._graph.add_cell

    def broken_for_huge_cells(cell, *args, **kwargs):
        if len(cell.statements) > 100:
            raise RuntimeError("analysis bug")
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(tracker._graph, "add_cell", broken_for_huge_cells)
    result = ipython.run_cell(_huge("z = 1", "y = z + 1"), store_history=True)
    assert result.success and ipython.user_ns["y"] == 2
    run(ipython, "w = 7")
    with caplog.at_level(logging.WARNING, logger="lineapy_ext.tracking"):
        code = tracker.slice(["w"]).code
    assert "w = 7" in code and "analysing cell" in caplog.text and "analysis bug" not in code


def test_a_deferred_cell_keeps_no_trees_unless_another_transformer_changed_them(ipython, tmp_path):
    import ast

    class Noop(ast.NodeTransformer):  # the trees are no longer what the parser gave
        pass

    tracker = get_context().tracker
    run(ipython, _huge("q = [2]", "r = q * 3"))
    assert tracker._pending[-1][1] is None  # parsed again when needed
    ipython.ast_transformers.insert(0, Noop())
    try:
        run(ipython, _huge("s = r + [1]", "t = len(s)"))
    finally:
        ipython.ast_transformers.pop(0)
    assert len(tracker._pending[-1][1]) > 2000 and not tracker.capture.cells[-1].parsed_as_is
    code = tracker.slice(["t"]).code
    assert [ln for ln in code.splitlines() if ln and not ln.startswith("#")] == [
        "q = [2]", "r = q * 3", "s = r + [1]", "t = len(s)"]
    assert replay(code, "t", tmp_path) == "4"


def test_a_deferred_cell_parsed_differently_is_taken_as_touching_everything(ipython, tmp_path):
    tracker = get_context().tracker
    run(ipython, "pre = 10")
    run(ipython, _huge("o = pre + 1", "p = o * 2"))
    cell = tracker.capture.cells[-1]
    cell.source = "\n" + cell.source  # the second parse no longer matches the statements
    code = tracker.slice(["p"]).code
    assert "pad1 = " in code and "pre = 10" in code  # every statement kept: nothing known
    assert replay(code, "p", tmp_path) == "22"
