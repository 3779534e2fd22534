"""Reliability of the store under load and failure, with real processes.

- 8 processes x 25 saves of one name on SQLite and PostgreSQL, with a reader
  polling meanwhile: versions 1..200, every one loadable, no error; the
  reader never sees a version it cannot load.
- A save killed with SIGKILL while writing a 300 MB value leaves no row and
  no file under a final name; cleanup (API and CLI) finds and removes the
  temporary file; the next save of the name succeeds.
- Loading a 200 MB array does not need a second copy of it in memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lineapy_ext
from lineapy_ext.backends.lineapy import TEMP_PREFIX, TEMP_SUFFIX
from lineapy_ext.context import get_context

ROOT = Path(__file__).resolve().parents[3]

WRITER = """
import sys, lineapy_ext
worker, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    lineapy_ext.save({"worker": worker, "i": i, "pad": list(range(200))}, "hot")
print("done")
"""

READER = """
import json, sys, time, lineapy_ext
from lineapy_ext.context import get_context
db = get_context().store.db
stop_after, checked, polls, bad = 200, set(), 0, []
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    polls += 1
    versions = db.versions("hot")
    for v in versions:
        if v in checked:
            continue
        try:
            value = lineapy_ext.get("hot", v).get_value()
            assert set(value) == {"worker", "i", "pad"}
        except Exception as e:
            bad.append(f"{v}: {type(e).__name__}: {e}")
        checked.add(v)
    if len(versions) >= stop_after:
        break
    time.sleep(0.02)
print(json.dumps({"checked": len(checked), "polls": polls, "bad": bad}))
"""


def _env(lineapy_home: Path, db_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        LINEAPY_HOME_DIR=str(lineapy_home),
        LINEAPY_DATABASE_URL=db_url,
        LINEAPY_ARTIFACT_STORAGE_DIR=str(lineapy_home / "linea_pickles"),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_eight_writers_and_a_reader(db_url, lineapy_home):
    env = _env(lineapy_home, db_url)
    lineapy_ext.save(0, "warmup")  # schema exists before the race (creation is tested elsewhere)
    reader = subprocess.Popen([sys.executable, "-c", READER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), "25"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for w in range(8)
    ]
    outs = [w.communicate(timeout=240) for w in writers]
    for w, (out, err) in zip(writers, outs):
        assert w.returncode == 0 and out.strip() == "done", err[-2000:]
        assert "locked" not in err and "Traceback" not in err
    out, err = reader.communicate(timeout=240)
    assert reader.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["bad"] == []
    assert report["checked"] == 200 and report["polls"] > 1  # it polled while writers ran
    db = get_context().store.db
    assert db.versions("hot") == list(range(1, 201))
    seen = {(v["worker"], v["i"]) for v in (lineapy_ext.get("hot", k).get_value() for k in range(1, 201))}
    assert seen == {(w, i) for w in range(8) for i in range(25)}
    assert lineapy_ext.cleanup(dry_run=True, older_than=0) == []


KILLED_SAVE = """
import numpy as np, lineapy_ext
value = np.ones(300 * 2**20 // 8)  # 300 MB
print("ready", flush=True)
lineapy_ext.save(value, "big")
print("saved", flush=True)
"""


def _temp_files(storage: Path) -> list[Path]:
    return sorted(storage.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"))


def _final_files(storage: Path) -> list[Path]:
    return sorted(p for p in storage.rglob("*.pkl"))


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_sigkill_during_a_large_save(lineapy_home):
    storage = lineapy_home / "linea_pickles"
    env = _env(lineapy_home, f"sqlite:///{lineapy_home / 'db.sqlite'}")
    lineapy_ext.save("before", "big")  # version 1 exists
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    # Kill once the temporary file exists and is growing.
    deadline, sizes = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        temps = _temp_files(storage)
        if temps:
            try:
                sizes.append(temps[0].stat().st_size)
            except FileNotFoundError:
                pass
            if len(sizes) >= 2 and 0 < sizes[-2] < sizes[-1] < 250 * 2**20:
                break
        time.sleep(0.005)
    else:
        pytest.fail(f"no growing temporary file appeared (sizes seen: {sizes[-5:]})")
    # While the writer runs, its temporary file is not an orphan.
    assert lineapy_ext.cleanup(dry_run=True, older_than=0) == []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # No row without its value, no truncated value under a final name.
    db = get_context().store.db
    assert db.versions("big") == [1]
    finals = _final_files(storage)
    assert len(finals) == 1 and lineapy_ext.get("big").get_value() == "before"
    temps = _temp_files(storage)
    assert len(temps) == 1 and 0 < temps[0].stat().st_size < 300 * 2**20

    # The CLI lists it (dry run keeps it), then removes it.
    cli = [sys.executable, "-m", "lineapy_ext", "cleanup"]
    rel = temps[0].relative_to(storage).as_posix()
    dry = subprocess.run(cli + ["--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert rel in dry.stdout and "big version 2: interrupted save (rolled back)" in dry.stdout
    assert "would remove 2" in dry.stdout
    assert _temp_files(storage) == temps and db.unfinished() != []
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "removed 2" in done.stdout, done.stderr
    assert _temp_files(storage) == [] and _final_files(storage) == finals and db.unfinished() == []

    # The next save of the same name succeeds (the rolled-back version was never visible).
    art = lineapy_ext.save(np.arange(5), "big")
    assert art.version == 2
    np.testing.assert_array_equal(lineapy_ext.get("big").get_value(), np.arange(5))


def test_cleanup_api_removes_dead_writers_files(lineapy_home):
    storage = lineapy_home / "linea_pickles"
    lineapy_ext.save(1, "n")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    import socket
    import re

    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63]
    orphan = storage / "n" / f"{TEMP_PREFIX}{'ab' * 16}.{pid}.{host}{TEMP_SUFFIX}"
    orphan.write_bytes(b"partial")
    running = storage / "n" / f"{TEMP_PREFIX}{'cd' * 16}.{os.getpid()}.{host}{TEMP_SUFFIX}"
    running.write_bytes(b"in progress")
    foreign = storage / "n" / f"{TEMP_PREFIX}{'ef' * 16}.123.otherhost{TEMP_SUFFIX}"
    foreign.write_bytes(b"other machine")
    assert lineapy_ext.cleanup(dry_run=True) == [f"n/{orphan.name}"]  # foreign one is too recent
    assert orphan.exists()
    os.utime(foreign, (time.time() - 7200, time.time() - 7200))
    assert lineapy_ext.cleanup() == sorted([f"n/{orphan.name}", f"n/{foreign.name}"])
    assert not orphan.exists() and not foreign.exists() and running.exists()
    assert lineapy_ext.get("n").get_value() == 1


PEAK_RSS = """
import resource, sys, numpy as np, lineapy_ext
art = lineapy_ext.get("huge")
from lineapy_ext.context import get_context
backend = get_context().store.backend(art.storage_backend)  # import everything loading needs
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
value = art.get_value()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert value.shape == (25_000_000,) and value[-1] == 24_999_999
print(before, after, value.nbytes)
"""


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_loading_does_not_double_memory(lineapy_home):
    value = np.arange(25_000_000, dtype=np.float64)  # 200 MB
    lineapy_ext.save(value, "huge")
    del value
    env = _env(lineapy_home, f"sqlite:///{lineapy_home / 'db.sqlite'}")
    out = subprocess.run([sys.executable, "-c", PEAK_RSS], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, nbytes = map(int, out.stdout.split())
    assert nbytes == 200_000_000
    assert after - before <= 1.3 * nbytes, f"peak grew by {(after - before) / nbytes:.2f}x the value size"
