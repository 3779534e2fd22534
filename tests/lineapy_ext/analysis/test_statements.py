"""Static facts of single statements (no shell involved)."""

from __future__ import annotations

import ast

import pytest

from lineapy_ext.analysis.statements import DISPLAYED, analyze


def facts(src: str):
    return analyze(ast.parse(src).body[0])


@pytest.mark.parametrize("src, uses, defs", [
    ("y = x + 1", {"x"}, ("y",)),
    ("a, (b, *c) = t", {"t"}, ("a", "b", "c")),
    ("for i in items:\n    total = total + i", {"items", "total"}, ()),
    ("ys = [x * k for x in xs if x]", {"xs", "k"}, ("ys",)),
    ("f = lambda a: a + k", set(), ("f",)),  # k is read when f is called
    ("import numpy as np", set(), ("np",)),
    ("from os import path as p", set(), ("p",)),
    ("with open(fn) as fh:\n    data = fh.read()", {"open", "fn"}, ("fh", "data")),
    ("def g(a, b=default):\n    return a + glob", {"default"}, ("g",)),
    ("class K(Base):\n    attr = val\n    other = attr", {"Base", "val"}, ("K",)),
])
def test_uses_and_defs(src, uses, defs):
    f = facts(src)
    assert set(f.uses) == uses
    assert f.defs == defs


def test_assigned_lambda_is_a_function():
    f = facts("f = lambda a: acc.append(a + k)")
    assert f.calls == () and f.functions["f"].reads >= {"acc", "k"}


def test_read_before_write_in_loop_body():
    f = facts("for i in range(3):\n    acc = i\n    last = acc")
    assert "acc" not in f.uses and "i" not in f.uses
    assert {"acc", "last", "i"} <= set(f.maybe_defs)


def test_conditional_binding_is_maybe():
    f = facts("if c:\n    x = 1\nelse:\n    y = 2")
    assert f.defs == () and f.maybe_defs == {"x", "y"}


def test_walrus_in_comprehension_binds_outside():
    f = facts("vals = [y for v in data if (y := v * 2)]")
    assert "y" in f.maybe_defs and "v" not in f.uses


@pytest.mark.parametrize("src, name, deep", [
    ("lst[0] = 1", "lst", False),
    ("obj.attr = 1", "obj", False),
    ("grid[0][1] = 5", "grid", True),
    ("del d['k']", "d", False),
    ("a.b.c = 2", "a", True),
])
def test_mutating_targets(src, name, deep):
    assert dict(facts(src).mutations)[name] is deep


def test_augmented_assignment_reads_and_rebinds():
    f = facts("n += 1")
    assert "n" in f.uses and f.defs == ("n",) and f.augmented == {"n"}


def test_calls_record_receiver_args_and_keywords():
    f = facts("df.fillna(0, inplace=True)")
    (call,) = f.calls
    assert call.chain == ("df", "fillna") and call.inplace
    f = facts("np.add(a, b, out=c)")
    assert f.calls[0].out == ("c",) and f.calls[0].args == ("a", "b")


def test_assigned_and_displayed_calls():
    assert facts("s = df.sort_values('a')").calls[-1].assigned_to == "s"
    assert facts("df.head()").calls[-1].assigned_to == DISPLAYED


def test_function_summary():
    f = facts("def f(xs, v):\n    global count\n    count += 1\n    xs.append(v + scale)\n    cache[v] = xs\n")
    s = f.functions["f"]
    assert s.params == ("xs", "v")
    assert {"scale", "cache", "count"} <= s.reads
    assert s.writes == {"count"}
    assert dict(s.mutations)["cache"] is False
    assert any(c.chain == ("xs", "append") for c in s.calls)


def test_local_alias_of_parameter_is_the_parameter():
    s = facts("def f(p):\n    q = p\n    q.append(1)").functions["f"]
    assert any(c.chain == ("p", "append") for c in s.calls)


def test_class_summary_has_methods():
    f = facts("class A:\n    def m(self):\n        return g\n    def n(self, x):\n        self.v = x")
    assert set(f.classes["A"].methods) == {"m", "n"}
    assert "g" in f.classes["A"].all_reads()


@pytest.mark.parametrize("src, emit", [
    ("get_ipython().run_line_magic('time', 'x = f()')", "x = f()"),
    ("y = get_ipython().run_line_magic('time', 'f()')", "y = f()"),
    ("get_ipython().run_cell_magic('time', '', 'a = 1\\nb = 2\\n')", "a = 1\nb = 2"),
])
def test_code_magics_become_python(src, emit):
    f = facts(src)
    assert f.emit == emit and not f.drop and not f.opaque


@pytest.mark.parametrize("src", [
    "get_ipython().run_line_magic('matplotlib', 'inline')",
    "get_ipython().system('ls')",
    "get_ipython().run_line_magic('lineapy', 'save x y')",
    "lineapy_ext.save(x, 'y')",
])
def test_effect_free_lines_are_dropped(src):
    assert facts(src).drop


def test_getoutput_becomes_subprocess():
    f = facts("files = get_ipython().getoutput('ls')")
    assert "subprocess.run('ls'" in f.emit and f.defs[-1] == "files"


def test_unknown_magic_is_opaque():
    f = facts("get_ipython().run_line_magic('store', '-r x')")
    assert f.opaque and f.unknown_effects


def test_lineapy_get_defines_variable():
    f = facts("get_ipython().run_line_magic('lineapy', 'get clf --version 2 --as model')")
    assert f.defs == ("model",) and f.artifact_get == ("clf", 2, ("model",))
    f = facts("m = get_ipython().run_line_magic('lineapy', 'get clf')")
    assert set(f.defs) == {"clf", "m"}


def test_exec_literal_is_analysed_and_other_exec_is_unknown():
    assert facts("exec('z = y + 1')").defs == ("z",)
    assert facts("exec(code)").unknown_effects


def _writes(f) -> bool:
    return any(c.writes_guess for c in f.calls)


def test_paths_and_file_direction():
    # The per-call guess from the name; the graph prefers what the receiver's
    # runtime type and the effect registry say.
    f = facts("df.to_csv('out/data.csv')")
    assert f.paths == ("out/data.csv",) and _writes(f)
    assert f.calls[0].literals == (("0", "out/data.csv"),)
    f = facts("text = open('notes.txt').read()")
    assert f.paths == ("notes.txt",) and not _writes(f)
    assert _writes(facts("open('log.txt', 'a').write('x')"))


def test_literal_receiver_has_its_type():
    f = facts("t = 'qq'.replace('a', 'r')")
    assert f.calls[0].receiver_type == "builtins.str" and f.calls[0].name == "replace"


def test_magics_around_lineapy_get_and_registry_selectors():
    # %time %lineapy get clf: the inner magic decides (an artifact load, not "not plain Python")
    f = facts("get_ipython().run_line_magic('time', '%lineapy get clf --as model')")
    assert f.artifact_get == ("clf", None, ("model",)) and not f.opaque
    f = facts("get_ipython().run_line_magic('lineapy', 'get churn --alias champion')")
    assert f.artifact_selector == (("alias", "champion"),)
    f = facts("m = lineapy_ext.get('churn', registered_version=7).get_value()")
    assert f.artifact_selector == (("registered_version", 7),)


def test_timeit_and_writefile_are_plain_python():
    f = facts("get_ipython().run_line_magic('timeit', '-n 3 -r 2 lst.append(1)')")
    assert "range(6)" in f.emit and "lst.append(1)" in f.emit and f.defs == ()
    f = facts("get_ipython().run_cell_magic('writefile', 'mymod.py', 'X = 1\\n')")
    assert f.emit.startswith("with open('mymod.py', 'w')") and not f.opaque


@pytest.mark.parametrize("src, reads, writes, items", [
    ("df['c'] = df['b'] * 2", (("df", ("b",)),), (("df", ("c",)),), {"df"}),
    ("t = df[['a', 'd']].sum()", (("df", ("a", "d")),), (), {"df"}),
    ("df['c'] += 1", (("df", ()),), (), set()),
    ("w = df.groupby('b')['a'].sum()", (("df", ("a", "b")),), (), set()),
    ("w = df.describe()['a']", (("df", ("a",)),), (), set()),
    ("df[('a', 'b')] = 1", (), (), set()),
    ("d['x']['y'] = 1", (("d", ("x",)),), (), {"d"}),
    ("d[k] = d['j']", (), (), {"d"}),
    ("df.loc[0, 'a'] = 1", (), (), set()),
])
def test_items_read_and_written_under_constant_keys(src, reads, writes, items):
    f = analyze(ast.parse(src).body[0])
    assert f.keyed_reads == reads and f.keyed_writes == writes and set(f.item_reads) == items


@pytest.mark.parametrize("src, reads, methods", [
    ("v = df.groupby('a')['b'].sum()", (("df", ("a", "b")),), (("df", ("groupby",)),)),
    ("v = df.groupby(by=['a', 'c'], sort=False)[['b']].max()", (("df", ("a", "b", "c")),), (("df", ("groupby",)),)),
    ("v = df.groupby(k)['b'].sum()", (), ()),
    ("v = df.groupby('a').sum()", (), ()),
    ("v = df.groupby('a', **kw)['b'].sum()", (), ()),
])
def test_selecting_calls(src, reads, methods):
    f = analyze(ast.parse(src).body[0])
    assert f.keyed_reads == reads and f.keyed_read_methods == methods
