"""The mlflow backend against real MLflow: SQLite tracking, PostgreSQL + S3 (moto).

One MLflow SQLite database is shared by the module (creating its schema
takes seconds); every test has its own lineapy home and registered names of
its own.  MLflow writes artifacts of SQLite-tracked experiments under the
working directory, so each test runs in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow")

# Every test here imports MLflow (seconds) or starts a tracking store.
pytestmark = pytest.mark.slow

import lineapy_ext
from lineapy_ext.backends.mlflow import flavor_of, pip_requirements_for
from lineapy_ext.exceptions import BackendError, LineaPyWarning


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    """A SQLite MLflow tracking URI shared by the module's tests."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return f"sqlite:///{path}"


@pytest.fixture
def tracking(lineapy_home, mlflow_db, tmp_path, monkeypatch):
    """lineapy_ext configured with the module's MLflow tracking URI; returns the URI."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    lineapy_ext.options.set("mlflow_tracking_uri", mlflow_db)
    return mlflow_db


@contextlib.contextmanager
def plain_mlflow(tracking_uri):
    """Use MLflow the way a user would (global tracking URI), then unset it."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)


# -- models of each flavor (tiny data: fitting must stay cheap) ---------------------


def _xy(n=40):
    rng = np.random.RandomState(0)
    X = rng.rand(n, 3)
    return X, (X[:, 0] + 0.3 * X[:, 1] > 0.6).astype(int)


def sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    return model, X, lambda m: m.predict_proba(X)


def xgboost_sklearn_api():
    import xgboost

    X, y = _xy()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    return model, X, lambda m: m.predict_proba(X)


def xgboost_booster():
    import xgboost

    X, y = _xy()
    booster = xgboost.train({"max_depth": 2, "nthread": 1}, xgboost.DMatrix(X, label=y), num_boost_round=5)
    return booster, X, lambda m: m.predict(xgboost.DMatrix(X))


def statsmodels_results():
    import statsmodels.api as sm

    X, y = _xy()
    exog = sm.add_constant(X)
    results = sm.OLS(y.astype(float), exog).fit()
    return results, exog, lambda m: np.asarray(m.predict(exog))


def prophet_model():
    import logging

    from prophet import Prophet

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    df = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=30, freq="D")})
    df["y"] = np.arange(30) * 0.5 + np.sin(np.arange(30))
    model = Prophet(daily_seasonality=False, weekly_seasonality=False, yearly_seasonality=False,
                    uncertainty_samples=0).fit(df)
    future = model.make_future_dataframe(periods=3)
    return model, future, lambda m: m.predict(future)["yhat"].to_numpy()


FLAVOR_CASES = {
    "sklearn-pipeline": ("sklearn", sklearn_pipeline),
    "xgboost-sklearn-api": ("xgboost", xgboost_sklearn_api),
    "xgboost-booster": ("xgboost", xgboost_booster),
    "statsmodels": ("statsmodels", statsmodels_results),
    "prophet": ("prophet", prophet_model),
}


@pytest.mark.parametrize("case", list(FLAVOR_CASES))
def test_each_flavor_round_trips_through_lineapy_and_plain_mlflow(tracking, case):
    import importlib

    flavor, make = FLAVOR_CASES[case]
    model, _, predict = make()
    assert flavor_of(model) == flavor
    expected = predict(model)

    art = lineapy_ext.save(model, f"m_{case.replace('-', '_')}")
    meta = art.get_metadata()
    assert art.storage_backend == "mlflow"
    assert meta["flavor"] == flavor and meta["tracking_uri"] == tracking
    assert meta["model_uri"] == meta["location"] and meta["model_uri"].startswith("models:/m-")
    assert meta["pip_requirements_source"] == "installed versions"

    loaded = lineapy_ext.get(art.name).get_value()
    assert type(loaded) is type(model)
    np.testing.assert_allclose(predict(loaded), expected)

    # The same model through MLflow alone, and the requirements we pinned.
    with plain_mlflow(tracking) as mlflow:
        plain = importlib.import_module(f"mlflow.{flavor}").load_model(meta["model_uri"])
        requirements = open(mlflow.pyfunc.get_model_dependencies(meta["model_uri"])).read()
    np.testing.assert_allclose(predict(plain), expected)
    top = {"sklearn": "scikit-learn", "xgboost": "xgboost", "statsmodels": "statsmodels", "prophet": "prophet"}
    assert top[flavor] in requirements and "==" in requirements, requirements


def test_pinned_requirements_name_installed_distributions():
    from importlib.metadata import version

    import xgboost  # noqa: F401  (the distribution is xgboost-cpu here)

    reqs = pip_requirements_for("xgboost", {"numpy._core.multiarray", "collections", "__main__"})
    names = {r.split("==")[0].lower(): r.split("==")[1] for r in reqs}
    assert names["numpy"] == version("numpy")
    assert any(n.startswith("xgboost") for n in names) and "collections" not in names and "__main__" not in names


# -- which backend a save uses: the spec's table, row by row ---------------------------

TABLE = [
    # tracking URI set?, default_ml_models_storage_backend, save(), "mlflow", "lineapy"
    (True, None, "mlflow", "mlflow", "lineapy"),
    (True, "mlflow", "mlflow", "mlflow", "lineapy"),
    (True, "lineapy", "lineapy", "mlflow", "lineapy"),
    (False, "mlflow", "lineapy", BackendError, "lineapy"),
    (False, None, "lineapy", BackendError, "lineapy"),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda r: f"uri={'set' if r[0] else 'unset'}-default={r[1]}")
def test_backend_table(lineapy_home, mlflow_db, tmp_path, monkeypatch, row):
    uri_set, default, plain, as_mlflow, as_lineapy = row
    monkeypatch.chdir(tmp_path)
    if uri_set:
        lineapy_ext.options.set("mlflow_tracking_uri", mlflow_db)
    if default:
        lineapy_ext.options.set("default_ml_models_storage_backend", default)
    model, X, predict = sklearn_pipeline()
    expected = predict(model)
    for requested, wanted in ((None, plain), ("mlflow", as_mlflow), ("lineapy", as_lineapy)):
        if wanted is BackendError:
            with pytest.raises(BackendError, match="needs an MLflow tracking URI.*mlflow_tracking_uri"):
                lineapy_ext.save(model, "table_model", storage_backend=requested)
            continue
        art = lineapy_ext.save(model, "table_model", storage_backend=requested)
        assert art.storage_backend == wanted, requested
        assert ("model_uri" in art.get_metadata()) == (wanted == "mlflow")
        np.testing.assert_allclose(predict(lineapy_ext.get("table_model", art.version).get_value()), expected)


def test_values_mlflow_cannot_store_fall_back_to_lineapy(tracking):
    data = {"a": [1, 2], "b": "text"}
    frame = pd.DataFrame({"x": [1.5, 2.5], "y": ["u", "v"]})
    # Under the MLflow default, non-models never reach MLflow.
    assert lineapy_ext.save(data, "plain_dict").storage_backend == "lineapy"
    assert lineapy_ext.save(frame, "plain_frame").storage_backend == "lineapy"
    # Asked for explicitly, MLflow hands them on with a note.
    with pytest.warns(LineaPyWarning, match="MLflow has no flavor for DataFrame"):
        art = lineapy_ext.save(frame, "forced_frame", storage_backend="mlflow")
    assert art.storage_backend == "lineapy"
    assert art.get_metadata()["fallback_from"] == "mlflow"
    pd.testing.assert_frame_equal(lineapy_ext.get("forced_frame").get_value(), frame)
    assert lineapy_ext.get("plain_dict").get_value() == data


def test_models_using_notebook_classes_still_save(ipython, mlflow_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ipython.run_line_magic("config", f"LineaPy.mlflow_tracking_uri = {mlflow_db!r}")
    cells = [
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "import xgboost",
        "class Doubler(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return np.asarray(X) * 2\n"
        "class MyXGB(xgboost.XGBClassifier):\n    pass",
        "X = np.random.RandomState(1).rand(30, 2)\ny = (X[:, 0] > 0.5).astype(int)\n"
        "pipe = make_pipeline(Doubler(), LogisticRegression()).fit(X, y)\n"
        "booster = MyXGB(n_estimators=3, n_jobs=1).fit(X, y)",
    ]
    for cell in cells:
        assert ipython.run_cell(cell).success
    with pytest.warns(LineaPyWarning) as notes:
        ipython.run_line_magic("lineapy", "save pipe")
        ipython.run_line_magic("lineapy", "save booster")
    texts = " | ".join(str(w.message) for w in notes)
    assert "cloudpickle" in texts and "__main__.Doubler" in texts and "__main__.MyXGB" in texts

    pipe = lineapy_ext.get("pipe")
    meta = pipe.get_metadata()
    assert pipe.storage_backend == "mlflow" and meta["serialization_format"] == "cloudpickle"
    assert lineapy_ext.get("booster").storage_backend == "lineapy"
    X = ipython.user_ns["X"]
    np.testing.assert_allclose(pipe.get_value().predict_proba(X), ipython.user_ns["pipe"].predict_proba(X))

    # A fresh process without the notebook's classes loads it with plain MLflow.
    code = (
        "import json, sys, numpy as np, mlflow, mlflow.sklearn\n"
        f"mlflow.set_tracking_uri({mlflow_db!r})\n"
        f"m = mlflow.sklearn.load_model({meta['model_uri']!r})\n"
        "print(json.dumps(m.predict_proba(np.array(json.loads(sys.argv[1]))).tolist()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(X.tolist())], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(json.loads(proc.stdout.splitlines()[-1]), ipython.user_ns["pipe"].predict_proba(X))


def test_model_skops_refuses_is_logged_with_cloudpickle(tracking):
    import operator

    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = _xy()
    # operator.neg is importable (no session code) but not on skops' trusted list.
    model = make_pipeline(FunctionTransformer(operator.neg), LinearRegression()).fit(X, y)
    with pytest.warns(LineaPyWarning, match="skops could not hold the model"):
        art = lineapy_ext.save(model, "negated")
    assert art.get_metadata()["serialization_format"] == "cloudpickle"
    np.testing.assert_allclose(lineapy_ext.get("negated").get_value().predict(X), model.predict(X))


def test_get_version_and_registry_agree(ipython, mlflow_db, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ipython.run_line_magic("config", f"LineaPy.mlflow_tracking_uri = {mlflow_db!r}")
    ipython.run_cell(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "X = np.random.RandomState(2).rand(40, 3)\ny = (X.sum(axis=1) > 1.5).astype(int)"
    )
    for c in (0.01, 10.0):  # two versions that predict differently
        assert ipython.run_cell(f"clf = LogisticRegression(C={c}).fit(X, y)").success
        ipython.run_line_magic("lineapy", "save clf --registered_model_name clf")
    out = capsys.readouterr().out
    assert "Saved 'clf' version 2 (backend mlflow) -> models:/m-" in out

    X = ipython.user_ns["X"]
    first = ipython.run_line_magic("lineapy", "get clf --version 1 --as first")
    meta = lineapy_ext.get("clf", 1).get_metadata()
    version = meta["registered_model_version"]
    assert meta["registered_model_uri"] == f"models:/clf/{version}"
    with plain_mlflow(mlflow_db) as mlflow:
        mlflow.MlflowClient().set_registered_model_alias("clf", "champion", str(version))
        by_version = mlflow.sklearn.load_model(f"models:/clf/{version}")
        by_alias = mlflow.sklearn.load_model("models:/clf@champion")
        latest = mlflow.sklearn.load_model(f"models:/clf/{version + 1}")
    expected = first.predict_proba(X)
    np.testing.assert_allclose(by_version.predict_proba(X), expected)
    np.testing.assert_allclose(by_alias.predict_proba(X), expected)
    assert not np.allclose(latest.predict_proba(X), expected)
    np.testing.assert_allclose(lineapy_ext.get("clf").get_value().predict_proba(X), latest.predict_proba(X))


def test_delete_forgets_the_row_and_says_what_mlflow_keeps(tracking, capsys):
    import mlflow

    model, X, predict = sklearn_pipeline()
    mlflow.set_tracking_uri("file:///nonexistent-user-choice")  # the user's own global MLflow state
    try:
        art = lineapy_ext.save(model, "to_delete", registered_model_name="to_delete")
        assert mlflow.get_tracking_uri() == "file:///nonexistent-user-choice"
        assert os.environ["MLFLOW_TRACKING_URI"] == "file:///nonexistent-user-choice"
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    meta = art.get_metadata()
    capsys.readouterr()
    assert lineapy_ext.delete("to_delete", "all") == [1]
    said = capsys.readouterr().out
    assert meta["model_uri"] in said and "registered model 'to_delete' version 1" in said
    assert "delete_model_version('to_delete', '1')" in said and tracking in said
    with pytest.raises(KeyError, match="to_delete"):
        lineapy_ext.get("to_delete")
    with plain_mlflow(tracking):
        np.testing.assert_allclose(predict(mlflow.sklearn.load_model("models:/to_delete/1")), predict(model))


def test_errors_without_mlflow_or_tracking_uri(lineapy_home, mlflow_db, monkeypatch):
    model, _, _ = sklearn_pipeline()
    with pytest.raises(BackendError, match="needs an MLflow tracking URI"):
        lineapy_ext.save(model, "m", storage_backend="mlflow")
    lineapy_ext.options.set("mlflow_tracking_uri", mlflow_db)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    with pytest.raises(BackendError, match=r"MLflow is not installed.*pip install 'lineapy-ext\[mlflow\]'") as e:
        lineapy_ext.save(model, "m")
    assert isinstance(e.value.__cause__, ImportError)
    assert lineapy_ext.artifact_store() == []


def test_import_and_config_do_not_import_mlflow(tmp_path):
    code = (
        "import sys, lineapy_ext\n"
        "from lineapy_ext.backends import choose_backend\n"
        "o = lineapy_ext.options\n"
        f"o.set('mlflow_tracking_uri', 'sqlite:///{tmp_path}/m.db')\n"
        f"o.set('mlflow_registry_uri', 'sqlite:///{tmp_path}/r.db')\n"
        "o.set('default_ml_models_storage_backend', 'mlflow')\n"
        "assert choose_backend({'a': 1}, None, o) == 'lineapy'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'sklearn', 'xgboost', 'prophet', 'statsmodels')))\n"
    )
    env = {**os.environ, "LINEAPY_HOME_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- PostgreSQL tracking, artifacts in S3 (a loopback moto server), no tracking server --------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """A moto S3 server on loopback with bucket ``models``; MLflow and boto3 pointed at it."""
    pytest.importorskip("moto")
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="models")
    try:
        yield s3
    finally:
        server.stop()


@pytest.mark.postgres
def test_postgres_tracking_with_s3_artifacts(lineapy_home, postgres_url, s3_server, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # With a password (the test server trusts loopback, so any password works):
    # it must stay out of the metadata.
    tracking = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    if not re.match(r"^[^:]+://[^/@:]*:[^/@]*@", tracking):
        tracking = re.sub(r"^([^:]+://)([^/@]+)@", r"\1\2:s3cret@", tracking)
    secret = re.match(r"^[^:]+://[^/@:]*:([^/@]*)@", tracking).group(1)
    experiment = mlflow.MlflowClient(tracking).create_experiment("team", artifact_location="s3://models/team")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)  # how a user picks the experiment
    lineapy_ext.options.set("mlflow_tracking_uri", tracking)

    model, X, predict = xgboost_sklearn_api()
    art = lineapy_ext.save(model, "pg_model", registered_model_name="pg_model")
    meta = art.get_metadata()
    assert meta["tracking_uri"] == tracking.replace(f":{secret}@", ":***@") and meta["registered_model_version"] == 1
    assert secret not in json.dumps(meta)
    keys = [o["Key"] for o in s3_server.list_objects_v2(Bucket="models", Prefix="team/").get("Contents", [])]
    assert any(k.endswith("MLmodel") for k in keys), keys
    assert not any(tmp_path.rglob("MLmodel"))  # nothing went to the local directory

    np.testing.assert_allclose(predict(lineapy_ext.get("pg_model").get_value()), predict(model))
    lineapy_ext.options.set("mlflow_tracking_uri", None)  # the recorded URI lacks the password now
    with pytest.raises(BackendError, match="recorded without its password: set LineaPy.mlflow_tracking_uri"):
        lineapy_ext.get("pg_model").get_value()
    with plain_mlflow(tracking):
        np.testing.assert_allclose(predict(mlflow.xgboost.load_model("models:/pg_model/1")), predict(model))
