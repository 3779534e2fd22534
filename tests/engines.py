"""Real pipeline engines for the tests: DVC in the test environment, Airflow in a venv of its own.

DVC comes with the ``test`` extra (it shares our pins).  Airflow does not:
it would add ~150 distributions to every CI install, and the generated DAG
must be shown to run where ``lineapy_ext`` is *not* installed.  So
:func:`airflow_python` builds a virtual environment holding only Airflow
(plus what a generated ``requirements.txt`` asks for), cached outside the
repository, one per Airflow and Python version.  It is built in a temporary
folder and renamed into place, so a killed build never leaves a half venv
that later runs would trust; a file lock makes concurrent test runs wait for
one build (and serialises their ``pip install -r requirements.txt``).  A venv's console scripts carry the absolute
path of the folder they were installed in; after the rename they are stale,
so everything runs as ``python -m airflow`` / ``python -m pip``.

:func:`refusing_python` gives a folder holding a ``python`` command that runs
scripts with the test interpreter but refuses to import ``lineapy_ext`` and
``kernel_hooks``: put it first on ``PATH`` and the ``python pipeline.py``
commands of a ``dvc.yaml`` run the generated code as a user without
lineapy_ext would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

#: The Airflow release the DAG tests run (the newest on the package index when written).
AIRFLOW_VERSION = "3.3.2"
#: Pins that spare pip 23's resolver a backtrack through every release of
#: cadwyn and fastapi (cadwyn >= 7.1 wants a fastapi that Airflow 3.3.2 excludes).
AIRFLOW_PINS = (f"apache-airflow=={AIRFLOW_VERSION}", "cadwyn==7.0.0", "fastapi==0.136.3")

#: Imports that make a module fail where lineapy_ext is not installed.
REFUSE_LINEAPY = textwrap.dedent('''
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lineapy_ext", "kernel_hooks"):
                raise ImportError(f"{name} must not be needed by generated code")
            return None

    sys.meta_path.insert(0, Refuse())
''')

_RUN_SCRIPT = REFUSE_LINEAPY + textwrap.dedent('''
    import os, runpy

    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
    runpy.run_path(sys.argv[0], run_name="__main__")
''')


def cache_root() -> Path:
    """Where test environments are kept between runs (outside the repository)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lineapy_ext-tests"


def refusing_python(folder: Path) -> Path:
    """Write ``folder/bin/python``: the test interpreter, isolated (``-I``), refusing lineapy_ext.

    Returns the ``bin`` folder, to put first on ``PATH``.
    """
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    runner = folder / "run_refusing_lineapy.py"
    runner.write_text(_RUN_SCRIPT)
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I "{runner}" "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def clean_env(**extra) -> dict:
    """The environment minus what would let a child see the test venv or lineapy settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LINEAPY_", "PYTHON", "VIRTUAL_ENV", "AIRFLOW", "DVC_"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _pip(python: Path, *args, timeout=1200):
    proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, env=clean_env(), cwd=python.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (another test run waits instead of installing into the same venv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _airflow_name() -> str:
    return f"airflow-{AIRFLOW_VERSION}-py{sys.version_info.major}.{sys.version_info.minor}"


def airflow_python(log=print) -> Path:
    """The interpreter of the cached Airflow venv, built on first use (see the module docstring)."""
    root, name = cache_root(), _airflow_name()
    final = root / name
    python = final / "bin" / "python"
    if (final / "READY").exists():
        return python
    with _locked(root / f".{name}.lock"):
        if (final / "READY").exists():  # built while we waited
            return python
        # Under the lock, any other build folder is a killed run's, and a
        # final folder without READY is not one to trust.
        for stale in [*root.glob(f".{name}.*.tmp"), final]:
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".{name}.{os.getpid()}.tmp"
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, timeout=300)
        _pip(tmp / "bin" / "python", *AIRFLOW_PINS)
        (tmp / "READY").write_text(f"{' '.join(AIRFLOW_PINS)}\nbuilt in {time.monotonic() - start:.0f} s\n")
        os.rename(tmp, final)
    log(f"built the Airflow venv {final} in {time.monotonic() - start:.0f} s")
    return python


def install_requirements(python: Path, requirements: Path):
    """``pip install -r requirements`` into the Airflow venv of ``python`` (quick when already satisfied)."""
    with _locked(cache_root() / f".{_airflow_name()}.lock"):
        return _pip(python, "-q", "-r", str(requirements))
