"""The MLflow registry as a way in: aliases, registered versions, stages and models:/ URIs.

Real MLflow with one SQLite tracking database per module (creating its
schema takes seconds); every test has its own lineapy home, working
directory and registered model names, and moves aliases or deletes things
with plain MLflow calls the way a teammate would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from IPython.core.error import UsageError

pytest.importorskip("mlflow")

import lineapy_ext
from lineapy_ext.backends import mlflow as mlflow_backend
from lineapy_ext.exceptions import BackendError, LineaPyWarning, SliceError, ValueGoneError

pytestmark = pytest.mark.slow

CELLS = (
    "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
    "X = np.random.RandomState(3).rand(40, 3)\ny = (X.sum(axis=1) > 1.5).astype(int)"
)


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    """A SQLite MLflow tracking URI shared by the module's tests."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-registry') / 'mlflow.db'}"


@pytest.fixture
def shell(ipython, mlflow_db, tmp_path, monkeypatch):
    """A real shell with the extension, pointed at the module's MLflow; registry answers never reused."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mlflow_backend, "REGISTRY_TTL", 0.0)
    ipython.run_line_magic("config", f"LineaPy.mlflow_tracking_uri = {mlflow_db!r}")
    assert ipython.run_cell(CELLS).success
    return ipython


@pytest.fixture
def client(mlflow_db):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=mlflow_db, registry_uri=mlflow_db)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def fit_and_save(shell, c: float, line: str) -> None:
    assert shell.run_cell(f"clf = LogisticRegression(C={c}).fit(X, y)").success
    shell.run_line_magic("lineapy", line)


def test_alias_saved_resolved_and_moved_by_plain_mlflow(shell, client, capsys, monkeypatch):
    churn = unique("churn")
    fit_and_save(shell, 0.01, f"save clf churn_model --registered_model_name {churn} --alias champion")
    fit_and_save(shell, 10.0, f"save clf churn_model --registered_model_name {churn}")
    assert "Saved 'churn_model' version 2 (backend mlflow)" in capsys.readouterr().out
    assert client.get_model_version_by_alias(churn, "champion").version in (1, "1")
    X = shell.user_ns["X"]
    first = lineapy_ext.get("churn_model", 1).get_value().predict_proba(X)
    second = lineapy_ext.get("churn_model", 2).get_value().predict_proba(X)
    assert not np.allclose(first, second)

    shell.run_line_magic("lineapy", "get churn_model --alias champion --as champ")
    said = capsys.readouterr().out
    assert "Loaded 'churn_model' version 1 into 'champ'" in said
    assert f"registered model '{churn}' version 1 @champion" in said
    np.testing.assert_allclose(shell.user_ns["champ"].predict_proba(X), first)
    assert lineapy_ext.get("churn_model", alias="champion").version == 1

    # A teammate moves the alias with plain MLflow: the next get follows it.
    client.set_registered_model_alias(churn, "champion", "2")
    assert lineapy_ext.get("churn_model", alias="champion").version == 2
    shell.run_line_magic("lineapy", "get churn_model --alias champion --as champ")
    np.testing.assert_allclose(shell.user_ns["champ"].predict_proba(X), second)
    assert lineapy_ext.get("churn_model", registered_version=1).version == 1
    shell.run_line_magic("lineapy", "get churn_model --registered-version 1 --as old")
    np.testing.assert_allclose(shell.user_ns["old"].predict_proba(X), first)

    # Metadata and list show the registry as it is now, not at save time.
    meta1 = lineapy_ext.get("churn_model", 1).get_metadata()
    meta2 = lineapy_ext.get("churn_model", 2).get_metadata()
    assert meta1["aliases_at_save"] == ["champion"] and meta1["registered_model_aliases"] == []
    assert meta2["registered_model_aliases"] == ["champion"] and meta2["registry_status"] == "registered"
    table = repr(shell.run_line_magic("lineapy", "list churn_model"))
    assert "registry" in table.splitlines()[0] and f"{churn} v2 @champion" in table

    # Listings reuse registry answers briefly; a get always asks afresh (and refreshes them).
    monkeypatch.setattr(mlflow_backend, "REGISTRY_TTL", 60.0)
    client.set_registered_model_alias(churn, "champion", "1")
    assert lineapy_ext.get("churn_model", 2).get_metadata()["registered_model_aliases"] == ["champion"]  # cached
    assert lineapy_ext.get("churn_model", alias="champion").version == 1
    assert lineapy_ext.get("churn_model", 2).get_metadata()["registered_model_aliases"] == []
    client.set_registered_model_alias(churn, "champion", "2")
    mlflow_backend.forget_registry_state(churn)

    # The slice comes with the version the alias selected.
    assert "LogisticRegression(C=10.0)" in lineapy_ext.get("churn_model", alias="champion").get_code()


def test_legacy_stage_resolves_to_latest_version_in_it_with_a_deprecation_note(shell, client, capsys):
    churn = unique("staged")
    for c in (0.01, 1.0, 10.0):
        fit_and_save(shell, c, f"save clf staged_model --registered_model_name {churn}")
    with pytest.warns(FutureWarning):  # MLflow's own deprecation of stages
        client.transition_model_version_stage(churn, "1", "Production")
        client.transition_model_version_stage(churn, "2", "Production")
    with pytest.warns(LineaPyWarning, match="stages are deprecated in MLflow 3.*aliases"):
        shell.run_line_magic("lineapy", "get staged_model --stage production")
    assert "Loaded 'staged_model' version 2" in capsys.readouterr().out
    with pytest.warns(LineaPyWarning), pytest.raises(UsageError, match="no version of registered model .* is in stage 'Staging': stages are 1: Production, 2: Production, 3: None"):
        shell.run_line_magic("lineapy", "get staged_model --stage Staging")


def test_models_uris_of_lineapy_and_of_others(shell, client, mlflow_db, capsys):
    import mlflow
    from sklearn.tree import DecisionTreeClassifier

    ours = unique("ours")
    fit_and_save(shell, 1.0, f"save clf our_model --registered_model_name {ours} --alias prod")
    X, y = shell.user_ns["X"], shell.user_ns["y"]
    theirs = unique("theirs")
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)
    mlflow.set_tracking_uri(mlflow_db)
    try:
        mlflow.sklearn.log_model(tree, name="tree", registered_model_name=theirs, pip_requirements=["scikit-learn"],
                                 serialization_format="cloudpickle")
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    client.set_registered_model_alias(theirs, "prod", "1")
    capsys.readouterr()

    shell.run_line_magic("lineapy", f"get models:/{theirs}@prod")
    said = capsys.readouterr().out
    assert f"Loaded models:/{theirs}@prod (registered model '{theirs}' version 1 @prod, sklearn flavor) into '{theirs}'" in said
    assert "no slice is known" in said
    np.testing.assert_array_equal(shell.user_ns[theirs].predict(X), tree.predict(X))
    foreign = lineapy_ext.get(f"models:/{theirs}/1")
    assert foreign.artifact is None and foreign.registered_version == 1
    with pytest.raises(SliceError, match=f"no slice is known for models:/{theirs}/1: it was not logged by lineapy_ext"):
        foreign.get_code()

    shell.run_line_magic("lineapy", f"get models:/{ours}/1 --as by_uri")
    said = capsys.readouterr().out
    assert "logged by lineapy artifact 'our_model' version 1: %lineapy code our_model --version 1 shows its slice" in said
    np.testing.assert_allclose(shell.user_ns["by_uri"].predict_proba(X), shell.user_ns["clf"].predict_proba(X))
    model = lineapy_ext.get(f"models:/{ours}@prod")
    assert model.artifact.name == "our_model" and model.registered_version == 1 and model.aliases == ("prod",)
    assert "LogisticRegression(C=1.0)" in model.get_code()
    assert model.get_metadata()["var_names"] == ["clf"] and model.get_metadata()["artifact_version"] == 1


def test_when_the_registry_and_the_store_disagree(shell, client, capsys):
    churn = unique("gone")
    fit_and_save(shell, 0.01, f"save clf gone_model --registered_model_name {churn} --alias champion")
    fit_and_save(shell, 10.0, f"save clf gone_model --registered_model_name {churn}")
    fit_and_save(shell, 1.0, "save clf unregistered_model")

    def error(line):
        with pytest.raises(UsageError) as e:
            shell.run_line_magic("lineapy", line)
        assert "\n" not in str(e.value), str(e.value)
        return str(e.value)

    assert f"registered model '{churn}' has no alias 'nope': its aliases are 'champion' (-> version 1)" in error(
        "get gone_model --alias nope")
    said = error("get models:/no_such_model@champion")
    assert "no registered model 'no_such_model'" in said and f"'{churn}'" in said
    assert "has no version 9 (deleted in MLflow?): existing versions are 1, 2" in error(
        "get gone_model --registered-version 9")
    assert "'unregistered_model' was never registered in MLflow" in error("get unregistered_model --alias champion")
    assert "give only one of version / alias" in error("get gone_model --version 1 --alias champion")
    assert "alias 'champion' needs a registered model: add --registered_model_name" in error(
        "save clf other --alias champion")
    with pytest.raises(KeyError):
        lineapy_ext.get("other")  # nothing was logged or recorded

    # The registered version is deleted in MLflow: lineapy still has the artifact that logged it.
    client.delete_model_version(churn, "1")
    said = error("get gone_model --registered-version 1")
    assert f"version 1 of registered model '{churn}' was deleted in MLflow, but lineapy still has 'gone_model' version 1" in said
    meta = lineapy_ext.get("gone_model", 1).get_metadata()
    assert meta["registry_status"] == "version deleted in MLflow"
    assert f"{churn} v2" in repr(shell.run_line_magic("lineapy", "list gone_model"))

    # The logged model is deleted in MLflow: the row stays, get shows the slice that recomputes it.
    backend = mlflow_backend.MLflowBackend.from_options(lineapy_ext.options)
    assert backend.exists(meta)
    client.delete_logged_model(meta["model_id"])
    assert not backend.exists(meta)
    capsys.readouterr()
    said = error("get gone_model --version 1")
    out = capsys.readouterr().out
    assert "'gone_model' version 1: the value is gone from MLflow: its logged model" in said
    assert "%lineapy code gone_model --version 1" in said
    assert "The slice that recomputes it:" in out and "LogisticRegression(C=0.01)" in out
    with pytest.raises(ValueGoneError) as e:
        lineapy_ext.get("gone_model", 1).get_value()
    assert "LogisticRegression(C=0.01)" in e.value.slice_code

    # Its files are removed from the artifact store.
    logged = client.get_logged_model(lineapy_ext.get("gone_model", 2).get_metadata()["model_id"])
    shutil.rmtree(logged.artifact_location.removeprefix("file://"))
    assert "the value is gone from MLflow: its files are gone from" in error("get gone_model --version 2")


def test_unreachable_registry_fails_fast(lineapy_home, mlflow_db, tmp_path, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    lineapy_ext.options.set("mlflow_tracking_uri", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(BackendError, match="cannot reach the MLflow registry at http://127.0.0.1:"):
        lineapy_ext.get("models:/churn@champion")
    assert time.monotonic() - start < 15
    with pytest.raises(BackendError, match="is not a registry model URI"):
        lineapy_ext.get("models:/a/b/c")


def test_list_without_mlflow_artifacts_does_not_import_mlflow(tmp_path):
    code = (
        "import sys\nfrom tests.shells import new_shell\n"
        "shell = new_shell()\nshell.run_line_magic('load_ext', 'lineapy_ext')\n"
        f"shell.run_line_magic('config', \"LineaPy.mlflow_tracking_uri = 'sqlite:///{tmp_path}/m.db'\")\n"
        "shell.run_cell('x = {\"a\": 1}')\nshell.run_line_magic('lineapy', 'save x')\n"
        "print(repr(shell.run_line_magic('lineapy', 'list')))\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {**os.environ, "LINEAPY_HOME_DIR": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for var in ("LINEAPY_DATABASE_URL", "LINEAPY_ARTIFACT_STORAGE_DIR"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "False" and "registry" not in proc.stdout and any(l.startswith("x ") for l in lines)
