"""Tests of ``kernel_hooks.Capture`` on a real ``InteractiveShell``, on its own.

Nothing here imports ``lineapy_ext``: the capture layer must be usable and
testable without the slicing engine.  Covers the per-cell records (sources,
statement splitting, completion of a cell that raised, syntax errors), the
namespace diff by identity, listener failures, install/uninstall symmetry,
backfill of cells that ran before install, and ``current_cell()`` from inside
a running cell.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernel_hooks import Capture
from tests.shells import close_shell, new_shell


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A fresh shell with in-memory history, in an empty working directory."""
    sh = new_shell()
    monkeypatch.chdir(tmp_path)
    yield sh
    close_shell(sh)


@pytest.fixture
def cap(shell):
    """A ``Capture`` installed on ``shell`` (uninstalled afterwards)."""
    c = Capture(shell)
    c.install()
    yield c
    c.uninstall()


def run(shell, src: str):
    return shell.run_cell(src, store_history=True)


# --- records -------------------------------------------------------------------


def test_one_record_per_cell_with_sources(shell, cap):
    run(shell, "a = 1")
    run(shell, "b = a + 1")
    assert [c.raw_source for c in cap.cells] == ["a = 1", "b = a + 1"]
    assert [c.index for c in cap.cells] == [0, 1]
    counts = [c.execution_count for c in cap.cells]
    assert counts[1] == counts[0] + 1
    assert all(c.success and not c.in_progress and c.has_runtime_facts for c in cap.cells)


def test_line_magic_is_transformed_in_source(shell, cap):
    run(shell, "%time x = 1")
    cell = cap.cells[-1]
    assert cell.raw_source == "%time x = 1"
    assert "get_ipython().run_line_magic('time', 'x = 1')" in cell.source
    assert [s.source for s in cell.statements] == ["get_ipython().run_line_magic('time', 'x = 1')"]
    assert shell.user_ns["x"] == 1


def test_statements_on_one_line_are_split(shell, cap):
    run(shell, "a = 1; b = 2\nc = 3")
    cell = cap.cells[-1]
    assert [s.source for s in cell.statements] == ["a = 1", "b = 2", "c = 3"]
    assert [s.index for s in cell.statements] == [0, 1, 2]
    assert [s.lineno for s in cell.statements] == [1, 1, 2]
    assert cell.completed == 3


def test_decorated_function_keeps_its_decorators(shell, cap):
    src = "import functools\n@functools.lru_cache()\n@staticmethod\ndef f(x):\n    return x\ny = 2"
    run(shell, src)
    stmts = cap.cells[-1].statements
    assert len(stmts) == 3
    assert stmts[1].source.startswith("@functools.lru_cache()\n@staticmethod\ndef f(x):")
    assert stmts[1].source.rstrip().endswith("return x")
    assert (stmts[1].lineno, stmts[1].end_lineno) == (2, 5)
    assert stmts[2].source == "y = 2"


def test_nested_time_magic_does_not_replace_statements(shell, cap):
    run(shell, "x = 1\n%time y = 2\nz = 3")
    cell = cap.cells[-1]
    assert len(cell.statements) == 3
    assert cell.statements[0].source == "x = 1"
    assert "run_line_magic('time', 'y = 2')" in cell.statements[1].source
    assert cell.statements[2].source == "z = 3"
    assert cell.completed == 3


def test_ast_nodes_attached_during_listener_then_dropped(shell):
    seen = []
    c = Capture(shell, on_cell=lambda rec: seen.append([type(s.node).__name__ for s in rec.statements]))
    c.install()
    try:
        run(shell, "a = 1\nprint(a)")
    finally:
        c.uninstall()
    assert seen == [["Assign", "Expr"]]
    assert all(s.node is None for s in c.cells[-1].statements)


def test_cell_that_raises_half_way(shell, cap):
    res = run(shell, "a = 1\nb = 1 / 0\nc = 3")
    assert not res.success
    cell = cap.cells[-1]
    assert not cell.success
    assert cell.completed == 1
    assert len(cell.statements) == 3
    assert "ZeroDivisionError" in cell.error
    assert "a" in cell.bound and "c" not in cell.bound


def test_cell_raising_inside_a_function(shell, cap):
    run(shell, "def boom():\n    raise RuntimeError('x')")
    run(shell, "a = 1\nb = 2\nboom()\nc = 4")
    cell = cap.cells[-1]
    assert cell.completed == 2
    assert "RuntimeError" in cell.error


def test_syntax_error_has_no_statements(shell, cap):
    res = run(shell, "x = (")
    assert res.error_before_exec is not None
    cell = cap.cells[-1]
    assert cell.raw_source == "x = ("
    assert cell.statements == [] and cell.completed == 0
    assert not cell.success and "SyntaxError" in cell.error
    run(shell, "y = 1")
    assert cap.cells[-1].raw_source == "y = 1" and cap.cells[-1].success


def test_result_id_of_trailing_expression(shell, cap):
    run(shell, "data = [1, 2]")
    run(shell, "data")
    assert cap.cells[-1].result_id == id(shell.user_ns["data"])
    run(shell, "z = 0")
    assert cap.cells[-1].result_id is None


# --- namespace diff --------------------------------------------------------------


def test_bound_by_identity(shell, cap):
    run(shell, "a = [1]\nn = 5\ns = 'txt'")
    bound = cap.cells[-1].bound
    assert set(bound) == {"a", "n", "s"}
    assert bound["a"].id == id(shell.user_ns["a"]) and bound["a"].type_name == "list"
    assert not bound["a"].atomic and bound["n"].atomic
    assert bound["s"].str_value == "txt"


def test_alias_shows_same_id(shell, cap):
    run(shell, "a = [1]")
    run(shell, "b = a")
    bound = cap.cells[-1].bound
    assert set(bound) == {"b"}
    assert bound["b"].id == cap.cells[0].bound["a"].id


def test_rebinding_to_same_object_is_not_a_change(shell, cap):
    run(shell, "a = [1]\nb = 3")
    run(shell, "a = a\nc = a\nb = b")
    assert set(cap.cells[-1].bound) == {"c"}


def test_in_place_mutation_is_not_rebinding(shell, cap):
    run(shell, "a = [1]\nd = {}")
    run(shell, "a.append(2)\nd['k'] = 1\na += [3]")
    assert cap.cells[-1].bound == {}
    assert cap.cells[-1].deleted == set()


def test_ipython_bookkeeping_names_hidden(shell, cap):
    run(shell, "x = 41")
    run(shell, "x + 1")
    cell = cap.cells[-1]
    assert cell.bound == {}
    assert not any(k.startswith("_") for k in cell.bound)


def test_container_element_ids_and_view_base(shell, cap):
    run(shell, "import numpy as np\ninner = [1]\nouter = [inner, 2]\nbase = np.arange(4)\nview = base[1:]")
    bound = cap.cells[-1].bound
    assert bound["outer"].element_ids == (id(shell.user_ns["inner"]),)
    assert bound["view"].base_id == id(shell.user_ns["base"])


def test_deleted_and_bound_again_in_one_cell(shell, cap):
    run(shell, "a = [1]\nb = [2]\nc = None\nd = 4")
    run(shell, "del a\ndel c\nb2 = 5\nd = [4]")
    assert set(cap.cells[-1].bound) == {"b2", "d"} and cap.cells[-1].deleted == {"a", "c"}
    run(shell, "keep = b\ndel b\nb = keep\nnew = 1")  # same object back under b
    assert set(cap.cells[-1].bound) == {"keep", "new"} and cap.cells[-1].deleted == set()
    run(shell, "del new\nnew = 2\nz = 0")
    assert set(cap.cells[-1].bound) == {"new", "z"} and cap.cells[-1].deleted == set()


@pytest.mark.filterwarnings("ignore:Output cache limit")
def test_diff_survives_ipython_culling_its_output_cache(shell, cap):
    # IPython deletes old ``_N`` names once its output cache is full.
    shell.displayhook.cache_size = 10
    for i in range(30):
        run(shell, f"v{i} = {i}\nv{i}")
        assert set(cap.cells[-1].bound) == {f"v{i}"}, i
    run(shell, "del v3\nw = 1")
    assert set(cap.cells[-1].bound) == {"w"} and cap.cells[-1].deleted == {"v3"}


def test_diff_after_reset_and_from_inside_a_cell(shell, cap):
    run(shell, "a = 1")
    run(shell, "%reset -f")
    run(shell, "b = 2")
    assert set(cap.cells[-1].bound) == {"b"}
    seen = []
    shell.user_ns["look"] = lambda: seen.append(set(cap.current_cell().bound))
    run(shell, "c = 3\nlook()\nd = 4")
    assert {"c"} <= seen[0] and "d" not in seen[0]
    assert set(cap.cells[-1].bound) >= {"c", "d"}


def test_recorder_back_in_place_after_each_cell_and_later_transformers_still_run(shell, cap):
    import ast

    seen = []

    class Counting(ast.NodeTransformer):
        def visit(self, node):
            seen.append(type(node).__name__)
            return node

    run(shell, "a = 1\nb = 2\n1 / 0")
    assert shell.ast_transformers[-1] is cap._recorder and cap.cells[-1].completed == 2
    shell.ast_transformers.append(Counting())
    run(shell, "c = 3\nd = c")
    run(shell, "e = 5")
    assert seen == ["Module", "Module"] and cap._recorder in shell.ast_transformers
    assert [c.raw_source for c in cap.cells[-2:]] == ["c = 3\nd = c", "e = 5"]


@pytest.mark.filterwarnings("ignore:Output cache limit")
def test_incremental_diff_matches_a_full_comparison(shell, cap):
    import random

    from kernel_hooks import is_ipython_name

    rng = random.Random(13)
    shell.displayhook.cache_size = 12  # IPython culls its _N names now and then
    run(shell, "keep = []")  # every value stays alive: no id is reused

    def ids():
        return {k: id(v) for k, v in shell.user_ns.items() if not is_ipython_name(k)}

    for step in range(120):
        names = [f"v{i}" for i in range(8)]
        lines = []
        for _ in range(rng.randint(1, 4)):
            n, op = rng.choice(names), rng.random()
            if op < 0.4:
                lines.append(f"{n} = [{step}]\nkeep.append({n})")
            elif op < 0.55:
                lines.append(f"{n} = None")
            elif op < 0.75:
                lines.append(f"if '{n}' in globals(): del {n}")
            elif op < 0.85:
                lines.append(f"if '{n}' in globals():\n    _t = {n}\n    del {n}\n    {n} = _t")
            else:
                lines.append(f"[{step}]")
        before = ids()
        assert run(shell, "\n".join(lines)).success
        after = ids()
        cell = cap.cells[-1]
        assert set(cell.bound) == {k for k, i in after.items() if before.get(k) != i}, lines
        assert cell.deleted == before.keys() - after.keys(), lines


# --- robustness ----------------------------------------------------------------


def test_listener_failure_does_not_break_cells(shell):
    calls = []

    def listener(rec):
        calls.append(rec.raw_source)
        raise RuntimeError("listener bug")

    c = Capture(shell, on_cell=listener)
    c.install()
    try:
        r1 = run(shell, "a = 1")
        r2 = run(shell, "b = a + 1")
    finally:
        c.uninstall()
    assert r1.success and r2.success
    assert shell.user_ns["b"] == 2
    assert calls == ["a = 1", "b = a + 1"]
    assert [rec.raw_source for rec in c.cells] == ["a = 1", "b = a + 1"]


def test_install_uninstall_symmetric(shell):
    before_events = {k: list(v) for k, v in shell.events.callbacks.items()}
    before_ast = list(shell.ast_transformers)
    c = Capture(shell)
    c.install()
    assert c._pre_run_cell in shell.events.callbacks["pre_run_cell"]
    assert len(shell.ast_transformers) == len(before_ast) + 1
    assert c.install() == []  # idempotent
    assert len(shell.ast_transformers) == len(before_ast) + 1
    run(shell, "a = 1")
    c.uninstall()
    c.uninstall()  # idempotent
    assert {k: list(v) for k, v in shell.events.callbacks.items()} == before_events
    assert list(shell.ast_transformers) == before_ast
    run(shell, "b = 2")
    assert [rec.raw_source for rec in c.cells] == ["a = 1"]


def test_reinstall_after_uninstall(shell):
    c = Capture(shell)
    c.install(backfill=False)
    c.uninstall()
    c.install(backfill=False)
    try:
        run(shell, "q = 1")
    finally:
        c.uninstall()
    assert [rec.raw_source for rec in c.cells] == ["q = 1"]


# --- backfill ------------------------------------------------------------------


def test_backfill_cells_before_install(shell):
    run(shell, "pre = 1")
    run(shell, "%time pre2 = pre + 1")
    c = Capture(shell)
    recovered = c.install()
    try:
        run(shell, "post = pre2")
    finally:
        c.uninstall()
    assert [r.execution_count for r in recovered] == [1, 2]
    assert [r.raw_source for r in recovered] == ["pre = 1", "get_ipython().run_line_magic('time', 'pre2 = pre + 1')"]
    assert all(not r.has_runtime_facts for r in recovered)
    assert all(r.completed == len(r.statements) == 1 for r in recovered)
    assert c.cells[:2] == recovered
    assert c.cells[2].raw_source == "post = pre2" and c.cells[2].has_runtime_facts
    # names bound before install are part of the baseline, not of the new cell
    assert set(c.cells[2].bound) == {"post"}


def test_no_backfill_when_disabled(shell):
    run(shell, "pre = 1")
    c = Capture(shell)
    assert c.install(backfill=False) == []
    c.uninstall()
    assert c.cells == []


# --- the running cell ----------------------------------------------------------


def test_current_cell_from_inside_a_cell(shell, cap):
    seen = []

    def probe():
        cell = cap.current_cell()
        seen.append((cell.completed, cell.in_progress, set(cell.bound), cell.raw_source))

    shell.user_ns["probe"] = probe
    src = "a = 1\nb = [a]\nprobe()\nc = 3"
    run(shell, src)
    assert len(seen) == 1
    completed, in_progress, bound, raw = seen[0]
    assert (completed, in_progress, raw) == (2, True, src)
    assert {"a", "b"} <= bound and "c" not in bound
    assert cap.cells[-1].completed == 4 and not cap.cells[-1].in_progress


def test_current_cell_inside_nested_call_and_compound_statement(shell, cap):
    seen = []
    shell.user_ns["probe"] = lambda: seen.append(cap.current_cell().completed)
    run(shell, "def helper():\n    return probe()\nx = 0\nfor i in range(2):\n    helper()\ny = 1")
    assert seen == [2, 2]


def test_current_cell_outside_a_cell_is_none(shell, cap):
    run(shell, "a = 1")
    assert cap.current_cell() is None


# --- layering ------------------------------------------------------------------


def test_kernel_hooks_never_imports_lineapy_ext():
    code = "import kernel_hooks, sys; assert not any(m.startswith('lineapy_ext') for m in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_execution_count_matches_the_prompt(shell, cap):
    results = [run(shell, "a = 1"), run(shell, "b = 2")]
    assert [c.execution_count for c in cap.cells] == [r.execution_count for r in results]


def test_deleted_names_are_recorded(shell, cap):
    run(shell, "a = 1\nb = 2")
    run(shell, "del a")
    run(shell, "globals().pop('b')")
    assert cap.cells[1].deleted == {"a"}
    assert cap.cells[2].deleted == {"b"}


# --- hostile objects and runtime observations (issue 10, families 1, 2, 4) ----------


def test_hostile_objects_never_run_and_never_drop_cells(shell, cap):
    run(shell, "import lazy_object_proxy\ncalls = []\n"
               "def factory():\n    calls.append(1)\n    raise RuntimeError('factory failed')\n"
               "p = lazy_object_proxy.Proxy(factory)")
    run(shell, "class ndarray:\n    @property\n    def base(self):\n        calls.append(2)\n"
               "        raise KeyError('no base')\nfake = ndarray()")
    run(shell, "x = 1")
    run(shell, "y = x + 1")
    assert shell.user_ns["calls"] == []  # neither the proxy's factory nor the property ran
    assert [c.raw_source.splitlines()[0] for c in cap.cells][-2:] == ["x = 1", "y = x + 1"]
    assert all(c.has_runtime_facts for c in cap.cells)
    assert {"p", "fake"} <= set(cap.cells[0].bound) | set(cap.cells[1].bound)


def test_rng_changes_are_seen_per_statement(shell, cap):
    run(shell, "import random\nrandom.seed(1)\nk = 3\nd = random.random()")
    stmts = cap.cells[-1].statements
    assert [sorted(s.rng_changed) for s in stmts] == [[], ["random"], [], ["random"]]


def test_rng_seen_in_a_cell_that_raised(shell, cap):
    run(shell, "import random\nv = random.random()\n1 / 0\nw = 2")
    stmts = cap.cells[-1].statements
    assert stmts[1].rng_changed == frozenset({"random"}) and not stmts[2].rng_changed


def test_probes_do_not_change_what_a_cell_displays(shell, cap):
    result = run(shell, "a = 2\na * 21")
    assert result.result == 42
    assert "__lineapy_probe__" not in cap.cells[-1].source


def test_function_facts_name_what_the_code_reads(shell, cap):
    run(shell, "def foo():\n    def inner():\n        return limit * 2\n    return inner\nfn = foo()")
    b = cap.cells[-1].bound["fn"]
    assert b.callable_kind == "function" and "limit" in b.code_names
    assert b.code_qualname == "foo.<locals>.inner"


def test_rng_statements_without_calls_are_not_probed_nor_blamed(shell, cap):
    run(shell, "import random\nrandom.seed(2)\nk = 3\nj = k * 2\nd = random.random()\ne = 1")
    stmts = cap.cells[-1].statements
    assert [sorted(s.rng_changed) for s in stmts] == [[], ["random"], [], [], ["random"], []]


def test_rng_seen_for_a_save_inside_the_running_cell(shell, cap):
    seen = {}

    def peek():
        cell = cap.current_cell()
        seen["rng"] = [sorted(s.rng_changed) for s in cell.statements[:cell.completed]]

    shell.user_ns["peek"] = peek
    run(shell, "import random\nv = random.random()\nw = 1\npeek()")
    assert seen["rng"] == [[], ["random"], []]


def test_statements_another_transformer_made_call_are_probed(shell, cap):
    # Text without '(' cannot call, but only as parsed: a transformer running
    # before the recorder may have put a call in ``k = 3``.
    import ast

    class DrawInsteadOfThree(ast.NodeTransformer):
        def visit_Constant(self, node):
            if node.value == 3:
                return ast.copy_location(ast.parse("random.random()", mode="eval").body, node)
            return node

    shell.ast_transformers.insert(0, DrawInsteadOfThree())
    run(shell, "import random\nrandom.seed(2)\nk = 3\nm = len([1])\nn = 0")
    assert isinstance(shell.user_ns["k"], float)
    stmts = cap.cells[-1].statements
    assert [sorted(s.rng_changed) for s in stmts] == [[], ["random"], ["random"], [], []]


def test_statements_without_calls_are_not_probed_in_a_long_cell(shell, cap):
    src = "import random\n" + "\n".join(f"v{i} = {i} * 2" for i in range(50)) + "\nd = random.random()\ne = 1"
    run(shell, src)
    stmts = cap.cells[-1].statements
    assert [s.index for s in stmts if s.rng_changed] == [51]
    assert shell.user_ns["v49"] == 98
