"""Connectivity between the capture hooks and the slicing engine.

This is the only engine-side module that touches the IPython shell: it
installs :mod:`kernel_hooks` on a shell, feeds each captured cell to the
dependency graph (:mod:`lineapy_ext.analysis`), and answers the questions the
API asks when a value is saved: which variables hold this value, and what is
the slice that recomputes them.

Public surface used by the rest of the package::

    tracker = Tracker(shell)          # installs the hooks
    tracker.close()                   # removes them (symmetric)
    tracker.names_for_value(value)    # -> list[str], names bound to value
    tracker.slice(names)              # -> Slice
    tracker.session_code()            # -> str, everything that ran
    tracker.executed_cells()          # -> list[ExecutedCell]
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import threading
from dataclasses import dataclass, field

from kernel_hooks import Capture, CellRecord, is_ipython_name
from kernel_hooks.capture import collector_paused
from kernel_hooks.namespace import bound_to

from lineapy_ext.analysis import DependencyGraph, StatementFacts, analyze, slice_graph
from lineapy_ext.analysis.effects import ANY_FILE

log = logging.getLogger(__name__)

#: A cell with at least this many top-level statements is analysed when the
#: graph is next needed (a save, a slice), not when it ends: the analysis
#: costs ~35 us per statement, a third of what IPython itself spends on one,
#: so a generated cell of 100,000 lines would take 1.4x as long to run.  Its
#: trees are not kept meanwhile (~2 KB per statement: 200 MB for 100,000
#: lines) but parsed again from its source (a quarter of the analysis' cost).
DEFER_STATEMENTS = 2_000
#: Cells that wait behind a deferred one (they must be added after it) are
#: kept with their syntax trees; past this many, the cell that makes one more
#: analyses them all, so neither memory nor the next save grows unbounded.
MAX_PENDING_CELLS = 200


@dataclass
class ExecutedCell:
    """One executed cell as the store keeps it."""

    execution_count: int | None
    source: str
    success: bool


@dataclass
class Slice:
    """The result of slicing: plain Python that recomputes ``names``.

    Attributes
    ----------
    code : str
        The slice as one script.
    cells : list of (int or None, str)
        The same code split by the cell it came from, as
        ``(execution_count, code)`` pairs in execution order (for notebook export).
    names : list of str
        The variables the slice was cut for; running ``code`` binds them.
    """

    code: str
    cells: list[tuple[int | None, str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def _analyze_safely(cell: CellRecord, upto: int | None = None) -> list[StatementFacts]:
    facts = []
    for st in cell.statements[: cell.completed if upto is None else upto]:
        try:
            facts.append(analyze(st.node) if st.node is not None else StatementFacts(unknown_effects=True))
        except Exception:  # a bug in the analysis must not lose the cell
            log.debug("lineapy: could not analyse %r", st.source, exc_info=True)
            facts.append(StatementFacts(unknown_effects=True))
    return facts


def _reparsed(cell: CellRecord) -> list:
    """The trees of a deferred cell's statements, parsed again from its source.

    Checked against the recorded statements; on any difference (the shell
    parses with flags of its own, such as a ``__future__`` import) none is
    returned and every statement is taken as possibly reading and changing
    anything, as for a statement that could not be analysed.
    """
    try:
        body = ast.parse(cell.source).body
    except (SyntaxError, ValueError):
        body = []
    if len(body) != len(cell.statements) or any(
            n.end_lineno != st.end_lineno for n, st in zip(body, cell.statements)):
        log.debug("lineapy: cell %s parsed differently the second time", cell.execution_count)
        return []
    return body


def _installed(rel: str) -> bool:
    """A module file of an environment kept under the working directory (``.venv``)."""
    parts = rel.split(os.sep)
    return parts[0] == ".." or "site-packages" in parts or "dist-packages" in parts


def _uses_lineapy(cell: CellRecord) -> bool:
    # %lineapy get / lineapy_ext.get(...): the version they load is pinned
    # when the cell is added (the latest saved *now*), so never later.
    return "lineapy" in cell.source


class Tracker:
    """Capture a shell's cells and slice them on demand.

    Parameters
    ----------
    shell : InteractiveShell
        The shell to capture.
    """

    def __init__(self, shell):
        self.shell = shell
        self._graph = DependencyGraph()
        # Cells not analysed yet, oldest first, with their statements' trees.
        self._pending: list[tuple[CellRecord, list]] = []
        # Held while the graph changes: a save from another thread must not
        # see a cell half added.
        self._lock = threading.RLock()
        self.capture = Capture(shell, on_cell=self._on_cell)
        self.recovered = 0
        self._closed_at = 0
        self.resume(after=0)

    def resume(self, after: int | None = None) -> None:
        """(Re)install the capture hooks, recovering from the input history
        the cells that ran while they were not installed."""
        if after is None:
            counts = [c.execution_count for c in self.capture.cells if c.execution_count is not None]
            after = max(counts + [self._closed_at], default=0)
        # The newest history entry is the cell running %load_ext itself.
        hm = getattr(self.shell, "history_manager", None)
        loading = len(getattr(hm, "input_hist_parsed", ()) or ()) - 1
        recovered = self.capture.install(after=after)
        self._flush()  # the recovered cells ran after those still pending
        for cell in recovered:
            with self._lock:
                self._add_cell(cell)
            for st in cell.statements:
                st.node = None
        # The cell running %load_ext itself, and cells of magics with no
        # effect on values (%colors nocolor), are not news to the user.
        kept = {n.cell for n in self.graph.nodes if not n.drop}
        earlier = [c for c in recovered if c.execution_count != loading and c.index in kept]
        self.recovered += len(earlier)
        if earlier:
            print(f"lineapy: {len(earlier)} cell(s) that ran before the extension was loaded "
                  "were recovered from the input history (without runtime facts).")

    def close(self) -> None:
        """Remove the capture hooks from the shell (what was captured is kept)."""
        self.capture.uninstall()
        # The cell running %unload_ext: nothing to recover up to here.
        hm = getattr(self.shell, "history_manager", None)
        self._closed_at = len(getattr(hm, "input_hist_parsed", ()) or ()) - 1

    @property
    def graph(self) -> DependencyGraph:
        """The session's dependency graph, every captured cell in it."""
        if self._pending:
            self._flush()
        return self._graph

    def _on_cell(self, cell: CellRecord) -> None:
        with self._lock:
            if self._pending and (_uses_lineapy(cell) or len(self._pending) >= MAX_PENDING_CELLS):
                self._flush()
            if not self._pending and (len(cell.statements) < DEFER_STATEMENTS or _uses_lineapy(cell)):
                self._add_cell(cell)
                return
            # The trees are dropped from the record once this returns.
            keep = len(cell.statements) < DEFER_STATEMENTS or not cell.parsed_as_is
            self._pending.append((cell, [st.node for st in cell.statements[:cell.completed + 1]] if keep else None))

    def _flush(self) -> None:
        """Add the deferred cells to the graph, in order."""
        with self._lock, collector_paused():
            done = 0
            try:
                for cell, nodes in self._pending:
                    done += 1
                    for st, node in zip(cell.statements, _reparsed(cell) if nodes is None else nodes):
                        st.node = node
                    try:
                        self._add_cell(cell)
                    except Exception:  # as when the cell ended (kernel_hooks.Capture)
                        log.warning("lineapy: analysing cell %s failed; it is kept as is",
                                    cell.execution_count, exc_info=log.isEnabledFor(logging.DEBUG))
                    finally:
                        for st in cell.statements:
                            st.node = None
            finally:
                del self._pending[:done]

    def _add_cell(self, cell: CellRecord) -> None:
        facts = [self._pin_artifact_version(f) for f in _analyze_safely(cell)]
        failed = None
        if not cell.success and cell.completed < len(cell.statements):
            # The statement that raised may have changed things part-way.
            rest = _analyze_safely(cell, cell.completed + 1)[cell.completed:]
            failed = rest[0] if rest else None
        self._graph.add_cell(cell, facts, failed)

    @staticmethod
    def _pin_artifact_version(f: StatementFacts) -> StatementFacts:
        """``%lineapy get NAME`` loads the latest version: remember which one,
        so a later slice inlines that version and not a newer one."""
        if f.artifact_get is None or f.artifact_get[1] is not None:
            return f
        name, _, names = f.artifact_get
        try:
            from lineapy_ext import api

            # --alias/--registered-version/--stage: the version they chose now
            version = api.find(name, **dict(f.artifact_selector)).version
        except Exception:  # not saved (yet), store unreachable: stay unpinned
            return f
        return dataclasses.replace(f, artifact_get=(name, version, names))

    # -- queries used by the API -------------------------------------------
    def names_for_value(self, value) -> list[str]:
        """Global names currently bound to ``value`` (by identity)."""
        ns = self.shell.user_ns
        hidden = getattr(self.shell, "user_ns_hidden", {})
        # Found in the namespace's entry table: reading every value of a
        # long session's 50,000 names costs a cache miss each (~10-20 ms).
        main = threading.current_thread() is threading.main_thread()
        names = bound_to(ns, value, self.capture.snapshot) if main else None
        if names is None:
            # list() copies the items in C, without a thread switch: a save
            # from another thread while a cell binds names must not fail.
            names = [k for k, v in list(ns.items()) if v is value]
        names = [k for k in names if not is_ipython_name(k) and k not in hidden]
        # Names the graph knows first: they are the ones a slice can be cut for.
        return sorted(names, key=lambda n: (n not in self.graph.bindings, n))

    def slice(self, names: list[str]) -> Slice:
        """The slice recomputing ``names`` as they are now.

        Works from inside a running cell: the statements of that cell that
        already ran are included.
        """
        # A private copy: a save from another thread must not read the graph
        # while the main thread's next cell changes it.
        if threading.main_thread() is threading.current_thread():
            graph = self.graph
        else:
            with self._lock:
                graph = self.graph.fork()
        current = self.capture.current_cell()
        if current is not None and current.statements:
            running = current.statements[current.completed].node if current.completed < len(
                current.statements) else None
            if running is not None and hasattr(running, "body"):
                # A save inside a with/for/if block: what the block did before
                # the save counts, so the block is part of the slice (its
                # lineapy lines removed).
                current = dataclasses.replace(current, completed=current.completed + 1)
            if current.completed:
                graph = graph.fork()
                graph.add_cell(current, _analyze_safely(current))
        result = slice_graph(graph, list(names), self._resolve_artifact)
        for w in result.warnings:
            log.warning("lineapy: %s", w)
        return Slice(code=result.code, cells=result.cells, names=list(names))

    def session_modules(self) -> list:
        """Imported modules whose source file this session wrote
        (``%%writefile mymod.py`` then ``import mymod``): values whose classes
        live there are pickled by value, so they load where the file is not."""
        import sys

        written = set(self.graph.files)
        # A file written at a path not known statically (open(f"{name}.py", "w")):
        # any module under the working directory may be one.
        anywhere = ANY_FILE in written
        # Every save asks: relpath() for each of ~1,000 modules cost ~50 ms;
        # a module can only match a written file of the same base name.
        basenames = {os.path.basename(p) for p in written}
        cwd = os.getcwd() + os.sep
        out = []
        for mod in list(sys.modules.values()) if written else ():
            path = getattr(mod, "__file__", None) if type(mod).__name__ == "module" else None
            if not path or not (os.path.basename(path) in basenames or anywhere and path.startswith(cwd)):
                continue
            try:
                rel = os.path.normpath(os.path.relpath(path))
            except ValueError:  # another drive
                continue
            if rel in written or anywhere and not _installed(rel):
                out.append(mod)
        return out

    def session_code(self) -> str:
        """Everything that ran in this session, cell by cell, as typed."""
        return "\n\n".join(c.raw_source.rstrip() for c in self.capture.cells if c.raw_source.strip()) + "\n"

    def executed_cells(self, start: int = 0) -> list[ExecutedCell]:
        """The captured cells from index ``start`` on, in execution order."""
        return [ExecutedCell(c.execution_count, c.raw_source, c.success) for c in self.capture.cells[start:]]

    @staticmethod
    def _resolve_artifact(name: str, version):
        from lineapy_ext import api

        art = api.find(name, version)
        meta = art.get_metadata() or {}
        var_names = meta.get("var_names") or [name]
        return art.get_code(), var_names[0]
