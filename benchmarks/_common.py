"""Helpers shared by the benchmark scripts (not a test module).

- ``isolated_env``: a temporary IPython dir and lineapy home, so a benchmark
  never touches ``~/.ipython`` or ``~/.lineapy``;
- ``median``/``summary``: robust statistics over repetitions;
- ``rss``/``reset_peak``/``peak``: resident memory of this process from
  ``/proc/self/status`` (``VmRSS``, ``VmHWM``); writing ``5`` to
  ``/proc/self/clear_refs`` resets the high-water mark (Linux >= 4.0), so a
  peak can be measured for one operation after the value already exists;
- ``write_results``: ``benchmarks/results/NAME.json`` with machine facts;
- ``table``: a small fixed-width text table.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent
PYTHON = sys.executable


def isolated_env(tmp: str | os.PathLike | None = None) -> dict:
    """Environment variables for a child process with a private IPython dir and lineapy home."""
    tmp = Path(tmp or tempfile.mkdtemp(prefix="lineapy-bench-"))
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("LINEAPY_"):
            del env[k]
    home = tmp / "lineapy_home"
    home.mkdir(parents=True, exist_ok=True)
    (tmp / "ipython").mkdir(exist_ok=True)
    env.update(
        IPYTHONDIR=str(tmp / "ipython"),
        LINEAPY_HOME_DIR=str(home),
        LINEAPY_DATABASE_URL=f"sqlite:///{home / 'db.sqlite'}",
        LINEAPY_ARTIFACT_STORAGE_DIR=str(home / "linea_pickles"),
        PYTHONPATH=str(HERE) + os.pathsep + env.get("PYTHONPATH", ""),
        # One BLAS/OpenMP thread: the machine has 2 shared cores.
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def use_isolated_env(tmp=None) -> dict:
    """Apply :func:`isolated_env` to this process (before importing IPython/lineapy_ext)."""
    env = isolated_env(tmp)
    for k in list(os.environ):
        if k.startswith("LINEAPY_"):
            del os.environ[k]
    os.environ.update(env)
    return env


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summary(xs) -> dict:
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return {"n": 0}
    q = lambda p: xs[min(n - 1, max(0, round(p * (n - 1))))]  # noqa: E731
    return {"n": n, "median": median(xs), "p25": q(0.25), "p75": q(0.75), "min": xs[0], "max": xs[-1]}


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def rss() -> int:
    """Current resident set size in bytes."""
    return _status("VmRSS")


def peak() -> int:
    """Resident set high-water mark in bytes (since start or the last :func:`reset_peak`)."""
    return _status("VmHWM")


def reset_peak() -> bool:
    """Reset the RSS high-water mark to the current RSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def drop_page_cache() -> bool:
    """``sync; echo 3 > /proc/sys/vm/drop_caches``; True if it worked (needs root)."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def machine() -> dict:
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = None
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        rev = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": load,
        "git_commit": rev,
    }


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    out = {"benchmark": name, "machine": machine(), "command": " ".join([Path(PYTHON).name] + sys.argv)}
    out.update(data)
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return path


def table(headers, rows) -> str:
    rows = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _fmt(c) -> str:
    if isinstance(c, float):
        if c != c:
            return "-"
        return f"{c:.3g}" if abs(c) < 100 else f"{c:.0f}"
    return str(c)


def run_child(args, env=None, timeout=None) -> dict:
    """Run ``python args...`` and parse the last stdout line as JSON."""
    p = subprocess.run([PYTHON, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    if p.returncode != 0:
        raise RuntimeError(f"child {args} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    last = [ln for ln in p.stdout.splitlines() if ln.strip()][-1]
    return json.loads(last)


def version_run(script: str, fwd: list[str], root: str, version: str) -> dict:
    """One whole run of ``script`` (its ``--out`` JSON) with ``root`` first on
    ``PYTHONPATH`` (an export of another commit): a run of a before/after series."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="series-") as tmp:
        out = os.path.join(tmp, "run.json")
        subprocess.run([sys.executable, script, *fwd, "--out", out], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(out) as f:
            data = json.load(f)
    data["version"] = version
    data["loadavg"] = open("/proc/loadavg").read().split()[:3]
    return data


def abba_runs(series: int, before: str, run_one) -> list[dict]:
    """``series`` pairs of whole runs, before/after then after/before (ABBA):
    ``run_one(before_dir_or_None)`` gives one run's dict (see :func:`version_run`)."""
    runs = []
    for i in range(series):
        for b in ((before, None) if i % 2 == 0 else (None, before)):
            runs.append(run_one(b))
            r = runs[-1]
            took = f", {r['seconds']:.0f} s" if "seconds" in r else ""
            print(f"run {len(runs)}: {r['version']}{took}, load {' '.join(r['loadavg'])}", flush=True)
    return runs
