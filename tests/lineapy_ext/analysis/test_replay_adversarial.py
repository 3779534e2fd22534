"""Adversarial replay cases against the slicer's precision rules (issue 10).

Each case tries to make one of the precision rules (SQLite tables apart,
pandas methods pure unless inplace or registered, chains through a new
object, fillna/replace dict columns, ``df.a`` column reads, ``C(...).m(x)``,
unknown file paths, library globals) cut a slice that recomputes a different
value or fails to replay.  Same ``Case`` format and check as
``test_replay.py``: cells run in a real shell, the slice is cut and checked
for present/absent text, then re-run in a fresh ``python`` in an empty
directory and the value compared.

``CASES`` hold; ``FAILING_CASES`` are wrong slices found by this review,
marked ``xfail(strict=True)`` with a one-line diagnosis each, so that fixing
the engine makes them fail loudly until they are moved to ``CASES``.
"""

from __future__ import annotations

import pytest

from .replay import Case, as_params
from .test_replay import test_replay as check_case


@pytest.fixture(autouse=True)
def _process_wide_options():
    """Some cases set pandas, numpy and scikit-learn options, which live in the process:
    put them back so that later tests see the defaults."""
    import warnings

    import numpy as np
    import pandas as pd

    import sklearn

    printing = np.get_printoptions()
    learn = sklearn.get_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option is deprecated in pandas 3
        infer = pd.get_option("future.infer_string")
    yield
    np.set_printoptions(**printing)
    sklearn.set_config(**learn)
    pd.reset_option("display.float_format")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option is deprecated in pandas 3
        pd.set_option("future.infer_string", infer)

PD = "import pandas as pd"
NP = "import numpy as np"
SQ = "import sqlite3"
SQPD = "import sqlite3, pandas as pd"
SA = "import pandas as pd\nfrom sqlalchemy import create_engine, text"
PD_ABC = "import pandas as pd\ndf = pd.DataFrame({'a': [1.0, None, 3.0], 'b': [4, 5, 6], 'c': [7.0, 8.0, None]})"
SYS_PATH = "import sys\nsys.path.insert(0, '.')"
IRIS = "import numpy as np\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"

CASES = [
    # --- SQL: odd quoting, casing, comments, statement forms ---
    Case("sql_mixed_case_table", [SQPD, "conn = sqlite3.connect('w.db')",
                                  "pd.DataFrame({'a': [1, 2]}).to_sql('Sales', conn, index=False)",
                                  "conn.execute('UPDATE SALES SET a = a * 10')",
                                  "got = pd.read_sql('Select * From sales', conn)"], "got",
         present=("to_sql('Sales'", "UPDATE SALES")),
    Case("sql_bracket_and_backtick_names", [SQ, "conn = sqlite3.connect('w.db')",
                                            "conn.execute('create table [order] (x int)')",
                                            "conn.execute('insert into `order` values (3)')",
                                            "conn.execute('create table u (x int)')",
                                            "conn.execute('insert into u values (4)')",
                                            "rows = conn.execute('select x from \"order\"').fetchall()"], "rows",
         present=("insert into `order`",), absent=("insert into u",)),
    Case("sql_insert_select", [SQ, "conn = sqlite3.connect('w.db')",
                               "conn.execute('create table a (x int)')", "conn.execute('create table b (x int)')",
                               "conn.execute('insert into a values (1), (2)')",
                               "conn.execute('insert into b select x * 10 from a')",
                               "conn.execute('insert into a values (3)')",
                               "rows = conn.execute('select x from b order by x').fetchall()"], "rows",
         present=("values (1), (2)", "insert into b select"), absent=("values (3)",)),
    Case("sql_to_sql_append", [SQPD, "conn = sqlite3.connect('w.db')",
                               "pd.DataFrame({'a': [1]}).to_sql('t', conn, index=False)",
                               "pd.DataFrame({'a': [2]}).to_sql('t', conn, index=False, if_exists='append')",
                               "got = pd.read_sql('select * from t', conn)"], "got",
         present=("[1]", "if_exists='append'")),
    Case("sql_autocommit_ddl_seen_by_other", [SQ, "conn = sqlite3.connect('w.db')",
                                              "conn.execute('create table t (x int)')",
                                              "other = sqlite3.connect('w.db')",
                                              "rows = other.execute('select * from t').fetchall()"], "rows",
         present=("create table t",)),
    Case("sql_with_conn_commits", [SQ, "conn = sqlite3.connect('w.db')", "conn.execute('create table t (x int)')",
                                   "with conn:\n    conn.execute('insert into t values (1)')",
                                   "other = sqlite3.connect('w.db')",
                                   "rows = other.execute('select * from t').fetchall()"], "rows",
         present=("values (1)",)),
    Case("sql_temp_table_shadows_main", [SQ, "conn = sqlite3.connect('w.db')", "conn.execute('create table t (x int)')",
                                         "conn.execute('insert into t values (1)')", "conn.commit()",
                                         "conn.execute('create temp table t (x int)')",
                                         "conn.execute('insert into temp.t values (2)')",
                                         "rows = conn.execute('select x from t').fetchall()"], "rows",
         present=("temp.t values (2)",)),
    Case("sql_session_function_runs_query", [SQ, "conn = sqlite3.connect('w.db')",
                                             "def run(q):\n    conn.execute(q)\n    conn.commit()",
                                             "run('create table t (x int)')", "run('insert into t values (6)')",
                                             "rows = conn.execute('select x from t').fetchall()"], "rows",
         present=("values (6)",)),
    Case("sqlalchemy_connect_commit", [SA, "eng = create_engine('sqlite:///c.db')",
                                       "with eng.connect() as con:\n    con.execute(text('create table t (a int)'))\n"
                                       "    con.execute(text('insert into t values (1)'))\n    con.commit()",
                                       "back = pd.read_sql('select * from t', eng)"], "back",
         present=("values (1)", "commit")),
    # --- pandas: methods that do change the frame ---
    Case("pd_frame_update", [PD, "df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})",
                             "other = pd.DataFrame({'a': [10, 20]})", "df.update(other)", "v = df['a'].tolist()"],
         "v", present=("df.update(other)",)),
    Case("pd_insert_then_column_read", [PD_ABC, "df.insert(1, 'z', [0, 1, 2])", "v = df['z'].tolist()"], "v",
         present=("df.insert",)),
    Case("pd_attrs_item", [PD, "df = pd.DataFrame({'a': [1]})", "df.attrs['source'] = 'x.csv'"], "df",
         probe="dict(v.attrs)", present=("attrs",)),
    Case("pd_columns_assignment_then_item", [PD_ABC, "df['d'] = 1", "df.columns = ['p', 'q', 'r', 's']",
                                             "v = df['s'].tolist()"], "v", present=("df['d'] = 1", "df.columns")),
    Case("pd_rename_inplace_then_item", [PD_ABC, "df['d'] = df['b'] * 3",
                                         "df.rename(columns={'d': 'z'}, inplace=True)", "v = df['z'].tolist()"],
         "v", present=("df['d']", "rename")),
    Case("pd_iloc_write_then_item", [PD_ABC, "df.iloc[0, 1] = 99", "v = df['b'].tolist()"], "v",
         present=("iloc",)),
    Case("pd_loc_append_row_then_item", [PD_ABC, "df.loc[len(df)] = [1.0, 2, 3.0]", "v = df['a'].fillna(-1).tolist()"], "v",
         present=("len(df)",)),
    Case("pd_attribute_assign_existing_column", [PD_ABC, "df.b = [7, 8, 9]", "v = df['b'].tolist()"], "v",
         present=("df.b = ",)),
    Case("pd_apply_fn_mutates_global", [PD_ABC, "seen = []", "def f(x):\n    seen.append(x)\n    return x",
                                        "out = df['b'].apply(f)"], "seen", present=("apply(f)",)),
    Case("pd_fillna_dict_variable_shrunk_later", [PD_ABC, "vals = {'a': 0, 'c': 0}", "df.fillna(vals, inplace=True)",
                                                  "vals.pop('c')", "w = df['c'].isna().tolist()"], "w",
         present=("fillna",)),
    Case("pd_fillna_int_column_keys", [PD, "df = pd.DataFrame({0: [None, 1.0], 1: [2.0, None]})",
                                       "df.fillna({1: 5.0}, inplace=True)", "v = df[1].tolist()"], "v",
         present=("fillna",)),
    Case("pd_loop_column_writes", [PD, "df = pd.DataFrame({'a': [1, 2]})",
                                   "for c in ['x', 'y']:\n    df[c] = df['a'] * 3", "v = df['x'].tolist()"], "v",
         present=("for c in",)),
    # --- dicts: keys ---
    Case("dict_loop_key_writes", ["d = {}", "for k in ['a', 'b']:\n    d[k] = len(k)", "v = d['a']"], "v",
         present=("for k in",)),
    Case("dict_true_is_one", ["d = {}", "d[1] = 'int'", "d[True] = 'bool'", "v = d[1]"], "v",
         present=("d[True]",)),
    # --- numpy: views through chained methods ---
    Case("np_reshape_fill_changes_base", [NP, "a = np.arange(4)", "a.reshape(2, 2).fill(7)"], "a",
         present=("fill(7)",)),
    # --- session classes: C(...).m(x) ---
    Case("class_chain_mutates_argument", ["class Filler:\n    def fill(self, xs):\n        xs.append(0)\n"
                                          "        return self", "lst = [1]", "f = Filler().fill(lst)"], "lst",
         present=("Filler().fill(lst)",)),
    Case("class_chain_classmethod", ["class K:\n    n = 0\n    @classmethod\n    def bump(cls):\n"
                                     "        cls.n += 1\n        return cls", "K().bump()", "K().bump()",
                                     "v = K.n"], "v", present=("K().bump()",)),
    # --- files: paths not known statically ---
    Case("file_path_rebound_same_cell", ["p = 'a.txt'\nopen(p, 'w').write('A')\np = 'b.txt'\nopen(p, 'w').write('B')",
                                         "v = open('a.txt').read()"], "v"),
    Case("file_path_rebound_later_cell", ["p = 'a.txt'", "open(p, 'w').write('A')", "p = 'b.txt'",
                                          "open(p, 'w').write('B')", "v = open('a.txt').read()"], "v",
         present=("write('A')",)),
    Case("file_path_format_concat_percent", ["n = 'r'", "open('{}.txt'.format(n), 'w').write('1')",
                                             "open(n + '2.txt', 'w').write('2')", "open('%s3.txt' % n, 'w').write('3')",
                                             "v = open('r.txt').read() + open('r2.txt').read() + open('r3.txt').read()"],
         "v"),
    Case("file_path_dict_lookup", ["import json", "paths = {'cfg': 'c.json'}",
                                   "json.dump({'a': 1}, open(paths['cfg'], 'w'))", "paths['cfg'] = 'other.json'",
                                   "v = json.load(open('c.json'))"], "v"),
    Case("file_listdir_count", ["import os", "os.makedirs('parts', exist_ok=True)",
                                "for i in range(3):\n    open(f'parts/{i}.txt', 'w').write(str(i))",
                                "n = len(os.listdir('parts'))"], "n"),
    Case("file_shutil_copy", ["import shutil", "open('a.txt', 'w').write('A')", "shutil.copy('a.txt', 'b.txt')",
                              "v = open('b.txt').read()"], "v"),
    # --- module globals: a library module's state changed by the session ---
    Case("local_module_global_set", [SYS_PATH, "with open('helper.py', 'w') as fh:\n"
                                     "    fh.write('SCALE = 1\\ndef f(x):\\n    return x * SCALE\\n')",
                                     "import importlib\nimportlib.invalidate_caches()\nimport helper", "helper.SCALE = 10",
                                     "r = helper.f(3)"], "r",
         present=("helper.SCALE = 10",)),
    # --- SQL: connections reached another way ---
    Case("sql_inline_connect_in_read_sql", [SQPD, "conn = sqlite3.connect('w.db')",
                                            "pd.DataFrame({'a': [1]}).to_sql('t', conn, index=False)",
                                            "got = pd.read_sql('select * from t', sqlite3.connect('w.db'))"], "got",
         present=("to_sql",)),
    # --- df.a: instance attribute vs column; MultiIndex columns ---
    Case("pd_instance_attribute_shadows_column", [PD_ABC, "df.z = 5", "df['z'] = [1, 2, 3]", "v = df.z"], "v",
         present=("df.z = 5",)),
    Case("pd_multiindex_column_write_top_read", [PD, "df = pd.DataFrame({'k': [1, 1, 2], 'v': [1, 2, 3]})",
                                                 "agg = df.groupby('k').agg(['sum', 'mean'])",
                                                 "agg[('v', 'sum')] = agg[('v', 'sum')] * 10",
                                                 "out = agg['v'].values.tolist()"], "out", present=("* 10",)),
    # --- pathlib paths, options, keyword arguments ---
    Case("pd_to_csv_pathlib_division", [PD + "\nfrom pathlib import Path", "out = Path('o')",
                                        "out.mkdir(exist_ok=True)", "df = pd.DataFrame({'a': [1, 2]})",
                                        "df.to_csv(out / 'x.csv', index=False)", "back = pd.read_csv('o/x.csv')"],
         "back", present=("to_csv",)),
    Case("open_pathlib_division", ["from pathlib import Path", "import os", "os.makedirs('o', exist_ok=True)",
                                   "with open(Path('o') / 'y.txt', 'w') as fh:\n    fh.write('Y')",
                                   "v = open('o/y.txt').read()"], "v", present=("fh.write",)),
    # --- a reader connection opened before the writes (its open does not read them) ---
    Case("sql_reader_first_commit", [SQ, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                     "conn.execute('create table t (x int)')", "conn.execute('insert into t values (1)')",
                                     "conn.commit()", "conn.execute('create table u (x int)')",
                                     "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("values (1)",), absent=("table u",)),
    Case("sql_reader_first_executescript", [SQ, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                            "conn.executescript('create table t (x int); insert into t values (1);')",
                                            "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("executescript",)),
    Case("sql_reader_first_view", [SQ, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                   "conn.execute('create table t (a int)')",
                                   "conn.execute('create view v as select a * 10 as b from t')",
                                   "conn.execute('insert into t values (3)')", "conn.commit()",
                                   "vals = other.execute('select b from v').fetchall()"], "vals",
         present=("values (3)",)),
    Case("sql_reader_first_rename", [SQ, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                     "conn.execute('create table t (x int)')", "conn.execute('insert into t values (1)')",
                                     "conn.execute('alter table t rename to u')", "conn.commit()",
                                     "rows = other.execute('select x from u').fetchall()"], "rows",
         present=("values (1)",)),
    Case("sqlalchemy_reader_engine_first", [SA, "eng = create_engine('sqlite:///c.db')",
                                            "eng2 = create_engine('sqlite:///c.db')",
                                            "with eng.begin() as con:\n    con.execute(text('create table t (a int)'))\n"
                                            "    con.execute(text('insert into t values (1)'))",
                                            "back = pd.read_sql('select * from t', eng2)"], "back",
         present=("values (1)",)),
    # --- rows, appends, connection state, existence checks ---
    Case("pd_loc_enlarge_row_then_other_column", [PD_ABC, "df.loc[5, 'a'] = 1.0", "v = df['b'].fillna(-1).tolist()"],
         "v", present=("df.loc[5, 'a']",)),
    Case("pd_sort_inplace_then_attr_column", [PD_ABC, "df['e'] = df['b'] * 2",
                                              "df.sort_values('b', ascending=False, inplace=True)",
                                              "v = df.e.tolist()"], "v", present=("sort_values",)),
    Case("pd_dropna_subset_then_other_column", [PD_ABC, "df['e'] = df['b']", "df.dropna(subset=['c'], inplace=True)",
                                                "v = df['e'].tolist()"], "v", present=("dropna",)),
    Case("pd_index_alias_name", [PD, "df = pd.DataFrame({'a': [1, 2]})", "idx = df.index", "idx.name = 'row'"],
         "df", probe="v.index.name", present=("idx.name",)),
    Case("sql_row_factory", [SQ, "conn = sqlite3.connect('w.db')", "conn.execute('create table t (x int)')",
                             "conn.execute('insert into t values (1)')", "conn.row_factory = lambda cur, row: row[0]",
                             "rows = conn.execute('select x from t').fetchall()"], "rows",
         present=("row_factory",)),
    Case("sql_engine_write_sqlite3_read", [SA + "\nimport sqlite3", "reader = sqlite3.connect('e.db')",
                                           "eng = create_engine('sqlite:///e.db')",
                                           "pd.DataFrame({'a': [1]}).to_sql('t', eng, index=False)",
                                           "rows = reader.execute('select a from t').fetchall()"], "rows",
         present=("to_sql",)),
    Case("file_open_append_mode", ["open('log.txt', 'w').write('a\\n')", "open('log.txt', 'a').write('b\\n')",
                                   "v = open('log.txt').read()"], "v", present=("write('a",)),
    Case("pd_to_csv_append_mode", [PD, "pd.DataFrame({'a': [1]}).to_csv('r.csv', index=False)",
                                   "pd.DataFrame({'a': [2]}).to_csv('r.csv', mode='a', header=False, index=False)",
                                   "v = pd.read_csv('r.csv')"], "v", present=("[1]", "mode='a'")),
    Case("file_exists_check", ["import os", "open('a.txt', 'w').write('A')", "e = os.path.exists('a.txt')"], "e",
         present=("write('A')",)),
    # --- shallow copies, late-bound keys, callbacks in containers, unregistered writers ---
    Case("list_copy_chain_shares_inner", ["nested = [[1], [2]]", "nested.copy()[0].append(9)"], "nested",
         present=("append(9)",)),
    Case("pd_copy_chain_pipe_fn_global", [PD_ABC, "log = []", "def f(d):\n    log.append(len(d))\n    return d",
                                          "df.copy().pipe(f)"], "log", present=("pipe(f)",)),
    Case("pd_groupby_transform_fn_global", [PD, "df = pd.DataFrame({'k': [1, 1, 2], 'v': [1, 2, 3]})", "log = []",
                                            "def f(s):\n    log.append(len(s))\n    return s",
                                            "out = df.groupby('k')['v'].transform(f)"], "log", present=("transform(f)",)),
    Case("pd_fillna_key_variable_rebound_later", [PD_ABC, "col = 'c'", "df.fillna({col: 0}, inplace=True)",
                                                  "col = 'a'", "w = df['c'].isna().tolist()"], "w", present=("fillna",)),
    Case("pd_read_csv_converter_reads_global", [PD, "pd.DataFrame({'a': [1, 2]}).to_csv('t.csv', index=False)",
                                                "def conv(x):\n    return int(x) * scale", "scale = 1", "scale = 10",
                                                "df2 = pd.read_csv('t.csv', converters={'a': conv})"], "df2",
         present=("scale = 10",)),
    Case("joblib_dump_load", ["import joblib", "obj = {'w': [1, 2]}", "joblib.dump(obj, 'm.joblib')",
                              "back = joblib.load('m.joblib')"], "back", present=("joblib.dump",)),
    # --- more shallow containers and numpy views ---
    Case("slice_copy_shares_inner", ["nested = [[1], [2]]", "nested[:][0].append(9)"], "nested",
         present=("append(9)",)),
    Case("np_transpose_item_write", [NP, "a = np.zeros((2, 2))", "a.T[0, 1] = 5"], "a", present=("a.T[0, 1]",)),
    Case("sql_connect_pathlib", [SQ + "\nfrom pathlib import Path", "conn = sqlite3.connect(Path('p.db'))",
                                 "conn.execute('create table t (x int)')", "conn.execute('insert into t values (2)')",
                                 "conn.commit()", "other = sqlite3.connect('p.db')",
                                 "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("values (2)",)),
    Case("sql_connect_fstring_path", [SQ, "name = 'w'", "conn = sqlite3.connect(f'{name}.db')",
                                      "conn.execute('create table t (x int)')",
                                      "conn.execute('insert into t values (1)')", "conn.commit()",
                                      "other = sqlite3.connect('w.db')",
                                      "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("values (1)",)),
    Case("sqlalchemy_engine_fstring_url", [SA, "name = 'e'", "eng = create_engine(f'sqlite:///{name}.db')",
                                           "pd.DataFrame({'a': [1]}).to_sql('t', eng, index=False)",
                                           "eng2 = create_engine('sqlite:///e.db')",
                                           "back = pd.read_sql('select * from t', eng2)"], "back",
         present=("to_sql",)),
    Case("sql_table_named_temp", [SQ, "conn = sqlite3.connect('w.db')", "conn.execute('create table temp (x int)')",
                                  "conn.execute('insert into temp values (1)')",
                                  "rows = conn.execute('select x from temp').fetchall()"], "rows",
         present=("insert into temp",)),
    Case("sql_reader_first_temp_table_name", [SQ, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                              "conn.execute('create table rows (x int)')",
                                              "conn.execute('insert into rows values (1)')", "conn.commit()",
                                              "got = other.execute('select x from rows').fetchall()"], "got",
         present=("insert into rows",)),
    Case("sql_connect_uri", [SQ, "conn = sqlite3.connect('w.db')", "conn.execute('create table t (x int)')",
                             "conn.execute('insert into t values (3)')", "conn.commit()",
                             "ro = sqlite3.connect('file:w.db?mode=ro', uri=True)",
                             "rows = ro.execute('select x from t').fetchall()"], "rows", present=("values (3)",)),
    Case("sql_reader_first_dotted_name", [SQPD, "other = sqlite3.connect('w.db')", "conn = sqlite3.connect('w.db')",
                                          "pd.DataFrame({'a': [1, 2]}).to_sql('sales.2024', conn, index=False)",
                                          "got = pd.read_sql('select * from \"sales.2024\"', other)"], "got",
         present=("to_sql('sales.2024'",)),
    Case("sql_with_connect_as", [SQPD, "with sqlite3.connect('w.db') as conn:\n"
                                 "    conn.execute('create table t (x int)')\n    conn.execute('insert into t values (1)')",
                                 "other = sqlite3.connect('w.db')", "got = pd.read_sql('select * from t', other)"],
         "got", present=("values (1)",)),
    Case("zipfile_write_read", ["import zipfile", "with zipfile.ZipFile('a.zip', 'w') as z:\n    z.writestr('x.txt', 'X')",
                                "v = zipfile.ZipFile('a.zip').read('x.txt')"], "v", present=("writestr",)),
    Case("pd_query_at_variable", [PD_ABC, "thr = 100", "thr = 4", "sub = df.query('b > @thr')"], "sub",
         present=("thr = 4",)),
    Case("pd_eval_at_variable", [PD_ABC, "k = 100", "k = 2", "v = df.eval('b * @k').tolist()"], "v",
         present=("k = 2",)),
    Case("class_chain_ctor_arg_mutated_by_method", ["class W:\n    def __init__(self, d):\n        self.d = d\n"
                                                    "    def fill(self):\n        self.d['k'] = 1\n        return self",
                                                    "data = {}", "w = W(data).fill()"], "data",
         present=("W(data).fill()",)),
    Case("sk_pipeline_fits_given_steps", [IRIS, "from sklearn.pipeline import Pipeline",
                                          "from sklearn.preprocessing import StandardScaler",
                                          "from sklearn.linear_model import LogisticRegression",
                                          "scaler = StandardScaler()",
                                          "pipe = Pipeline([('s', scaler), ('m', LogisticRegression(max_iter=500))]).fit(X, y)"],
         "scaler", probe="v.mean_.round(8).tolist()", present=(".fit(X, y)",)),
    Case("sk_make_pipeline_fits_given_steps", [IRIS, "from sklearn.pipeline import make_pipeline",
                                               "from sklearn.preprocessing import StandardScaler",
                                               "from sklearn.linear_model import LinearRegression",
                                               "sc = StandardScaler()", "make_pipeline(sc, LinearRegression()).fit(X, y)"],
         "sc", probe="v.scale_.round(8).tolist()", present=(".fit(X, y)",)),
    Case("list_call_chain_shares_inner", ["nested = [[1], [2]]", "list(nested)[1].append(7)"], "nested",
         present=("append(7)",)),
    Case("copy_copy_shares_inner", ["import copy", "nested = [[1], [2]]", "copy.copy(nested)[0].append(9)"], "nested",
         present=("append(9)",)),
    Case("dict_call_shares_value", ["d = {'k': [1]}", "dict(d)['k'].append(2)"], "d", present=("append(2)",)),
    Case("sorted_chain_shares_inner", ["nested = [[3], [1]]", "sorted(nested)[0].append(0)"], "nested",
         present=("append(0)",)),
    Case("max_returns_element", ["nested = [[1], [2]]", "max(nested).append(9)"], "nested", present=("append(9)",)),
    Case("next_iter_returns_element", ["nested = [[1], [2]]", "next(iter(nested)).append(9)"], "nested",
         present=("append(9)",)),
    Case("file_pathlib_division", ["from pathlib import Path", "out = Path('o')", "out.mkdir(exist_ok=True)",
                                   "(out / 'x.txt').write_text('hi')", "v = open('o/x.txt').read()"], "v"),
    Case("pathlib_fstring_write_text", ["from pathlib import Path", "n = 'q'", "Path(f'{n}.txt').write_text('Q')",
                                        "v = open('q.txt').read()"], "v", present=("write_text",)),
    Case("pd_apply_args_mutated", [PD_ABC, "def f(x, acc):\n    acc.append(x)\n    return x", "lst = []",
                                   "out = df['b'].apply(f, args=(lst,))"], "lst", present=("apply(f",)),
    Case("pd_pipe_fn_mutates_extra_arg", [PD_ABC, "def f(d, acc):\n    acc.append(len(d))\n    return d",
                                          "lst = []", "df2 = df.pipe(f, lst)"], "lst", present=("pipe(f, lst)",)),
    Case("partial_call_mutates_bound_arg", ["from functools import partial", "def add(xs, v):\n    xs.append(v)",
                                            "lst = []", "partial(add, lst)(5)"], "lst", present=("partial(add, lst)(5)",)),
    Case("sql_attach_writes_other_file", [SQ, "conn = sqlite3.connect('m.db')",
                                          "conn.execute(\"attach database 'aux.db' as aux\")",
                                          "conn.execute('create table aux.t (x int)')",
                                          "conn.execute('insert into aux.t values (1)')", "conn.commit()",
                                          "other = sqlite3.connect('aux.db')",
                                          "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("insert into aux.t",)),
    Case("sql_reader_first_attach", [SQ, "other = sqlite3.connect('aux.db')", "conn = sqlite3.connect('m.db')",
                                     "conn.execute(\"attach database 'aux.db' as aux\")",
                                     "conn.execute('create table aux.t (x int)')",
                                     "conn.execute('insert into aux.t values (1)')", "conn.commit()",
                                     "rows = other.execute('select x from t').fetchall()"], "rows",
         present=("insert into aux.t",)),
    Case("sql_cursor_chain_then_commit", [SQ, "conn = sqlite3.connect('w.db')",
                                          "conn.cursor().execute('create table t (x int)')",
                                          "conn.cursor().execute('insert into t values (8)')", "conn.commit()",
                                          "other = sqlite3.connect('w.db')",
                                          "rows = other.execute('select * from t').fetchall()"], "rows",
         present=("values (8)",)),
]

#: Wrong slices found by this review (the engine recomputes another value or
#: the slice fails to replay), most likely in real notebooks first.  Each is
#: expected to fail (``xfail(strict=True)``): once the engine is fixed it
#: passes, the strict xfail then fails, and the case moves to ``CASES``.
FAILING_CASES = [
    Case("sql_closing_context", [SQ + "\nfrom contextlib import closing",
                                 "with closing(sqlite3.connect('w.db')) as conn:\n"
                                 "    conn.execute('create table t (x int)')\n    conn.execute('insert into t values (1)')\n"
                                 "    conn.commit()",
                                 "other = sqlite3.connect('w.db')", "rows = other.execute('select x from t').fetchall()"],
         "rows", present=("values (1)",)),
    Case("pd_display_float_format_to_string", [PD, "df = pd.DataFrame({'a': [1.23456]})",
                                               "pd.options.display.float_format = '{:.1f}'.format",
                                               "s = df.to_string()"], "s", present=("float_format",)),
    Case("np_printoptions_str", [NP, "np.set_printoptions(precision=2)", "s = str(np.array([1.23456]))"], "s",
         present=("set_printoptions",)),
    Case("pd_future_infer_string_option", [PD, "pd.set_option('future.infer_string', False)",
                                           "df = pd.DataFrame({'s': ['a', 'b']})"], "df",
         probe="str(v.dtypes['s'])", present=("infer_string",)),
    Case("pd_apply_mutates_object_elements", [PD, "df = pd.DataFrame({'l': [[1], [2]]})",
                                              "out = df['l'].apply(lambda x: x.append(0))"], "df",
         probe="v['l'].tolist()", present=("append(0)",)),
    Case("pd_series_from_array_no_copy", [PD + "\nimport numpy as np", "arr = np.zeros(3)",
                                          "s = pd.Series(arr, copy=False)", "arr[0] = 5"], "s", present=("arr[0] = 5",)),
    Case("pd_frame_from_array_no_copy", [PD + "\nimport numpy as np", "arr = np.zeros((2, 2))",
                                         "df = pd.DataFrame(arr, copy=False)", "arr[0, 0] = 5"], "df",
         present=("arr[0, 0] = 5",)),
    Case("class_singleton_new", ["class S:\n    _inst = None\n    def __new__(cls):\n"
                                 "        if cls._inst is None:\n            cls._inst = super().__new__(cls)\n"
                                 "            cls._inst.items = []\n        return cls._inst\n"
                                 "    def add(self, x):\n        self.items.append(x)\n        return self",
                                 "S().add(1)", "v = list(S().items)"], "v", present=("S().add(1)",)),
    # --- from the adversarial notebooks of 2026-11-29 (tests/corpus format), still open ---
    Case("sklearn_set_config_pandas_output", ["import pandas as pd\nimport sklearn\nfrom sklearn.preprocessing import StandardScaler",
                                              "df = pd.DataFrame({'a': [1.0, 2.0, 4.0]})",
                                              "sklearn.set_config(transform_output='pandas')",
                                              "scaled = StandardScaler().fit_transform(df)"], "scaled",
         probe="type(v).__name__", present=("set_config",)),
    Case("iterator_consumed_by_list_twice", ["it = iter([1, 2, 3])", "a = list(it)", "b = list(it)"], "b",
         present=("a = list(it)",)),
    Case("generator_consumed_by_sum_twice", ["g = (x for x in range(3))", "s1 = sum(g)", "s2 = sum(g)"], "s2",
         present=("s1 = sum(g)",)),
    Case("iterator_consumed_by_for_break", ["it = iter(range(6))", "for x in it:\n    if x == 2:\n        break",
                                            "rest = list(it)"], "rest", present=("break",)),
    Case("lru_cache_keeps_earlier_result", ["from functools import lru_cache", "factor = 1",
                                            "@lru_cache\ndef weighted(n):\n    return n * factor",
                                            "first = weighted(3)", "factor = 10", "again = weighted(3)"], "again",
         present=("first = weighted(3)",)),
    Case("class_attr_through_other_instance", ["class Ledger:\n    entries = []", "a = Ledger()\nb = Ledger()",
                                               "b.entries.append(2)", "got = list(a.entries)"], "got",
         present=("b.entries.append(2)",)),
    Case("np_copyto_temporary_view", [NP, "a = np.arange(6)\nm = a.reshape(2, 3)", "np.copyto(m[1], 7)",
                                      "s = int(a.sum())"], "s", present=("copyto",)),
    Case("np_sort_base_same_cell_as_view", [NP, "v = np.array([3, 1, 2, 9, 0])\nv_view = v[1:]\nv.sort()",
                                            "w = v_view.tolist()"], "w"),
    Case("file_handle_closed_explicitly", ["import json", "fh = open('a.json', 'w')", "json.dump({'k': 2}, fh)",
                                           "fh.close()", "d = json.load(open('a.json'))"], "d", present=("fh.close()",)),
    Case("sql_quoted_table_with_space", [SQPD, "conn = sqlite3.connect('w.db')",
                                         "pd.DataFrame({'a': [1, 2]}).to_sql('my table', conn, index=False)",
                                         "pd.DataFrame({'b': [3]}).to_sql('other', conn, index=False)",
                                         "got = pd.read_sql('select * from \"my table\"', conn)"], "got",
         present=("to_sql('my table'",), absent=("to_sql('other'",)),
]

#: One line per failing case: what the slice got wrong.
WHY = {
    'sql_closing_context': '`with closing(sqlite3.connect(p)) as conn:` likewise: no file behind conn, its writes are lost to other connections (no such table)',
    'pd_display_float_format_to_string': 'display options are registered pure, but `df.to_string()` (a str value) uses display.float_format: the option is dropped, the text differs',
    'np_printoptions_str': 'np.set_printoptions is registered pure, but `str(arr)` is a value that depends on it',
    'pd_future_infer_string_option': 'pd.set_option is registered pure, but future.infer_string changes the dtype of new string columns (object vs str)',
    'pd_apply_mutates_object_elements': "`df['l'].apply(lambda x: x.append(0))` mutates the lists held in an object column (shared, not copied); pure-method rule drops it",
    'pd_series_from_array_no_copy': "`pd.Series(arr, copy=False)` shares arr's buffer (pandas 3 too); the 'independent' rule drops the later `arr[0] = 5`",
    'pd_frame_from_array_no_copy': '`pd.DataFrame(arr, copy=False)`: same for a frame',
    'class_singleton_new': "`S().add(1)` where S.__new__ returns a cached instance: not a new object, the call changes S's state; dropped",
    'sklearn_set_config_pandas_output': "sklearn.set_config is process-wide state that every later transformer reads (like pd/np options); not modelled: an ndarray instead of a DataFrame",
    'iterator_consumed_by_list_twice': "list(it) empties an iterator, but builtins that iterate their argument are pure for the slicer: the second list(it) is recomputed from a full iterator",
    'generator_consumed_by_sum_twice': "same for a generator consumed by sum(g)",
    'iterator_consumed_by_for_break': "a `for` over an iterator stopped by `break` advances it; the loop is not taken as a change of `it`",
    'lru_cache_keeps_earlier_result': "an lru_cache'd function keeps results: the first call's is what the later call returns, and the first call is dropped",
    'class_attr_through_other_instance': "a class attribute changed through one instance (`b.entries.append`) is not linked to the class or another instance (`a.entries`)",
    'np_copyto_temporary_view': "np.copyto(m[1], 7) writes through a temporary view of m's base; the base `a` is not marked",
    'np_sort_base_same_cell_as_view': "v.sort() in the same cell as `v_view = v[1:]`: the view's link to v is set at the cell's end, after the sort",
    'file_handle_closed_explicitly': "fh.close() flushes a buffered write: it is not taken as a write of the file, so the slice reads an empty file",
    'sql_quoted_table_with_space': "precision only (value right): with a table named 'my table', the writer of another table ('other') is kept",
}


def _failing_params() -> list:
    return [pytest.param(p.values[0], id=p.id, marks=[*p.marks, pytest.mark.xfail(strict=True, reason=WHY[p.id])])
            for p in as_params(FAILING_CASES)]


@pytest.mark.parametrize("case", as_params(CASES))
def test_replay_adversarial(case: Case, tmp_path):
    check_case(case, tmp_path)


@pytest.mark.parametrize("case", _failing_params())
def test_replay_adversarial_failing(case: Case, tmp_path):
    check_case(case, tmp_path)


def test_ids_unique():
    ids = [c.id for c in CASES + FAILING_CASES]
    assert len(ids) == len(set(ids))
    assert set(WHY) == {c.id for c in FAILING_CASES}
