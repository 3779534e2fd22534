"""The dependency graph on its own: built from parsed cells, no shell."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import pytest

from kernel_hooks import CellRecord, statement_records
from lineapy_ext.analysis import DependencyGraph, analyze, slice_graph
from lineapy_ext.exceptions import SliceError


def add(graph: DependencyGraph, src: str, completed: int | None = None) -> None:
    tree = ast.parse(src)
    cell = CellRecord(len(graph.nodes), None, src, src, has_runtime_facts=False)
    cell.statements = statement_records(src, tree.body)
    cell.completed = len(tree.body) if completed is None else completed
    graph.add_cell(cell, [analyze(s) for s in tree.body])


def code_for(graph, *names) -> str:
    return slice_graph(graph, list(names)).code


def test_slice_keeps_execution_order_and_drops_the_rest():
    g = DependencyGraph()
    for src in ["a = 1", "noise = 2", "b = a + 1", "a = 100", "c = b * 2"]:
        add(g, src)
    assert code_for(g, "c").split() == "a = 1 b = a + 1 c = b * 2".split()


def test_fork_does_not_change_the_original():
    g = DependencyGraph()
    add(g, "x = [1]")
    f = g.fork()
    add(f, "x.append(2)")
    assert "append" in code_for(f, "x") and "append" not in code_for(g, "x")
    assert len(g.nodes) == 1


def test_statements_after_a_failure_are_not_in_the_graph():
    g = DependencyGraph()
    add(g, "y = 1\ny = 2\ny = 3", completed=2)
    assert code_for(g, "y").strip() == "y = 2"


def test_unknown_name_is_a_slice_error():
    g = DependencyGraph()
    add(g, "a = 1")
    with pytest.raises(SliceError, match="'nope'"):
        slice_graph(g, ["nope"])


def test_history_heads_keep_reads_linear():
    g = DependencyGraph()
    add(g, "acc = []")
    for i in range(300):
        add(g, f"acc.append({i})")
    key = g.bindings["acc"]
    assert len(g.objects.writers[key]) == 1  # one head stands for the whole history
    assert code_for(g, "acc").count("append") == 300


def test_call_time_reads_follow_rebinding_of_callees():
    g = DependencyGraph()
    add(g, "def helper():\n    return k1")
    add(g, "def f():\n    return helper()")
    assert "k1" in g.call_time_reads(g.bindings["f"])
    add(g, "def helper():\n    return k2")
    reads = g.call_time_reads(g.bindings["f"])
    assert "k2" in reads and "k1" not in reads


def _stdlib_sample(n=40):
    paths = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    return paths[:: max(1, len(paths) // n)][:n]


@pytest.mark.parametrize("path", _stdlib_sample(), ids=lambda p: p.name)
def test_real_code_never_crashes_the_analysis(path):
    src = path.read_text(encoding="utf-8", errors="replace")
    g = DependencyGraph()
    add(g, src)
    assert len(g.nodes) == len(ast.parse(src).body)


def test_accumulator_reads_do_not_walk_old_elements():
    g = DependencyGraph()
    add(g, "results = []")
    for i in range(200):
        add(g, f"x{i} = [{i}]\nresults.append(x{i})")
    key = g.bindings["results"]
    # Only what changed since the last append is revisited on a read.
    assert len(g.objects.dirty.get(key, ())) <= 1
    add(g, "x199.append(-1)")
    assert "x199.append(-1)" in code_for(g, "results")
    assert code_for(g, "results").count("results.append") == 200
