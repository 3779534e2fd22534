"""Generated pipelines run on the real engines: ``dvc repro`` and ``airflow dags test``.

The artifacts come from a real shell session (the ``session`` fixture of
``test_codegen``); each test writes a pipeline from them and runs the engine
in a subprocess, then compares the files it wrote with the saved values.

- DVC (installed with the ``test`` extra) runs in a temporary git repository
  (``git init``, ``dvc init``).  The stages' ``python pipeline.py`` resolves
  to a ``python`` that refuses to import lineapy_ext (:func:`tests.engines.refusing_python`).
- Airflow runs in a virtual environment of its own, built by the test on
  first use and cached outside the repository (:func:`tests.engines.airflow_python`):
  lineapy_ext is not installed there at all.  Its metadata database is a
  SQLite file in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

import lineapy_ext
from tests.engines import AIRFLOW_VERSION, airflow_python, clean_env, install_requirements, refusing_python
from tests.lineapy_ext.test_codegen import assert_same_model, load, magic, session  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def _run(argv, cwd, env, timeout=600):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def test_dvc_repro_recomputes_the_saved_values_and_reruns_what_a_changed_parameter_reads(session, tmp_path):
    root = tmp_path / "repo"
    lineapy_ext.to_pipeline(["features", "model"], "dvc", root, ["n_estimators", "path"])
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["features", "model"]
    assert yaml.safe_load((root / "params.yaml").read_text()) == {"n_estimators": 10, "path": str(session.data)}
    assert stages["model"]["params"] == ["n_estimators", "path"] and stages["features"]["params"] == ["path"]
    # A relative path means a file of the folder the pipeline was written from
    # (the session's), not of the folder DVC runs the stages in.
    params = root / "params.yaml"
    params.write_text(params.read_text().replace(json.dumps(str(session.data)), json.dumps(session.data.name)))
    assert os.getcwd() == str(session.data.parent) != str(root)

    env = clean_env(PATH=f"{refusing_python(tmp_path / 'shim')}{os.pathsep}{os.environ['PATH']}",
                    DVC_NO_ANALYTICS=1, DVC_SITE_CACHE_DIR=tmp_path / "dvc_site",
                    DVC_GLOBAL_CONFIG_DIR=tmp_path / "dvc_global", DVC_SYSTEM_CONFIG_DIR=tmp_path / "dvc_system")

    def dvc(*args):
        return _run([sys.executable, "-m", "dvc", *args], root, env)

    _run(["git", "init", "-q"], root, env)
    dvc("init", "-q")
    first = dvc("repro")
    assert "Running stage 'features'" in first and "Running stage 'model'" in first, first
    assert load(root / "outputs" / "features.pickle").equals(session.saved["features"])
    assert_same_model(load(root / "outputs" / "model.pickle"), session.saved["model"], session.saved["features"])

    again = dvc("repro")
    assert "Running stage" not in again and "Data and pipelines are up to date." in again, again

    params.write_text(params.read_text().replace("n_estimators: 10\n", "n_estimators: 2\n"))
    changed = dvc("repro")
    # Only the stage reading n_estimators runs again.
    assert "Stage 'features' didn't change, skipping" in changed and "Running stage 'model'" in changed, changed
    model = load(root / "outputs" / "model.pickle")
    assert len(model.estimators_) == 2 and len(session.saved["model"].estimators_) == 10
    assert load(root / "outputs" / "features.pickle").equals(session.saved["features"])
    assert "n_estimators: 2" in (root / "dvc.lock").read_text()


@pytest.fixture(scope="module")
def airflow():
    """The cached Airflow venv's interpreter (built here on first use, which takes a minute or more)."""
    return airflow_python()


@pytest.mark.timeout(1800)  # the first run builds the Airflow venv (~1 min here, more on a slow index)
def test_airflow_dags_test_runs_the_generated_dag_and_passes_only_paths(session, airflow, tmp_path):
    root = tmp_path / "dags"
    out = magic(session.shell, f"pipeline features model --to airflow -o {root} --param n_estimators path")
    assert out.startswith(f"Wrote an Airflow pipeline for 'features', 'model' to {root}: "), out
    install_requirements(airflow, root / "requirements.txt")
    home = tmp_path / "airflow_home"
    home.mkdir()
    env = clean_env(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=root, AIRFLOW__CORE__LOAD_EXAMPLES="False",
                    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}")

    def airflow_cli(*args, **extra):
        return _run([airflow, "-m", "airflow", *args], tmp_path, {**env, **extra})

    assert _run([airflow, "-c", "import importlib.metadata as m, importlib.util as u; "
                 "print(m.version('apache-airflow'), u.find_spec('lineapy_ext'))"], tmp_path, env).split() == \
        [AIRFLOW_VERSION, "None"]
    airflow_cli("db", "migrate")
    # Defaults: the data folder from $LINEAPY_PIPELINE_DATA_DIR, the session's parameter values.
    out = airflow_cli("dags", "test", "lineapy_features_model", LINEAPY_PIPELINE_DATA_DIR=str(tmp_path / "data1"))
    assert "state=success" in out, out[-4000:]
    assert load(tmp_path / "data1" / "features.pickle").equals(session.saved["features"])
    assert_same_model(load(tmp_path / "data1" / "model.pickle"), session.saved["model"], session.saved["features"])
    # DAG params set by the run's conf: another data folder, another n_estimators.
    # A relative path is a file of the folder the pipeline was written from (the session's).
    conf = {"data_dir": str(tmp_path / "data2"), "n_estimators": 3, "path": session.data.name}
    out = airflow_cli("dags", "test", "lineapy_features_model", "--conf", json.dumps(conf))
    assert "state=success" in out, out[-4000:]
    assert len(load(tmp_path / "data2" / "model.pickle").estimators_) == 3
    assert load(tmp_path / "data2" / "features.pickle").equals(session.saved["features"])

    with sqlite3.connect(home / "airflow.db") as db:
        runs = db.execute("SELECT state FROM dag_run").fetchall()
        xcoms = db.execute("SELECT task_id, value FROM xcom ORDER BY timestamp").fetchall()
    assert runs == [("success",), ("success",)]
    # What tasks hand each other is the path of a file, never a pickled value.
    assert [(task, json.loads(value)) for task, value in xcoms] == [
        (task, str(tmp_path / folder / f"{task}.pickle")) for folder in ("data1", "data2") for task in ("features", "model")]
    # The shared code ran once per run: the model task read what the features task wrote.
    assert len(list((tmp_path / "data2" / ".shared").glob("*/_shared_1.pickle"))) == 1
