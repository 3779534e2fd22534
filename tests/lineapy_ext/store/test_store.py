"""The artifact store on real SQLite files and the real PostgreSQL server.

Round trips, version numbering, concurrency across processes, atomicity.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lineapy_ext
from lineapy_ext.context import get_context, reset_context
from lineapy_ext.exceptions import ArtifactNotFoundError, SerializationError
from lineapy_ext.store.models import SCHEMA_VERSION



class Point:
    """A class defined in the test module: pickled by value with cloudpickle when __main__."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return (self.x, self.y) == (other.x, other.y)


def _session_defined():
    # Functions and classes defined in a notebook live in __main__; cloudpickle
    # pickles those by value.  exec in a fresh __main__-named namespace does the same.
    ns = {"__name__": "__main__"}
    exec(
        "class Vec:\n"
        "    def __init__(self, *xs): self.xs = xs\n"
        "    def norm(self): return sum(x * x for x in self.xs) ** 0.5\n"
        "def scale(k):\n"
        "    return lambda v: Vec(*(k * x for x in v.xs))\n",
        ns,
    )
    return ns


def test_round_trips(db_url):
    ns = _session_defined()
    values = {
        "int": 42,
        "float": 3.5,
        "string": "héllo",
        "array": np.arange(100_000, dtype=np.float64).reshape(100, 1000),
        "frame": pd.DataFrame({"a": range(1000), "b": [f"s{i}" for i in range(1000)]}),
        "func": ns["scale"](3),
        "instance": ns["Vec"](3, 4),
        "point": Point(1, 2),
    }
    for name, value in values.items():
        art = lineapy_ext.save(value, name)
        assert art.version == 1 and art.name == name
    reset_context()  # a new process-like context: nothing cached
    for name, value in values.items():
        got = lineapy_ext.get(name).get_value()
        if name == "array":
            np.testing.assert_array_equal(got, value)
        elif name == "frame":
            pd.testing.assert_frame_equal(got, value)
        elif name == "func":
            assert got(ns["Vec"](1, 2)).xs == (3, 6)
        elif name == "instance":
            assert got.norm() == 5.0
        else:
            assert got == value
    arts = {a.name: a for a in lineapy_ext.artifact_store()}
    assert set(arts) == set(values)
    assert arts["array"].value_type == "numpy.ndarray" and arts["array"].size > 800_000


def test_versions_start_at_1_and_increase_per_name(db_url):
    assert [lineapy_ext.save(i, "x").version for i in range(3)] == [1, 2, 3]
    assert lineapy_ext.save("other", "y").version == 1
    assert lineapy_ext.get("x").get_value() == 2
    assert lineapy_ext.get("x", version=1).get_value() == 0
    assert lineapy_ext.delete("x", "latest") == [3]
    # A deleted number is never handed out again: a slice pinned to version 3
    # can never load other content.
    assert lineapy_ext.save(9, "x").version == 4
    with pytest.raises(ArtifactNotFoundError, match=r"has no version 3 \(it was deleted\): existing versions are 1, 2, 4$"):
        lineapy_ext.get("x", version=3)
    assert lineapy_ext.delete("x", 1) == [1]
    assert lineapy_ext.save(10, "x").version == 5
    assert lineapy_ext.delete("x", "all") == [2, 4, 5]
    assert [a.name for a in lineapy_ext.artifact_store()] == ["y"]
    with pytest.raises(ArtifactNotFoundError, match=r"has no version 4 \(it was deleted\): no versions are left$"):
        lineapy_ext.get("x", version=4)
    # Not even after --all, nor in a new process (the tombstones are in the database).
    get_context().store.close()
    reset_context()
    assert lineapy_ext.save(11, "x").version == 6
    assert lineapy_ext.get("x").get_value() == 11 and get_context().store.db.versions("x") == [6]


def _save_many(env: dict, name: str, n: int, worker: int, queue) -> None:
    os.environ.update(env)
    reset_context()
    try:
        versions = [lineapy_ext.save({"worker": worker, "i": i}, name).version for i in range(n)]
        queue.put(("ok", versions))
    except BaseException as e:  # report, don't hang the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_concurrent_saves_get_distinct_versions(db_url, lineapy_home):
    processes, saves = 4, 20
    env = {
        "LINEAPY_HOME_DIR": str(lineapy_home),
        "LINEAPY_DATABASE_URL": db_url,
        "LINEAPY_ARTIFACT_STORAGE_DIR": str(lineapy_home / "linea_pickles"),
    }
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_many, args=(env, "shared", saves, w, queue)) for w in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for status, r in results if status == "error"]
    assert errors == []
    versions = sorted(v for _, vs in results for v in vs)
    assert versions == list(range(1, processes * saves + 1))
    reset_context()
    seen = {(v["worker"], v["i"]) for v in (lineapy_ext.get("shared", k).get_value() for k in versions)}
    assert len(seen) == processes * saves


class FailsHalfway:
    """Pickles a large payload, then fails: the file is half-written when the error comes."""

    def __reduce__(self):
        raise RuntimeError("disk on fire")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_failed_value_write_leaves_no_row_and_no_file(db_url, lineapy_home):
    storage = lineapy_home / "linea_pickles"
    value = [b"x" * 5_000_000, np.ones(1_000_000), FailsHalfway()]
    with pytest.raises(RuntimeError, match="disk on fire"):
        lineapy_ext.save(value, "half")
    assert _files(storage) == []
    assert lineapy_ext.artifact_store() == []
    assert get_context().store.db.versions("half") == []


def test_failed_row_insert_removes_the_value(lineapy_home):
    # A real database failure: the artifacts table is made read-only by a trigger.
    lineapy_ext.save(1, "first")
    db = lineapy_home / "db.sqlite"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TRIGGER no_insert BEFORE INSERT ON lineapy_artifacts "
        "BEGIN SELECT RAISE(ABORT, 'inserts disabled'); END"
    )
    con.commit()
    con.close()
    storage = lineapy_home / "linea_pickles"
    with pytest.raises(Exception, match="inserts disabled"):
        lineapy_ext.save(np.arange(10), "second")
    assert not (storage / "second").exists() or _files(storage / "second") == []
    assert [a.name for a in lineapy_ext.artifact_store()] == ["first"]


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "a\\b", "/abs", ".hidden", "x" * 201])
def test_bad_names_write_nothing(db_url, lineapy_home, bad):
    with pytest.raises(lineapy_ext.exceptions.InvalidNameError, match="invalid artifact name"):
        lineapy_ext.save(1, bad)
    assert _files(lineapy_home / "linea_pickles") == []
    assert _files(lineapy_home.parent) == [p for p in _files(lineapy_home.parent) if p.name.startswith("db.sqlite")]


def test_unpicklable_values_write_nothing(db_url, lineapy_home):
    import socket

    def gen():
        yield 1

    with socket.socket() as sock:
        for value, kind in ((sock, "socket"), (gen(), "generator")):
            with pytest.raises(SerializationError, match=kind):
                lineapy_ext.save(value, "bad")
    assert _files(lineapy_home / "linea_pickles") == []
    assert get_context().store.db.versions("bad") == []


def test_schema_version_is_recorded(lineapy_home):
    lineapy_ext.save(1, "x")
    con = sqlite3.connect(lineapy_home / "db.sqlite")
    assert con.execute("SELECT value FROM lineapy_schema WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    con.close()


@pytest.mark.parametrize("version", [10**20, 2**31, 2**63])
def test_huge_version_numbers_are_not_found_in_one_line(db_url, version):
    # Overflowed SQLite's integer (OverflowError) and PostgreSQL's (DataError
    # printing the SQL) before.
    lineapy_ext.save(1, "x")
    for call in (lambda: lineapy_ext.get("x", version), lambda: lineapy_ext.delete("x", version)):
        with pytest.raises(ArtifactNotFoundError, match=f"no version {version}: existing versions are 1$"):
            call()


@pytest.mark.parametrize("url", ["postgresql://u:pw123456@localhost:abc/db", "postgresql://u:pw123456@[::1/db"])
def test_malformed_database_url_is_one_line(lineapy_home, monkeypatch, url):
    from lineapy_ext.exceptions import ConfigError

    monkeypatch.setenv("LINEAPY_DATABASE_URL", url)
    reset_context()
    with pytest.raises(ConfigError, match=r"is not a valid URL .*use sqlite:///PATH or postgresql://") as err:
        lineapy_ext.artifact_store()
    assert "\n" not in str(err.value) and "pw123456" not in str(err.value)


def test_home_dir_that_is_a_file_is_one_line(lineapy_home, tmp_path, monkeypatch):
    from lineapy_ext.exceptions import ConfigError

    afile = tmp_path / "not_a_dir"
    afile.write_text("x")
    monkeypatch.setenv("LINEAPY_DATABASE_URL", f"sqlite:///{afile / 'db.sqlite'}")
    reset_context()
    with pytest.raises(ConfigError, match=r"cannot create the folder .*not_a_dir.*set home_dir or database_url") as err:
        lineapy_ext.save(1, "x")
    assert "\n" not in str(err.value) and afile.read_text() == "x"
