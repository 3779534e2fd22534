"""Shared fixtures: an isolated lineapy home, a real PostgreSQL database, a real shell.

- ``lineapy_home``: a temporary home dir; env vars point the database and the
  storage dir into it and the process-wide context is fresh for the test.
- ``postgres_url``: a fresh database on the real PostgreSQL server, dropped
  afterwards.  Skipped when no server is reachable, unless
  ``LINEAPY_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which makes it fail.
- ``ipython``: a fresh ``InteractiveShell`` with the extension loaded.
"""

from __future__ import annotations

import os
import uuid

import pytest

#: Server the ``postgres_url`` fixture uses (any database on it works as admin db).
POSTGRES_ADMIN_URL = os.environ.get("LINEAPY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_ENV_VARS = (
    "LINEAPY_HOME_DIR",
    "LINEAPY_DATABASE_URL",
    "LINEAPY_ARTIFACT_STORAGE_DIR",
    "LINEAPY_MLFLOW_TRACKING_URI",
    "LINEAPY_MLFLOW_REGISTRY_URI",
    "LINEAPY_DEFAULT_ML_MODELS_STORAGE_BACKEND",
    "LINEAPY_LOGGING_LEVEL",
    "LINEAPY_DEFAULT_STORAGE_BACKEND",
)


@pytest.fixture
def lineapy_home(tmp_path, monkeypatch):
    """A temporary lineapy home with its own SQLite file and storage dir, and a fresh context.

    Yields the home dir (a ``pathlib.Path``); ``home / "db.sqlite"`` and
    ``home / "linea_pickles"`` are where things go.
    """
    from lineapy_ext.context import reset_context

    home = tmp_path / "lineapy_home"
    home.mkdir()
    for var in _ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LINEAPY_HOME_DIR", str(home))
    monkeypatch.setenv("LINEAPY_DATABASE_URL", f"sqlite:///{home / 'db.sqlite'}")
    monkeypatch.setenv("LINEAPY_ARTIFACT_STORAGE_DIR", str(home / "linea_pickles"))
    reset_context()
    yield home
    reset_context()


def _postgres_unavailable(reason: str):
    if os.environ.get("LINEAPY_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (LINEAPY_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL server reachable ({reason}); set LINEAPY_TEST_POSTGRES_URL to run these tests")


@pytest.fixture
def postgres_url():
    """URL of a fresh, empty database on the real PostgreSQL server (dropped after the test)."""
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("psycopg is not installed (pip install 'lineapy-ext[postgres]')")
    admin = POSTGRES_ADMIN_URL
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        _postgres_unavailable(str(e).strip().splitlines()[0])
    name = f"lineapy_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def ipython(lineapy_home):
    """A fresh ``InteractiveShell`` with ``lineapy_ext`` loaded (unloaded afterwards)."""
    from tests.shells import close_shell, new_shell

    shell = new_shell()
    shell.run_line_magic("load_ext", "lineapy_ext")
    try:
        yield shell
    finally:
        try:
            shell.run_line_magic("unload_ext", "lineapy_ext")
        finally:
            close_shell(shell)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """Endpoint URL of a real S3 protocol server (moto) on loopback, for the whole session."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


#: Credentials the moto server is given in tests (it accepts any).
S3_KEY = "AKIATESTKEY7Q2XW9"
S3_SECRET = "tEsT/sEcReT+9f8e7d6c5b4a"


@pytest.fixture
def s3_store(moto_server, monkeypatch):
    """A fresh bucket on the moto server.

    Returns a dict: ``url`` (``s3://BUCKET/prefix``), ``bucket``,
    ``endpoint``, ``storage_options`` (key, secret, endpoint) and ``client``
    (a boto3 client to inspect the bucket).  No AWS credentials or config
    from the machine are visible to the test.
    """
    import boto3
    import s3fs

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"lineapy-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3", endpoint_url=moto_server, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    yield {
        "url": f"s3://{bucket}/team/values",
        "bucket": bucket,
        "endpoint": moto_server,
        "storage_options": {"key": S3_KEY, "secret": S3_SECRET, "client_kwargs": {"endpoint_url": moto_server}},
        "client": client,
    }
    s3fs.S3FileSystem.clear_instance_cache()
