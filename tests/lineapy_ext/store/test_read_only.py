"""A store on a read-only file system: listed and loaded, never written.

The store is made as usual, then reached through a read-only bind mount (a
real read-only file system: root's permission bits would not stop writes).
Mounting needs the CAP_SYS_ADMIN capability; without it the test cannot
build its file system and says so.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import lineapy_ext
from lineapy_ext.context import get_context, reset_context
from lineapy_ext.exceptions import StorageError


@pytest.fixture
def read_only_copy(lineapy_home, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    bind = subprocess.run(["mount", "--bind", str(lineapy_home), str(mount)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot make a read-only file system here (mount: {bind.stderr.strip()})")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True, capture_output=True)
        yield mount
    finally:
        reset_context()
        subprocess.run(["umount", str(mount)], check=True)


def test_read_only_store_lists_and_loads(lineapy_home, read_only_copy, monkeypatch):
    lineapy_ext.save(np.arange(1000), "arr")
    lineapy_ext.save({"a": 1}, "cfg")
    lineapy_ext.save({"a": 2}, "cfg")
    get_context().store.close()
    files = sorted(p.name for p in lineapy_home.iterdir())
    monkeypatch.setenv("LINEAPY_HOME_DIR", str(read_only_copy))
    monkeypatch.setenv("LINEAPY_DATABASE_URL", f"sqlite:///{read_only_copy / 'db.sqlite'}")
    monkeypatch.setenv("LINEAPY_ARTIFACT_STORAGE_DIR", str(read_only_copy / "linea_pickles"))
    reset_context()
    assert [(a.name, a.version) for a in lineapy_ext.artifact_store()] == [("arr", 1), ("cfg", 2)]
    np.testing.assert_array_equal(lineapy_ext.get("arr").get_value(), np.arange(1000))
    assert lineapy_ext.get("cfg", 1).get_value() == {"a": 1}
    with pytest.raises(StorageError, match="readonly database|read-only") as err:
        lineapy_ext.save(3, "new")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in read_only_copy.iterdir()) == files  # no -wal, no -shm created
