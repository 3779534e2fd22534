"""Replay table: slices must recompute the saved value in a fresh process.

Each case runs its cells in a real ``InteractiveShell`` with the tracker
installed, slices on ``target``, checks what the slice must and must not
contain, then runs the slice with a plain ``python`` in an empty directory
and compares the value (or ``probe(v)``) with the shell's.
"""

from __future__ import annotations

import pytest

from lineapy_ext.tracking import Tracker

from tests.shells import close_shell

from .replay import Case, as_params, assert_equal, fresh_shell, probe_value, replay, run_cells

CASES = [
    # --- chains and overwrites ---
    Case("chain", ["a = 1", "b = a + 1", "c = b * 2"], "c", present=("a = 1", "b = a + 1")),
    Case("overwritten", ["x = 1", "x = 2", "y = x + 1"], "y", absent=("x = 1",)),
    Case("unrelated", ["a = 5\nnoise = 7", "b = a * 3\nprint(noise)"], "b", absent=("noise",)),
    Case("display_and_print", ["v = [3, 1, 2]", "v", "print(v)", "len(v)", "w = sorted(v)"], "w",
         absent=("print", "len(v)")),
    Case("late_binding", ["k = 2", "res = k * 10", "k = 1000"], "res", absent=("1000",)),
    Case("redefinition_fn", ["def f():\n    return 1", "a = f()", "def f():\n    return 2", "b = f()"], "a",
         absent=("return 2",)),
    # --- in-place mutation ---
    Case("list_append", ["l = []", "l.append(1)", "l.extend([2, 3])", "l.sort(reverse=True)"], "l",
         present=("append", "extend", "sort")),
    Case("dict_item", ["d = {}", "d['a'] = 1", "d.update(b=2)", "del d['a']"], "d"),
    Case("set_ops", ["s = set()", "s.add(1)", "s |= {2, 3}", "s.discard(2)"], "s"),
    Case("augassign_int", ["n = 1", "n += 5", "n *= 2"], "n"),
    Case("augassign_list", ["l = [1]", "m = l", "m += [2]"], "l", present=("m += [2]",)),
    Case("attr_assign", ["class P:\n    pass", "p = P()", "p.x = 3", "setattr(p, 'y', 4)"], "p",
         probe="sorted(vars(v).items())", present=("setattr",)),
    Case("numpy_inplace", ["import numpy as np", "a = np.zeros(4)", "a[1] = 5", "a += 1", "np.add(a, 1, out=a)"],
         "a", present=("out=a", "a[1] = 5")),
    Case("numpy_view", ["import numpy as np", "a = np.arange(6)", "b = a[2:]", "b[0] = 100"], "a",
         present=("b[0] = 100",)),
    Case("pandas_inplace", ["import pandas as pd", "df = pd.DataFrame({'a': [1, None, 3]})",
                            "df.fillna(0, inplace=True)", "df['b'] = df['a'] * 2", "df.head()"],
         "df", present=("inplace=True", "df['b']"), absent=("head",)),
    Case("pandas_pure_method", ["import pandas as pd", "df = pd.DataFrame({'a': [3, 1, 2]})",
                                "s = df.sort_values('a')", "df2 = df.describe()"], "df",
         absent=("sort_values", "describe")),
    # --- aliasing ---
    Case("alias_direct", ["a = [1]", "b = a", "b.append(2)"], "a", present=("b.append(2)",)),
    Case("alias_container", ["inner = [1]", "outer = {'k': inner}", "inner.append(2)"], "outer",
         present=("inner.append(2)",)),
    Case("alias_through_container", ["inner = [1]", "box = [inner]", "box[0].append(5)"], "inner",
         present=("box[0].append(5)",)),
    Case("alias_runtime_only", ["d = {'k': [1]}", "lst = d['k']", "lst.append(2)"], "d",
         present=("lst.append(2)",)),
    # --- functions and globals ---
    Case("fn_mutates_arg", ["def add(xs, v):\n    xs.append(v)", "data = []", "add(data, 1)", "add(data, 2)"], "data"),
    Case("fn_reads_global", ["scale = 3", "def f(x):\n    return x * scale", "r = f(2)", "scale = 100"], "r",
         absent=("scale = 100",)),
    Case("fn_writes_global", ["counter = 0", "def inc():\n    global counter\n    counter += 1", "inc()", "inc()"],
         "counter"),
    Case("fn_mutates_global", ["cache = {}", "def put(k, v):\n    cache[k] = v", "put('a', 1)", "put('b', 2)"],
         "cache"),
    Case("fn_transitive", ["def inner(z):\n    z.append(9)", "def outer(y):\n    inner(y)", "q = [0]", "outer(q)"],
         "q", present=("outer(q)",)),
    Case("save_function", ["base = 10", "def g(x):\n    return x + base"], "g", probe="v(5)"),
    Case("lambda_global", ["m = 4", "h = lambda t: t * m", "out = h(3)"], "out"),
    # --- classes ---
    Case("class_instance", ["class Acc:\n    def __init__(self):\n        self.items = []\n"
                            "    def add(self, v):\n        self.items.append(v)\n"
                            "    def total(self):\n        return sum(self.items)",
                            "acc = Acc()", "acc.add(3)", "acc.add(4)", "acc.total()"], "acc",
         probe="v.items", absent=("acc.total()",)),
    Case("dataclass", ["from dataclasses import dataclass", "@dataclass\nclass Pt:\n    x: int\n    y: int = 0",
                       "p = Pt(1)", "p.y = 7"], "p", probe="(v.x, v.y)"),
    Case("decorator", ["import functools", "def twice(f):\n    @functools.wraps(f)\n    def w(x):\n        return f(f(x))\n    return w",
                       "@twice\ndef inc(x):\n    return x + 1", "val = inc(1)"], "val", present=("@twice",)),
    # --- control flow ---
    Case("loop", ["total = 0", "for i in range(10):\n    total += i", "j = 99"], "total", absent=("j = 99",)),
    Case("conditional_def", ["x = 1", "if x > 5:\n    x = 50", "y = x"], "y", present=("x = 1",)),
    Case("while_loop", ["n = 0\nacc = []", "while n < 5:\n    acc.append(n)\n    n += 1"], "acc"),
    Case("try_except", ["try:\n    r = int('x')\nexcept ValueError:\n    r = -1"], "r"),
    Case("comprehension", ["xs = [1, 2, 3]", "ys = [x * x for x in xs if x > 1]", "x = 'other'"], "ys",
         absent=("'other'",)),
    Case("walrus", ["data = [1, 2, 3]", "if (n := len(data)) > 2:\n    big = True", "m = n * 2"], "m"),
    Case("generator_state", ["def gen():\n    yield from range(5)", "g = gen()", "first = next(g)", "rest = list(g)"],
         "rest", present=("first = next(g)",)),
    # --- cells that failed, re-runs, out of order ---
    Case("failed_cell_partial", ["a = 1\nb = 1 / 0\nc = 3", "d = a + 1"], "d"),
    Case("failed_cell_skipped", ["x = 1", "x = 2\nraise ValueError\nx = 3", "y = x"], "y", present=("x = 2",),
         absent=("x = 3",)),
    Case("rerun_cell", ["x = 1", "y = x + 1", "x = 10", "y = x + 1"], "y", absent=("x = 1\n",)),
    # --- hidden state ---
    Case("random_seed", ["import random", "random.seed(42)", "a = random.random()", "b = random.randint(0, 100)"],
         "b", present=("random.seed(42)", "a = random.random()")),
    Case("numpy_rng", ["import numpy as np", "rng = np.random.default_rng(0)", "a = rng.normal(size=3)",
                       "b = rng.normal(size=3)"], "b", present=("a = rng.normal",)),
    Case("numpy_global_seed", ["import numpy as np", "np.random.seed(3)", "u = np.random.rand(2)", "w = np.random.rand(2)"],
         "w", present=("np.random.seed(3)", "u = np.random.rand(2)")),
    # --- files ---
    Case("file_roundtrip", ["with open('data.txt', 'w') as f:\n    f.write('hello')",
                            "with open('data.txt') as f:\n    text = f.read()"], "text", present=("'w'",)),
    Case("pandas_csv", ["import pandas as pd", "pd.DataFrame({'a': [1, 2]}).to_csv('t.csv', index=False)",
                        "df = pd.read_csv('t.csv')"], "df"),
    Case("path_variable", ["path = 'out.txt'", "open(path, 'w').write('42')", "val = int(open(path).read())"],
         "val"),
    # --- magics and shell lines ---
    Case("time_magic", ["%time x = sum(range(10))", "y = x + 1"], "y", absent=("get_ipython", "%time")),
    Case("cell_magic_time", ["%%time\nz = 5\nz2 = z * 2", "r = z2"], "r", absent=("get_ipython",)),
    Case("shell_line", ["!echo hi", "a = 3", "b = a"], "b", absent=("echo", "get_ipython")),
    Case("line_magics_dropped", ["%matplotlib inline", "%config InteractiveShell.ast_node_interactivity='last_expr'",
                                 "q = 1"], "q", absent=("get_ipython",)),
    # --- exec and star imports ---
    Case("exec_literal", ["exec('e = 5')", "f2 = e + 1"], "f2", present=("exec",)),
    Case("star_import", ["from math import *", "r = floor(2.5)"], "r", present=("from math import *",)),
    # --- found by the extended table (once engine bugs) ---
    Case("alias_object_attr", ["class Box: pass", "b = Box()", "items = []", "b.items = items", "items.append(1)"],
         "b", probe="v.items", present=("items.append(1)",)),
    Case("alias_via_attr_subscript", ["class O: pass", "d = {}", "o = O()", "o.ref = d", "o.ref['k'] = 1"], "d"),
    Case("closure_nonlocal_counter", ["def make_counter():\n    n = 0\n    def c():\n        nonlocal n\n"
                                      "        n += 1\n        return n\n    return c",
                                      "c = make_counter()", "c()", "c()", "n = c()"], "n"),
    Case("pathlib_text", ["from pathlib import Path", "p = Path('note.txt')", "p.write_text('hi there')",
                          "t = p.read_text().upper()"], "t", present=("write_text",)),
    Case("gen_late_global", ["k = 1", "def gen():\n    for i in range(3):\n        yield i * k", "g = gen()",
                             "k = 10", "out = list(g)"], "out", present=("k = 10",)),
    Case("cls_counter_self", ["class C:\n    n = 0\n    def bump(self):\n        type(self).n += 1", "c = C()",
                              "c.bump()", "c.bump()", "r = C.n"], "r"),
    Case("dict_setdefault_alias", ["store = {}", "bucket = store.setdefault('a', [])", "bucket.append(1)"], "store"),
    Case("np_augassign_through_container", ["import numpy as np", "a = np.arange(4)", "d = {'arr': a}",
                                            "d['arr'] += 1"], "a", present=("d['arr'] += 1",)),
    Case("fn_passed_reads_global", ["import pandas as pd", "k = 3", "def f(x):\n    return x * k",
                                    "df = pd.DataFrame({'a': [1, 2]})", "df['b'] = df['a'].map(f)"], "df",
         present=("k = 3",)),
    Case("chained_assign_alias", ["x = y = []", "x.append(1)"], "y", present=("x.append(1)",)),
    Case("loop_var_mutates_elements", ["rows = [[1], [2]]", "for r in rows:\n    r.append(0)"], "rows",
         present=("r.append(0)",)),
    Case("comprehension_mutates_elements", ["rows = [[1], [2]]", "_ = [r.append(9) for r in rows]"], "rows",
         present=("r.append(9)",)),
    Case("dict_items_loop", ["d = {'a': [1]}", "for k, v in d.items():\n    v.append(k)"], "d"),
    # A for target is each element in turn; the capture sees only the last one (adversarial notebooks, 2026-11-29).
    Case("loop_var_literal_first_elem", ["p = {'lr': 1}", "for r in [p, {'lr': 5}]:\n    r['lr'] += 1", "n = p['lr']"], "n",
         present=("r['lr'] += 1",)),
    Case("loop_var_tuple_of_names", ["a = []", "b = []", "for lst in (a, b):\n    lst.append(1)"], "a",
         present=("lst.append(1)",)),
    Case("loop_var_named_list_frames", ["import pandas as pd", "train = pd.DataFrame({'a': [1, 2]})",
                                        "test = pd.DataFrame({'a': [3]})", "combine = [train, test]",
                                        "for dataset in combine:\n    dataset['b'] = dataset['a'] * 2"], "train",
         present=("dataset['b']",)),
    Case("loop_var_dict_values", ["cfgs = {'x': {'lr': 1}, 'y': {'lr': 2}}", "first = cfgs['x']",
                                  "for c in cfgs.values():\n    c['lr'] *= 10", "v = first['lr']"], "v",
         present=("c['lr'] *= 10",)),
    Case("loop_var_attr_augassign", ["class Item:\n    def __init__(self, p):\n        self.price = p",
                                     "a = Item(1.0)\nb = Item(2.0)", "basket = [a, b]",
                                     "for it in basket:\n    it.price *= 2", "v = a.price"], "v",
         present=("it.price *= 2",)),
    Case("loop_var_nested_loops", ["groups = {'a': [[1]], 'b': [[2]]}", "inner = groups['a'][0]",
                                   "for g in groups.values():\n    for lst in g:\n        lst.append(0)",
                                   "v = list(inner)"], "v", present=("lst.append(0)",)),
    Case("loop_var_in_function", ["a = {'n': 0}", "b = {'n': 0}",
                                  "def bump(items):\n    for it in items:\n        it['n'] += 1", "bump([a, b])",
                                  "v = a['n']"], "v", present=("bump([a, b])",)),
    Case("fn_mutates_param_passed_as_item", ["x = [[1], [2]]", "def add(l):\n    l.append(0)", "add(x[0])",
                                             "v = list(x[0])"], "v", present=("add(x[0])",)),
    Case("fn_loops_over_frames_passed_in_list", ["import pandas as pd", "train = pd.DataFrame({'a': [1.0, None]})",
                                                 "test = pd.DataFrame({'a': [None]})",
                                                 "def clean(frames):\n    for f in frames:\n        f['a'] = f['a'].fillna(0)",
                                                 "clean([train, test])"], "train", present=("clean([train, test])",)),
    Case("loop_var_inplace_method", ["import pandas as pd", "train = pd.DataFrame({'a': [1.0, None]})",
                                     "test = pd.DataFrame({'a': [None]})",
                                     "for d in [train, test]:\n    d.fillna(0, inplace=True)"], "train",
         present=("d.fillna(0, inplace=True)",)),
    Case("loop_var_fits_models", ["from sklearn.linear_model import LinearRegression, Ridge", "X = [[0.0], [1.0], [2.0]]",
                                  "y = [0.0, 1.0, 2.5]", "models = [LinearRegression(), Ridge()]",
                                  "for m in models:\n    m.fit(X, y)", "first = models[0]"], "first",
         probe="v.coef_.tolist()", present=("m.fit(X, y)",)),
    # What relative paths mean: os.chdir and %cd (adversarial notebooks, 2026-11-29).
    Case("chdir_then_relative_read", ["import os", "os.makedirs('d/e', exist_ok=True)",
                                      "with open('d/e/a.txt', 'w') as fh:\n    fh.write('hi')", "os.chdir('d')",
                                      "x = 1", "os.chdir('e')", "t = open('a.txt').read()"], "t",
         present=("os.chdir('d')", "os.chdir('e')"), absent=("x = 1",)),
    Case("cd_magic_then_relative_write_read", ["import os", "os.makedirs('out', exist_ok=True)", "%cd -q out",
                                               "with open('b.txt', 'w') as fh:\n    fh.write('x')",
                                               "names = open('b.txt').read()"], "names",
         present=("os.chdir('out')",)),
    Case("fluent_constructor_keeps_argument", ["class Holder:\n    def __init__(self, x):\n        self.x = x\n"
                                               "    def fit(self):\n        return self",
                                               "lst = []\nh = Holder(lst).fit()", "lst.append(1)"], "h",
         probe="list(v.x)", present=("lst.append(1)",)),
    Case("fluent_estimator_keeps_random_state", ["import numpy as np", "from sklearn.tree import DecisionTreeRegressor",
                                                 "rs = np.random.RandomState(0)",
                                                 "tree = DecisionTreeRegressor(random_state=rs).fit([[0], [1]], [0, 1])",
                                                 "noise = rs.normal(size=2)"], "tree",
         probe="v.random_state.get_state()[2]", present=("rs.normal(size=2)",)),
    Case("dict_comprehension_aliases_elements", ["runs = [{'d': 1, 'lr': 1}, {'d': 2, 'lr': 2}]",
                                                 "by_d = {r['d']: r for r in runs}\nby_d[2]['lr'] = 99",
                                                 "second_lr = runs[1]['lr']"], "second_lr", present=("= 99",)),
    Case("list_comprehension_aliases_elements", ["rows = [[1], [2]]", "kept = [r for r in rows if r[0] > 1]",
                                                 "kept[0].append(5)", "v = rows[1]"], "v", present=("append(5)",)),
    # File objects in memory (adversarial notebooks, 2026-11-29).
    Case("json_dump_into_stringio", ["import io, json", "buf = io.StringIO()", "json.dump({'x': 1}, buf)",
                                     "buf.seek(0)\nloaded = json.load(buf)"], "loaded", present=("json.dump",)),
    Case("pickle_and_np_save_into_bytesio", ["import io, pickle\nimport numpy as np", "pb = io.BytesIO()\nnb = io.BytesIO()",
                                             "pickle.dump([1, 2], pb)", "np.save(nb, np.arange(3))",
                                             "sizes = (pb.getbuffer().nbytes, nb.getbuffer().nbytes)"], "sizes",
         present=("pickle.dump", "np.save")),
    Case("random_getstate_after_seed", ["import random", "random.seed(5)", "x = 1", "saved = random.getstate()"], "saved",
         present=("random.seed(5)",), absent=("x = 1",)),
    Case("np_get_state_then_set_state", ["import numpy as np", "np.random.seed(3)", "st = np.random.get_state()",
                                         "a = np.random.rand(2)", "np.random.set_state(st)", "b = np.random.rand(2)"], "b",
         present=("np.random.seed(3)", "np.random.set_state(st)")),
    Case("iterator_consumed_by_islice", ["import itertools", "it = iter('abcdef')", "head = list(itertools.islice(it, 3))",
                                         "rest = list(it)"], "rest", present=("islice",)),
    Case("conditional_receiver", ["odd, even = [], []", "for i in range(4):\n    (odd if i % 2 else even).append(i)",
                                  "n = len(odd)"], "n", present=("append(i)",)),
    Case("tuple_subscript_receiver", ["odd, even = [], []", "for i in range(4):\n    (even, odd)[i % 2].append(i)",
                                      "n = len(odd)"], "n", present=("append(i)",)),
    Case("loop_var_read_only", ["xs = [1]", "ys = [2]", "for r in [xs, ys]:\n    print(len(r))", "v = list(xs)"], "v",
         absent=("print",)),
    # --- functions as values, methods, class state, unknown effects, files (from review) ---
    Case("map_session_fn", ["seen = []", "def f(x):\n    seen.append(x)\n    return x * 2", "ys = list(map(f, [1, 2, 3]))"], "seen"),
    Case("sorted_key_fn", ["calls = []", "def k(x):\n    calls.append(x)\n    return -x", "out = sorted([3, 1, 2], key=k)"], "calls"),
    Case("lambda_assigned", ["acc = []", "g = lambda x: acc.append(x)", "g(1)", "g(2)"], "acc", present=("g(1)", "g(2)")),
    Case("fn_in_list", ["log = []", "def f():\n    log.append(1)", "fs = [f]", "fs[0]()"], "log"),
    Case("fn_in_dict", ["log = []", "def f():\n    log.append(1)", "d = {'f': f}", "d['f']()"], "log"),
    Case("inherited_method", ["REG = []", "class A:\n    def add(self, x):\n        REG.append(x)", "class B(A):\n    pass", "b = B()", "b.add(3)"], "REG"),
    Case("method_via_container", ["REG = []", "class C:\n    def add(self, x):\n        REG.append(x)", "objs = [C()]", "objs[0].add(1)"], "REG"),
    Case("method_via_loop", ["REG = []", "class C:\n    def push(self, x):\n        REG.append(x)", "objs = [C(), C()]", "for o in objs:\n    o.push(1)"], "REG"),
    Case("staticmethod_on_class", ["G = []", "class U:\n    @staticmethod\n    def put(x):\n        G.append(x)", "U.put(1)"], "G"),
    Case("classmethod_counter", ["class K:\n    n = 0\n    @classmethod\n    def bump(cls):\n        cls.n += 1", "K.bump()", "k = K()", "k.bump()", "r = K.n"], "r"),
    Case("property_setter", ["LOG = []", "class P:\n    @property\n    def x(self):\n        return 1\n    @x.setter\n    def x(self, v):\n        LOG.append(v)", "p = P()", "p.x = 5"], "LOG"),
    Case("custom_setitem", ["STORE = {}", "class M:\n    def __setitem__(self, k, v):\n        STORE[k] = v", "m = M()", "m['a'] = 1"], "STORE"),
    Case("decorator_registry", ["REG = {}", "def register(name):\n    def deco(f):\n        REG[name] = f\n        return f\n    return deco", "@register('a')\ndef g():\n    return 1"], "REG", probe="sorted(v)"),
    Case("nested_fn_mutates_global", ["REG = {}", "def outer():\n    def inner():\n        REG['k'] = 1\n    inner()", "outer()"], "REG"),
    Case("init_class_counter", ["class C:\n    n = 0\n    def __init__(self):\n        type(self).n += 1", "a = C()", "b = C()", "v = C.n"], "v"),
    Case("exec_nonliteral_mutates", ["lst = [0]", "src = 'lst.append(1)'", "exec(src)"], "lst"),
    Case("globals_mutation", ["lst = [0]", "globals()['lst'].append(1)"], "lst"),
    Case("fit_consumes_global_rng", ["import numpy as np", "from sklearn.ensemble import RandomForestClassifier", "np.random.seed(0)",
                                     "X = np.random.rand(40, 3)\ny = (X[:, 0] > 0.5).astype(int)", "m = RandomForestClassifier(n_estimators=3)",
                                     "m.fit(X, y)", "z = np.random.rand(3)"], "z", present=("m.fit(X, y)",)),
    Case("file_readline", ["with open('a.txt', 'w') as fh:\n    fh.write('one\\ntwo\\n')", "f = open('a.txt')", "first = f.readline()", "second = f.readline()"], "second"),
    Case("makedirs_then_write", ["import os, json", "os.makedirs('out', exist_ok=True)", "json.dump({'a': 1}, open('out/a.json', 'w'))",
                                 "d = json.load(open('out/a.json'))"], "d"),
    Case("np_save_suffix", ["import numpy as np", "arr = np.arange(3)", "np.save('a', arr)", "b = np.load('a.npy')"], "b"),
    Case("class_attr_via_instance", ["class C:\n    items = []", "c = C()", "c.items.append(1)", "d = list(C.items)"], "d"),
    Case("big_container_elem_via_fn", ["cache = {i: [] for i in range(100)}", "def bucket(k):\n    return cache[k]",
                                       "b = bucket(3)", "b.append(1)"], "cache", probe="v[3]"),
    # --- same-cell ---
    Case("same_cell_code", ["a = 1\nb = a + 1\nprint(b)"], "b", absent=("print",)),
]


@pytest.mark.parametrize("case", as_params(CASES))
def test_replay(case: Case, tmp_path):
    work = tmp_path / "session"
    work.mkdir()
    shell = fresh_shell(work)
    tracker = Tracker(shell)
    try:
        run_cells(shell, case.cells)
        value = shell.user_ns[case.target]
        expected = probe_value(value, case.probe)
        code = tracker.slice([case.target]).code
    finally:
        tracker.close()
        close_shell(shell)
    assert "get_ipython" not in code
    for text in case.present:
        assert text in code, f"{text!r} missing from slice:\n{code}"
    for text in case.absent:
        assert text not in code, f"{text!r} should not be in slice:\n{code}"
    empty = tmp_path / "replay"
    empty.mkdir()
    got = replay(code, case.target, case.probe, empty)
    assert_equal(expected, got)
