"""Artifacts to reusable code: get_function, export --function, pipelines (script, dvc, airflow).

One real IPython session (module-scoped, the slow part is importing
scikit-learn once) saves the artifacts; every generated module is then RUN in
a fresh ``python -I`` whose import system refuses ``lineapy_ext`` and
``kernel_hooks``, and its values are compared with the saved ones.  Here the
DAG file is compiled and the task functions it calls are run as Airflow
would call them; ``test_pipeline_engines`` runs the DVC and Airflow targets
on the real engines (``dvc repro``, ``airflow dags test``).
"""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.codegen import Target, get_function
from lineapy_ext.codegen.plan import combinable, merge_slices, resolve_parameter
from lineapy_ext.exceptions import CodegenError
from tests.conftest import _ENV_VARS
from tests.engines import REFUSE_LINEAPY


# A fresh interpreter that cannot import lineapy_ext (the editable install is
# on the venv's path, so it is refused explicitly) runs scripts one after the
# other, each with its own argv and a fresh namespace, as separate commands
# would (one interpreter start instead of several keeps the tests fast).
_BLOCKER = REFUSE_LINEAPY + textwrap.dedent('''
    import json, os, runpy
    for argv in json.loads(sys.argv[1]):
        sys.argv = argv
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")
        sys.path.pop(0)
''')

CELLS = [
    "import numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\nimport pandas as pd",
    "path = {data!r}\nrng = np.random.default_rng(0)",
    "df = pd.read_csv(path)\nscale = 2\nscale = scale * 3\nfeatures = df.drop(columns='y') * scale\nfeatures.shape",
    "n_estimators = 10\nmodel = RandomForestClassifier(n_estimators=n_estimators, random_state=0)\n"
    "model.fit(features, df['y'])",
    "%lineapy save features\n%lineapy save model",
    # A variable used, then rebound: the parameter replaces the binding the artifact used.
    "m = 5\nm2 = m + 1\nm = 100\ntotal = m2 * m\nm = -1",
    "%lineapy save total",
]


def _write_data(path, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=(X[:, 0] > 0).astype(int)).to_csv(path, index=False)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A real shell that saved 'features', 'model' and 'total'; yields paths and saved values."""
    from lineapy_ext.context import reset_context
    from tests.shells import close_shell, new_shell

    root = tmp_path_factory.mktemp("codegen")
    home = root / "home"
    home.mkdir()
    data, other = root / "data.csv", root / "other.csv"
    _write_data(data, 0)
    _write_data(other, 1)
    mp = pytest.MonkeyPatch()
    for var in _ENV_VARS:  # as the lineapy_home fixture, for the whole module
        mp.delenv(var, raising=False)
    mp.setenv("LINEAPY_HOME_DIR", str(home))
    mp.setenv("LINEAPY_DATABASE_URL", f"sqlite:///{home / 'db.sqlite'}")
    mp.setenv("LINEAPY_ARTIFACT_STORAGE_DIR", str(home / "values"))
    mp.chdir(root)
    reset_context()
    shell = new_shell()
    shell.run_line_magic("load_ext", "lineapy_ext")
    try:
        with capture_output():
            for cell in CELLS:
                assert shell.run_cell(cell.format(data=str(data)), store_history=True).success, cell
        saved = {n: lineapy_ext.get(n).get_value() for n in ("features", "model", "total")}
        yield SimpleNamespace(shell=shell, data=data, other=other, saved=saved, root=root)
    finally:
        shell.run_line_magic("unload_ext", "lineapy_ext")
        close_shell(shell)
        mp.undo()
        reset_context()


def magic(shell, line):
    with capture_output() as out:
        shell.run_line_magic("lineapy", line)
    return out.stdout


def run_fresh(*commands, cwd):
    """Run each ``[script, arg...]`` in order in one fresh ``python -I`` that refuses lineapy_ext; return stdout."""
    blocker = cwd / "_refuse_lineapy.py"
    blocker.write_text(_BLOCKER)
    argvs = json.dumps([[str(a) for a in command] for command in commands])
    proc = subprocess.run([sys.executable, "-I", str(blocker), argvs],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def assert_same_model(a, b, X):
    assert type(a) is type(b) and a.get_params() == b.get_params()
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# -- the analysis on slice text alone (no shell) --------------------------------------


def test_parameter_replaces_the_binding_that_was_used():
    code = "a = 1\nb = a + 1\na = 10\na = a * 2\nc = b * a\n"
    program = merge_slices([Target("c", 1, "c", code)])
    binding = resolve_parameter(program, "a")
    # c reads the binding of line 4 (line 3 only feeds line 4).
    assert binding.item.stmt.lines == {"c": 4} and not binding.has_literal
    first = resolve_parameter(merge_slices([Target("b", 1, "b", "a = 1\nb = a + 1\n")]), "a")
    assert first.has_literal and first.literal == 1
    with pytest.raises(CodegenError, match=r"^'d' cannot be a parameter: the slices do not read it; "
                                           r"variables they read: a, b$"):
        resolve_parameter(program, "d")


class _Point:
    v = 7


@pytest.mark.parametrize("code, var, param, value, default, changed", [
    ("rate = 0.1\ndef apply(x):\n    return x * rate\ny = apply(10)\n", "y", "rate", 0.5, 1.0, 5.0),
    ("k = 2\nacc = []\nfor i in range(3):\n    acc.append(i * k)\n", "acc", "k", 10, [0, 2, 4], [0, 10, 20]),
    ('s = """a\n  b"""\nt = s.upper()\n', "t", "s", "x", "A\n  B", "X"),
    ("a, b = 1, 2\nc = a + b\n", "c", "a", 10, 3, 12),
    ("n = 1\nn += 4\nr = n * 2\n", "r", "n", 100, 10, 200),
    ("class P:\n    def __init__(self, v):\n        self.v = v\np = P(3)\nw = p.v * 2\n", "w", "p", _Point(), 6, 14),
    ("data = {'a': 1}\ndata['b'] = 2\nout = sorted(data)\n", "out", "data", {"q": 0}, ["a", "b"], ["b", "q"]),
    ("def make():\n    global model\n    model = 41\nmake()\nmodel += 1\nfactor = 2\nscaled = model * factor\n",
     "scaled", "factor", 3, 84, 126),
])
def test_parameters_in_functions_loops_unpacking_and_globals(code, var, param, value, default, changed):
    f = get_function_from_targets([Target("art", 1, var, code)], [param])
    assert f()["art"] == default
    assert f(**{param: value})["art"] == changed


def test_merge_shares_common_statements_and_detects_later_changes():
    first = "import pandas as pd\nx = [1, 2]\ny = len(x)\n"
    second = "import pandas as pd\nx = [1, 2]\ny = len(x)\nx.append(3)\nz = sum(x)\n"
    targets = [Target("x_art", 1, "x", first), Target("z_art", 1, "z", second)]
    program = merge_slices(targets)
    assert [len(item.owners) for item in program] == [2, 2, 2, 1, 1]
    # x.append(3) runs after x_art's last statement: x_art cannot share z_art's run.
    assert not combinable(program, targets[0]) and combinable(program, targets[1])
    f = get_function_from_targets(targets)
    assert f() == {"x_art": [1, 2], "z_art": 6}


def test_saved_cells_order_the_merge_by_execution():
    # Session: [1] x = 1  [2] c = [0]  [3] b = x + len(c)  [4] x = 2  [5] a = x * len(c)
    a_cells = [(2, "c = [0]"), (4, "x = 2"), (5, "a = x * len(c)")]
    b_cells = [(1, "x = 1"), (2, "c = [0]"), (3, "b = x + len(c)")]

    def targets(with_cells):
        return [Target(n, 1, n, "\n\n".join(code for _, code in cells) + "\n", "s", None,
                       cells if with_cells else []) for n, cells in (("a", a_cells), ("b", b_cells))]

    ordered = targets(True)
    program = merge_slices(ordered)
    assert [item.stmt.source for item in program] == ["x = 1", "c = [0]", "b = x + len(c)", "x = 2", "a = x * len(c)"]
    assert all(combinable(program, t) for t in ordered)
    # Without the cells the alignment cannot tell where x = 1 ran: b is computed on its own.
    unordered = targets(False)
    assert not combinable(merge_slices(unordered), unordered[1])
    for group in (ordered, unordered):
        assert get_function_from_targets(group)() == {"a": 2, "b": 2}


def test_artifacts_of_one_variable_and_of_two_sessions():
    # 'raw' and 'clean' hold the same variable at two points: 'raw' is computed alone.
    raw = "import json\ndata = json.loads('[3, 1, null]')\n"
    clean = raw + "data = sorted(x for x in data if x is not None)\n"
    other = "n = 5\nsquare = n * n\n"  # saved in another session, also reads a variable n
    targets = [Target("raw", 1, "data", raw, "s1"), Target("clean", 1, "data", clean, "s1"),
               Target("square", 1, "square", other, "s2"), Target("cube", 1, "cube", "n = 2\ncube = n ** 3\n", "s3")]
    f = get_function_from_targets(targets, ["n"])
    assert f() == {"raw": [3, 1, None], "clean": [1, 3], "square": 25, "cube": 8}
    assert f(n=3) == {"raw": [3, 1, None], "clean": [1, 3], "square": 9, "cube": 27}


def test_codegen_imports_neither_ipython_nor_the_capture():
    code = ("import sys, lineapy_ext.codegen, lineapy_ext.codegen.pipeline, lineapy_ext.api; "
            "print(sorted(m for m in ('IPython', 'kernel_hooks') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def get_function_from_targets(targets, params=()):
    from lineapy_ext.codegen import load_module
    from lineapy_ext.codegen.render import render_module

    return load_module(render_module(targets, list(params)).source).run_all


# -- get_function in the session ------------------------------------------------------


@pytest.mark.slow
def test_get_function_defaults_recompute_the_saved_values_and_parameters_change_them(session):
    f = lineapy_ext.get_function(["features", "model"], input_parameters=["n_estimators", "path"])
    out = f()
    assert out["features"].equals(session.saved["features"])
    assert_same_model(out["model"], session.saved["model"], session.saved["features"])
    # One helper holds the statements both artifacts share; run_all calls it once.
    assert f.source.count("def _shared_") == 1
    run_all = f.source[f.source.index("def run_all"):]
    assert run_all.count("_shared_1(") == 1
    assert "Replaces `n_estimators = 10` (line " in f.__doc__
    # The saved cells ordered the merge (not the content alignment fallback).
    from lineapy_ext.codegen import targets_for
    from lineapy_ext.codegen.plan import _cell_counts
    from lineapy_ext.codegen.statements import parse_slice

    for t in targets_for(["features", "model"]):
        assert _cell_counts(t, parse_slice(t.code, t.name)) is not None

    changed = f(n_estimators=3, path=str(session.other))
    assert len(changed["model"].estimators_) == 3
    assert not changed["features"].equals(session.saved["features"])
    assert changed["features"].equals(pd.read_csv(session.other).drop(columns="y") * 6)


@pytest.mark.slow
def test_reassigned_and_computed_variables_as_parameters(session):
    f = get_function(["features", "total"], ["scale", "m"])
    out = f()
    assert out["total"] == session.saved["total"] == 600
    assert out["features"].equals(session.saved["features"])
    assert "`m = 100` (line" in f.__doc__ and "`scale = scale * 3` (line" in f.__doc__
    # m replaces the binding total used (m = 100), not m = 5 (read by m2) nor m = -1.
    assert f(m=2)["total"] == 12
    assert f(scale=1)["features"].equals(pd.read_csv(session.data).drop(columns="y"))
    assert list(get_function("features", "scale")(scale=1)) == ["features"]  # one name as a string


@pytest.mark.slow
def test_parameters_the_slices_do_not_read_are_one_line_errors(session):
    with pytest.raises(CodegenError) as err:
        get_function("features", ["n_estimators"])
    message = str(err.value)
    assert "\n" not in message and message.startswith("'n_estimators' cannot be a parameter")
    assert "path" in message and "scale" in message
    with pytest.raises(CodegenError, match=r"did you mean 'scale'\?"):
        get_function("features", ["scael"])
    with pytest.raises(UsageError, match=r"'nope' cannot be a parameter.*variables they read: df, m, m2"):
        magic(session.shell, "export features total --function -o x.py --param nope")
    with pytest.raises(UsageError, match=r"need --function"):
        magic(session.shell, "export features model")


# -- generated code runs without lineapy_ext ------------------------------------------


@pytest.mark.slow
def test_export_function_module_runs_in_a_fresh_python(session, tmp_path):
    out = magic(session.shell, f"export features model --function -o {tmp_path / 'mod.py'} --param n_estimators")
    assert "Wrote functions recomputing 'features', 'model'" in out
    (tmp_path / "use.py").write_text(textwrap.dedent('''
        import pickle, mod
        with open("default.pickle", "wb") as f:
            pickle.dump(mod.run_all(), f)
        with open("model5.pickle", "wb") as f:
            pickle.dump(mod.get_model(n_estimators=5), f)
    '''))
    run_fresh([tmp_path / "use.py"], cwd=tmp_path)
    values = load(tmp_path / "default.pickle")
    assert values["features"].equals(session.saved["features"])
    assert_same_model(values["model"], session.saved["model"], session.saved["features"])
    assert len(load(tmp_path / "model5.pickle").estimators_) == 5


@pytest.mark.slow
def test_script_pipeline_cli_writes_each_artifact(session, tmp_path):
    out = magic(session.shell, f"pipeline features model --to script -o {tmp_path / 'p'} --param n_estimators path")
    assert "Wrote a script pipeline" in out
    root = tmp_path / "p"
    reqs = (root / "requirements.txt").read_text()
    from importlib.metadata import version

    # The slices import pandas and scikit-learn (numpy's rng is not part of them).
    for dist in ("pandas", "scikit-learn"):
        assert f"{dist}=={version(dist)}" in reqs
    assert "ipython" not in reqs.lower() and "lineapy" not in reqs
    # Run from tmp_path: the relative --path means a file of the session's folder (WORKDIR).
    run_fresh([root / "pipeline.py"],
              [root / "pipeline.py", "--n_estimators", "4", "--artifact", "model", "--output-dir", "o2",
               "--path", session.data.name], cwd=tmp_path)
    assert load(root / "outputs" / "features.pickle").equals(session.saved["features"])
    assert_same_model(load(root / "outputs" / "model.pickle"), session.saved["model"], session.saved["features"])
    assert len(load(tmp_path / "o2" / "model.pickle").estimators_) == 4
    assert not (tmp_path / "o2" / "features.pickle").exists()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / session.data.name).write_bytes(session.other.read_bytes())
    run_fresh([root / "pipeline.py", "--workdir", "elsewhere", "--output-dir", "o3", "--path", session.data.name],
              cwd=tmp_path)
    assert load(tmp_path / "o3" / "features.pickle").equals(pd.read_csv(session.other).drop(columns="y") * 6)
    with pytest.raises(UsageError, match="already has pipeline.py"):
        magic(session.shell, f"pipeline features --to script -o {root}")


@pytest.mark.slow
def test_airflow_dag_compiles_and_its_task_functions_run(session, tmp_path):
    root = tmp_path / "a"
    lineapy_ext.to_pipeline(["features", "model"], "airflow", root, ["n_estimators", "path"])
    source = (root / "dag.py").read_text()
    tree = ast.parse(source)
    compile(tree, "dag.py", "exec")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "run_task"]
    assert sorted(c.args[0].value for c in calls) == ["features", "model"]
    tasks = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
             and any("task" in ast.unparse(d) for d in n.decorator_list)]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])}
    assert len(tasks) == 2 and "lineapy_ext" not in imported and "xcom_push" not in source
    assert "task_0_features_ >> task_1_model_" in source  # shared code: model reads what features wrote
    # What the tasks call, as Airflow would (params incl. data_dir, run_id).  The
    # data file is gone before the model task: it must read the shared
    # features from the file the features task wrote.
    copy = tmp_path / "copy.csv"
    copy.write_bytes(session.data.read_bytes())
    (tmp_path / "tasks.py").write_text(textwrap.dedent(f'''
        import os, pipeline
        params = {{"data_dir": {str(tmp_path / "data")!r}, "n_estimators": 7, "path": {str(copy)!r}}}
        for name in ("features", "model"):
            p = dict(params)
            print(pipeline.run_task(name, p.pop("data_dir"), p, "manual__1"))
            os.remove(params["path"]) if os.path.exists(params["path"]) else None
    '''))
    (tmp_path / "pipeline.py").write_text((root / "pipeline.py").read_text())
    printed = run_fresh([tmp_path / "tasks.py"], cwd=tmp_path).split()
    assert printed == [str(tmp_path / "data" / "features.pickle"), str(tmp_path / "data" / "model.pickle")]
    assert (tmp_path / "data" / ".shared" / "manual__1" / "_shared_1.pickle").exists()
    assert load(tmp_path / "data" / "features.pickle").equals(session.saved["features"])
    assert len(load(tmp_path / "data" / "model.pickle").estimators_) == 7
