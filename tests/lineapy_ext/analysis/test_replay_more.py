"""More replay cases: pandas, numpy, sklearn, aliasing, classes, files, magics.

Extends the table of ``test_replay.py`` with the same ``Case`` format and
the same check (run the cells in a real ``InteractiveShell`` with the tracker,
slice on ``target``, check ``present``/``absent``, re-run the slice with a
plain ``python`` in an empty directory and compare ``probe(v)``).  The check
itself is reused from ``test_replay.py`` rather than copied.
"""

from __future__ import annotations

import pytest

from .replay import Case, as_params
from .test_replay import test_replay as check_case

PD = "import pandas as pd"
NP = "import numpy as np"
IRIS = "from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"
WINE = "from sklearn.datasets import load_wine\nX, y = load_wine(return_X_y=True)"

CASES = [
    # --- pandas ---
    Case("pd_drop_columns_inplace", [PD, "df = pd.DataFrame({'a': [1, 2], 'b': [3, 4], 'c': [5, 6]})",
                                     "df.drop(columns=['c'], inplace=True)", "df.shape"], "df",
         present=("df.drop(columns=['c'], inplace=True)",), absent=("df.shape",)),
    Case("pd_rename_inplace", [PD, "df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})",
                               "df2 = df.rename(columns={'b': 'y'})",
                               "df.rename(columns={'a': 'x'}, inplace=True)"], "df",
         present=("inplace=True",), absent=("df2", "'y'")),
    Case("pd_loc_assign", [PD, "df = pd.DataFrame({'a': [1, 2, 3], 'b': [4, 5, 6]})",
                           "df.loc[df['a'] > 1, 'b'] = 0", "print(df)"], "df",
         present=("df.loc[df['a'] > 1, 'b'] = 0",), absent=("print",)),
    Case("pd_insert", [PD, "df = pd.DataFrame({'a': [1, 2]})", "df.insert(0, 'z', [7, 8])"], "df",
         present=("df.insert",), probe="list(v.columns)"),
    Case("pd_pop", [PD, "df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})", "col = df.pop('b')", "total = col.sum()"],
         "df", present=("df.pop('b')",), absent=("col.sum",)),
    Case("pd_pop_target_column", [PD, "df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})", "col = df.pop('b')",
                                  "df['c'] = 0"], "col", absent=("df['c']",)),
    Case("pd_sort_reset_inplace", [PD, "df = pd.DataFrame({'a': [3, 1, 2]})", "df.sort_values('a', inplace=True)",
                                   "df.reset_index(drop=True, inplace=True)"], "df",
         present=("sort_values", "reset_index")),
    Case("pd_groupby", [PD, "df = pd.DataFrame({'k': ['x', 'y', 'x'], 'v': [1, 2, 3]})",
                        "df['v'] = df['v'] * 10", "sizes = df.groupby('k').size()",
                        "g = df.groupby('k')['v'].sum()"], "g",
         present=("df['v'] = df['v'] * 10",), absent=("sizes",)),
    Case("pd_groupby_agg_frame", [PD, "df = pd.DataFrame({'k': [1, 1, 2], 'v': [1.0, 2.0, 4.0]})",
                                  "agg = df.groupby('k').agg(total=('v', 'sum'), mean=('v', 'mean')).reset_index()",
                                  "agg['ratio'] = agg['total'] / agg['mean']"], "agg",
         present=("agg['ratio']",)),
    Case("pd_merge", [PD, "left = pd.DataFrame({'k': [1, 2, 3], 'a': [1, 2, 3]})",
                      "right = pd.DataFrame({'k': [1, 3], 'b': [10, 30]})", "right['w'] = right['b'] * 2",
                      "other = pd.DataFrame({'z': [0]})", "m = left.merge(right, on='k', how='left')"], "m",
         present=("right['w']",), absent=("other",)),
    Case("pd_fn_adds_column", [PD, "def add_col(frame):\n    frame['d'] = frame['a'] + 1",
                               "df = pd.DataFrame({'a': [1, 2]})", "add_col(df)"], "df", present=("add_col(df)",)),
    Case("pd_csv_path_variable", [PD, "fname = 'data.csv'", "src = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})",
                                  "src.to_csv(fname, index=False)", "df = pd.read_csv(fname)"], "df",
         present=("to_csv",)),
    # --- numpy ---
    Case("np_out_multiply", [NP, "a = np.arange(4.0)", "np.multiply(a, 2, out=a)", "s = a.sum()"], "a",
         present=("out=a",), absent=("a.sum()",)),
    Case("np_out_other_array", [NP, "a = np.ones(3)", "res = np.empty(3)", "np.add(a, 5, out=res)"], "res",
         present=("out=res",)),
    Case("np_random_shuffle", [NP, "np.random.seed(0)", "a = np.arange(10)", "np.random.shuffle(a)"], "a",
         present=("np.random.seed(0)", "np.random.shuffle(a)")),
    Case("np_sort_inplace", [NP, "a = np.array([3, 1, 2])", "b = np.sort(a)[::-1]", "a.sort()"], "a",
         present=("a.sort()",), absent=("b = ",)),
    Case("np_fill", [NP, "a = np.empty(3)", "a.fill(7)"], "a", present=("a.fill(7)",)),
    Case("np_view_parent_mutated", [NP, "a = np.arange(6)", "v = a[::2]", "a[0] = 50"], "v",
         present=("a[0] = 50",)),
    Case("np_reshape_view", [NP, "a = np.arange(6)", "b = a.reshape(2, 3)", "b[0, 0] = -1"], "a",
         present=("b[0, 0] = -1",)),
    Case("np_copyto", [NP, "src = np.arange(3)", "src[1] = 9", "dst = np.zeros(3, dtype=int)", "np.copyto(dst, src)"],
         "dst", present=("np.copyto(dst, src)", "src[1] = 9")),
    Case("np_copy_not_alias", [NP, "a = np.arange(3)", "b = a.copy()", "a[0] = 9"], "b", absent=("a[0] = 9",)),
    # --- sklearn ---
    Case("sk_fit_predict", [IRIS, "from sklearn.linear_model import LogisticRegression",
                            "model = LogisticRegression(max_iter=1000)", "model.fit(X, y)", "model.score(X, y)",
                            "pred = model.predict(X)"], "pred",
         present=("model.fit(X, y)",), absent=("score",)),
    Case("sk_model_target", [IRIS, "from sklearn.tree import DecisionTreeClassifier",
                             "clf = DecisionTreeClassifier(random_state=0, max_depth=3)", "clf.fit(X, y)"], "clf",
         present=("clf.fit",), probe="v.predict(np.array([[5.0, 3.0, 1.5, 0.2], [6.5, 3.0, 5.5, 2.0]])).tolist()"),
    Case("sk_pipeline", [WINE, "from sklearn.model_selection import train_test_split",
                         "X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)",
                         "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
                         "from sklearn.linear_model import LogisticRegression",
                         "pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))",
                         "pipe.fit(X_tr, y_tr)", "acc = pipe.score(X_te, y_te)"], "acc",
         present=("pipe.fit(X_tr, y_tr)", "random_state=0")),
    Case("sk_scaler_fit_transform", [WINE, "from sklearn.preprocessing import StandardScaler",
                                     "scaler = StandardScaler()", "Xs = scaler.fit_transform(X)"], "scaler",
         present=("fit_transform",), probe="v.mean_"),
    Case("sk_train_test_split", [IRIS, "from sklearn.model_selection import train_test_split",
                                 "X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=42)"],
         "X_te", present=("random_state=42",)),
    Case("sk_unrelated_model", [IRIS, "from sklearn.linear_model import LogisticRegression",
                                "from sklearn.tree import DecisionTreeClassifier",
                                "m1 = LogisticRegression(max_iter=1000).fit(X, y)",
                                "m2 = DecisionTreeClassifier(random_state=0)", "m2.fit(X, y)",
                                "p1 = m1.predict_proba(X[:5])"], "p1",
         absent=("m2",), probe="v.round(6)"),
    # --- aliasing ---
    Case("alias_list_of_dicts", ["rows = [{'a': 1}, {'a': 2}]", "r0 = rows[0]", "r0['a'] = 5"], "rows",
         present=("r0['a'] = 5",)),
    Case("alias_rebind_breaks", ["a = [1]", "b = a", "b = [2]", "b.append(3)"], "a", absent=("b.append(3)",)),
    Case("alias_dict_of_lists_fn", ["groups = {'a': []}", "def add(key, v):\n    groups[key].append(v)",
                                    "lst = groups['a']", "add('a', 3)"], "lst", present=("add('a', 3)",)),
    # --- functions, globals, closures ---
    Case("fn_transitive_global_read", ["def a():\n    return base * 2", "def b():\n    return a() + 1",
                                       "base = 3", "r = b()", "base = 99"], "r", absent=("99",)),
    Case("fn_transitive_global_write", ["def setv():\n    global state\n    state = 5", "def run():\n    setv()",
                                        "run()", "out = state"], "out", present=("run()",)),
    Case("closure", ["def make(k):\n    def f(x):\n        return x * k\n    return f", "triple = make(3)",
                     "double = make(2)", "r = triple(4)"], "r", absent=("double",)),
    Case("save_closure", ["def make(k):\n    def f(x):\n        return x * k\n    return f", "triple = make(3)"],
         "triple", probe="v(5)"),
    # --- classes ---
    Case("class_method_mutates_global", ["log = []", "class L:\n    def add(self, x):\n        log.append(x)",
                                         "l1 = L()", "l1.add(1)", "l1.add(2)"], "log", present=("l1.add(2)",)),
    Case("class_attribute", ["class C:\n    reg = []\n    def __init__(self, n):\n        C.reg.append(n)",
                             "C(1)", "C(2)", "names = list(C.reg)"], "names", present=("C(1)", "C(2)")),
    Case("inheritance", ["class Base:\n    def val(self):\n        return 1",
                         "class Child(Base):\n    def val(self):\n        return super().val() + 1",
                         "x = Child().val()"], "x", present=("class Base",)),
    Case("property", ["class T:\n    def __init__(self, c):\n        self.c = c\n    @property\n"
                      "    def f(self):\n        return self.c * 9 / 5 + 32", "t = T(100)", "t.c = 0",
                      "fahr = t.f"], "fahr", present=("t.c = 0",)),
    Case("dataclass_default_factory", ["from dataclasses import dataclass, field",
                                       "@dataclass\nclass Bag:\n    items: list = field(default_factory=list)",
                                       "b = Bag()", "b.items.append(1)", "b.items.append(2)"], "b",
         probe="v.items", present=("b.items.append(2)",)),
    Case("save_instance", ["class Rect:\n    def __init__(self, w, h):\n        self.w, self.h = w, h\n"
                           "    def area(self):\n        return self.w * self.h", "r = Rect(2, 3)", "r.w = 5",
                           "r.area()"], "r", probe="(v.area(), v.w, v.h)", absent=("r.area()",)),
    Case("method_mutating_self", ["class Stack:\n    def __init__(self):\n        self.xs = []\n"
                                  "    def push(self, x):\n        self.xs.append(x)\n        return self",
                                  "s = Stack()", "s.push(1).push(2)", "other = Stack()", "other.push(9)"], "s",
         probe="v.xs", absent=("other",)),
    # --- generators and itertools ---
    Case("itertools_count", ["import itertools", "it = itertools.count(10)", "next(it)", "next(it)",
                             "x = next(it)"], "x", present=("it = itertools.count(10)",)),
    Case("itertools_islice_cycle", ["import itertools", "gen = itertools.islice(itertools.cycle('ab'), 5)",
                                    "letters = ''.join(gen)"], "letters"),
    Case("generator_expression", ["g = (i * i for i in range(5))", "first = next(g)", "s = sum(g)"], "s",
         present=("first = next(g)",)),
    Case("itertools_accumulate", ["import itertools", "xs = [1, 2, 3]", "xs.append(4)",
                                  "acc = list(itertools.accumulate(xs))"], "acc", present=("xs.append(4)",)),
    # --- exec, del ---
    Case("exec_def", ["exec('def sq(x):\\n    return x * x')", "r = sq(4)"], "r", present=("exec",)),
    Case("exec_mutation", ["lst = [1]", "exec('lst.append(2)')"], "lst", present=("exec",)),
    Case("del_and_redefine", ["a = 1", "del a", "a = 5", "b = a"], "b", absent=("a = 1",)),
    Case("del_item", ["l = [1, 2, 3]", "del l[0]"], "l", present=("del l[0]",)),
    # --- control flow ---
    Case("loop_not_run", ["items = []", "for i in range(0):\n    items.append(i)", "n = len(items)"], "n"),
    Case("if_else", ["x = 3", "if x > 5:\n    y = 1\nelse:\n    y = 2"], "y", present=("x = 3",)),
    Case("loop_dict_counts", ["counts = {}", "for w in 'a b a'.split():\n    counts[w] = counts.get(w, 0) + 1"],
         "counts"),
    Case("if_not_run_mutation", ["a = [1]", "flag = False", "if flag:\n    a.append(2)"], "a"),
    Case("try_finally", ["log = []", "try:\n    log.append(1)\nfinally:\n    log.append(2)"], "log"),
    Case("try_except_mutation", ["d = {}", "try:\n    d['a'] = 1\n    d['b'] = int('x')\nexcept ValueError:\n"
                                 "    d['err'] = True"], "d"),
    Case("with_custom_cm", ["events = []", "class CM:\n    def __enter__(self):\n        events.append('in')\n"
                            "        return self\n    def __exit__(self, *a):\n        events.append('out')",
                            "with CM():\n    events.append('body')"], "events", present=("with CM()",)),
    # --- out-of-order re-runs ---
    Case("rerun_later_cell", ["a = 1", "b = a + 1", "c = b * 2", "a = 100", "c = b * 2"], "c",
         absent=("100",)),
    Case("rerun_redefined_fn", ["def f():\n    return 1", "r = f()", "def f():\n    return 2", "r = f()"], "r",
         absent=("return 1",)),
    # --- cells that raised ---
    Case("raised_mutation", ["l = []", "l.append(1)\nl.append(1 / 0)\nl.append(3)"], "l",
         present=("l.append(1)",), absent=("l.append(3)", "1 / 0")),
    Case("raised_in_function", ["def boom():\n    raise RuntimeError('x')", "a = 5\nboom()\na = 6"], "a",
         absent=("a = 6", "boom()")),
    # --- files ---
    Case("json_roundtrip", ["import json", "cfg = {'a': 1, 'b': [1, 2]}",
                            "with open('c.json', 'w') as f:\n    json.dump(cfg, f)",
                            "with open('c.json') as f:\n    loaded = json.load(f)"], "loaded",
         present=("json.dump",)),
    Case("pickle_roundtrip", ["import pickle", "obj = {'x': (1, 2)}",
                              "with open('o.pkl', 'wb') as f:\n    pickle.dump(obj, f)",
                              "with open('o.pkl', 'rb') as f:\n    back = pickle.load(f)"], "back",
         present=("pickle.dump",)),
    Case("np_save_load", [NP, "a = np.arange(5) * 2", "np.save('arr.npy', a)", "b = np.load('arr.npy')"], "b",
         present=("np.save",)),
    # --- magics and shell ---
    Case("magic_time_and_who", ["%who", "a = 2", "%time b = a * 3", "%who_ls"], "b",
         absent=("get_ipython", "who")),
    Case("magic_capture_cell", ["%%capture captured\nx = 5\nprint('hello')", "y = x + 1"], "y",
         absent=("get_ipython", "capture")),
    Case("shell_getoutput", ["x = !echo hi", "y = x[0].upper()"], "y", present=("subprocess",),
         absent=("get_ipython",)),
    Case("magics_dropped", ["%precision 3", "%pwd", "%timeit -n1 -r1 sum(range(3))", "q = 7"], "q",
         absent=("get_ipython", "precision", "timeit")),
    # --- display and prints ---
    Case("print_around_mutation", ["l = [1]", "print(l)", "l.append(2)", "l", "display(l)"], "l",
         absent=("print", "display")),
    # --- random ---
    Case("random_list_comp_state", ["import random", "random.seed(1)", "a = [random.random() for _ in range(3)]",
                                    "b = random.choice('abc')"], "b", present=("random.seed(1)", "a = [")),
    Case("random_shuffle", ["import random", "random.seed(7)", "l = list(range(8))", "random.shuffle(l)"], "l",
         present=("random.shuffle(l)", "random.seed(7)")),
    Case("rng_independent", [NP, "rng = np.random.default_rng(1)", "other = np.random.default_rng(2)",
                             "o = other.random()", "x = rng.integers(0, 100, 5)"], "x", absent=("other",)),
    # --- more aliasing, functions, magics ---
    Case("alias_loop_variable", ["rows = [[1], [2]]", "for r in rows:\n    r.append(0)"], "rows",
         present=("r.append(0)",)),
    Case("alias_instance_attr_list", ["class H:\n    def __init__(self):\n        self.data = []", "h = H()",
                                      "d = h.data", "d.append(1)"], "h", probe="v.data", present=("d.append(1)",)),
    Case("fn_setattr_arg", ["class O:\n    pass", "def configure(o):\n    o.level = 3", "o = O()", "configure(o)"],
         "o", probe="v.level", present=("configure(o)",)),
    Case("functools_partial", ["import functools", "def f(a, b):\n    return a - b", "g = functools.partial(f, 10)",
                               "x = g(3)"], "x"),
    Case("rng_passed_to_fn", [NP, "rng = np.random.default_rng(0)", "def draw(r):\n    return r.random()",
                              "draw(rng)", "x = rng.random()"], "x", present=("draw(rng)",)),
    Case("file_path_var_json", ["import json", "fn = 'a.json'", "open(fn, 'w').write(json.dumps([1]))",
                                "v2 = json.load(open(fn))"], "v2", present=("json.dumps",)),
    Case("magic_time_mutation", ["%time l = [1]", "%time l.append(2)"], "l", present=("l.append(2)",),
         absent=("get_ipython",)),
    # --- two independent chains ---
    Case("two_chains", ["a = 1", "a2 = a * 2", "b = 10", "b2 = b + 1", "c = 7", "r = a2 + b2"], "r",
         present=("a2 = a * 2", "b2 = b + 1"), absent=("c = 7",)),
]


@pytest.mark.parametrize("case", as_params(CASES))
def test_replay_more(case: Case, tmp_path):
    check_case(case, tmp_path)


def test_ids_unique_and_new():
    from .test_replay import CASES as BASE

    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {c.id for c in BASE}
