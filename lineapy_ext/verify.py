"""Verified slices: run a saved slice in a fresh interpreter and judge what it computes.

The engine (no IPython here):

- :func:`find_input_files` picks the files a slice needs from the user's
  working directory: relative paths the slice spells out (string literals,
  ``os.path.join``/``Path(...) / ...`` of literals) and local modules it
  imports, that exist there and were last modified *before* the saving
  session started.  Files the session itself wrote are outputs: the slice
  has to recreate them, so they are not copied.
- :func:`run_slice` runs the slice in a child ``python`` (``sys.executable``,
  same packages) in a scratch directory holding read-only copies of those
  files, never the user's directory, with a time limit and, on POSIX, an
  address-space cap; the child pickles the value to a file outside its
  working directory.  The child runs in its own process group (killed whole
  on timeout) and dies with its parent (``PR_SET_PDEATHSIG`` on Linux).
  Its environment is the one the kernel *started* with
  (:func:`fresh_environment`): ``%env`` changes are not inherited.
- :func:`verify_code` compares the result with the saved value
  (:mod:`lineapy_ext.compare`) and returns a
  :class:`~lineapy_ext.store.verifications.Verdict`: ``verified``,
  ``differs`` (after a second run agreed with the first),
  ``nondeterministic`` (the two runs disagree), ``failed``, ``timeout`` or
  ``not run``.
- :func:`verify_record` does that for a stored artifact version;
  :func:`verify_and_record` also stores the verdict and, asked to repair,
  runs the search of :mod:`lineapy_ext.repair` and stores the slice found.
- :func:`schedule` hands a verification to the :class:`BackgroundVerifier`:
  a worker process (``python -m lineapy_ext.verify``, job on stdin) that
  stores the verdict itself; the kernel never waits for it and kills it at
  exit.  :func:`current_verdict` and :func:`finished_notices` are what the
  API and the magics show.
"""

from __future__ import annotations

import ast
import atexit
import functools
import json
import logging
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from lineapy_ext.store.verifications import Verdict

log = logging.getLogger(__name__)

#: Default time limit of one slice run, in seconds (trait ``verify_timeout``).
DEFAULT_TIMEOUT = 300.0
#: Verdicts a repair is tried for: a left-out mutation makes a slice differ
#: or fail, a left-out seed makes it nondeterministic.
REPAIRABLE = ("differs", "failed", "nondeterministic")
#: Input directories with more files than this are not copied.
MAX_INPUT_FILES = 2000
_SLICE_FILE = "slice.py"

#: The child's program: guard, run the slice as ``__main__``, pickle the value.
_RUNNER = r"""
import json, os, sys, time, traceback, types
slice_path, out_dir, var, mem, parent = sys.argv[1:6]
def _result(**kw):
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(kw, f)
try:
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
except Exception:
    pass
if os.getppid() != int(parent):
    os._exit(3)
if int(mem) > 0:
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (int(mem), int(mem)))
    except Exception:
        pass
sys.argv = [slice_path]
sys.path[0] = os.getcwd()  # imports resolve as in a notebook: from the working dir, not from here
main = types.ModuleType("__main__")
main.__file__ = slice_path
sys.modules["__main__"] = main
with open(slice_path, encoding="utf-8") as f:
    code = compile(f.read(), slice_path, "exec")
start = time.perf_counter()
try:
    exec(code, main.__dict__)
except BaseException as e:
    lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == slice_path]
    _result(status="failed", error=traceback.format_exception_only(type(e), e)[-1].strip(),
            line=lines[-1] if lines else None)
    sys.exit(0)
seconds = time.perf_counter() - start
if var not in main.__dict__:
    _result(status="failed", error=f"NameError: the slice does not define {var!r}", line=None)
    sys.exit(0)
try:
    import cloudpickle
    with open(os.path.join(out_dir, "value.pkl"), "wb") as f:
        cloudpickle.dump(main.__dict__[var], f, protocol=5)
except BaseException as e:
    _result(status="unpicklable", error=traceback.format_exception_only(type(e), e)[-1].strip())
    sys.exit(0)
_result(status="ok", seconds=seconds)
"""


@dataclass
class RunResult:
    """One run of a slice in a child process.

    ``status`` is ``ok`` (the value is in ``value_path``), ``failed`` (the
    slice raised ``error`` at slice line ``line``), ``unpicklable``,
    ``timeout`` or ``crashed`` (the child died; ``error`` is its stderr's last line).
    """

    status: str
    value_path: str | None = None
    error: str = ""
    line: int | None = None
    seconds: float = 0.0


# -- input files ------------------------------------------------------------------


def _path_literals(tree: ast.AST) -> set[str]:
    """Strings the code could use as paths: literals and joins of literals."""
    found: set[str] = set()

    def folded(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # Path("d") / "f.csv"
            left, right = folded(node.left), folded(node.right)
            return f"{left}/{right}" if left is not None and right is not None else None
        if isinstance(node, ast.Call) and node.args and not node.keywords:
            parts = [folded(a) for a in node.args]
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if None not in parts and name in ("join", "Path", "PurePath"):
                return "/".join(parts)
        return None

    for node in ast.walk(tree):
        value = folded(node)
        if value:
            found.add(value)
        if isinstance(node, ast.Import):
            found.update(f"{a.name.split('.')[0]}.py" for a in node.names)
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update((f"{node.module.split('.')[0]}.py", node.module.split(".")[0]))
    return found


def find_input_files(code: str, cwd: str, since: float | None) -> list[str]:
    """Return the files the slice reads from ``cwd``, relative to it.

    Parameters
    ----------
    code : str
        The slice.
    cwd : str
        The working directory the slice's relative paths refer to.
    since : float or None
        Epoch seconds the saving session started; files modified at or after
        it were written by the session and are left out.  ``None``: no filter.

    Returns
    -------
    list of str
        Sorted relative paths of regular files (a named directory contributes
        its files) inside ``cwd``.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    root = os.path.realpath(cwd)
    chosen: set[str] = set()
    for text in _path_literals(tree):
        if "\n" in text or "://" in text or os.path.isabs(text) or len(text) > 4096:
            continue
        full = os.path.realpath(os.path.join(root, text))
        if full == root or not full.startswith(root + os.sep):
            continue  # "", ".", "..", or a link out of cwd
        files = [full] if os.path.isfile(full) else list(_walk_files(full)) if os.path.isdir(full) else []
        for f in files:
            if since is None or os.stat(f).st_mtime < since:
                chosen.add(os.path.relpath(f, root))
    return sorted(chosen)


def _walk_files(directory: str):
    count = 0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            count += 1
            if count > MAX_INPUT_FILES:
                return
            yield os.path.join(dirpath, name)


def _copy_inputs(inputs: list[str], cwd: str, work: str) -> None:
    for rel in inputs:
        target = os.path.join(work, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(cwd, rel), target)
        # Read-only: a slice that writes its own input is caught, not silently served.
        os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


# -- running --------------------------------------------------------------------------


def memory_limit() -> int:
    """Address-space cap of a slice run in bytes: the machine's physical memory (0 = unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def fresh_environment() -> dict:
    """The environment variables this process started with.

    A new interpreter launched the way this kernel was gets these; what the
    session changed since (``%env X=1``, ``os.environ["X"] = ...``) is not
    in them, so a slice that needs such a change must contain it.  Read
    from ``/proc/self/environ`` (Linux: it keeps the start-up block);
    elsewhere the current ``os.environ``.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return dict(os.environ)
    return dict(os.fsdecode(i).split("=", 1) for i in items if b"=" in i)


def _child_env(env: dict | None) -> dict:
    env = dict(fresh_environment() if env is None else env)
    env["MPLBACKEND"] = "Agg"  # a plotting slice must not open windows
    return env


def run_slice(code: str, var: str, *, scratch: str, cwd: str, inputs: list[str], timeout: float,
              env: dict | None = None) -> RunResult:
    """Run ``code`` in a child ``python`` and pickle the value of ``var``.

    Parameters
    ----------
    code : str
        The slice.
    var : str
        The variable whose value is the result.
    scratch : str
        A private directory for this run (a ``work`` dir and the output go there).
    cwd, inputs : str, list of str
        Where the input files are and which (see :func:`find_input_files`).
    timeout : float
        Seconds before the child's process group is killed.
    env : dict, optional
        The child's environment (default: :func:`fresh_environment`).

    Returns
    -------
    RunResult
    """
    work, out = os.path.join(scratch, "work"), os.path.join(scratch, "out")
    os.makedirs(work)
    os.makedirs(out)
    _copy_inputs(inputs, cwd, work)
    slice_path = os.path.join(out, _SLICE_FILE)
    with open(slice_path, "w", encoding="utf-8") as f:
        f.write(code)
    runner = os.path.join(out, "_lineapy_verify_runner.py")
    with open(runner, "w", encoding="utf-8") as f:
        f.write(_RUNNER)
    argv = [sys.executable, runner, slice_path, out, var, str(memory_limit()), str(os.getpid())]
    with open(os.path.join(out, "stderr.txt"), "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=work, env=_child_env(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return RunResult("timeout", seconds=time.perf_counter() - start)
        finally:
            _kill_group(proc)
    return _read_result(out, time.perf_counter() - start)


def _kill_group(proc: subprocess.Popen) -> None:
    # The slice may have started processes of its own: the whole group goes.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    proc.wait()


def _read_result(out: str, seconds: float) -> RunResult:
    try:
        with open(os.path.join(out, "result.json"), encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        with open(os.path.join(out, "stderr.txt"), "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
        return RunResult("crashed", error=lines[-1] if lines else "the interpreter exited without a result", seconds=seconds)
    value_path = os.path.join(out, "value.pkl") if result["status"] == "ok" else None
    return RunResult(result["status"], value_path, result.get("error", ""), result.get("line"),
                     result.get("seconds", seconds))


def _load(path: str) -> Any:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


# -- verdicts ----------------------------------------------------------------------------


def _failure_verdict(run: RunResult, code: str, timeout: float) -> Verdict:
    if run.status == "timeout":
        return Verdict("timeout", f"the slice ran longer than {timeout:g} s")
    if run.status == "unpicklable":
        return Verdict("not run", f"the recomputed value cannot be pickled ({run.error})")
    detail = run.error
    if run.line:
        lines = code.splitlines()
        text = lines[run.line - 1].strip() if run.line <= len(lines) else ""
        detail += f" (slice line {run.line}: {text})"
    if run.status == "crashed":
        detail = f"the interpreter died: {detail}"
    return Verdict("failed", detail, line=run.line)


def verify_code(
    code: str,
    var: str,
    saved: Any,
    *,
    cwd: str,
    since: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tolerance: float = 0.0,
    second_run: bool = True,
    env: dict | None = None,
) -> Verdict:
    """Run ``code`` in a fresh interpreter and compare ``var`` with ``saved``.

    Parameters
    ----------
    code : str
        The slice.
    var : str
        The variable the slice binds to the value.
    saved : object
        The saved value.
    cwd : str
        Where the slice's input files are (the user's directory; it is only read).
    since : float, optional
        Start of the saving session (epoch seconds); see :func:`find_input_files`.
    timeout : float
        Seconds per run.
    tolerance : float
        Relative float tolerance; ``0`` compares exactly.
    second_run : bool
        Whether a value that differs is recomputed once more to tell
        ``differs`` from ``nondeterministic`` (without: ``differs``).
    env : dict, optional
        Environment of the slice runs (default: :func:`fresh_environment`).

    Returns
    -------
    Verdict
        Not stored; ``seconds`` is the wall time of the whole verification.
    """
    from lineapy_ext.compare import NotComparable, first_difference

    start = time.perf_counter()
    inputs = find_input_files(code, cwd, since)
    scratch = tempfile.mkdtemp(prefix="lineapy-verify-")
    try:
        run = functools.partial(run_slice, code, var, cwd=cwd, inputs=inputs, timeout=timeout, env=env)
        first = run(scratch=os.path.join(scratch, "1"))
        if first.status != "ok":
            verdict = _failure_verdict(first, code, timeout)
        else:
            recomputed = _load(first.value_path)
            difference = first_difference(saved, recomputed, tolerance=tolerance, root=var)
            if difference is None:
                verdict = Verdict("verified")
            elif not second_run:
                verdict = Verdict("differs", difference)
            else:
                verdict = _second_opinion(run, code, var, recomputed, difference, scratch, timeout, tolerance)
    except NotComparable as e:
        verdict = Verdict("not run", f"the values cannot be compared: {e}")
    except Exception as e:  # e.g. a value that unpickles only in its own process
        verdict = Verdict("not run", f"the recomputed value cannot be judged: {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return replace(verdict, seconds=time.perf_counter() - start)


def _second_opinion(run, code, var, recomputed, difference, scratch, timeout, tolerance) -> Verdict:
    """A second run tells a wrong slice (both runs agree) from a random one."""
    from lineapy_ext.compare import first_difference

    second = run(scratch=os.path.join(scratch, "2"))
    if second.status != "ok":
        return Verdict("nondeterministic", f"a second run ended differently: {_failure_verdict(second, code, timeout).detail}")
    between = first_difference(recomputed, _load(second.value_path), tolerance=tolerance, root=var)
    if between is not None:
        return Verdict("nondeterministic", f"two runs disagree: {between}")
    return Verdict("differs", difference)


# -- stored artifacts ------------------------------------------------------------------------


def why_not_run(record) -> str | None:
    """The reason ``record`` cannot be verified, or ``None`` if it can."""
    if not record.slice_code.strip():
        return "the artifact has no slice (saved without IPython, or no variable held the value)"
    if not record.var_names:
        return "the artifact does not say which variable holds its value"
    if record.backend == "mlflow":
        return "the value lives in MLflow; its model is not compared"
    return None


def session_start(store, record, current_session_id: str | None = None) -> float | None:
    """Epoch seconds the session that saved ``record`` started (``None`` if unknown).

    For the running session this is the process start (the session's row is
    only written at its first save); otherwise the session's recorded start.
    """
    if record.session_id == current_session_id:
        try:
            import psutil

            return psutil.Process().create_time()
        except Exception:  # psutil comes with ipykernel; without it, the row's time
            pass
    session = store.db.get_session(record.session_id)
    return session.started_at.timestamp() if session is not None else None


def load_saved(store, record) -> tuple[Any, Verdict | None]:
    """The saved value of ``record``, or ``(None, a "not run" verdict saying why not)``."""
    reason = why_not_run(record)
    if reason:
        return None, Verdict("not run", reason)
    try:
        return store.load(record), None
    except Exception as e:
        return None, Verdict("not run", f"the saved value cannot be loaded: {type(e).__name__}: {e}")


def verify_record(store, record, *, cwd: str, since: float | None, timeout: float, tolerance: float,
                  env: dict | None = None) -> Verdict:
    """Verify the slice of artifact version ``record``; the verdict is not stored."""
    saved, refusal = load_saved(store, record)
    if refusal is not None:
        return refusal
    return verify_code(record.slice_code, record.var_names[0], saved,
                       cwd=cwd, since=since, timeout=timeout, tolerance=tolerance, env=env)


# -- background ------------------------------------------------------------------------------


class BackgroundVerifier:
    """Verify artifacts one at a time in worker processes, without blocking the caller.

    A daemon thread takes jobs from a queue and runs each in ``python -m
    lineapy_ext.verify`` (its own process group; the job, secrets included,
    goes through a pipe, never a file or argv); the worker stores the
    verdict.  At exit, queued jobs are dropped and a running worker is
    killed with its slice; on Linux a worker also dies when its parent does.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pending: set[tuple[str, int]] = set()
        self._done: list[tuple[str, int]] = []
        self._current: subprocess.Popen | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="lineapy-verify", daemon=True)
        self._thread.start()
        atexit.register(self.shutdown)

    def submit(self, key: tuple[str, int], job: dict) -> None:
        """Queue verification ``job`` of artifact version ``key`` = ``(name, version)``."""
        with self._lock:
            if self._closed:
                return
            self._pending.add(key)
        self._jobs.put((key, job))

    def pending(self, key: tuple[str, int]) -> bool:
        """Whether ``key`` is queued or running."""
        with self._lock:
            return key in self._pending

    def take_finished(self, names=None) -> list[tuple[str, int]]:
        """Return (and forget) finished ``(name, version)`` keys, only of ``names`` if given."""
        with self._lock:
            taken = [k for k in self._done if names is None or k[0] in names]
            self._done = [k for k in self._done if k not in taken]
        return taken

    def wait(self, timeout: float) -> bool:
        """Block until nothing is pending (tests, scripts); return whether that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.05)
        return False

    def _loop(self) -> None:
        while True:
            key, job = self._jobs.get()
            try:
                self._run(job)
            except Exception:
                log.warning("background verification of %s version %s failed to start", *key, exc_info=True)
            with self._lock:
                self._pending.discard(key)
                self._done.append(key)

    def _run(self, job: dict) -> None:
        import pickle

        with self._lock:
            if self._closed:
                return
            self._current = proc = subprocess.Popen(
                [sys.executable, "-m", "lineapy_ext.verify", str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, cwd=job["cwd"],
            )
        try:
            proc.stdin.write(pickle.dumps(job))
            proc.stdin.close()
            proc.wait()
        finally:
            with self._lock:
                self._current = None

    def shutdown(self) -> None:
        """Drop queued jobs and kill a running worker (its slice goes with it)."""
        with self._lock:
            self._closed = True
            proc = self._current
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the worker kills its slice's group
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass


_background: BackgroundVerifier | None = None
_background_lock = threading.Lock()


def background() -> BackgroundVerifier:
    """The process-wide :class:`BackgroundVerifier` (started on first use)."""
    global _background
    with _background_lock:
        if _background is None:
            _background = BackgroundVerifier()
        return _background


def background_if_started() -> BackgroundVerifier | None:
    """The :class:`BackgroundVerifier` if one was started, without starting one."""
    return _background


#: Options a worker needs to open the same store as its kernel.
JOB_OPTIONS = ("database_url", "artifact_storage_dir", "storage_options", "default_storage_backend",
               "default_storage_backend_options", "mlflow_tracking_uri", "mlflow_registry_uri")


def _worker_main(parent: int) -> int:
    """``python -m lineapy_ext.verify PARENT_PID``: verify the job on stdin and store the verdict."""
    import pickle

    from lineapy_ext.config import LineaPy
    from lineapy_ext.store.artifact_store import ArtifactStore
    from lineapy_ext.store.verifications import record_verdict

    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != parent:
        return 3
    # SIGTERM unwinds through run_slice's ``finally``, which kills the slice.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    job = pickle.load(sys.stdin.buffer)
    options = LineaPy()
    for key in JOB_OPTIONS:
        options.set(key, job["options"][key])
    store = ArtifactStore(options)
    try:
        record = store.db.get_artifact(job["name"], job["version"])
        if record is None:
            return 0  # deleted meanwhile
        try:
            verdict = verify_record(store, record, cwd=job["cwd"], since=job["since"],
                                    timeout=job["timeout"], tolerance=job["tolerance"], env=job["env"])
        except Exception as e:  # say so in the metadata rather than leave "pending" forever
            verdict = Verdict("not run", f"the verification itself failed: {type(e).__name__}: {e}")
        record_verdict(store.db, record.id, _masked(verdict, options), record.slice_code)
    finally:
        store.close()
    return 0



def _masked(verdict: Verdict, options) -> Verdict:
    """``verdict`` with configured secrets masked (a detail may quote a value or a URL)."""
    from lineapy_ext.secrets import Scrubber

    return replace(verdict, detail=Scrubber(options).text(verdict.detail, "a verdict"))


# -- orchestration for the API -------------------------------------------------------------------


def verify_and_record(store, record, options, *, cwd: str, since: float | None, timeout: float | None = None,
                      repair: bool = False, max_runs: int | None = None):
    """Verify ``record`` now, store the verdict, and with ``repair`` fix a slice that does not verify.

    Parameters
    ----------
    store : ArtifactStore
    record : ArtifactRecord
    options : LineaPy
        ``verify_timeout`` and ``verify_tolerance`` come from here.
    cwd : str
        Where the slice's input files are.
    since : float or None
        Start of the saving session (see :func:`find_input_files`).
    timeout : float, optional
        Overrides ``options.verify_timeout``.
    repair : bool
        When the verdict is in :data:`REPAIRABLE`, search the session for a
        slice that verifies (:mod:`lineapy_ext.repair`) and store it.
    max_runs : int, optional
        Bound on the slice runs of a repair.

    Returns
    -------
    (Verdict, Repair or None)
        The stored verdict (of the repaired slice when a repair was found).
    """
    from lineapy_ext.store.verifications import record_verdict

    timeout = float(timeout or options.verify_timeout)
    tolerance = float(options.verify_tolerance)
    saved, verdict = load_saved(store, record)
    if verdict is None:
        verdict = verify_code(record.slice_code, record.var_names[0], saved, cwd=cwd, since=since,
                              timeout=timeout, tolerance=tolerance)
    result = None
    if repair and verdict.status in REPAIRABLE:
        result = _repair(store, record, saved, cwd=cwd, since=since, timeout=timeout, tolerance=tolerance,
                         max_runs=max_runs)
        if result.found:
            from lineapy_ext.environment import extend
            from lineapy_ext.store.verifications import replace_slice

            # An added import is recorded too (at the version installed now).
            replace_slice(store.db, record.id, result.code, result.cells, extend(record.environment, result.code))
            added = [s.source for s in result.added]
            verdict = Verdict(result.verdict.status, result.verdict.detail, result.verdict.seconds,
                              added_statements=added)
            return record_verdict(store.db, record.id, _masked(verdict, options), result.code), result
    return record_verdict(store.db, record.id, _masked(verdict, options), record.slice_code), result


def _repair(store, record, saved, *, cwd, since, timeout, tolerance, max_runs):
    from lineapy_ext import repair

    earlier = sum(
        1 for v in store.db.versions(record.name)
        if v < record.version and getattr(store.db.get_artifact(record.name, v), "session_id", None) == record.session_id
    )
    statements, notes = repair.session_statements(store.db.cells(record.session_id), record.name, earlier)
    p = repair.plan(record.slice_code, statements)
    p.notes[:0] = notes

    def test(code: str) -> Verdict:
        return verify_code(code, record.var_names[0], saved, cwd=cwd, since=since, timeout=timeout,
                           tolerance=tolerance, second_run=False)

    result = repair.search(p, test, max_runs or repair.DEFAULT_MAX_RUNS)
    result.notes = p.notes + result.notes
    return result


def schedule(store, record, options, *, cwd: str, since: float | None) -> bool:
    """Queue a background verification of ``record``; return whether one was queued."""
    if why_not_run(record):
        return False
    job = {
        "name": record.name,
        "version": record.version,
        "cwd": cwd,
        "since": since,
        "timeout": float(options.verify_timeout),
        "tolerance": float(options.verify_tolerance),
        "options": {k: getattr(options, k) for k in JOB_OPTIONS},
        "env": fresh_environment(),  # the kernel's, not the worker's
    }
    background().submit((record.name, record.version), job)
    return True


def finished_notices(db, names=None) -> list[str]:
    """One line per background verification that finished since the last call (of ``names`` only if given)."""
    from lineapy_ext.store.verifications import latest_verdicts

    bg = background_if_started()
    lines = []
    for name, version in bg.take_finished(names) if bg is not None else []:
        record = db.get_artifact(name, version)
        verdict = latest_verdicts(db, [record.id]).get(record.id) if record is not None else None
        if verdict is not None:
            lines.append(f"Background verification of {name!r} version {version}: {verdict}")
    return lines


def current_verdict(db, record) -> Verdict | None:
    """The verdict to show for ``record``: ``pending`` while a background run is on, else the latest stored."""
    from lineapy_ext.store.verifications import latest_verdicts

    bg = background_if_started()
    if bg is not None and bg.pending((record.name, record.version)):
        return Verdict("pending", "a background verification is running")
    return latest_verdicts(db, [record.id]).get(record.id)


if __name__ == "__main__":
    sys.exit(_worker_main(int(sys.argv[1])))
