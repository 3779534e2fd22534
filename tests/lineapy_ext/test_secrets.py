"""Secrets (the database password, every storage_options value) never reach the metadata
database, the slice, the logs or printed output.

A real ``InteractiveShell`` runs a session that configures PostgreSQL with a
password and S3 (the loopback moto server) with a key and secret, and even
types the key into a cell; then the SQLite file bytes / a dump of the
PostgreSQL tables, everything the magics printed, and every log record are
searched for the secrets.
"""

from __future__ import annotations

import logging

import pytest
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.secrets import scrub_text, secret_values
from tests.conftest import S3_KEY, S3_SECRET

pytestmark = pytest.mark.filterwarnings("ignore::lineapy_ext.exceptions.LineaPyWarning")

DB_PASSWORD = "Pg5ecretPassw0rd"


def _session(ipython, s3_store, database_url: str) -> tuple[str, str]:
    """Run a session that uses secrets; return (everything printed or displayed, the slice)."""
    cells = [
        "%config LineaPy.logging_level = 'DEBUG'",
        f"%config LineaPy.storage_options = {s3_store['storage_options']!r}",
        f"%config LineaPy.artifact_storage_dir = {s3_store['url']!r}",
        f"%config LineaPy.database_url = {database_url!r}",
        f"creds = {{'key': {S3_KEY!r}}}",
        "data = [1, 2, 3]",
        "total = sum(data) + len(creds['key'])",
        "%lineapy save total",
        "import lineapy_ext; lineapy_ext.save(data, 'data')",
        "%lineapy get total",
        "%lineapy list",
        "%lineapy code total",
        "%lineapy config",
        "%config LineaPy",
        "lineapy_ext.options.masked('database_url')",
    ]
    printed = []
    for cell in cells:
        with capture_output() as out:
            result = ipython.run_cell(cell)
        assert result.success, (cell, result.error_in_exec)
        printed += [out.stdout, out.stderr] + [str(o.data) for o in out.outputs]
    assert ipython.user_ns["total"] == 6 + len(S3_KEY)
    art = lineapy_ext.get("total")
    assert art.get_value() == 6 + len(S3_KEY)
    return "\n".join(printed), art.get_code()


def _assert_no_secrets(blob: str | bytes, where: str, extra: tuple = ()) -> None:
    for secret in (S3_KEY, S3_SECRET, DB_PASSWORD, *extra):
        needle = secret.encode() if isinstance(blob, bytes) else secret
        assert needle not in blob, f"{secret!r} found in {where}"


@pytest.mark.postgres
def test_secrets_stay_out_of_postgres_outputs_and_logs(ipython, lineapy_home, s3_store, postgres_url, caplog):
    import psycopg

    caplog.set_level(logging.DEBUG, logger="lineapy_ext")
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@", 1)
    assert DB_PASSWORD in url
    printed, code = _session(ipython, s3_store, url)
    assert "***" in printed and "postgres:***@" in printed  # masked, not omitted
    assert "creds = {'key': '***'}" in code
    _assert_no_secrets(printed, "printed output", (s3_store["endpoint"],))
    _assert_no_secrets(code, "the slice")
    _assert_no_secrets("\n".join(r.getMessage() for r in caplog.records), "logs")
    assert any("contained a configured secret" in r.getMessage() for r in caplog.records)
    get_context().close_store()
    dump = []
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'lineapy_%'")]
        assert {"lineapy_artifacts", "lineapy_cells", "lineapy_sessions"} <= set(tables)
        for table in tables:
            dump += [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t")]
    dump = "\n".join(dump)
    assert "LineaPy.storage_options" in dump and "total = sum(data)" in dump  # the cells are there
    _assert_no_secrets(dump, "the PostgreSQL tables", (s3_store["endpoint"],))


def test_secrets_stay_out_of_the_sqlite_file(ipython, lineapy_home, s3_store, caplog):
    caplog.set_level(logging.DEBUG, logger="lineapy_ext")
    db = lineapy_home / "team.sqlite"
    printed, code = _session(ipython, s3_store, f"sqlite:///{db}")
    _assert_no_secrets(printed, "printed output", (s3_store["endpoint"],))
    _assert_no_secrets(code, "the slice")
    _assert_no_secrets("\n".join(r.getMessage() for r in caplog.records), "logs")
    get_context().close_store()
    files = sorted(db.parent.glob("team.sqlite*"))
    blob = b"".join(p.read_bytes() for p in files)
    assert b"total = sum(data)" in blob and b"lineapy_artifacts" in blob
    _assert_no_secrets(blob, f"the SQLite files {[p.name for p in files]}", (s3_store["endpoint"],))


def test_scrubbing_rules(lineapy_home):
    opts = lineapy_ext.options
    opts.set("storage_options", {"key": "AKIA12345", "anon": False, "region": "eu", "nested": {"token": "tok-abcdef"}})
    opts.set("database_url", "postgresql://me:pw@db.example/x")
    secrets = secret_values(opts)
    assert set(secrets) == {"AKIA12345", "tok-abcdef", "pw"}  # short settings are not secrets
    text = "url = 'https://u:p4ss@host/x'; k = 'AKIA12345'; region = 'eu'"
    assert scrub_text(text, secrets) == "url = 'https://u:***@host/x'; k = '***'; region = 'eu'"
    assert opts.masked("storage_options") == {"key": "***", "anon": "***", "region": "***", "nested": {"token": "***"}}
