"""Cutting a slice out of the dependency graph and writing it as Python.

:func:`slice_graph` takes the backward closure of the statements that
created, changed and bound the requested names and emits them in execution
order, grouped by the cell they came from.  Magics were already rewritten
to plain Python by the statement analysis; statements that cannot be
written as plain Python are left out with a comment saying so, and listed
in ``Slice.warnings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from lineapy_ext.analysis.graph import DependencyGraph, Node
from lineapy_ext.exceptions import SliceError

__all__ = ["SliceResult", "slice_graph"]

#: ``resolve_artifact(name, version) -> (code, variable)`` gives the slice of
#: an artifact loaded with ``%lineapy get`` and the variable it computes.
ArtifactResolver = Callable[[str, "int | None"], "tuple[str, str]"]


@dataclass
class SliceResult:
    """Statements of a slice and their text."""

    code: str
    cells: list[tuple[int | None, str]] = field(default_factory=list)
    node_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def slice_graph(graph: DependencyGraph, names: list[str],
                resolve_artifact: ArtifactResolver | None = None) -> SliceResult:
    """Slice ``graph`` on ``names``.

    Parameters
    ----------
    graph : DependencyGraph
    names : list of str
        Global names whose current values the slice must recompute.
    resolve_artifact : callable, optional
        Used to inline values that came from ``%lineapy get``.

    Raises
    ------
    SliceError
        When a name was never bound by a captured statement.
    """
    _refuse_failed(graph, names)
    missing = [n for n in names if n not in graph.bindings]
    if missing:
        raise SliceError(
            f"cannot slice {', '.join(map(repr, missing))}: not bound by any captured cell "
            "(was it defined before `%load_ext lineapy_ext`, or by code lineapy cannot see?)")
    seeds: set[int] = set()
    for n in names:
        seeds |= graph.seeds(n)
    ids = [i for i in graph.backward(seeds) if not graph.nodes[i].drop]
    cells: list[tuple[int | None, list[str]]] = []
    warnings: list[str] = []
    last_cell = None
    for i in ids:
        node = graph.nodes[i]
        text = _text(node, resolve_artifact, warnings)
        if node.cell != last_cell:
            cells.append((node.execution_count, []))
            last_cell = node.cell
        cells[-1][1].append(text)
    warnings += _failed_warnings(graph, names, ids, cells)
    warnings += [f"cell [{count}]: {problem}" for count, problem in graph.problems]
    cell_code = [(count, "\n".join(parts)) for count, parts in cells]
    code = "\n\n".join(c for _, c in cell_code)
    return SliceResult(code + "\n" if code else "", cell_code, ids, warnings)


def _refuse_failed(graph: DependencyGraph, names: list[str]) -> None:
    """A value last changed by a statement that raised part-way (a loop
    stopped by an error) cannot be recomputed: say so instead of slicing."""
    for failed in graph.failed:
        for n in names:
            binder = graph.binder.get(n, -1)
            if n in failed.rebound and failed.position > binder:
                why = f" ({failed.error})" if failed.error else ""
                raise SliceError(
                    f"cannot slice {n!r}: its value was last changed by cell [{failed.execution_count}], "
                    f"which raised part-way{why}; fix and re-run that cell, then save again")


def _failed_warnings(graph, names, ids, cells) -> list[str]:
    last = ids[-1] if ids else -1
    out = []
    for failed in graph.failed:
        hit = sorted(n for n in failed.touched
                     if n in names or (failed.position <= last and _mentions(n, cells)))
        if hit:
            out.append(f"cell [{failed.execution_count}] raised part-way through a statement that may have "
                       f"changed {', '.join(map(repr, hit))}; its partial effects are not in the slice")
    return out


def _mentions(name: str, cells) -> bool:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return any(pattern.search(text) for _, parts in cells for text in parts)


def _text(node: Node, resolve_artifact, warnings: list[str]) -> str:
    if node.artifact_get is not None:
        name, version, names = node.artifact_get
        var = " = ".join(names)
        if resolve_artifact is not None:
            try:
                code, source_var = resolve_artifact(name, version)
            except Exception as e:  # the artifact may have been deleted since
                warnings.append(f"artifact {name!r} could not be inlined: {e}")
            else:
                fn = f"_lineapy_artifact_{''.join(c if c.isalnum() else '_' for c in name)}"
                body = code.strip() or "pass"
                return (f"# value of artifact {name!r}, recomputed from its own slice\n"
                        f"def {fn}():\n    _ns = {{'__name__': '__main__'}}\n"
                        f"    exec(compile({body!r}, {('lineapy:' + name)!r}, 'exec'), _ns)\n"
                        f"    return _ns[{source_var!r}]\n{var} = {fn}()")
        warnings.append(f"{var!r} came from `%lineapy get {name}` and is not recomputed")
        return f"# lineapy: left out `%lineapy get {name}` (loads {var!r} from the store)"
    if node.opaque:
        first = node.source.strip().splitlines()[0] if node.source.strip() else ""
        warnings.append(f"left out statement that is not plain Python: {first}")
        return "# lineapy: left out (not plain Python): " + first
    return node.code
