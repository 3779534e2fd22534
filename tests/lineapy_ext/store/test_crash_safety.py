"""Crash safety: real SIGKILLs at the worst moments, deletes racing saves and gets,
and several databases sharing one storage dir.

The worst moments are hit deterministically: the child process wraps the
real backend method and SIGKILLs itself right after it returns (the value is
in place but its row is not ready; half of a delete's values are gone).  A
few random kills of writers complete the picture.  After ``cleanup`` every
value file under a final name belongs to a ready row and every ready row
loads.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import lineapy_ext
from lineapy_ext.context import get_context, reset_context
from lineapy_ext.exceptions import ArtifactNotFoundError

ROOT = Path(__file__).resolve().parents[3]

KILL_AFTER_VALUE = """
import os, signal, lineapy_ext
from lineapy_ext.backends.lineapy import LineaPyBackend
real = LineaPyBackend.save_reserved
def save_then_die(self, *args, **kwargs):
    real(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # value in place, row not yet ready
LineaPyBackend.save_reserved = save_then_die
lineapy_ext.save(list(range(1000)), "victim")
"""

KILL_DURING_DELETE = """
import os, signal, sys, lineapy_ext
from lineapy_ext.backends.lineapy import LineaPyBackend
real, calls, kill_at = LineaPyBackend.delete, [], int(sys.argv[1])
def delete_then_die(self, metadata):
    real(self, metadata)
    calls.append(1)
    if len(calls) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # half of the values gone
LineaPyBackend.delete = delete_then_die
lineapy_ext.delete("many", "all")
"""

WRITER = """
import sys, numpy as np, lineapy_ext
w = int(sys.argv[1])
for i in range(10_000):
    value = np.full(600_000, i) if i % 3 == 0 else {"w": w, "i": i}
    lineapy_ext.save(value, f"w{w % 2}")
    if i == 0:
        print("saving", flush=True)
"""


def _env(home: Path, db_url: str) -> dict:
    env = dict(os.environ)
    env.update(LINEAPY_HOME_DIR=str(home), LINEAPY_DATABASE_URL=db_url, PYTHONPATH=str(ROOT),
               LINEAPY_ARTIFACT_STORAGE_DIR=str(home / "linea_pickles"))
    return env


def _run_killed(code: str, env: dict, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _finals(storage: Path, name: str = "*") -> set[str]:
    return {p.relative_to(storage).as_posix() for p in storage.glob(f"{name}/*.pkl")}


def _ready_locations(db) -> set[str]:
    return {db.get_artifact(n, v).location for n in db.names() for v in db.versions(n)}


@pytest.mark.slow
def test_save_killed_after_its_value_moved_into_place(db_url, lineapy_home):
    storage, db = lineapy_home / "linea_pickles", get_context().store.db
    lineapy_ext.save("v1", "victim")
    _run_killed(KILL_AFTER_VALUE, _env(lineapy_home, db_url))
    # The value of the killed save is under its final name, but invisible.
    assert len(_finals(storage, "victim")) == 2
    assert db.versions("victim") == [1] and lineapy_ext.get("victim").get_value() == "v1"
    assert lineapy_ext.cleanup(dry_run=True) == ["victim version 2: interrupted save (rolled back)"]
    assert len(_finals(storage, "victim")) == 2  # dry run
    assert lineapy_ext.cleanup() == ["victim version 2: interrupted save (rolled back)"]
    assert _finals(storage) == _ready_locations(db) and db.unfinished() == []
    assert lineapy_ext.save("v2", "victim").version == 2  # the rolled-back number was never visible
    assert lineapy_ext.get("victim", 2).get_value() == "v2"


@pytest.mark.slow
def test_delete_all_killed_half_way(db_url, lineapy_home):
    storage, db = lineapy_home / "linea_pickles", get_context().store.db
    for i in range(30):
        lineapy_ext.save(i, "many")
    _run_killed(KILL_DURING_DELETE, _env(lineapy_home, db_url), "15")
    # Rows went first (hidden), half of the values are gone, the rest wait for cleanup.
    assert db.versions("many") == [] and len(_finals(storage, "many")) == 15
    with pytest.raises(ArtifactNotFoundError):
        lineapy_ext.get("many")
    done = lineapy_ext.cleanup()
    assert len(done) == 30 and all(d.endswith("interrupted delete (completed)") for d in done)
    assert _finals(storage, "many") == set() and db.unfinished() == []
    assert {db.artifact_state("many", v) for v in range(1, 31)} == {"deleted"}
    assert lineapy_ext.save("again", "many").version == 31  # numbers are never reused


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_random_kills_of_writers_leave_nothing_after_cleanup(lineapy_home, tmp_path):
    # Two databases share the storage dir; only A's writers are killed.
    storage = lineapy_home / "linea_pickles"
    url_a, url_b = f"sqlite:///{lineapy_home / 'a.sqlite'}", f"sqlite:///{lineapy_home / 'b.sqlite'}"
    env_b = _env(lineapy_home, url_b)
    subprocess.run([sys.executable, "-c", "import lineapy_ext\nfor i in range(3): lineapy_ext.save(i, 'w0')"],
                   env=env_b, check=True, timeout=60)
    _run_killed(KILL_AFTER_VALUE, env_b)  # B has an interrupted save too: not A's to clean
    b_files = _finals(storage)
    rng = random.Random(12)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], env=_env(lineapy_home, url_a),
                                stdout=subprocess.PIPE, text=True) for w in range(3)]
    for w in writers:
        assert w.stdout.readline() == "saving\n"
    for w in writers:
        time.sleep(rng.uniform(0.05, 0.5))
        w.send_signal(signal.SIGKILL)
    for w in writers:
        assert w.wait(timeout=30) == -signal.SIGKILL
    os.environ["LINEAPY_DATABASE_URL"] = url_a
    reset_context()
    db = get_context().store.db
    lineapy_ext.cleanup()
    assert db.unfinished() == [] and list(storage.rglob(".tmp-*")) == []
    a_files = _finals(storage) - b_files
    assert a_files == _ready_locations(db) and len(a_files) >= 3
    for name in db.names():
        for v in db.versions(name):
            lineapy_ext.get(name, v).get_value()
    # B's files, its interrupted save included, were left alone; B cleans up its own.
    assert b_files <= _finals(storage)
    os.environ["LINEAPY_DATABASE_URL"] = url_b
    reset_context()
    assert lineapy_ext.cleanup() == ["victim version 1: interrupted save (rolled back)"]
    assert [lineapy_ext.get("w0", v).get_value() for v in (1, 2, 3)] == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_deletes_racing_saves_and_gets(db_url, lineapy_home):
    # Real threads of one process: saves never fail because of a delete, a
    # get of a version deleted meanwhile says so.
    lineapy_ext.save(np.arange(10), "race")
    errors, stop = [], threading.Event()

    def saver():
        try:
            for i in range(40):
                lineapy_ext.save(np.full(1000, i), "race")
        except Exception as e:
            errors.append(f"save: {type(e).__name__}: {e}")
        finally:
            stop.set()

    def deleter():
        while not stop.is_set():
            try:
                lineapy_ext.delete("race", "latest")
            except ArtifactNotFoundError:
                pass
            except Exception as e:
                errors.append(f"delete: {type(e).__name__}: {e}")

    def getter():
        while not stop.is_set():
            try:
                assert lineapy_ext.get("race").get_value().shape in ((10,), (1000,))
            except ArtifactNotFoundError as e:
                if "was deleted" not in str(e) and "no artifact named" not in str(e):
                    errors.append(f"get: {e}")
            except Exception as e:
                errors.append(f"get: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=f) for f in (saver, deleter, getter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert errors == []
    db, storage = get_context().store.db, lineapy_home / "linea_pickles"
    assert db.unfinished() == [] and _finals(storage) == _ready_locations(db)
    assert lineapy_ext.save(0, "race").version == 42  # 41 numbers handed out before, none reused
