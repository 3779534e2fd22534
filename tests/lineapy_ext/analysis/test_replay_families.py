"""Replay cases for the families of issue 10: effects observed at run time.

Each family is a kind of code on which slices used to recompute a different
value (or keep statements that could be dropped); each has several
variants.  Same ``Case`` format and check as ``test_replay.py``: run in a
real shell, slice, check present/absent text, re-run the slice in a fresh
``python`` in an empty directory and compare.
"""

from __future__ import annotations

import pytest

from .replay import Case, as_params
from .test_replay import test_replay as check_case

IRIS = "import numpy as np\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"
PROBA = "v.predict_proba(__import__('sklearn.datasets').datasets.load_iris(return_X_y=True)[0]).round(10).tolist()"
SYS_PATH = "import sys\nsys.path.insert(0, '.')"
AGG = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt"

CASES = [
    # --- 1. hidden RNG state consumed inside library calls (observed, not named) ---
    Case("rng_fit_one_liner", [IRIS, "from sklearn.ensemble import RandomForestClassifier", "np.random.seed(0)",
                               "clf = RandomForestClassifier(n_estimators=5).fit(X, y)"], "clf",
         present=("np.random.seed(0)",), probe=PROBA),
    Case("rng_train_test_split", [IRIS, "from sklearn.model_selection import train_test_split", "np.random.seed(1)",
                                  "X_tr, X_te, y_tr, y_te = train_test_split(X, y)"], "X_tr",
         present=("np.random.seed(1)",)),
    Case("rng_pandas_sample", ["import numpy as np, pandas as pd", "df = pd.DataFrame({'a': range(20)})",
                               "np.random.seed(3)", "s = df.sample(4)"], "s", present=("seed(3)",)),
    Case("rng_kfold_shuffle", [IRIS, "from sklearn.model_selection import KFold", "np.random.seed(2)",
                               "folds = [te.tolist() for _, te in KFold(3, shuffle=True).split(X)]"], "folds",
         present=("seed(2)",)),
    Case("rng_draw_in_between", ["import random", "random.seed(0)", "noise = random.random()",
                                 "x = random.random()"], "x", present=("noise = random.random()",)),
    Case("rng_session_function", ["import random", "def pick(xs):\n    return random.choice(xs)", "random.seed(5)",
                                  "a = pick([1, 2, 3, 4])", "b = pick([1, 2, 3, 4])"], "b", present=("a = pick",)),
    Case("generator_shuffle_in_loop", ["import numpy as np", "rng2 = np.random.default_rng(1)",
                                       "pooled = np.arange(10.0)", "stats = []",
                                       "for _ in range(3):\n    rng2.shuffle(pooled)\n    stats.append(pooled[:3].mean())"],
         "pooled", present=("rng2.shuffle(pooled)",)),
    Case("random_instance_shuffle", ["import random", "r = random.Random(4)", "deck = list(range(8))",
                                     "r.shuffle(deck)"], "deck", present=("r.shuffle(deck)",)),
    Case("rng_deterministic_fit_not_chained", [IRIS, "from sklearn.linear_model import LinearRegression",
                                               "from sklearn.ensemble import RandomForestClassifier",
                                               "np.random.seed(0)", "lr = LinearRegression().fit(X, y)",
                                               "rf = RandomForestClassifier(n_estimators=3).fit(X, y)"], "rf",
         absent=("LinearRegression().fit",), probe=PROBA),
    Case("rng_same_cell_statements", ["import numpy as np\nnp.random.seed(7)\nunused = 3\nz = np.random.rand(2)"], "z",
         present=("seed(7)",), absent=("unused",)),
    # --- 2. closures and late-bound globals ---
    Case("closure_late_global", ["def foo():\n    def inner():\n        return a\n    return inner", "a = 10",
                                 "fn = foo()", "a = 12", "c = fn()"], "c", present=("a = 12",)),
    Case("partial_late_global", ["from functools import partial", "def g(x, y):\n    return x + y + k", "k = 1",
                                 "p = partial(g, 1)", "k = 10", "r = p(2)"], "r", present=("k = 10",)),
    Case("bound_method_late_global", ["class A:\n    def m(self):\n        return base * self.v", "obj = A()",
                                      "obj.v = 2", "m = obj.m", "base = 3", "r = m()"], "r"),
    Case("closure_cell_state", ["def mk():\n    items = []\n    def add(x):\n        items.append(x)\n"
                                "        return len(items)\n    return add", "add = mk()", "add(1)", "n = add(2)"], "n"),
    Case("mutable_default_state", ["def acc(x, memo=[]):\n    memo.append(x)\n    return len(memo)", "acc(1)",
                                   "acc(2)", "n = acc(3)"], "n"),
    Case("lambda_from_factory", ["def scaler(f):\n    return lambda x: x * f * offset", "offset = 1",
                                 "double = scaler(2)", "offset = 5", "r = double(3)"], "r"),
    Case("decorated_call_mutates_global", ["LOG = []", "def tracked(fn):\n    def wrapper(*a, **k):\n"
                                           "        LOG.append(fn.__name__)\n        return fn(*a, **k)\n    return wrapper",
                                           "@tracked\ndef revenue(x):\n    return x * 2", "r = revenue(3)",
                                           "n_calls = len(LOG)"], "n_calls", present=("r = revenue(3)",)),
    Case("mutable_default_fn_object", ["def append_to(x, acc=[]):\n    acc.append(x)\n    return acc", "append_to(1)"],
         "append_to", probe="v.__defaults__", present=("append_to(1)",)),
    Case("bound_builtin_method", ["xs = [3, 1, 2]", "f = xs.append", "f(0)", "rank = xs.sort", "rank()"], "xs",
         present=("f(0)", "rank()")),
    Case("bound_method_passed_to_map", ["d = {}", "rows = [{'a': 1}, {'b': 2}]", "list(map(d.update, rows))",
                                        "n = len(rows)"], "d", present=("map(d.update",)),
    Case("pure_method_passed_not_a_change", ["xs = [3, 1]", "ys = sorted([5, 4], key=xs.count)", "zs = list(xs)"],
         "zs", absent=("sorted",)),
    Case("pipeline_step_fitted_in_place", ["import numpy as np", "from sklearn.pipeline import Pipeline",
                                           "from sklearn.preprocessing import StandardScaler",
                                           "from sklearn.linear_model import LinearRegression", "sc = StandardScaler()",
                                           "model = Pipeline([('sc', sc), ('lr', LinearRegression())])",
                                           "model.fit(np.arange(12.0).reshape(6, 2), np.arange(6.0))"],
         "sc", probe="v.mean_.tolist()", present=("model.fit",)),
    Case("shallow_copy_shares_elements", ["book = {'a': [1, 2], 'b': [3]}", "shallow = dict(book)",
                                          "book['a'].append(99)"], "shallow", present=("append(99)",)),
    Case("list_copy_shares_elements", ["rows = [[1], [2]]", "c = rows[:]", "rows[0].append(5)"], "c",
         present=("append(5)",)),
    Case("element_named_later", ["d = {'k': [1]}", "other = [0]", "lst = d['k']", "lst.append(2)"], "d",
         present=("lst.append(2)",), absent=("other",)),
    Case("closure_late_global_same_cell", ["def make_reader():\n    def inner():\n        return threshold\n    return inner",
                                           "threshold = 10\nread = make_reader()\nthreshold = 12\nt_now = read()"],
         "t_now", present=("threshold = 12",)),
    Case("shallow_copy_same_cell", ["book = {'a': [1, 2], 'b': [3]}\nshallow = dict(book)\nbook['a'].append(99)"],
         "shallow", present=("append(99)",)),
    # --- 3. databases as side channels ---
    Case("db_to_sql_read_sql", ["import sqlite3, pandas as pd", "conn = sqlite3.connect('t.db')",
                                "df = pd.DataFrame({'a': [1, 2]})", "df.to_sql('t', conn, index=False)",
                                "back = pd.read_sql('select * from t', conn)"], "back", present=("to_sql",)),
    Case("db_new_connection_same_file", ["import sqlite3, pandas as pd", "db = 'x.db'", "c1 = sqlite3.connect(db)",
                                         "pd.DataFrame({'a': [1]}).to_sql('t', c1, index=False)", "c1.commit()",
                                         "c2 = sqlite3.connect(db)", "back = pd.read_sql('select * from t', c2)"],
         "back", present=("to_sql",)),
    Case("db_sqlalchemy_engine", ["import pandas as pd\nfrom sqlalchemy import create_engine",
                                  "eng = create_engine('sqlite:///e.db')",
                                  "pd.DataFrame({'a': [1, 2]}).to_sql('t', eng, index=False)",
                                  "back = pd.read_sql('select * from t', eng)"], "back", present=("to_sql",)),
    Case("db_engine_begin_block", ["import pandas as pd\nfrom sqlalchemy import create_engine, text",
                                   "eng = create_engine('sqlite:///b.db')",
                                   "with eng.begin() as conn:\n    conn.execute(text('create table t (a int)'))\n"
                                   "    conn.execute(text('insert into t values (4)'))",
                                   "back = pd.read_sql('select * from t', eng)"], "back", present=("insert",)),
    Case("db_cursor_writes", ["import sqlite3", "con = sqlite3.connect(':memory:')", "cur = con.cursor()",
                              "cur.execute('create table t (a int)')", "cur.execute('insert into t values (5)')",
                              "rows = con.execute('select * from t').fetchall()"], "rows", present=("insert",)),
    # --- 6. false dependencies from name tables ---
    Case("str_replace_is_not_a_file", ["noise = 'zz'.replace('a', 'q')", "t = 'qq'.replace('a', 'r')"], "t",
         absent=("noise",)),
    Case("str_variable_replace", ["name = 'a.csv'", "other = name.replace('.csv', '.txt')", "n2 = name.upper()"],
         "n2", absent=("other",)),
    Case("sorted_copy_not_linked", ["lst = [3, 1]", "s2 = sorted(lst)", "lst.append(0)"], "s2", absent=("append",)),
    Case("list_copy_not_linked", ["lst = [3, 1]", "c = lst.copy()", "lst.append(0)"], "c", absent=("append",)),
    Case("os_remove_still_a_file", ["import os", "open('f.txt', 'w').write('x')", "os.remove('f.txt')",
                                    "gone = not os.path.exists('f.txt')"], "gone", present=("os.remove",)),
    # --- 7. effects the engine did not see ---
    Case("ufunc_at", ["import numpy as np", "counts = np.zeros(3)", "np.add.at(counts, [0, 0, 2], 1)"], "counts",
         present=("np.add.at",)),
    Case("ufunc_at_variable", ["import numpy as np", "idx = np.array([1, 1])", "acc = np.zeros(2)",
                               "np.multiply.at(acc, idx, 0)\nnp.add.at(acc, idx, 2)"], "acc"),
    Case("timeit_body_mutates", ["lst = []", "%timeit -n 2 -r 1 lst.append(1)"], "lst"),
    Case("timeit_cell_body", ["d = {}", "%%timeit -n 1 -r 1\nd['k'] = 1"], "d"),
    Case("pyplot_current_axes", [AGG, "plt.scatter([1, 2], [3, 4])", "lim = plt.axis()"], "lim",
         present=("scatter",)),
    Case("writefile_module_import", [SYS_PATH, "%%writefile mymod.py\ndef f():\n    return 42",
                                     "import mymod\nv = mymod.f()"], "v", present=("mymod.py",)),
    Case("open_write_module_import", [SYS_PATH, "with open('mod2.py', 'w') as fh:\n    fh.write('K = 7')",
                                      "import importlib\nimportlib.invalidate_caches()\nimport mod2\nv = mod2.K * 2"], "v"),
    Case("subplots_axes_drawn", [AGG, "fig, ax = plt.subplots()", "ax.scatter([0, 1, 2], [0, 5, 9])"],
         "ax", probe="(v.get_ylim(), len(v.collections))", present=("ax.scatter",)),
    Case("subplots_fig_via_ax", [AGG, "fig, ax = plt.subplots()", "ax.set_xlim(0, 12)"], "fig",
         probe="v.axes[0].get_xlim()", present=("ax.set_xlim",)),
    Case("subplots_axes_array", [AGG, "fig2, axes = plt.subplots(1, 2)", "axes[0].hist([1, 2, 2, 3], bins=3)"],
         "axes", probe="len(v[0].patches)", present=("hist",)),
    Case("subplots_draw_same_cell", [AGG, "fig, ax = plt.subplots()\nax.scatter([0, 1, 2], [0, 5, 9])\n"
                                           "ax.set_xlim(0, 12)\nxlim = ax.get_xlim()"],
         "fig", probe="(v.axes[0].get_ylim(), len(v.axes[0].collections))", present=("ax.scatter",)),
    Case("subplots_array_same_cell", [AGG, "fig2, axes = plt.subplots(1, 2)\naxes[0].hist([1, 2, 2, 3], bins=3)"],
         "axes", probe="len(v[0].patches)", present=("hist",)),
    Case("frame_plot_not_a_change", [AGG, "import pandas as pd", "df = pd.DataFrame({'a': [1, 2]})",
                                     "df.plot()", "df.plot.scatter(x='a', y='a')", "df.hist()", "n = df.a.sum()"],
         "df", absent=("plot", "hist")),
    Case("pyplot_draws_on_current_axes", [AGG, "fig, ax = plt.subplots()\nax.scatter([0, 1], [0, 1])",
                                          "plt.plot([5, 4, 3])", "plt.figure()", "plt.plot([9, 9])"], "ax",
         probe="len(v.lines)", present=("plt.plot([5, 4, 3])",), absent=("[9, 9]",)),
    Case("pyplot_new_figure_forgets_old", [AGG, "plt.plot([1, 2])", "plt.title('old')", "fig = plt.figure()",
                                           "plt.plot([5, 1, 3])", "lim = plt.axis()"], "lim",
         absent=("'old'", "[1, 2]")),
    # --- precision: statements that must not be kept ---
    Case("db_write_after_read_not_kept", ["import sqlite3, pandas as pd", "conn = sqlite3.connect('s.db')",
                                          "pd.DataFrame({'a': [1, 2]}).to_sql('t', conn, index=False)",
                                          "top = pd.read_sql('select * from t', conn)",
                                          "conn.execute('update t set a = 5')", "conn.commit()"],
         "top", absent=("update t", "commit")),
    Case("search_fit_keeps_param_grid_clean", ["from sklearn.model_selection import GridSearchCV",
                                               "from sklearn.svm import SVC", "import numpy as np",
                                               "grid = {'C': [0.1, 1]}", "search = GridSearchCV(SVC(), grid, cv=2)",
                                               "search.fit(np.r_[np.zeros((4, 2)), np.ones((4, 2))], [0] * 4 + [1] * 4)"],
         "grid", absent=("search",)),
    Case("fit_transform_result_not_a_view", ["import pandas as pd", "from sklearn.preprocessing import StandardScaler",
                                             "df = pd.DataFrame({'a': [1.0, 2.0, 4.0]})",
                                             "scaled = StandardScaler().fit_transform(df)", "df['c'] = 0"],
         "scaled", absent=("df['c']",)),
    Case("frame_from_merge_not_linked", ["import pandas as pd", "a = pd.DataFrame({'k': [1, 2], 'x': [3, 4]})",
                                         "b = pd.DataFrame({'k': [1, 2], 'y': [5, 6]})", "m = a.merge(b, on='k')",
                                         "b['z'] = 0"], "m", absent=("b['z']",)),
    Case("view_not_in_base", ["import numpy as np", "base = np.arange(10)", "first = base[:5]", "b2 = base * 2"],
         "base", absent=("first",)),
    Case("view_write_is_in_base", ["import numpy as np", "base = np.arange(10)", "first = base[:5]",
                                   "first[0] = 99"], "base", present=("first[0] = 99",)),
    Case("mask_selection_not_in_base", ["import pandas as pd", "df = pd.DataFrame({'A': [1, 2, 3]})",
                                        "sub = df[df.A < 2]", "df['B'] = df.A * 2"], "df", absent=("sub",)),
    Case("display_option_dropped", ["import pandas as pd", "df = pd.DataFrame({'A': [1, 2]})",
                                    "pd.options.display.max_rows = 5", "df['B'] = 1"], "df", absent=("max_rows",)),
    Case("builtin_pure_method", ["x = 1.5", "r = x.as_integer_ratio()", "y = x * 2"], "y", absent=("as_integer",)),
    Case("earlier_loop_same_variable", ["for i in range(3):\n    print(i)", "total = 0",
                                        "for i in range(4):\n    total += i"], "total", absent=("print",)),
    Case("star_import_calls_not_kept", ["from numpy import *", "a = array([1, 2])", "m = mean(a)",
                                        "b = array([3]) + a"], "b", absent=("mean",)),
    Case("writefile_not_everything", ["x = 5", "%%writefile notes.txt\nhello", "y = x + 1"], "y",
         absent=("notes",)),
    Case("read_only_open_not_a_write", ["with open('in.txt', 'w') as fh:\n    fh.write('abc')",
                                        "other = open('in.txt').read()", "text = open('in.txt').read().upper()"],
         "text", absent=("other",)),
    Case("plot_not_in_data_slice", [AGG, "import numpy as np", "data = np.arange(5)", "plt.plot(data)",
                                    "data2 = data * 2"], "data2", absent=("plt.plot",)),
]


@pytest.mark.parametrize("case", as_params(CASES))
def test_replay_families(case: Case, tmp_path):
    check_case(case, tmp_path)


def test_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
