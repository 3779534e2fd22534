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
import os

import pytest
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.secrets import scrub_text, secret_values
from tests.conftest import S3_KEY, S3_SECRET

pytestmark = pytest.mark.filterwarnings("ignore::lineapy_ext.exceptions.LineaPyWarning")

DB_PASSWORD = "Pg5ecret%2FPassw0rd"  # percent-encoded in the URL: "/" inside
DB_PASSWORD_DECODED = "Pg5ecret/Passw0rd"


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
    for secret in (S3_KEY, S3_SECRET, DB_PASSWORD, DB_PASSWORD_DECODED, *extra):
        needle = secret.encode() if isinstance(blob, bytes) else secret
        assert needle not in blob, f"{secret!r} found in {where}"


@pytest.mark.slow
@pytest.mark.postgres
def test_secrets_stay_out_of_postgres_outputs_and_logs(ipython, lineapy_home, s3_store, postgres_url, caplog):
    import psycopg

    caplog.set_level(logging.DEBUG, logger="lineapy_ext")
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@", 1)
    assert DB_PASSWORD in url
    printed, code = _session(ipython, s3_store, url)
    assert "***" in printed and "postgres:***@" in printed  # masked, not omitted
    # The credential in the slice became a read of an environment variable the header names.
    assert "creds = {'key': __import__(\"os\").environ['LINEAPY_SECRET_KEY']}" in code
    assert code.startswith("# lineapy: credentials removed from this slice; set the environment variable(s) LINEAPY_SECRET_KEY\n")
    _assert_no_secrets(printed, "printed output", (s3_store["endpoint"],))
    _assert_no_secrets(code, "the slice")
    _assert_no_secrets("\n".join(r.getMessage() for r in caplog.records), "logs")
    assert any("contained a credential" in r.getMessage() for r in caplog.records)
    get_context().close_store()
    dump = []
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'lineapy_%'")]
        assert {"lineapy_artifacts", "lineapy_cells", "lineapy_sessions"} <= set(tables)
        for table in tables:
            dump += [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t")]
    dump = "\n".join(dump)
    assert "LineaPy.storage_options" in dump and "total = sum(data)" in dump  # the cells are there
    _assert_no_secrets(dump, "the PostgreSQL tables")
    assert s3_store["endpoint"] in dump  # not a credential: settings are never masked


@pytest.mark.slow
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
    _assert_no_secrets(blob, f"the SQLite files {[p.name for p in files]}")


def test_scrubbing_rules(lineapy_home):
    opts = lineapy_ext.options
    opts.set("storage_options", {"key": "AKIA12345", "anon": False, "region": "eu", "nested": {"token": "tok"}})
    opts.set("database_url", "postgresql://me:p%40ss@db.example/x?sslmode=require&password=qpw1")
    secrets = set(secret_values(opts))
    # Credentials whatever their length, both forms of URL passwords; never settings.
    assert {"AKIA12345", "tok", "p%40ss", "p@ss", "qpw1"} <= secrets and not {"eu", "require"} & secrets
    text = "url = 'https://u:p4ss@host/x?password=zz'; k = 'AKIA12345'; region = 'eu'; t = 'tok'; tokens = 'tokyo'"
    assert scrub_text(text, secret_values(opts)) == (
        "url = 'https://u:***@host/x?password=***'; k = '***'; region = 'eu'; t = '***'; tokens = 'tokyo'"
    )
    assert opts.masked("database_url") == "postgresql://me:***@db.example/x?sslmode=require&password=***"
    # A credential replaced later stays secret for the rest of the session.
    opts.set("storage_options", {"key": "NEWKEY999", "region": "eu"})
    assert {"AKIA12345", "NEWKEY999"} <= set(secret_values(opts))


def test_only_credentials_are_masked_and_slices_fail_loudly(ipython, lineapy_home, caplog, monkeypatch):
    # Settings (region) stay as typed, so the slice computes the same value;
    # credentials (configured ones, short ones, replaced ones, environment
    # variables set in a cell) are gone from everything stored.
    import subprocess
    import sys

    caplog.set_level(logging.DEBUG, logger="lineapy_ext")
    cells = [
        "%config LineaPy.storage_options = {'key': 'OLDKEY1234', 'secret': 'ab3', 'region': 'us-east-1'}",
        "%config LineaPy.storage_options = {'key': 'NEWKEY5678', 'secret': 'xy9', 'region': 'us-east-1'}",
        "import os",
        "os.environ['AWS_SECRET_ACCESS_KEY'] = 'EnvSecret0042'",
        "region = 'us-east-1'",
        "short = 'xy9'",
        "n = len(region) + len(os.environ['AWS_SECRET_ACCESS_KEY']) + len(short)",
        "%lineapy save n",
    ]
    for cell in cells:
        assert ipython.run_cell(cell).success, cell
    assert ipython.user_ns["n"] == 9 + 13 + 3
    code = lineapy_ext.get("n").get_code()
    assert "region = 'us-east-1'" in code
    assert "os.environ['AWS_SECRET_ACCESS_KEY'] = __import__(\"os\").environ['AWS_SECRET_ACCESS_KEY']" in code
    assert "short = __import__(\"os\").environ['LINEAPY_SECRET_SECRET']" in code
    get_context().close_store()
    blob = b"".join(p.read_bytes() for p in sorted(lineapy_home.glob("*.sqlite*")) + sorted(lineapy_home.glob("*.db*")))
    assert b"us-east-1" in blob and b"len(short)" in blob
    for secret in (b"OLDKEY1234", b"NEWKEY5678", b"'ab3'", b"'xy9'", b"EnvSecret0042"):
        assert secret not in blob, secret
    _assert_no_secrets("\n".join(r.getMessage() for r in caplog.records), "logs", ("EnvSecret0042", "OLDKEY1234"))
    # The slice runs with the credentials provided, and fails loudly (naming them) without.
    env = {k: v for k, v in os.environ.items() if k != "AWS_SECRET_ACCESS_KEY"}
    run = [sys.executable, "-c", code + "\nprint(n)"]
    ok = subprocess.run(run, env=dict(env, AWS_SECRET_ACCESS_KEY="EnvSecret0042", LINEAPY_SECRET_SECRET="xy9"),
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "25", ok.stderr
    bad = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "KeyError: 'AWS_SECRET_ACCESS_KEY'" in bad.stderr


# Texts the rules change, and near misses (a word of a credential name in a
# longer word, settings, bytes, a key outside storage options).
_SNIPPETS = [
    "url = 'https://u:p4ss@host/x?password=zz'", "k = 'AKIA12345'", "region = 'eu'", "tokens = 'tokyo'",
    "api_key = 'abc'", "apiKey='abc'", "conf = {'client_secret': 'shh'}", "os.environ['AWS_SESSION_TOKEN'] = 'tt'",
    "%env DB_PASSWORD=hunter2", "%set_env MY_TOKEN abc", "read_csv(p, storage_options={'key': 'K', 'anon': False})",
    "sorted(xs, key=len)", "d['key'] = 'v'", "pwd = b'raw'", "s = 'x.token.y'", "passenger = 'Ann'",
    "signal = 'sig'", "f(password='pw', user='me')", "conn = 'postgres://me@db/x'", "q = 'a?token=1&b=2'",
    "connection_string = 'Server=x;'", "x = 1  # don't", "y = \"it's\"", "secret", "PASSWORD = \"p\"",
    "s3 = 's3://bucket/key'", "t = 'tok'", "sig = 'abc'", "é_token = 'x'", "w = 'ſecret'",
]


def test_skipping_texts_the_rules_cannot_change_stores_the_same_text(lineapy_home):
    # Scrubbing skips a text with no configured secret, no URL password and no
    # word of a credential name (a save in a long session then does not run
    # the rules over its whole slice); the stored text must be the same as
    # running them.
    import random
    from pathlib import Path

    from lineapy_ext.secrets import _scrub_code, _scrub_text, may_hold_credentials, scrub_code

    corpus = sorted((Path(__file__).parents[1] / "corpus" / "notebooks").glob("*.py"))
    cells = [c for p in corpus for c in p.read_text().split("\n\n") if c.strip()]
    rng = random.Random(13)
    secrets_sets = [{}, {"AKIA12345": "LINEAPY_SECRET_KEY", "tok": "LINEAPY_SECRET_TOKEN"}, {"region": "X"}]
    texts = cells + _SNIPPETS
    texts += ["\n".join(rng.sample(cells, 3) + rng.sample(_SNIPPETS, rng.randint(0, 2))) for _ in range(300)]
    skipped = 0
    for text in texts:
        for named in secrets_sets:
            listed = sorted(named, key=len, reverse=True)
            assert scrub_text(text, listed) == _scrub_text(text, listed), text
            assert scrub_code(text, named) == _scrub_code(text, named), text
            skipped += not may_hold_credentials(text, listed)
    assert skipped > len(texts)  # most corpus cells are skipped
    # A slice's cells ([execution count, code] pairs) are looked at together.
    from lineapy_ext.secrets import scrub

    for named in secrets_sets:
        listed = sorted(named, key=len, reverse=True)
        for k in range(0, len(texts), 25):
            cells = [[i, t] for i, t in enumerate(texts[k:k + 25])]
            assert scrub(cells, listed) == [[i, _scrub_text(t, listed)] for i, t in cells]
    for snippet in ("api_key = 'abc'", "%env DB_PASSWORD=hunter2", "k = 'AKIA12345'", "q = 'a?token=1&b=2'"):
        assert may_hold_credentials(snippet, secrets_sets[1]) and scrub_text(snippet, ["AKIA12345"]) != snippet
