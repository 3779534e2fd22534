"""Team storage: PostgreSQL shared by kernels, moved stores, damaged values, unreachable stores,
artifact names, pluggable backends and ``memory://``.

PostgreSQL is the machine's real server (``postgres_url`` fixture); "two
kernels" are two Python processes on the same database and storage dir.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.exceptions import (
    ArtifactNotFoundError,
    BackendError,
    CorruptedValueError,
    InvalidNameError,
    StorageError,
)
from lineapy_ext.backends.base import StorageBackend
from tests.conftest import free_port

pytestmark = pytest.mark.filterwarnings("ignore::lineapy_ext.exceptions.LineaPyWarning")
ROOT = Path(__file__).resolve().parents[3]


def _tables(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=5) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


# -- PostgreSQL -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_schema_created_on_first_use(lineapy_home, postgres_url, scheme):
    url = postgres_url.replace("postgresql://", f"{scheme}://", 1)
    assert _tables(postgres_url) == set()
    lineapy_ext.options.set("database_url", url)
    assert lineapy_ext.options.database_url.startswith("postgresql://")
    assert _tables(postgres_url) == set()  # nothing until the store is used
    assert lineapy_ext.save({"a": 1}, "first").version == 1
    assert {"lineapy_schema", "lineapy_sessions", "lineapy_cells", "lineapy_artifacts"} <= _tables(postgres_url)
    assert lineapy_ext.get("first").get_value() == {"a": 1}


KERNEL = """
import sys, lineapy_ext
action, name = sys.argv[1], sys.argv[2]
if action == "save":
    art = lineapy_ext.save({"by": name}, name)
    print(art.version, art.session_id)
else:
    arts = {a.name: a for a in lineapy_ext.artifact_store()}
    art = arts[name]
    print(art.get_value()["by"], art.session_id)
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_two_kernels_on_one_postgres_see_each_others_artifacts(lineapy_home, postgres_url, tmp_path):
    env = dict(os.environ, LINEAPY_DATABASE_URL=postgres_url, PYTHONPATH=str(ROOT),
               LINEAPY_ARTIFACT_STORAGE_DIR=str(tmp_path / "team_values"))

    def kernel(*args):
        out = subprocess.run([sys.executable, "-c", KERNEL, *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    version_a, session_a = kernel("save", "from_a")
    version_b, session_b = kernel("save", "from_b")
    assert version_a == version_b == "1" and session_a != session_b
    assert kernel("read", "from_a") == ["from_a", session_a]
    assert kernel("read", "from_b") == ["from_b", session_b]


def test_unreachable_database_fails_fast_writes_nothing_and_capture_continues(ipython, lineapy_home):
    storage = lineapy_home / "linea_pickles"
    dead = f"postgresql://lineapy:Hunter2pw@127.0.0.1:{free_port()}/lineapy"
    ipython.run_cell("x = 41")
    ipython.run_cell(f"%config LineaPy.database_url = {dead!r}")
    t0 = time.monotonic()
    with capture_output() as out:
        result = ipython.run_cell("%lineapy save x")
    elapsed = time.monotonic() - t0
    assert elapsed < 8 and result.error_in_exec is not None
    message = str(result.error_in_exec)
    assert "\n" not in message and "cannot use the metadata database" in message
    assert "127.0.0.1" in message and "Hunter2pw" not in message + out.stdout + out.stderr
    assert not storage.exists() or [p for p in storage.rglob("*") if p.is_file()] == []
    with pytest.raises(StorageError, match="cannot use the metadata database"):
        lineapy_ext.get("x")
    # Capture goes on: a later cell runs and is part of the next slice.
    assert ipython.run_cell("y = x + 1").success
    ipython.run_cell(f"%config LineaPy.database_url = 'sqlite:///{lineapy_home / 'db.sqlite'}'")
    assert ipython.run_cell("%lineapy save y").success
    code = lineapy_ext.get("y").get_code()
    assert "x = 41" in code and "y = x + 1" in code
    assert lineapy_ext.get("y").get_value() == 42


# -- values that moved, vanished or changed ------------------------------------------


def test_values_found_after_the_store_moves(lineapy_home, tmp_path):
    old = lineapy_home / "linea_pickles"
    lineapy_ext.save(np.arange(1000), "arr")
    lineapy_ext.save({"k": "v"}, "d")
    copied = tmp_path / "copy_of_store"
    shutil.copytree(old, copied)
    lineapy_ext.options.set("artifact_storage_dir", str(copied))
    np.testing.assert_array_equal(lineapy_ext.get("arr").get_value(), np.arange(1000))
    moved = tmp_path / "elsewhere" / "values"
    moved.parent.mkdir()
    old.rename(moved)
    lineapy_ext.options.set("artifact_storage_dir", str(moved))
    assert lineapy_ext.get("d").get_value() == {"k": "v"}
    # The location column holds NAME/FILE only: nothing ties a row to a directory.
    con = sqlite3.connect(lineapy_home / "db.sqlite")
    locations = [r[0] for r in con.execute("SELECT location FROM lineapy_artifacts")]
    con.close()
    assert all(not loc.startswith("/") and loc.count("/") == 1 for loc in locations)


def test_missing_value_names_both_directories(lineapy_home, tmp_path):
    saved_in = lineapy_home / "linea_pickles"
    lineapy_ext.save([1, 2], "gone")
    lineapy_ext.options.set("artifact_storage_dir", str(tmp_path / "empty_dir"))
    with pytest.raises(ArtifactNotFoundError) as err:
        lineapy_ext.get("gone").get_value()
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "empty_dir") in message and str(saved_in) in message
    assert "point artifact_storage_dir" in message


def test_altered_value_file_is_detected(lineapy_home):
    art = lineapy_ext.save(np.arange(50_000), "tampered")
    path = lineapy_home / "linea_pickles" / art.get_metadata()["location"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptedValueError, match=r"'tampered/.*\.pkl' does not match its checksum") as err:
        lineapy_ext.get("tampered").get_value()
    assert "\n" not in str(err.value)


# -- names -------------------------------------------------------------------------

HOSTILE = [
    "../escape", "../../etc/passwd", "a/../../b", "/abs", "a/b", "a\\b", "..", ".", ".hidden", "-rf",
    "name\n", "a\x00b", "a b", "ünïcode", "ｆｕｌｌ", "~user", "$HOME", "c:evil", "x" * 201, "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_everywhere(lineapy_home, tmp_path, name):
    before = sorted(p for p in tmp_path.rglob("*"))
    for call in (lambda: lineapy_ext.save(1, name), lambda: lineapy_ext.get(name), lambda: lineapy_ext.delete(name)):
        with pytest.raises(InvalidNameError, match="invalid artifact name"):
            call()
    assert sorted(p for p in tmp_path.rglob("*")) == before  # not even the database was opened


def test_valid_names_and_a_tampered_location(lineapy_home):
    for name in ("a", "A_b-c.d", "_x", "9lives", "v1.2.3"):
        assert lineapy_ext.save(name, name).version == 1
        assert lineapy_ext.get(name).get_value() == name
    con = sqlite3.connect(lineapy_home / "db.sqlite")
    con.execute("UPDATE lineapy_artifacts SET location = '../../outside.pkl' WHERE name = 'a'")
    con.commit()
    con.close()
    with pytest.raises(InvalidNameError, match="invalid value location"):
        lineapy_ext.get("a").get_value()


def test_hostile_name_through_the_magic(ipython, lineapy_home):
    ipython.run_cell("x = 1")
    result = ipython.run_cell("%lineapy save x ../../evil")
    assert "invalid artifact name" in str(result.error_in_exec)
    assert not (lineapy_home / "linea_pickles").exists()


# -- pluggable backends and memory:// -------------------------------------------------


class KwargsBackend(StorageBackend):
    """Keeps values in a class-level dict under a prefix given as a constructor keyword."""

    store: dict = {}

    def __init__(self, prefix: str = "none", **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix

    def save(self, value, name, **kwargs):
        key = f"{self.prefix}/{name}/{uuid.uuid4().hex}"
        self.store[key] = value
        return {"location": key}

    def load(self, metadata):
        return self.store[metadata["location"]]

    def delete(self, metadata):
        self.store.pop(metadata["location"], None)

    def exists(self, metadata):
        return metadata["location"] in self.store


def test_default_backend_trait_with_kwargs(lineapy_home):
    spec = f"{__name__}.KwargsBackend"
    lineapy_ext.options.set("default_storage_backend", spec)
    lineapy_ext.options.set("default_storage_backend_options", {"prefix": "team"})
    art = lineapy_ext.save([1, 2], "plug")
    loc = art.get_metadata()["location"]
    assert art.storage_backend == spec and loc.startswith("team/plug/") and loc in KwargsBackend.store
    assert lineapy_ext.get("plug").get_value() == [1, 2]
    # An explicit built-in still works next to it.
    assert lineapy_ext.save(3, "plug", storage_backend="lineapy").storage_backend == "lineapy"
    lineapy_ext.delete("plug", "all")
    assert loc not in KwargsBackend.store


def test_failing_backend_import_is_a_clear_error_and_saves_nothing(lineapy_home, monkeypatch):
    with pytest.raises(BackendError, match="cannot import storage backend 'nowhere_pkg.Backend'"):
        lineapy_ext.save(1, "x", storage_backend="nowhere_pkg.Backend")
    monkeypatch.setenv("LINEAPY_DEFAULT_STORAGE_BACKEND", "nowhere_pkg.mod.Backend")
    from lineapy_ext.context import reset_context

    reset_context()
    with pytest.raises(BackendError, match="nowhere_pkg.mod.Backend.*installed and importable"):
        lineapy_ext.save(1, "x")
    assert get_context().store.db.versions("x") == []


def test_base_class_methods_must_be_implemented():
    class Half(StorageBackend):
        def save(self, value, name, **kwargs):
            return {"location": name}

    backend = Half(tag="t")
    assert backend.options == {"tag": "t"} and backend.save(1, "n") == {"location": "n"}
    for method in (backend.load, backend.delete, backend.exists):
        with pytest.raises(NotImplementedError):
            method({"location": "n"})


def test_memory_storage_dir(lineapy_home):
    url = f"memory://lineapy-{uuid.uuid4().hex}"
    lineapy_ext.options.set("artifact_storage_dir", url)
    art = lineapy_ext.save(np.arange(100), "mem")
    assert art.get_metadata()["storage_dir"] == url
    np.testing.assert_array_equal(lineapy_ext.get("mem").get_value(), np.arange(100))
    assert [a.name for a in lineapy_ext.artifact_store()] == ["mem"]
    assert lineapy_ext.delete("mem") == [1]
    assert not (lineapy_home / "linea_pickles").exists()
