"""Concurrency inside one process and across many: real threads, real processes.

- 4 threads of one kernel saving at once (the session's cells are persisted
  by whichever save comes first): every save succeeds.
- A kernel opening a new SQLite file that another one is still creating
  waits for it instead of failing with "database is locked".
- Another application's SQLite file is refused before anything in it changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.exceptions import LineaPyError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_threads_of_one_kernel_save_at_once(db_url, ipython):
    ipython.run_cell("data = list(range(100))\ntotal = sum(data)")
    errors, results, stop = [], [], threading.Event()

    def saver(t: int) -> None:
        for i in range(15):
            try:
                results.append(lineapy_ext.save(ipython.user_ns["total"], f"t{t % 2}").version)
            except LineaPyError as e:
                errors.append(f"{type(e).__name__}: {e}")
            except Exception as e:  # not one of ours: the bug this test is about
                errors.append(f"RAW {type(e).__module__}.{type(e).__name__}: {e}")

    threads = [threading.Thread(target=saver, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    i = 0
    while any(t.is_alive() for t in threads):  # new cells keep arriving: each save has cells to persist
        ipython.run_cell(f"step_{i} = total + {i}")
        i += 1
        time.sleep(0.002)  # cells at a brisk typing pace; a tight loop outruns any save
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 60
    db = get_context().store.db
    assert db.versions("t0") == list(range(1, 31)) and db.versions("t1") == list(range(1, 31))
    idx = [c.index for c in db.cells(get_context().session_id)]
    assert idx == list(range(len(idx))) and len(idx) >= 2


def test_opening_a_new_sqlite_file_waits_for_a_writer_instead_of_failing(tmp_path):
    # Switching a new file to WAL is a write that SQLite does not retry: while
    # another process was still creating the file, opening it failed after 0 s
    # with "database is locked" (16 kernels starting at once hit this).  Here
    # another connection holds a write transaction on the new file for 1 s.
    import sqlite3
    import time

    from lineapy_ext.store.metadata import MetadataDB

    warm = MetadataDB(f"sqlite:///{tmp_path / 'warm.sqlite'}")  # imports done before the clock runs
    warm.names()
    warm.close()
    path = tmp_path / "new.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN")
    other.execute("CREATE TABLE lineapy_other_writer (a INTEGER)")
    release = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    release.start()
    db = MetadataDB(f"sqlite:///{path}")
    t0 = time.monotonic()
    try:
        assert db.names() == []
    finally:
        db.close()
        release.join()
        other.close()
    assert 0.8 < time.monotonic() - t0 < 30
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    con.close()


def test_another_applications_sqlite_file_is_refused_untouched(lineapy_home, monkeypatch):
    import sqlite3

    from lineapy_ext.context import reset_context
    from lineapy_ext.exceptions import ConfigError

    path = lineapy_home / "app.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    monkeypatch.setenv("LINEAPY_DATABASE_URL", f"sqlite:///{path}")
    reset_context()
    with pytest.raises(ConfigError, match=r"another application's SQLite file \(tables: users\)") as err:
        lineapy_ext.artifact_store()
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before and not path.with_name("app.sqlite-wal").exists()
