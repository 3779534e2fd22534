"""Record what really runs in an IPython shell, cell by cell.

:class:`Capture` hooks IPython's ``pre_run_cell``/``post_run_cell`` events and
appends itself to ``shell.ast_transformers`` (so it sees each cell *after*
IPython's own input transforms: ``%magic`` lines arrive as
``get_ipython().run_line_magic(...)`` calls).  For every executed cell it
keeps a :class:`CellRecord`: sources, the top-level statements, how many of
them completed, and cheap runtime facts that static analysis cannot see
(which global names were bound, rebound or deleted, by object identity).

Costs are per cell and per top-level statement, never per executed line: no
``sys.settrace``.  The expensive part, analysing the statements, is done by
the listener the owner passes in (``on_cell``), which receives the record
while the AST nodes are still attached; they are dropped afterwards.

Nothing here imports ``lineapy_ext``: the capture layer knows nothing of
slicing or storage.  Any failure inside a hook is logged and swallowed, so a
bug here can never break a user's cell.
"""

from __future__ import annotations

import ast
import gc
import logging
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from kernel_hooks import namespace
from kernel_hooks.namespace import Snapshot
from kernel_hooks.observe import ATOMIC_TYPES, MAX_ELEMENT_IDS, Binding, RngObserver, binding_facts

__all__ = ["ATOMIC_TYPES", "MAX_ELEMENT_IDS", "Binding", "CellRecord", "StatementRecord", "Capture",
           "is_ipython_name", "statement_records", "PROBE_NAME"]

log = logging.getLogger("kernel_hooks")

# IPython's own bookkeeping names (_i3, _5, _, __, In, Out, ...).
_HIDDEN_NAME = re.compile(r"_+|_i+|_i?\d+|_[iod]h|In|Out|exit|quit|get_ipython|__lineapy_probe__")

#: Name of the probe the capture inserts between a cell's top-level
#: statements (in the user namespace, hidden from ``%who``).
PROBE_NAME = "__lineapy_probe__"


@dataclass(slots=True)
class StatementRecord:
    """One top-level statement of a cell, as IPython ran it."""

    index: int
    source: str
    lineno: int
    end_lineno: int
    node: ast.stmt | None = None
    rng_changed: frozenset[str] = frozenset()


@dataclass
class CellRecord:
    """Everything captured about one executed cell.

    Attributes
    ----------
    index : int
        Position in the capture (0, 1, 2 ...), unique per process.
    execution_count : int or None
        IPython's prompt number.
    raw_source, source : str
        The cell as typed, and after IPython's input transforms.
    statements : list of StatementRecord
        Top-level statements in order.
    completed : int
        How many statements ran to completion (all of them unless it raised).
    success : bool
        Whether the cell finished without an exception.
    bound : dict
        ``name -> Binding`` for global names that are new or refer to a
        different object after the cell.
    deleted : set of str
        Global names that disappeared during the cell.
    result_id : int or None
        ``id()`` of the displayed value of a trailing expression, if not None.
    has_runtime_facts : bool
        False for cells recovered from input history (extension loaded late).
    in_progress : bool
        True while the cell is still running (a save from inside the cell).
    problems : list of str
        Runtime facts that could not be recorded, and why (an object whose
        description failed, a hook that failed); slices that use the cell
        say so.
    parsed_as_is : bool
        The statements' trees are exactly what ``ast.parse(source)`` gives
        (no other AST transformer ran before the capture): a listener may
        drop them and parse the source again later.
    """

    index: int
    execution_count: int | None
    raw_source: str
    source: str
    statements: list[StatementRecord] = field(default_factory=list)
    completed: int = 0
    success: bool = True
    error: str | None = None
    bound: dict[str, Binding] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    result_id: int | None = None
    has_runtime_facts: bool = True
    in_progress: bool = False
    problems: list[str] = field(default_factory=list)
    parsed_as_is: bool = False


def _hidden(name) -> bool:
    # Not reported by the diff: IPython's names, and keys that are not
    # identifiers at all (globals()[1] = ...).
    return type(name) is not str or _HIDDEN_NAME.fullmatch(name) is not None


def is_ipython_name(name: str) -> bool:
    """True for IPython's own namespace bookkeeping (``_i3``, ``_5``, ``Out``...)."""
    return _HIDDEN_NAME.fullmatch(name) is not None


def statement_records(source: str, body: list[ast.stmt]) -> list[StatementRecord]:
    """Cut ``source`` into the text of each top-level statement in ``body``.

    Decorators belong to their function or class; statements sharing a line
    (``a = 1; b = 2``) are separated by column.
    """
    lines = source.splitlines(keepends=True)
    records = []
    for i, node in enumerate(body):
        start, col = node.lineno, node.col_offset
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            start, col = min(d.lineno for d in decorators), 0
        end, end_col = node.end_lineno or start, node.end_col_offset
        text = _segment(lines, start, col, end, end_col)
        records.append(StatementRecord(i, text, start, end, node))
    return records


def _segment(lines, start, col, end, end_col) -> str:
    # AST columns are UTF-8 byte offsets, hence the encode/decode.
    if not lines or start > len(lines):
        return ""
    if start == end:
        line = lines[start - 1].encode()
        return line[col:end_col].decode(errors="replace")
    first = lines[start - 1].encode()[col:].decode(errors="replace")
    middle = lines[start:end - 1]
    last = lines[end - 1].encode()[:end_col].decode(errors="replace") if end <= len(lines) else ""
    return first + "".join(middle) + last


@contextmanager
def collector_paused():
    """Pause the cyclic garbage collector while the capture does its own work.

    Recording a cell allocates a few objects per statement (records, AST
    probes, the listener's facts), none of them cyclic garbage; with the
    collector on, a big cell triggers hundreds of collections that walk the
    whole (large, long-lived) heap: half of the capture's cost on a
    20,000-statement cell.  Left off if the user turned it off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _CellAstRecorder(ast.NodeTransformer):
    """Registered in ``shell.ast_transformers``; records the cell's tree and
    inserts the RNG probes (nothing else is rewritten)."""

    def __init__(self, capture: "Capture"):
        self.capture = capture

    def visit(self, node):
        try:
            with collector_paused():
                recorded = self.capture._on_ast(node)
            if recorded:
                self.capture._step_aside()
        except Exception:  # never let IPython unregister us, never break a cell
            log.debug("kernel_hooks: AST recording failed", exc_info=True)
        return node


class Capture:
    """Capture every cell run by ``shell``.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell
        The shell to observe.
    on_cell : callable, optional
        Called as ``on_cell(record)`` once per finished cell, while the
        statements' AST nodes are still attached.  Exceptions are logged.
    """

    def __init__(self, shell, on_cell: Callable[[CellRecord], None] | None = None):
        self.shell = shell
        self.on_cell = on_cell
        self.cells: list[CellRecord] = []
        self._current: CellRecord | None = None
        self._expect_ast = False
        self._ids = namespace.EMPTY
        self._recorder = _CellAstRecorder(self)
        self._probe_function = self._probe  # one bound method: the namespace holds this one
        self._aside = False
        self._installed = False
        self._rng = RngObserver()
        self._digests: list[tuple[int, tuple]] = []  # (next statement, digest)
        self._cell_thread: int | None = None

    # -- installation -----------------------------------------------------
    def install(self, backfill: bool = True, after: int = 0) -> list[CellRecord]:
        """Start capturing; return the cells recovered from input history.

        Only history entries numbered above ``after`` are recovered (to
        resume after an uninstall without recovering cells twice).
        """
        if self._installed:
            return []
        recovered = self._backfill(after) if backfill else []
        self.shell.user_ns_hidden[PROBE_NAME] = self._probe_function
        self._installed = True  # the snapshot puts the probe in user_ns
        self._ids = self._snapshot()
        self.shell.events.register("pre_run_cell", self._pre_run_cell)
        self.shell.events.register("post_run_cell", self._post_run_cell)
        self.shell.ast_transformers.append(self._recorder)
        return recovered

    def uninstall(self) -> None:
        """Stop capturing (the recorded cells are kept)."""
        if not self._installed:
            return
        for event, cb in (("pre_run_cell", self._pre_run_cell), ("post_run_cell", self._post_run_cell)):
            try:
                self.shell.events.unregister(event, cb)
            except ValueError:
                pass
        if self._recorder in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self._recorder)
        self._aside = False
        self.shell.user_ns.pop(PROBE_NAME, None)
        self.shell.user_ns_hidden.pop(PROBE_NAME, None)
        self._installed = False

    # -- the running cell -------------------------------------------------
    def current_cell(self) -> CellRecord | None:
        """The cell being executed right now, with ``completed`` set to the
        index of the statement currently running (for a save made from inside
        the cell), or None outside a cell."""
        cell = self._current
        if cell is None or not cell.statements or threading.get_ident() != self._cell_thread:
            return None  # (a save from another thread is not inside the running cell)
        lineno = self._running_line()
        if lineno is not None:
            cell.completed = _statement_at(cell.statements, lineno)
        changed, cell.deleted = self._diff(self._snapshot(baseline=False))
        cell.bound = self._bindings(cell, changed)
        done = [d for d in self._digests if d[0] <= cell.completed]
        if done:  # what the statements before the save drew
            _assign_rng(cell.statements[:cell.completed], done + [(cell.completed, self._rng.digest())])
        return cell

    def _running_line(self) -> int | None:
        ns = self.shell.user_global_ns
        frame, line = sys._getframe(1), None
        while frame is not None:  # outermost module-level frame of the cell
            if frame.f_code.co_name == "<module>" and frame.f_globals is ns:
                line = frame.f_lineno
            frame = frame.f_back
        return line

    # -- event handlers ---------------------------------------------------
    def _step_aside(self) -> None:
        """Leave ``shell.ast_transformers`` until the cell has run.

        IPython runs ``ast.fix_missing_locations`` over the whole tree
        whenever that list is not empty (a third of the capture's cost on a
        100,000-line cell); the probes carry their own locations.  Only done
        when the recorder is last: removing the item IPython is iterating
        over then skips no other transformer.
        """
        transformers = self.shell.ast_transformers
        if transformers and transformers[-1] is self._recorder:
            transformers.pop()
            self._aside = True

    def _step_back(self) -> None:
        if self._aside and self._installed and self._recorder not in self.shell.ast_transformers:
            self.shell.ast_transformers.append(self._recorder)
        self._aside = False

    def _pre_run_cell(self, info=None):
        self._step_back()
        try:
            raw = getattr(info, "raw_cell", None) or ""
            self._current = CellRecord(
                index=len(self.cells),
                execution_count=self.shell.execution_count,
                raw_source=raw,
                source="",
                in_progress=True,
            )
            self._expect_ast = True
            self._digests = [(0, self._rng.digest())]
            self._cell_thread = threading.get_ident()
        except Exception:
            log.debug("kernel_hooks: pre_run_cell failed", exc_info=True)

    def _on_ast(self, module):
        # Magics such as %time compile their argument through
        # shell.transform_ast too: only the first tree after pre_run_cell is
        # the cell itself.
        if not self._expect_ast or self._current is None or not isinstance(module, ast.Module):
            return False
        self._expect_ast = False
        cell = self._current
        cell.source = self._transformed_source(cell.raw_source)
        cell.statements = statement_records(cell.source, module.body)
        # First in line, the recorder sees the tree exactly as parsed from
        # cell.source, so a statement's text tells whether it can call.
        pristine = bool(self.shell.ast_transformers) and self.shell.ast_transformers[0] is self._recorder
        cell.parsed_as_is = pristine
        _insert_probes(module, getattr(self.shell, "ast_node_interactivity", "last_expr"),
                       [st.source for st in cell.statements] if pristine else None)
        return True

    def _probe(self, index: int) -> None:
        """Called by the cell after each top-level statement but the last
        (see :func:`_insert_probes`): digest the random generators."""
        try:
            digests = self._digests
            if digests and digests[-1][0] < index:
                digests.append((index, self._rng.digest()))
        except Exception:  # a probe must never break the cell
            log.debug("kernel_hooks: RNG probe failed", exc_info=True)

    def _transformed_source(self, raw: str) -> str:
        # IPython has just stored the transformed cell in its history (when
        # the cell is stored at all): reuse it instead of transforming again.
        hm = self.shell.history_manager
        try:
            if hm is not None and hm.input_hist_raw and hm.input_hist_raw[-1] == raw:
                return hm.input_hist_parsed[-1]
        except (AttributeError, IndexError):
            pass
        return self.shell.transform_cell(raw)

    def _post_run_cell(self, result=None):
        with collector_paused():
            self._after_cell(result)

    def _after_cell(self, result) -> None:
        self._step_back()
        cell, self._current, self._expect_ast = self._current, None, False
        try:
            if cell is None:  # the cell that loaded us: nothing was recorded
                self._ids = self._snapshot()
                return
            self._finish(cell, result)
        except Exception as e:
            # Never drop the cell: keep it without runtime facts, and say why.
            log.debug("kernel_hooks: post_run_cell failed", exc_info=True)
            cell.problems.append(f"runtime facts lost: {type(e).__name__}: {e}")
            cell.has_runtime_facts = False
            cell.in_progress = False
            if cell.success and not cell.completed:
                cell.completed = len(cell.statements)
            if not self.cells or self.cells[-1] is not cell:
                self.cells.append(cell)
            try:  # a whole new baseline: the failed one may be half updated
                self._ids = namespace.EMPTY
                self._ids = self._snapshot()
            except Exception:
                pass
        try:
            if self.on_cell is not None:
                self.on_cell(cell)
        except Exception:
            log.warning("lineapy: analysing cell %s failed; it is kept as is",
                        cell.execution_count, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            for st in cell.statements:
                st.node = None

    def _finish(self, cell: CellRecord, result) -> None:
        cell.in_progress = False
        error = getattr(result, "error_in_exec", None)
        before = getattr(result, "error_before_exec", None)
        if before is not None:
            cell.success, cell.completed, cell.statements = False, 0, []
            cell.error = f"{type(before).__name__}: {before}"
        elif error is not None:
            cell.success = False
            cell.error = f"{type(error).__name__}: {error}"
            line = self._error_line(error)
            cell.completed = _statement_at(cell.statements, line) if line else 0
        else:
            cell.completed = len(cell.statements)
        self._record_rng(cell)
        snapshot = self._snapshot()
        changed, cell.deleted = self._diff(snapshot)
        cell.bound = self._bindings(cell, changed)
        count = getattr(result, "execution_count", None)
        if count is not None:  # IPython 9 increments the counter before pre_run_cell
            cell.execution_count = count
        value = getattr(result, "result", None)
        cell.result_id = id(value) if value is not None else None
        self._ids = snapshot
        self.cells.append(cell)

    def _record_rng(self, cell: CellRecord) -> None:
        """Which statements changed a global random generator.

        A digest is taken before the cell, after each statement that calls
        anything (the probes) and at the end; the statements between two
        digests that differ are blamed -- those that call something, or all
        of them when none does.  In a cell that raised, the failing
        statement's probe ran too (``finally``).
        """
        digests = self._digests
        self._digests = []
        if digests:
            _assign_rng(cell.statements, digests + [(len(cell.statements), self._rng.digest())])

    def _bindings(self, cell: CellRecord, names) -> dict[str, Binding]:
        ns = self.shell.user_ns
        out = {}
        for k in names:
            try:
                out[k] = binding_facts(ns[k])
            except Exception as e:  # a hostile object: keep the name, note the loss
                out[k] = Binding(id(ns.get(k)), "?", "?", False)
                cell.problems.append(f"no runtime facts for {k!r}: {type(e).__name__}: {e}")
        return out

    def _error_line(self, error) -> int | None:
        ns = self.shell.user_global_ns
        tb = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_name == "<module>" and frame.f_globals is ns:
                return tb.tb_lineno
            tb = tb.tb_next
        return None

    # -- namespace identity snapshots -------------------------------------
    # IPython adds hidden ``_iN``/``_N`` names for every cell, so a long
    # session's namespace grows with the cells.  A snapshot copies the
    # namespace dict's entry table (key and value pointers, no value touched)
    # and compares it with one memcmp (see kernel_hooks.namespace); names
    # bound since the baseline are the entries appended after it.  Only a
    # rebuilt table (each doubling of the namespace) is compared name by name.
    def _snapshot(self, baseline: bool = True) -> Snapshot:
        """The namespace now, compared with ``self._ids`` (see :meth:`_diff`).

        ``baseline``: the result becomes the next baseline (the probe is put
        back, the old baseline's key list is extended in place);
        False for a look from inside a running cell.
        """
        place = self._place_probe if baseline and self._installed else None
        return namespace.take(self.shell.user_ns, self._ids, PROBE_NAME, _hidden, place)

    def _place_probe(self, ns) -> None:
        # With entry tables the probe only has to be there (a move would
        # leave a deleted entry per cell); without, it marks where the names
        # bound by the next cell start.
        if namespace.RAW_TABLES:
            if ns.get(PROBE_NAME) is not self._probe_function:
                ns[PROBE_NAME] = self._probe_function
            return
        ns.pop(PROBE_NAME, None)
        ns[PROBE_NAME] = self._probe_function

    @property
    def snapshot(self) -> Snapshot:
        """The namespace as the last cell left it (see :mod:`kernel_hooks.namespace`)."""
        return self._ids

    def _diff(self, snapshot: Snapshot) -> tuple[list[str], set[str]]:
        """Non-hidden names new or rebound since ``self._ids``, and the deleted ones."""
        return list(snapshot.changed), set(snapshot.deleted)

    # -- cells that ran before the extension was loaded --------------------
    def _backfill(self, after: int = 0) -> list[CellRecord]:
        hist = getattr(self.shell.history_manager, "input_hist_parsed", None) or []
        count = getattr(self.shell, "execution_count", 1)
        recovered = []
        # The last entry is the cell running %load_ext itself; its code
        # before the magic has run, the rest is recorded by post_run_cell.
        for n, src in enumerate(hist[1:count + 1], start=1):
            if n <= after or not src.strip():
                continue
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            cell = CellRecord(len(self.cells), n, src, src, has_runtime_facts=False)
            cell.statements = statement_records(src, tree.body)
            cell.completed = len(cell.statements)
            self.cells.append(cell)
            recovered.append(cell)
        return recovered


def _insert_probes(module: ast.Module, interactivity: str = "last_expr",
                   sources: list[str] | None = None) -> None:
    """Digest the random generators after each top-level statement that calls
    anything, but the last.

    Statement i becomes ``try: <statement i> finally: __lineapy_probe__(i + 1)``:
    no extra top-level node (IPython runs each one as its own code object,
    which would cost far more than the probe), and the digest is taken even
    when the statement raises.  The last statement is left alone (its value
    may be displayed; the cell's end digests it); nothing is wrapped in a
    cell with ``from __future__`` imports (they must come first) or when every
    expression is displayed (``ast_node_interactivity = "all"``).

    ``sources``: the text of each statement, when ``module`` is exactly what
    the parser made of it.  A call needs ``(`` and an await its keyword, so a
    statement whose text has neither is not walked (walking every node cost
    ~8 us per statement: most of the probes' cost on a 100,000-line cell).
    """
    body = module.body
    if len(body) < 2 or interactivity == "all" or any(
            isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in body):
        return
    if sources is not None and len(sources) != len(body):
        sources = None
    for i, node in enumerate(body[:-1]):
        if sources is not None and not _may_call(sources[i]):
            continue
        if not _calls_anything(node):
            continue  # a = 1, df["c"] = df.a * 2: cannot draw (the next probe covers it)
        # Locations set by hand on the few new nodes: fix_missing_locations
        # would walk the whole statement each time.
        loc = {"lineno": node.lineno, "col_offset": node.col_offset,
               "end_lineno": node.end_lineno, "end_col_offset": node.end_col_offset}
        call = ast.Call(ast.Name(PROBE_NAME, ast.Load(), **loc), [ast.Constant(i + 1, **loc)], [], **loc)
        body[i] = ast.Try(body=[node], handlers=[], orelse=[], finalbody=[ast.Expr(call, **loc)], **loc)


def _assign_rng(stmts: list[StatementRecord], digests: list[tuple[int, tuple]]) -> None:
    """Blame the statements between two differing digests (see ``_record_rng``)."""
    for (start, before), (end, after) in zip(digests, digests[1:]):
        changed = RngObserver.changed(before, after)
        if not changed or end <= start:
            continue
        span = stmts[start:end]
        callers = [st for st in span if st.node is None or _calls_anything(st.node)]
        for st in callers or span:
            st.rng_changed = changed


def _may_call(source: str) -> bool:
    """False when a statement's text cannot hold a call or an ``await``
    (no text at all: unknown, so it may)."""
    return not source or "(" in source or "await" in source


def _calls_anything(node: ast.AST) -> bool:
    """Whether a statement calls anything (only calls can draw random numbers)."""
    return any(isinstance(n, (ast.Call, ast.Await)) for n in ast.walk(node))


def _statement_at(statements: list[StatementRecord], lineno: int) -> int:
    """Index of the statement running at ``lineno`` (= how many completed)."""
    idx = 0
    for st in statements:
        if st.lineno <= lineno:
            idx = st.index
        else:
            break
    return idx
