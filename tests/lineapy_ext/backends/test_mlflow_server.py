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

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """Start a lean ``mlflow server`` (one worker, no job execution); yield its URL; stop it."""
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
        yield url, tmp_path / "served-artifacts"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_save_and_get_through_a_tracking_server(lineapy_home, mlflow_server, tmp_path, monkeypatch):
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    url, artifacts = mlflow_server
    work = tmp_path / "client"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    lineapy_ext.options.set("mlflow_tracking_uri", url)

    X = np.random.RandomState(3).rand(30, 2)
    model = LogisticRegression().fit(X, (X[:, 1] > 0.4).astype(int))
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
