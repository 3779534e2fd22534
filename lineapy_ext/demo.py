"""``python -m lineapy_ext demo``: the example notebooks, headless, in real kernels.

Each bundled example notebook (package data in ``lineapy_ext/notebooks/``,
a copy of the repository's ``notebooks/``) runs in its own fresh ipykernel
process (nbclient), all on the embedded default store (SQLite + a local
folder under one ``LINEAPY_HOME_DIR``): the first saves a model, the second
gets it back in another kernel and re-runs its slice.  Afterwards a plain
``python`` process reads the store through the public API, and a short report
says what was saved, shows the model's slice next to the size of the session
it was cut from, whether the values matched after reload, and where the
executed notebooks were written.

The notebook runner (:func:`run_notebook`) is also what the notebook tests use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The example notebooks, shipped as package data (so the demo works from
#: any install); ``notebooks/make_notebooks.py`` keeps them equal to the
#: repository's ``notebooks/``.
NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"

#: The artifact whose slice the report shows (the first saved one if absent).
SHOWCASE = "iris_model"

#: Cells tagged with this report a check; their printed output goes in the report.
CHECK_TAG = "lineapy-check"

# Environment variables that would point the kernels away from the embedded
# default store under the demo's home directory.
_STORE_VARS = ("LINEAPY_DATABASE_URL", "LINEAPY_ARTIFACT_STORAGE_DIR", "LINEAPY_MLFLOW_TRACKING_URI")


@dataclass
class NotebookRun:
    """What happened when one notebook ran in one kernel."""

    name: str
    kernel_pid: int | None
    seconds: float
    code_cells: int
    error: str | None = None
    checks: list[str] = field(default_factory=list)
    notebook: object = None

    @property
    def ok(self) -> bool:
        return self.error is None


def kernel_env(home: str | os.PathLike) -> dict[str, str]:
    """Environment for demo kernels: the embedded default store under ``home``.

    Parameters
    ----------
    home : path-like
        The ``LINEAPY_HOME_DIR`` (SQLite database and value folder go under it).

    Returns
    -------
    dict
        A copy of ``os.environ`` with lineapy's store variables replaced.
    """
    env = {k: v for k, v in os.environ.items() if k not in _STORE_VARS}
    env["LINEAPY_HOME_DIR"] = str(home)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def kernel_spec_manager(directory: str | os.PathLike):
    """A kernelspec manager whose ``python3`` kernel is this interpreter's ipykernel.

    Jupyter would otherwise resolve ``python3`` through the user's data
    directories, which may point at another Python without lineapy_ext.

    Parameters
    ----------
    directory : path-like
        Where to write the kernelspec (a ``python3`` folder is created in it).
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = Path(directory)
    if not (kernels / "python3").exists():
        write_kernel_spec(kernels / "python3")
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


def run_notebook(
    path: str | os.PathLike,
    *,
    home: str | os.PathLike,
    workdir: str | os.PathLike,
    kernel_dirs: str | os.PathLike,
    timeout: int = 600,
) -> NotebookRun:
    """Execute one notebook in a new kernel process and collect what happened.

    Parameters
    ----------
    path : path-like
        The notebook.
    home : path-like
        ``LINEAPY_HOME_DIR`` of the kernel.
    workdir : path-like
        The kernel's working directory (exported files land here).
    kernel_dirs : path-like
        Directory for the pinned ``python3`` kernelspec (:func:`kernel_spec_manager`).
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    NotebookRun
        With the executed notebook in ``.notebook``; a failing cell is
        reported in ``.error`` rather than raised.
    """
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    # IPC sockets: local-only, and ipykernel does not warn about plain TCP.
    # Under the temp dir, because socket paths are limited to ~100 bytes.
    km = AsyncKernelManager(
        kernel_name="python3",
        kernel_spec_manager=kernel_spec_manager(kernel_dirs),
        transport="ipc",
        ip=str(Path(tempfile.gettempdir()) / f"lineapy-demo-{os.getpid()}"),
    )
    pids: list[int] = []
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        resources={"metadata": {"path": str(workdir)}},
        on_notebook_start=lambda notebook: pids.append(km.provisioner.pid),
    )
    error = None
    start = time.perf_counter()
    try:
        # cleanup_kc: we made the kernel manager, but the kernel is still
        # this notebook's alone; shut it down when the notebook is done.
        client.execute(env=kernel_env(home), cleanup_kc=True)
    except CellExecutionError as exc:
        error = _first_line(str(exc))
    seconds = time.perf_counter() - start
    return NotebookRun(
        name=Path(path).name,
        kernel_pid=pids[0] if pids else None,
        seconds=seconds,
        code_cells=sum(c.cell_type == "code" for c in nb.cells),
        error=error,
        checks=_check_outputs(nb),
        notebook=nb,
    )


def _first_line(message: str) -> str:
    # nbclient's message repeats the cell source; the exception line is last.
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)  # terminal colours
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else message


def _check_outputs(nb) -> list[str]:
    found = []
    for cell in nb.cells:
        if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stdout":
                    found += [line for line in out["text"].splitlines() if line.strip()]
    return found


# Runs in a plain python process against the same store: a third process
# that sees what the kernels saved, through the public API only.
_SUMMARY_CODE = """
import json, lineapy_ext
rows = []
for art in lineapy_ext.artifact_store():
    rows.append(dict(
        name=art.name, version=art.version, backend=art.storage_backend,
        type=art.value_type, size=art.size,
        slice_lines=len(art.get_code().strip().splitlines()),
        session_lines=len(art.get_session_code().strip().splitlines()),
        code=art.get_code(), created_at=art.created_at.isoformat(),
    ))
print(json.dumps(rows))
"""


def store_summary(home: str | os.PathLike) -> list[dict]:
    """Describe the artifacts under ``home`` as seen from a fresh Python process.

    Returns
    -------
    list of dict
        One dict per artifact name (latest version): name, version, backend,
        type, size, slice_lines, session_lines, code (the slice), created_at.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _SUMMARY_CODE],
        env=kernel_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reading the store failed: {_first_line(proc.stderr)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_report(home, runs: list[NotebookRun], artifacts: list[dict]) -> str:
    """The demo's printed report (plain text)."""
    from lineapy_ext.magics import Table

    notebooks = Table(
        ["notebook", "kernel pid", "code cells", "seconds", "status"],
        [
            (r.name, r.kernel_pid, r.code_cells, f"{r.seconds:.1f}", "ok" if r.ok else f"FAILED: {r.error}")
            for r in runs
        ],
    )
    saved = Table(
        ["artifact", "version", "backend", "type", "slice lines", "session lines"],
        [
            (a["name"], a["version"], a["backend"], a["type"], a["slice_lines"], a["session_lines"])
            for a in artifacts
        ],
        empty="(none)",
    )
    checks = [c for run in runs for c in run.checks] or ["(no check ran)"]
    return "\n".join(
        [
            f"lineapy_ext demo: SQLite + local folder under {home}",
            "",
            "Notebooks, each in a fresh kernel:",
            repr(notebooks),
            "",
            "Artifacts saved (latest versions):",
            repr(saved),
            *_showcase(artifacts),
            "",
            "Values matched after reload:",
            *(f"  {c}" for c in checks),
        ]
    )


def _showcase(artifacts: list[dict]) -> list[str]:
    """Report lines: the model's slice, headed by its size next to its session's."""
    if not artifacts:
        return []
    art = next((a for a in artifacts if a["name"] == SHOWCASE), None)
    art = art or min(artifacts, key=lambda a: a["created_at"])
    return [
        "",
        f"The slice of {art['name']!r} (%lineapy code {art['name']}): {art['slice_lines']} lines, "
        f"cut from a session of {art['session_lines']} lines (prints, displays and exploration left out):",
        "",
        *(f"    {line}".rstrip() for line in art["code"].strip().splitlines()),
    ]


def main(home: str | None = None, notebooks: str | None = None, keep: bool = False) -> int:
    """Run the demo and print the report.

    Parameters
    ----------
    home : str, optional
        ``LINEAPY_HOME_DIR`` to use and keep; default: a temporary directory.
    notebooks : str, optional
        Directory of ``*.ipynb`` to run in name order; default: the bundled ones.
    keep : bool
        Keep the temporary directory (store, exported slices, executed notebooks).

    Returns
    -------
    int
        0 when every notebook ran, 1 otherwise.
    """
    import nbformat

    source = Path(notebooks) if notebooks else NOTEBOOKS_DIR
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks found in {source}; pass --notebooks DIR", file=sys.stderr)
        return 1
    root = Path(home) if home else Path(tempfile.mkdtemp(prefix="lineapy_demo_"))
    work, executed, kernels = root / "work", root / "executed", root / "kernels"
    for d in (work, executed, kernels):
        d.mkdir(parents=True, exist_ok=True)
    try:
        runs = []
        for path in paths:
            print(f"running {path.name} in a new kernel ...", flush=True)
            run = run_notebook(path, home=root, workdir=work, kernel_dirs=kernels)
            nbformat.write(run.notebook, executed / path.name)
            runs.append(run)
            if not run.ok:
                break  # later notebooks build on this one
        artifacts = store_summary(root)
        print()
        print(format_report(root, runs, artifacts))
        print()
        print(f"Executed notebooks (with their outputs): {executed}")
        print(f"Exported slices and files the notebooks wrote: {work}")
        if not (home or keep):
            print("Both are removed now with the temporary home; run with --keep (or --home DIR) to keep them.")
        return 0 if all(r.ok for r in runs) and len(runs) == len(paths) else 1
    finally:
        if not (home or keep):
            shutil.rmtree(root, ignore_errors=True)
