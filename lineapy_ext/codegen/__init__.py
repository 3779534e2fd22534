"""From saved artifacts to reusable code: functions, modules and pipelines.

Works from what the store saved (each artifact's slice text, its variable
name, version and session), never from a live session, so it imports neither
IPython nor the capture.  :func:`get_function` returns a plain Python function
recomputing artifacts with chosen variables as keyword parameters;
:func:`function_module` gives the source of the module behind it (what
``%lineapy export NAME... --function`` writes); :mod:`.pipeline` writes
script, DVC and Airflow targets from the same module.
"""

from __future__ import annotations

import hashlib
import linecache
import types
from typing import Callable, Iterable

from lineapy_ext.codegen.plan import CodegenError, Target
from lineapy_ext.codegen.render import Module, render_module

__all__ = ["CodegenError", "Target", "function_module", "get_function", "targets_for"]


def targets_for(artifacts: Iterable) -> list[Target]:
    """Describe artifacts (names, ``(name, version)`` pairs or ``Artifact`` objects) for code generation.

    Raises
    ------
    CodegenError
        If none is given, one is named twice, or one was saved without a slice.
    lineapy_ext.exceptions.ArtifactNotFoundError
        If a name or version is not in the store.
    """
    from lineapy_ext import api

    if isinstance(artifacts, (str, api.Artifact)):
        artifacts = [artifacts]
    targets: list[Target] = []
    for spec in artifacts:
        if isinstance(spec, api.Artifact):
            art = spec
        elif isinstance(spec, tuple):
            art = api.find(spec[0], version=spec[1])
        else:
            art = api.find(spec)
        meta = art.get_metadata()
        var_names = meta.get("var_names") or []
        if not var_names or not art.get_code().strip():
            raise CodegenError(f"artifact {art.name!r} version {art.version} was saved without a slice; "
                               "save it again with the extension loaded (%load_ext lineapy_ext)")
        if any(t.name == art.name for t in targets):
            raise CodegenError(f"artifact {art.name!r} is named twice; name each artifact once")
        targets.append(Target(art.name, art.version, var_names[0], art.get_code(),
                              art.session_id or "", art.created_at, list(meta.get("slice_cells") or []),
                              meta.get("environment")))
    if not targets:
        raise CodegenError("no artifact given: name at least one saved artifact")
    return targets


def function_module(artifacts: Iterable, input_parameters: Iterable[str] = ()) -> Module:
    """Render the module recomputing ``artifacts`` (see :func:`get_function`).

    Returns
    -------
    lineapy_ext.codegen.render.Module
        ``.source`` is the module text.
    """
    return render_module(targets_for(artifacts), parameter_list(input_parameters))


def parameter_list(input_parameters) -> list[str]:
    """``input_parameters`` as a list without repeats (one name may be given as a string)."""
    if isinstance(input_parameters, str):
        input_parameters = [input_parameters]
    return list(dict.fromkeys(input_parameters or ()))


def get_function(artifacts, input_parameters: Iterable[str] = ()) -> Callable[..., dict]:
    """A plain Python function recomputing ``artifacts``.

    Parameters
    ----------
    artifacts : str, Artifact, or list of them
        Artifact names (latest version), ``(name, version)`` pairs or
        :class:`~lineapy_ext.api.Artifact` objects.  Artifacts saved in one
        session share their common code: it runs once per call.
    input_parameters : list of str
        Variables the slices read that become keyword-only parameters.  Each
        replaces the binding the computation used (the docstring names the
        slice line), and defaults to the session's value.

    Returns
    -------
    callable
        ``f(**params) -> {artifact name: value}``; ``f.__doc__`` documents
        the parameters and ``f.source`` is the module it comes from.

    Raises
    ------
    CodegenError
        If a parameter is not read by the slices (the message lists those
        that are), or an artifact has no slice.
    """
    module = function_module(artifacts, input_parameters)
    namespace = load_module(module.source)
    func = namespace.run_all
    func.source = module.source
    return func


def load_module(source: str) -> types.ModuleType:
    """Execute generated ``source`` as a fresh module (tracebacks and ``inspect`` show its lines)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<lineapy_ext generated {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"lineapy_generated_{digest}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module
