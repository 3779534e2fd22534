"""Code appended to a generated module to make it a pipeline: file outputs and a CLI.

The text below runs in the generated module (without lineapy_ext).  It adds
``write_artifacts`` (compute artifacts in the working directory ``WORKDIR``,
write each value to ``OUTPUT_DIR/NAME.pickle`` atomically), ``run_task`` (one artifact, for an
Airflow task; shared helpers then run once per run and pass their results
on through a file), ``load_artifact`` and ``main``: an argparse CLI taking each
parameter as ``--NAME VALUE`` (a Python literal, else a string), optionally
from a flat ``params.yaml``.  Standard-library imports happen inside the
functions so that they cannot clash with the names of the recomputed code.

``WORKDIR`` is the folder the pipeline was written from (the session's
working directory): relative paths in the slices (``pd.read_csv("train.csv")``)
mean files there, wherever DVC or an Airflow worker runs the code from.
``--workdir`` (DAG param ``workdir``) points them elsewhere; a recorded folder
that does not exist (another machine) leaves the current directory.
"""

from __future__ import annotations

#: Line of :data:`RUNNER_CODE` where the shared helpers get wrapped.
WRAP_MARKER = "# (helpers passed on through files)"

#: Line of :data:`RUNNER_CODE` replaced by ``WORKDIR = '<folder>'``.
WORKDIR_MARKER = "WORKDIR = None  # (working directory)"

#: Module-level names the runner defines (generated functions avoid them).
RUNNER_NAMES = frozenset({"OUTPUT_DIR", "write_artifacts", "run_task", "load_artifact", "main",
                          "read_params", "parse_value", "_accepted", "_SHARED_DIR", "_passed_through_file",
                          "_outputs_next_to_this_file", "WORKDIR", "_working_directory"})

RUNNER_CODE = '''
def _outputs_next_to_this_file():
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "outputs")


#: Where artifact values are written by default.
OUTPUT_DIR = _outputs_next_to_this_file()

#: Relative paths in the code below are relative to this folder (where the session ran).
WORKDIR = None  # (working directory)


class _working_directory:
    """Run the artifacts' code in ``workdir`` (default: WORKDIR when it exists), then come back."""

    def __init__(self, workdir=None):
        import os

        if workdir is not None and not os.path.isdir(workdir):
            raise FileNotFoundError(f"working directory {workdir!r} does not exist; "
                                    "pass the folder the code's relative paths are relative to")
        self.workdir = workdir if workdir is not None else (WORKDIR if WORKDIR and os.path.isdir(WORKDIR) else None)

    def __enter__(self):
        import os

        self.back = os.getcwd()
        if self.workdir:
            os.chdir(self.workdir)

    def __exit__(self, *exc):
        import os

        os.chdir(self.back)


def parse_value(text):
    """A command-line or params-file value: a Python literal if it is one, else the string."""
    import ast

    text = text.strip()
    if text in ("true", "false", "null", "~"):
        return {"true": True, "false": False}.get(text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def read_params(path):
    """Parameter values from a flat ``name: value`` YAML file (PyYAML is used when installed)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml
    except ImportError:
        values = {}
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition(":")
                values[key.strip()] = parse_value(value)
        return values
    return yaml.safe_load(text) or {}


def _accepted(function, params):
    import inspect

    names = inspect.signature(function).parameters
    return {k: v for k, v in params.items() if k in names}


def write_artifacts(names=None, output_dir=None, workdir=None, **params):
    """Compute artifacts ``names`` (default: all) in ``workdir`` and write each to ``output_dir/NAME.pickle``.

    Returns {name: path}.  Shared code runs once when every artifact is asked for.
    """
    import os
    import pickle

    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(unknown)}; parameters: {', '.join(PARAMETERS) or '(none)'}")
    names = list(ARTIFACTS) if names is None else list(names)
    output_dir = os.path.abspath(output_dir or OUTPUT_DIR)
    with _working_directory(workdir):
        if set(names) == set(ARTIFACTS):
            values = run_all(**params)
        else:
            values = {name: ARTIFACTS[name](**_accepted(ARTIFACTS[name], params)) for name in names}
    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    for name in names:
        path = os.path.join(output_dir, name + ".pickle")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(values[name], f)
        os.replace(tmp, path)  # readers never see a partial file
        paths[name] = path
    return paths


#: Set by run_task: the folder where shared helpers pass their results on.
_SHARED_DIR = None


def _passed_through_file(helper):
    """Run ``helper`` once per run folder: the first task writes its results, the next ones read them."""
    import functools

    @functools.wraps(helper)
    def once(*args):
        import os
        import pickle

        if _SHARED_DIR is None:
            return helper(*args)
        path = os.path.join(_SHARED_DIR, helper.__name__ + ".pickle")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return pickle.load(f)
        result = helper(*args)
        os.makedirs(_SHARED_DIR, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                pickle.dump(result, f)
            os.replace(tmp, path)
        except Exception:  # not picklable: the next task computes it again
            if os.path.exists(tmp):
                os.remove(tmp)
        return result

    return once


def run_task(name, data_dir, params=None, run_id=None, workdir=None):
    """Compute artifact ``name`` with ``params`` (unknown keys ignored), write it to ``data_dir``; return the path.

    With ``run_id``, code shared with other artifacts runs once per run: its
    results go to ``data_dir/.shared/RUN_ID/`` and later tasks of the run read them.
    """
    import os

    global _SHARED_DIR
    params = {k: v for k, v in (params or {}).items() if k in PARAMETERS}
    data_dir = os.path.abspath(data_dir)
    _SHARED_DIR = os.path.join(data_dir, ".shared", str(run_id)) if run_id else None
    try:
        return write_artifacts([name], data_dir, workdir, **params)[name]
    finally:
        _SHARED_DIR = None


def load_artifact(name, output_dir=None):
    """Read back the value ``write_artifacts`` wrote for ``name``."""
    import os
    import pickle

    with open(os.path.join(output_dir or OUTPUT_DIR, name + ".pickle"), "rb") as f:
        return pickle.load(f)


def main(argv=None):
    """Command line: compute the artifacts and write them to the output folder."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help="where NAME.pickle files go (default: %(default)s)")
    parser.add_argument("--artifact", action="append", choices=list(ARTIFACTS),
                        help="compute only this artifact (repeatable; default: all)")
    parser.add_argument("--params-file", help="YAML file of parameter values (command-line values win)")
    where = str(WORKDIR or "the current directory").replace("%", "%%")  # argparse %-formats help
    parser.add_argument("--workdir", help=f"folder the code's relative paths are relative to (default: {where})")
    for name, default in PARAMETERS.items():
        parser.add_argument("--" + name, type=parse_value, default=argparse.SUPPRESS,
                            help=f"Python literal or string (default: {default!r})")
    args = vars(parser.parse_args(argv))
    output_dir, names, params_file = args.pop("output_dir"), args.pop("artifact"), args.pop("params_file")
    workdir = args.pop("workdir")
    params = {k: v for k, v in (read_params(params_file) if params_file else {}).items() if k in PARAMETERS}
    params.update(args)
    for name, path in write_artifacts(names, output_dir, workdir, **params).items():
        print(f"{name} -> {path}")


# (helpers passed on through files)

if __name__ == "__main__":
    main()
'''
