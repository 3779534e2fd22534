"""Saves and gets on a local SQLite store use the standard library (issue 13).

A get in a fresh process reads its row through :mod:`sqlite3` and its value
file with plain file reads, and a save writes its rows the same way: no
SQLAlchemy, no fsspec.  The guarantees are the ones of the SQLAlchemy path
(the checks are shared): only ready rows, the checksum verified before
anything is unpickled, tombstones named, other applications' files refused,
newer schemas refused, rows byte-identical to SQLAlchemy's.  The fresh-process
tests run a real child interpreter, as a new kernel would.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lineapy_ext
from lineapy_ext.context import get_context

#: Prints what the get returned (or raised) and which heavy modules it imported.
_CHILD = textwrap.dedent("""
    import json, sys
    import lineapy_ext
    name, version = sys.argv[1], (int(sys.argv[2]) if sys.argv[2] != "latest" else None)
    try:
        value = lineapy_ext.get(name, version).get_value()
        out = {"value": repr(value)}
    except Exception as e:
        out = {"error": type(e).__name__, "message": str(e)}
    out["imported"] = sorted(m for m in ("sqlalchemy", "fsspec", "cloudpickle") if m in sys.modules)
    print(json.dumps(out))
""")


def _get_in_child(name: str, version: int | None = None) -> dict:
    get_context().store.close()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, name, str(version or "latest")],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _db(home):
    return sqlite3.connect(home / "db.sqlite")


def test_fresh_get_reads_without_sqlalchemy_or_fsspec(lineapy_home):
    lineapy_ext.save(np.arange(10), "arr")
    lineapy_ext.save({"a": [1, 2]}, "cfg")
    lineapy_ext.save({"a": [3]}, "cfg")
    assert _get_in_child("arr") == {"value": repr(np.arange(10)), "imported": []}
    assert _get_in_child("cfg", 1) == {"value": "{'a': [1, 2]}", "imported": []}
    assert _get_in_child("cfg") == {"value": "{'a': [3]}", "imported": []}


def test_fresh_get_gives_the_same_record_as_the_sqlalchemy_path(lineapy_home):
    saved = lineapy_ext.save({"k": 1}, "cfg")
    db = get_context().store.db
    db.close()
    plain = db.get_artifact("cfg", saved.version)
    assert db._engine is None  # read without SQLAlchemy...
    db._plain_db = False  # ...and now through it
    assert db.get_artifact("cfg", saved.version) == plain == saved._record
    assert plain.created_at.tzinfo is not None and plain.backend_metadata["format"] == "lineapy-pickle5-v1"


def test_fresh_get_verifies_the_checksum_before_unpickling(lineapy_home, tmp_path):
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    art = lineapy_ext.save({"payload": "x" * 1000}, "victim")
    path = lineapy_home / "linea_pickles" / art.get_metadata()["location"]
    evil = pickle.dumps(Boom(), protocol=5)
    data = bytearray(path.read_bytes())
    # The stream (after the 8-byte magic) replaced by one that creates the
    # marker when unpickled; same file length: only the checksum can tell.
    data[8 : 8 + len(evil)] = evil
    path.write_bytes(bytes(data))
    assert pickle.loads(bytes(data[8:])) and marker.exists()  # it would run...
    marker.unlink()
    got = _get_in_child("victim")
    assert got["error"] == "CorruptedValueError" and "checksum" in got["message"]
    assert not marker.exists() and got["imported"] == []


def test_fresh_get_of_a_deleted_version_names_the_tombstone(lineapy_home):
    lineapy_ext.save(1, "t")
    lineapy_ext.save(2, "t")
    lineapy_ext.delete("t", 1)
    got = _get_in_child("t", 1)
    assert got["error"] == "ArtifactNotFoundError" and "was deleted" in got["message"] and "2" in got["message"]
    assert _get_in_child("t")["value"] == "2"


def test_rows_still_being_written_are_invisible_to_the_plain_reader(lineapy_home):
    lineapy_ext.save("ok", "w")
    with _db(lineapy_home) as con:
        con.execute("UPDATE lineapy_artifacts SET state = 'writing' WHERE name = 'w'")
    con.close()
    got = _get_in_child("w")
    assert got["error"] == "ArtifactNotFoundError"


def test_another_applications_sqlite_file_is_refused_before_anything_is_read(lineapy_home):
    with _db(lineapy_home) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    con.close()
    got = _get_in_child("x")
    assert got["error"] == "ConfigError" and "another application's SQLite file" in got["message"]
    with _db(lineapy_home) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    con.close()
    assert tables == ["invoices"]


def test_a_newer_schema_is_refused_on_the_plain_path_too(lineapy_home):
    lineapy_ext.save(1, "x")
    with _db(lineapy_home) as con:
        con.execute("UPDATE lineapy_schema SET value = value + 1")
    con.close()
    got = _get_in_child("x")
    assert got["error"] == "StorageError" and "upgrade lineapy-ext" in got["message"]


def test_a_missing_database_is_created_by_the_first_get(lineapy_home):
    assert not (lineapy_home / "db.sqlite").exists()
    got = _get_in_child("nothing")
    assert got["error"] == "ArtifactNotFoundError" and "no artifacts are saved" in got["message"]
    with _db(lineapy_home) as con:
        assert con.execute("SELECT count(*) FROM lineapy_schema").fetchone() == (1,)
    con.close()


@pytest.mark.parametrize("url", ["sqlite:///{home}/db.sqlite", "sqlite:///:memory:", "sqlite://"])
def test_only_database_files_take_the_plain_path(url, lineapy_home):
    from lineapy_ext.store.plain_sqlite import sqlite_file

    expected = f"{lineapy_home}/db.sqlite" if "{home}" in url else None
    assert sqlite_file(url.format(home=lineapy_home)) == expected
    assert sqlite_file("postgresql://u@h/db") is None and sqlite_file("sqlite:///a.db?mode=ro") is None


def test_a_save_in_a_fresh_process_needs_no_sqlalchemy_either(lineapy_home):
    lineapy_ext.save(1, "first")  # the database exists, schema current
    get_context().store.close()
    code = ("import sys, lineapy_ext; art = lineapy_ext.save({'v': 2}, 'second'); "
            "print(art.version, lineapy_ext.get('second').get_value(), 'sqlalchemy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "{'v':", "2}", "False"]
    assert lineapy_ext.get("second").get_value() == {"v": 2}


def _row_text(home, name: str, version: int) -> dict:
    # Every column as SQLite holds it (type and text), but those that differ between two saves.
    with _db(home) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM lineapy_artifacts WHERE name = ? AND version = ?", (name, version)).fetchone()
        out = {k: (con.execute("SELECT typeof(?)", (row[k],)).fetchone()[0], row[k]) for k in row.keys()}
    con.close()
    return out


def test_plain_and_sqlalchemy_writes_store_the_same_bytes(lineapy_home):
    lineapy_ext.save({"k": [1]}, "a")
    db = get_context().store.db
    assert db._plain_db  # that save went the plain way
    db._plain_db = False
    lineapy_ext.save({"k": [1]}, "a")
    db.close()
    plain, through_sa = _row_text(lineapy_home, "a", 1), _row_text(lineapy_home, "a", 2)
    for key in ("id", "version", "created_at", "updated_at", "location"):
        assert plain.pop(key)[0] == through_sa.pop(key)[0]
    assert plain == through_sa
    with _db(lineapy_home) as con:
        times = [r for row in con.execute("SELECT created_at, updated_at FROM lineapy_artifacts") for r in row]
        times += [r[0] for r in con.execute("SELECT started_at FROM lineapy_sessions")]
    con.close()
    assert all(__import__("re").fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", t) for t in times), times


def test_artifact_defaults_are_the_models_defaults():
    from lineapy_ext.store.models import ArtifactRow
    from lineapy_ext.store.plain_sqlite import artifact_defaults

    found = {}
    for column in ArtifactRow.__table__.c:
        if column.default is not None and column.name != "state":  # every insert names the state
            arg = column.default.arg
            found[column.name] = arg(None) if callable(arg) else arg
    assert found == artifact_defaults()
