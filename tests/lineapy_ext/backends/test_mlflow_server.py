"""The mlflow backend through a real ``mlflow server`` on loopback (HTTP tracking, served artifacts)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("mlflow")

import lineapy_ext
from lineapy_ext.exceptions import LineaPyWarning

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """Start a lean ``mlflow server`` (one worker, no job execution); yield (URL, artifacts dir, stop()); stop it."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "served-artifacts")],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        # Its own process group: the server starts uvicorn as a child, and
        # stopping the group stops both.
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer within 120 s")
            time.sleep(0.5)
        yield url, tmp_path / "served-artifacts", lambda: _stop(proc)
    finally:
        _stop(proc)
        log.close()


def _stop(proc) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue


def test_save_get_and_registry_through_a_tracking_server(ipython, mlflow_server, tmp_path, monkeypatch, capsys):
    import mlflow.sklearn
    from IPython.core.error import UsageError
    from sklearn.linear_model import LogisticRegression

    from lineapy_ext.backends import mlflow as mlflow_backend

    url, artifacts, stop_server = mlflow_server
    work = tmp_path / "client"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    lineapy_ext.options.set("mlflow_tracking_uri", url)

    X = np.random.RandomState(3).rand(30, 2)
    model = LogisticRegression().fit(X, (X[:, 1] > 0.4).astype(int))
    with pytest.warns(LineaPyWarning, match="no variable holds this value"):  # saved from test code, not a cell
        art = lineapy_ext.save(model, "served", registered_model_name="served")
    meta = art.get_metadata()
    assert art.storage_backend == "mlflow" and meta["tracking_uri"] == url
    assert meta["registered_model_version"] == 1
    assert any(p.name == "MLmodel" for p in artifacts.rglob("MLmodel"))  # the server holds the files
    assert not any(work.rglob("MLmodel"))

    np.testing.assert_allclose(lineapy_ext.get("served").get_value().predict_proba(X), model.predict_proba(X))
    mlflow.set_tracking_uri(url)
    try:
        plain = mlflow.sklearn.load_model("models:/served/1")
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    np.testing.assert_allclose(plain.predict_proba(X), model.predict_proba(X))

    # The registry over HTTP: an alias set at save time, moved by plain MLflow, followed by get.
    monkeypatch.setattr(mlflow_backend, "REGISTRY_TTL", 0.0)
    ipython.run_cell(f"from sklearn.linear_model import LogisticRegression\nimport numpy as np\nX = np.array({X.tolist()})")
    for c in (0.01, 10.0):
        assert ipython.run_cell(f"clf = LogisticRegression(C={c}).fit(X, (X[:, 1] > 0.4).astype(int))").success
        ipython.run_line_magic("lineapy", "save clf churn_model --registered_model_name churn --alias champion")
    client = mlflow.MlflowClient(tracking_uri=url)
    assert lineapy_ext.get("churn_model", alias="champion").version == 2
    client.set_registered_model_alias("churn", "champion", "1")
    capsys.readouterr()
    ipython.run_line_magic("lineapy", "get models:/churn@champion --as champ")
    said = capsys.readouterr().out
    assert "registered model 'churn' version 1 @champion" in said and "logged by lineapy artifact 'churn_model' version 1" in said
    np.testing.assert_allclose(ipython.user_ns["champ"].predict_proba(X),
                               lineapy_ext.get("churn_model", 1).get_value().predict_proba(X))
    with pytest.raises(UsageError, match=r"has no alias 'challenger': its aliases are 'champion' \(-> version 1\)"):
        ipython.run_line_magic("lineapy", "get churn_model --alias challenger")

    # The server goes away: list still answers (the registry column says so), get fails in bounded time.
    stop_server()
    table = repr(ipython.run_line_magic("lineapy", "list churn_model"))
    assert "churn v2 (registry unreachable)" in table, table
    start = time.monotonic()
    with pytest.raises(UsageError, match="cannot reach the MLflow registry at http://127.0.0.1"):
        ipython.run_line_magic("lineapy", "get churn_model --alias champion")
    assert time.monotonic() - start < 20
