"""Pipeline targets: a directory that recomputes artifacts without lineapy_ext.

Every target writes ``pipeline.py`` (the generated module plus the runner CLI
of :mod:`.runner`), ``requirements.txt`` pinning the distributions of what
the slices import (at the versions recorded when the artifacts were saved,
else the installed ones), and a short ``README.md``:

- ``script``: run ``python pipeline.py [--PARAM VALUE ...]``; values land in
  ``outputs/NAME.pickle``.
- ``dvc``: ``dvc.yaml`` with one stage per artifact (deps: ``pipeline.py``;
  params: the artifact's parameters, from ``params.yaml``; outs: its pickle).
- ``airflow``: ``dag.py``, a TaskFlow DAG with one task per artifact; each
  task calls ``pipeline.run_task`` (a plain function), which writes the value
  to a data folder (DAG param ``data_dir``) and returns only its path.
  Artifacts sharing code run in order and pass the shared results on
  through files under ``data_dir/.shared/RUN_ID/``.

Relative paths in the slices keep meaning files of the folder the pipeline
was written from (the session's working directory, ``WORKDIR`` in
``pipeline.py``), whatever folder DVC or an Airflow worker runs the code in.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

from lineapy_ext.codegen.plan import CodegenError
from lineapy_ext.codegen.render import SENTINEL, Module, render_module
from lineapy_ext.codegen.runner import RUNNER_CODE, RUNNER_NAMES, WORKDIR_MARKER, WRAP_MARKER

#: The targets ``%lineapy pipeline --to`` accepts.
TARGETS = ("script", "dvc", "airflow")


def to_pipeline(artifacts, to: str, output_dir, input_parameters=(), force: bool = False) -> list[Path]:
    """Write a directory that recomputes ``artifacts`` without lineapy_ext.

    Parameters
    ----------
    artifacts : str, Artifact, or list of them
        Artifact names (latest version), ``(name, version)`` pairs or ``Artifact`` objects.
    to : {"script", "dvc", "airflow"}
        The target (see the module docstring).
    output_dir : str or path-like
        The directory to write; created if missing (its parent must exist).
    input_parameters : list of str
        Variables of the slices that become pipeline parameters.
    force : bool
        Overwrite files that exist already.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    CodegenError
        Unknown target, a parameter the slices do not read, files in the way.
    """
    from lineapy_ext.codegen import parameter_list, targets_for

    if to not in TARGETS:
        raise CodegenError(f"unknown pipeline target {to!r}: choose script, dvc or airflow")
    return write_pipeline(targets_for(artifacts), to, output_dir, parameter_list(input_parameters), force)


def write_pipeline(targets, kind: str, output_dir, parameters=(), force: bool = False) -> list[Path]:
    """Write pipeline ``kind`` recomputing ``targets`` into ``output_dir``.

    Parameters
    ----------
    targets : list of lineapy_ext.codegen.Target
        From :func:`lineapy_ext.codegen.targets_for`.
    kind : {"script", "dvc", "airflow"}
    output_dir : str or path-like
        Created if missing (its parent must exist).
    parameters : list of str
        Variables of the slices that become pipeline parameters.
    force : bool
        Overwrite files that exist already.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    CodegenError
        Unknown ``kind``, a bad parameter, or files in the way without ``force``.
    """
    if kind not in TARGETS:
        raise CodegenError(f"unknown pipeline target {kind!r}: choose script, dvc or airflow")
    title = f"Pipeline recomputing {', '.join(repr(t.name) for t in targets)} ({kind} target)."
    module = render_module(list(targets), list(dict.fromkeys(parameters)), title, reserved=RUNNER_NAMES)
    wraps = "\n".join(f"{name} = _passed_through_file({name})" for name in module.passable)
    runner = RUNNER_CODE.replace(WRAP_MARKER, "# Shared code runs once per Airflow run (see run_task).\n" + wraps
                                 if wraps else "")
    # Relative paths in the slices mean files of the session's folder (see runner.py).
    runner = runner.replace(WORKDIR_MARKER, f"WORKDIR = {os.getcwd()!r}")
    files = {"pipeline.py": module.source.rstrip("\n") + "\n\n" + runner.lstrip("\n"),
             "requirements.txt": requirements_text(module)}
    if kind == "dvc":
        files["params.yaml"] = params_yaml(module)
        files["dvc.yaml"] = dvc_yaml(module)
    elif kind == "airflow":
        files["dag.py"] = airflow_dag(module, _dag_id(targets))
    files["README.md"] = readme(kind, targets, module)
    return _write_files(Path(output_dir).expanduser(), files, force)


def _write_files(root: Path, files: dict, force: bool) -> list[Path]:
    existing = [name for name in files if (root / name).exists()]
    if existing and not force:
        raise CodegenError(f"{root} already has {', '.join(existing)}; use --force (force=True) to overwrite "
                           "or choose another directory")
    from lineapy_ext.export import make_folder

    make_folder(root, f"cannot write the pipeline to {str(root)!r}", CodegenError)
    try:
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
    except OSError as e:
        raise CodegenError(f"cannot write the pipeline to {str(root)!r}: {e.strerror or e}; "
                           "choose a writable directory") from e
    return [root / name for name in files]


def _dag_id(targets) -> str:
    return "lineapy_" + re.sub(r"\W", "_", "_".join(t.name for t in targets))[:200]


def imported_modules(module: Module) -> list[str]:
    """Top-level names of the modules the generated code imports (standard library excluded)."""
    from lineapy_ext.environment import top_level_imports

    return top_level_imports(item.stmt.node for group in module.groups for item in group.program)


def requirements_text(module: Module) -> str:
    """``requirements.txt``: ``dist==version`` for every distribution the generated code imports.

    The version is the one recorded when the artifacts were saved (what
    their values were computed with; for artifacts saved at different times
    the latest save's), else the installed one; comment lines say which.
    """
    from lineapy_ext.environment import pins

    targets = sorted((t for group in module.groups for t in group.targets),
                     key=lambda t: (t.created_at is None, str(t.created_at)))
    pinned, unknown = pins([t.environment for t in targets], imported_modules(module))
    pythons = sorted({t.environment["python"] for t in targets if t.environment and t.environment.get("python")})
    lines = ["# Pinned to the versions recorded when the artifacts were saved (what their values were computed "
             "with), else to the installed ones."]
    if pythons:
        lines.append(f"# Saved with Python {', '.join(pythons)}.")
    installed = sorted((d for d, (_, source) in pinned.items() if source == "installed"), key=str.lower)
    if installed:
        lines.append(f"# Not recorded at save, pinned at the installed version: {', '.join(installed)}.")
    lines += [f"# {name}: no installed distribution provides it; install it yourself" for name in unknown]
    lines += [f"{dist}=={version}" for dist, (version, _) in sorted(pinned.items(), key=lambda kv: kv[0].lower())]
    return "\n".join(lines) + "\n"


def _literal_params(module: Module) -> dict:
    return {k: ast.literal_eval(v) for k, v in module.parameters.items() if v != SENTINEL}


def params_yaml(module: Module) -> str:
    """``params.yaml``: one ``name: value`` line per parameter with a literal default (JSON values are YAML)."""
    lines = ["# Parameters of pipeline.py; dvc repro reruns the stages whose parameters changed."]
    for name, value in _literal_params(module).items():
        try:
            lines.append(f"{name}: {json.dumps(value)}")
        except TypeError:
            lines.append(f"# {name}: {value!r} has no YAML form; pass --{name} on the command line")
    for name, default in module.parameters.items():
        if default == SENTINEL:
            lines.append(f"# {name}: computed as in the session unless set here")
    return "\n".join(lines) + "\n"


def _artifact_params(module: Module, artifact: str) -> list[str]:
    names = []
    for group in module.groups:
        names += [b.name for b in group.bindings.values() if artifact in b.item.owners]
    return names


def dvc_yaml(module: Module) -> str:
    """``dvc.yaml``: a stage per artifact running ``pipeline.py --artifact NAME``."""
    literal = _literal_params(module)
    lines = ["stages:"]
    for artifact in module.functions:
        lines += [f"  {json.dumps(artifact)}:",
                  f"    cmd: python pipeline.py --artifact {artifact} --params-file params.yaml",
                  "    deps:", "      - pipeline.py"]
        params = [p for p in _artifact_params(module, artifact) if p in literal]
        if params:
            lines += ["    params:", *(f"      - {p}" for p in params)]
        lines += ["    outs:", f"      - outputs/{artifact}.pickle"]
    return "\n".join(lines) + "\n"


_DAG_TEMPLATE = '''"""Airflow DAG {dag_id}: one task per artifact, values passed through files.

Each task calls pipeline.run_task (a plain function, testable without
Airflow), which writes the artifact to the data folder (DAG param data_dir,
default: $LINEAPY_PIPELINE_DATA_DIR or data/ next to this file) and returns
only the file's path (a string XCom, never a pickled value).  Relative
paths in the code mean files of the folder the pipeline was written from
(pipeline.WORKDIR) unless the DAG param workdir names another.
"""

import importlib.util
import os
from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("{dag_id}_pipeline", os.path.join(HERE, "pipeline.py"))
pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)

DATA_DIR = os.environ.get("LINEAPY_PIPELINE_DATA_DIR", os.path.join(HERE, "data"))


@dag(dag_id={dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
     params={params})
def {func}():
{tasks}


{func}()
'''

_TASK_TEMPLATE = '''    @task(task_id={task_id!r})
    def {func}(params=None, run_id=None):
        params = dict(params or {{}})
        data_dir, workdir = params.pop("data_dir", DATA_DIR), params.pop("workdir", "")
        return pipeline.run_task({name!r}, data_dir, params, run_id, workdir or None)
'''


def airflow_dag(module: Module, dag_id: str) -> str:
    """``dag.py``: a TaskFlow DAG with a task per artifact."""
    params = {"data_dir": None, "workdir": "", **_literal_params(module)}
    tasks, calls, funcs = [], [], {}
    for n, artifact in enumerate(module.functions):
        task_id = re.sub(r"[^\w.-]", "_", artifact)
        funcs[artifact] = f"task_{n}_" + re.sub(r"\W", "_", artifact)
        tasks.append(_TASK_TEMPLATE.format(task_id=task_id, func=funcs[artifact], name=artifact))
        calls.append(f"    {funcs[artifact]}_ = {funcs[artifact]}()")
    # Artifacts sharing code run one after the other: the first writes the
    # shared results, the next read them (same values, computed once).
    for owners in module.passable.values():
        calls += [f"    {funcs[a]}_ >> {funcs[b]}_" for a, b in zip(owners, owners[1:])]
    tasks.append("\n".join(dict.fromkeys(calls)))
    source = _DAG_TEMPLATE.format(dag_id=dag_id, params=repr(params), func=dag_id, tasks="\n".join(tasks))
    return source.replace('"data_dir": None', '"data_dir": DATA_DIR').replace("'data_dir': None", "'data_dir': DATA_DIR")


def readme(kind: str, targets, module: Module) -> str:
    """A few lines telling how to run the target."""
    names = ", ".join(f"`{t.name}` (version {t.version})" for t in targets)
    params = " ".join(f"--{p} VALUE" for p in module.parameters) or ""
    how = {
        "script": f"    pip install -r requirements.txt\n    python pipeline.py {params}\n\n"
                  "Each value is written to `outputs/NAME.pickle` (`--output-dir` to change).",
        "dvc": "    pip install -r requirements.txt dvc\n    git init && dvc init   # once (or dvc init --no-scm)\n"
               "    dvc repro\n\n"
               "One stage per artifact; edit `params.yaml` and `dvc repro` reruns the stages that read it.",
        "airflow": "Copy this folder into your DAGs folder (with `pip install -r requirements.txt` on the workers).\n"
                   "Tasks write values to the `data_dir` DAG param (default `$LINEAPY_PIPELINE_DATA_DIR` or "
                   "`data/`); `pipeline.run_task` is what each task runs.",
    }[kind]
    return (f"# Pipeline ({kind})\n\nGenerated by lineapy_ext from {names}; runs without lineapy_ext.\n\n"
            f"{how}\n\nParameters and their defaults are documented in `pipeline.py` (`run_all`). "
            "Relative paths in the code mean files of `WORKDIR` (in `pipeline.py`: the folder the pipeline "
            "was written from); `--workdir DIR` (Airflow: the `workdir` DAG param) changes it.\n")
