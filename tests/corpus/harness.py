"""Run the realistic corpus: notebooks cell by cell in a real shell, slice, replay.

A corpus notebook is a plain file of cells separated by ``# %%`` lines,
with an optional header (comment lines before the first cell)::

    # inputs: sales.csv, stop.txt        files copied from tests/corpus/inputs/
    # order: 1,2,3,2,4                   execution order (1-based cell numbers)

and cells marked ``# %% raises`` that are expected to fail (a bug the
notebook then fixes in a later cell).  Any other cell that raises, or a
``raises`` cell that does not, is reported as a broken notebook.

The pipeline (:func:`run_corpus`):

1. each notebook runs in-process in a fresh ``InteractiveShell`` with
   ``%load_ext lineapy_ext``, in a temp dir holding copies of its inputs;
   every top-level variable (modules aside: they are imports, not values)
   is pictured with :func:`tests.corpus.canon.corpus_canon` and sliced with
   the tracker, exactly as ``%lineapy save VAR`` does;
2. concurrently, one reference ``python`` runs every notebook again the same
   way (its own process: other hash seed, fresh global RNGs, other temp
   dirs); a variable is a *target* when its picture is the same in both runs,
   otherwise it is reported as nondeterministic;
3. each distinct slice is replayed by a fresh ``python`` in a fresh dir that
   holds only the notebook's input files (a pool of workers), and its
   targets' pictures are compared with the session's.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent
NOTEBOOKS_DIR = CORPUS_DIR / "notebooks"
INPUTS_DIR = CORPUS_DIR / "inputs"
REPO_ROOT = CORPUS_DIR.parent.parent
CANON_SOURCE = (CORPUS_DIR / "canon.py").read_text()

#: Environment of every child python: no display, quiet libraries.  Thread
#: counts are left as in the session's process: estimators record them
#: (KMeans._n_threads), so a different count would make a value differ.
CHILD_ENV = {"MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", "MLFLOW_DISABLE_TELEMETRY": "true"}

# The picture code runs in a namespace of its own: a slice's ``from numpy
# import *`` rebinds ``bool``, ``all``, ``max``... in the script's globals.
_REPLAY_POSTLUDE = """

import pickle as _corpus_pickle
import sys as _corpus_sys_mod
_corpus_ns = {"__name__": "corpus_canon"}
exec(%r, _corpus_ns)
corpus_canon = _corpus_ns["corpus_canon"]
_corpus_out = {}
for _corpus_n in %r:
    if _corpus_n not in globals():
        _corpus_out[_corpus_n] = ("missing", None)
        continue
    try:
        _corpus_out[_corpus_n] = ("ok", corpus_canon(globals()[_corpus_n]))
    except Exception as _corpus_e:
        _corpus_out[_corpus_n] = ("canon-error", repr(_corpus_e))
with open(_corpus_sys_mod.argv[1], "wb") as _corpus_f:
    _corpus_pickle.dump(_corpus_out, _corpus_f)
"""


@dataclass
class Cell:
    """One cell of a corpus notebook (``number`` is 1-based)."""

    number: int
    source: str
    raises: bool = False


@dataclass
class Notebook:
    """A parsed corpus notebook."""

    name: str
    path: Path
    cells: list[Cell]
    order: list[int]
    inputs: list[str]

    def executed(self) -> list[Cell]:
        """The cells in execution order (re-runs repeated)."""
        by_number = {c.number: c for c in self.cells}
        return [by_number[n] for n in self.order]


def load_notebook(path: Path) -> Notebook:
    """Parse a ``# %%`` notebook file with its ``# inputs:`` / ``# order:`` header."""
    header, cells, current, raises = [], [], None, False
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            if current is not None:
                cells.append(Cell(len(cells) + 1, "\n".join(current).strip("\n") + "\n", raises))
            current, raises = [], line[4:].strip() == "raises"
        elif current is None:
            header.append(line)
        else:
            current.append(line)
    if current is not None:
        cells.append(Cell(len(cells) + 1, "\n".join(current).strip("\n") + "\n", raises))
    meta = {}
    for line in header:
        key, _, value = line.lstrip("# ").partition(":")
        meta[key.strip()] = value.strip()
    inputs = [s.strip() for s in meta.get("inputs", "").split(",") if s.strip()]
    order = [int(s) for s in meta["order"].split(",")] if meta.get("order") else [c.number for c in cells]
    return Notebook(path.stem, path, cells, order, inputs)


def all_notebooks() -> list[Notebook]:
    """Every notebook of the corpus, by file name."""
    return [load_notebook(p) for p in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))]


def code_lines(code: str) -> int:
    """Lines that are code (not blank, not a comment): the size unit of slices and sessions."""
    return sum(1 for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def fresh_workdir(nb: Notebook, root: Path, tag: str) -> Path:
    """A new empty dir under ``root`` holding copies of ``nb``'s input files only."""
    work = Path(tempfile.mkdtemp(prefix=f"{nb.name}-{tag}-", dir=root))
    for name in nb.inputs:
        shutil.copy(INPUTS_DIR / name, work / name)
    return work


# -- running a notebook in a shell ---------------------------------------------


@dataclass
class SessionRun:
    """What one run of a notebook in a shell produced."""

    pictures: dict[str, object] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    slices: dict[str, str] = field(default_factory=dict)
    slice_errors: dict[str, str] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    #: names whose last change was made by a cell that raised
    changed_by_failed_cell: set[str] = field(default_factory=set)
    session_lines: int = 0
    seconds: float = 0.0


def _imported(value) -> bool:
    """Modules, and functions and classes defined outside the session: imports, not values."""
    import types

    t = type(value)  # not isinstance: a lazy proxy's __class__ runs its factory
    if issubclass(t, types.ModuleType):
        return True
    if issubclass(t, (type, types.FunctionType, types.BuiltinFunctionType)):
        return getattr(value, "__module__", None) != "__main__"
    return False


_STAR_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\*", re.M)


def user_variables(shell, sources: list[str] = ()) -> dict[str, object]:
    """Top-level user variables of ``shell`` (IPython's names, ``_x`` and imported names aside).

    ``sources``: the executed cells, for the names that ``from M import *`` bound.
    """
    from kernel_hooks.capture import is_ipython_name

    starred = [sys.modules[m] for src in sources for m in _STAR_IMPORT.findall(src) if m in sys.modules]
    hidden = getattr(shell, "user_ns_hidden", {})
    return {k: v for k, v in shell.user_ns.items()
            if not k.startswith("_") and not is_ipython_name(k) and k not in hidden and not _imported(v)
            and not any(getattr(m, k, _MISSING) is v for m in starred)}


_MISSING = object()


def run_in_shell(nb: Notebook, workdir: Path, want_slices: bool) -> SessionRun:
    """Run ``nb`` cell by cell in a fresh shell with the extension loaded, in ``workdir``.

    The caller provides an isolated lineapy home (environment variables).
    Slicing is what ``%lineapy save VAR`` does: ``tracker.slice([VAR])``.
    """
    from lineapy_ext.context import get_context, reset_context
    from tests.corpus.canon import corpus_canon
    from tests.shells import close_shell, new_shell

    reset_context()
    run, start, cwd = SessionRun(), time.perf_counter(), os.getcwd()
    modules_before = set(sys.modules)
    os.chdir(workdir)
    # As in a kernel, modules the notebook writes to its dir are importable.
    sys.path.insert(0, "")
    shell = new_shell()
    # As in a Jupyter kernel (ipykernel's shell): %matplotlib inline needs no GUI event loop.
    shell.enable_gui = lambda gui=None: None
    try:
        shell.run_line_magic("load_ext", "lineapy_ext")
        tracker = get_context().tracker
        _run_cells(shell, nb, run)
        for name, value in user_variables(shell, [c.source for c in nb.cells]).items():
            try:
                run.pictures[name] = corpus_canon(value)
            except Exception as e:  # a gap of canon.py, reported by the test
                run.unreadable[name] = repr(e)
            if want_slices:
                try:
                    run.slices[name] = tracker.slice([name]).code
                except Exception as e:
                    run.slice_errors[name] = f"{type(e).__name__}: {e}"
    finally:
        try:
            shell.run_line_magic("unload_ext", "lineapy_ext")
        finally:
            close_shell(shell)
            os.chdir(cwd)
            sys.path.remove("")
            _forget_modules(set(sys.modules) - modules_before, workdir)
    run.seconds = time.perf_counter() - start
    return run


def _forget_modules(names: set[str], workdir: Path) -> None:
    """Drop modules imported from the notebook's dir: the next notebook may write its own."""
    for name in names:
        path = getattr(sys.modules.get(name), "__file__", None) or ""
        if path and Path(path).resolve().is_relative_to(workdir.resolve()):
            del sys.modules[name]


def _snapshot(shell) -> dict[str, object]:
    from tests.corpus.canon import corpus_canon

    out = {}
    for name, value in user_variables(shell).items():
        try:
            out[name] = corpus_canon(value)
        except Exception:
            out[name] = ("unreadable", id(value))
    return out


def _run_cells(shell, nb: Notebook, run: SessionRun) -> None:
    """Run the cells in order; note which variables a cell that raised changed last.

    The issue allows a refusal to slice those (the failed statement's partial
    effects cannot be replayed), provided it says why.
    """
    watch = any(c.raises for c in nb.cells)
    before = _snapshot(shell) if watch else {}
    for cell in nb.executed():
        result = shell.run_cell(cell.source, store_history=True)
        if result.success == cell.raises:
            err = result.error_in_exec or result.error_before_exec
            what = f"raised {err!r}" if err is not None else "did not raise"
            run.broken.append(f"cell {cell.number} {what}")
        run.session_lines += code_lines(cell.source)
        if watch:
            after = _snapshot(shell)
            changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
            if result.success:
                run.changed_by_failed_cell -= changed
            else:
                run.changed_by_failed_cell |= changed
            before = after


# -- replaying slices ------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child python: the machine's, without PYTHONPATH (a fresh python)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CHILD_ENV)
    env.update(extra)
    return env


def run_script(code: str, names: list[str], nb: Notebook, root: Path, tag: str = "replay") -> dict:
    """Run ``code`` with a plain ``python`` in a fresh dir holding only ``nb``'s inputs.

    Returns ``{name: (status, picture_or_detail)}`` with status ``ok``,
    ``missing`` (the code did not bind it), ``canon-error`` or ``error``
    (the code raised; detail is the end of stderr).
    """
    work = fresh_workdir(nb, root, tag)
    script, out = work.parent / f"{work.name}.py", work.parent / f"{work.name}.pkl"
    script.write_text(code + _REPLAY_POSTLUDE % (CANON_SOURCE, list(names)))
    try:
        # Fed on stdin so that, as for a user's script in that dir, the dir is sys.path[0].
        with open(script) as stdin:
            proc = subprocess.run([sys.executable, "-", str(out)], cwd=work, env=child_env(), stdin=stdin,
                                  capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {n: ("error", "timed out after 300 s") for n in names}
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return {n: ("error", tail) for n in names}
    try:
        with open(out, "rb") as f:
            return pickle.load(f)
    except Exception as e:  # a gap of canon.py: a picture that is not plain data
        return {n: ("canon-error", f"cannot read the replay's picture: {e!r}") for n in names}


# -- the whole corpus --------------------------------------------------------------


@dataclass
class NotebookResult:
    """Outcome of one notebook: targets, replays, sizes."""

    name: str
    session_lines: int = 0
    seconds: float = 0.0
    targets: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    #: name -> (status, detail, slice code)
    failures: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: name -> the engine's message, for values last changed by a cell that raised
    refused: dict[str, str] = field(default_factory=dict)
    #: name -> first difference between the two runs of the notebook
    nondeterministic: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    #: name -> slice lines / session lines
    ratios: dict[str, float] = field(default_factory=dict)
    slices: dict[str, str] = field(default_factory=dict)
    pictures: dict[str, object] = field(default_factory=dict)

    @property
    def median_ratio(self) -> float | None:
        vals = [self.ratios[n] for n in self.targets if n in self.ratios]
        return round(statistics.median(vals), 3) if vals else None

    def summary(self) -> dict:
        """The per-notebook record: counts and the median slice/session size ratio."""
        return {"targets": len(self.targets), "replayed_ok": len(self.ok), "failed": sorted(self.failures),
                "refused_after_failed_cell": sorted(self.refused),
                "nondeterministic": {n: d[:160] for n, d in sorted(self.nondeterministic.items())}, "session_lines": self.session_lines,
                "median_slice_ratio": self.median_ratio, "seconds": round(self.seconds, 2)}


def _start_reference(notebooks: list[Notebook], root: Path) -> tuple[subprocess.Popen, Path]:
    out = root / "reference"
    out.mkdir()
    home = root / "reference-home"
    home.mkdir()
    env = child_env(PYTHONPATH=str(REPO_ROOT), LINEAPY_HOME_DIR=str(home),
                    LINEAPY_DATABASE_URL=f"sqlite:///{home / 'db.sqlite'}",
                    LINEAPY_ARTIFACT_STORAGE_DIR=str(home / "linea_pickles"))
    cmd = [sys.executable, "-m", "tests.corpus.reference", str(out), str(root)] + [str(nb.path) for nb in notebooks]
    log = open(root / "reference.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, out


def _judge(nb: Notebook, run: SessionRun, ref: dict | None, replays: dict[str, dict]) -> NotebookResult:
    res = NotebookResult(nb.name, run.session_lines, run.seconds, unreadable=dict(run.unreadable),
                         broken=list(run.broken), slices=dict(run.slices), pictures=dict(run.pictures))
    if ref is None:
        res.broken.append("the reference run produced nothing (see reference.log)")
        return res
    from tests.corpus.canon import corpus_first_difference

    for name, picture in run.pictures.items():
        other = ref["pictures"].get(name, "<not bound in the reference run>")
        if other != picture:
            res.nondeterministic[name] = corpus_first_difference(picture, other) or "?"
            continue
        res.targets.append(name)
        code = run.slices.get(name)
        if code is None and name in run.changed_by_failed_cell:
            res.refused[name] = run.slice_errors.get(name, "?")
            continue
        if code is None:
            res.failures[name] = ("slice-error", run.slice_errors.get(name, "?"), "")
            continue
        res.ratios[name] = round(code_lines(code) / max(run.session_lines, 1), 4)
        status, got = replays[code].get(name, ("missing", None))
        if status == "ok" and got == picture:
            res.ok.append(name)
        elif status == "ok":
            res.failures[name] = ("wrong value", corpus_first_difference(picture, got), code)
        else:
            res.failures[name] = (status, str(got), code)
    return res


def run_corpus(notebooks: list[Notebook], root: Path, workers: int = 2) -> dict[str, NotebookResult]:
    """Run, slice and replay ``notebooks``; ``root`` is a scratch dir.

    The caller provides an isolated lineapy home for the in-process runs.
    """
    proc, ref_dir = _start_reference(notebooks, root)
    runs: dict[str, SessionRun] = {}
    futures: dict[str, dict[str, Future]] = {}
    with ThreadPoolExecutor(workers) as pool:
        for nb in notebooks:
            run = runs[nb.name] = run_in_shell(nb, fresh_workdir(nb, root, "session"), want_slices=True)
            groups: dict[str, list[str]] = {}
            for name, code in run.slices.items():
                if name in run.pictures:
                    groups.setdefault(code, []).append(name)
            futures[nb.name] = {code: pool.submit(run_script, code, names, nb, root)
                                for code, names in groups.items()}
        try:
            proc.wait(timeout=1800)
        except subprocess.TimeoutExpired:
            proc.kill()
        results = {}
        for nb in notebooks:
            replays = {code: f.result() for code, f in futures[nb.name].items()}
            ref_file = ref_dir / f"{nb.name}.pkl"
            ref = pickle.loads(ref_file.read_bytes()) if ref_file.exists() else None
            results[nb.name] = _judge(nb, runs[nb.name], ref, replays)
    return results


def isolated_home(root: Path) -> dict[str, str]:
    """Environment variables that point lineapy at a fresh home under ``root``."""
    home = root / "lineapy_home"
    home.mkdir(exist_ok=True)
    return {"LINEAPY_HOME_DIR": str(home), "LINEAPY_DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}",
            "LINEAPY_ARTIFACT_STORAGE_DIR": str(home / "linea_pickles"), "MPLBACKEND": "Agg"}


def failure_report(results: dict[str, NotebookResult]) -> str:
    """Every wrong slice, with its code: what ``python -m tests.corpus.harness`` prints."""
    out = []
    for name, res in results.items():
        for var, (status, detail, code) in sorted(res.failures.items()):
            out.append(f"### {name} :: {var} ({status})\n{detail}\n```python\n{code}```\n")
        for var, message in sorted(res.refused.items()):
            out.append(f"### {name} :: {var} (refused after a failed cell, accepted)\n{message}\n")
        if res.broken:
            out.append(f"### {name}: notebook broken: {res.broken}\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """``python -m tests.corpus.harness [NAME_PREFIX...]``: run (part of) the corpus, print the outcome."""
    notebooks = [nb for nb in all_notebooks() if not argv or any(nb.name.startswith(a) for a in argv)]
    root = Path(tempfile.mkdtemp(prefix="corpus-"))
    os.environ.update(isolated_home(root))
    start = time.perf_counter()
    results = run_corpus(notebooks, root)
    print(failure_report(results))
    for name, res in results.items():
        print(name, res.summary())
    print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
