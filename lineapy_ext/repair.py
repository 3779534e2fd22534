"""Repairing a slice that does not verify.

The session's executed cells are stored; :func:`plan` splits them into
top-level statements (IPython syntax turned into Python by IPython's own
input transformer, which is a pure function of the text), keeps those that
ran before the artifact was saved, matches the slice's statements to them
(latest occurrence first) and returns the statements the slice left out.
Statements that call into IPython (magics, ``get_ipython()``) or
lineapy_ext, and those of cells that raised (how far they got is not
stored), cannot be replayed and are not offered.

:func:`search` then looks for a small set of left-out statements that makes
the slice verify, spending at most ``max_runs`` verifications: the whole
session first (statements that raise even then cannot run outside the
session and are dropped; if the rest does not verify, nothing can be
repaired), then only the statements connected to the slice by shared names
(usually the answer at once), then a bisection for the shortest verifying
prefix of the remaining statements (whose last statement is needed), then
delta debugging (ddmin) to drop the statements of that prefix that are
not.  Candidates keep execution order.
"""

from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass, field
from typing import Callable

from lineapy_ext.store.verifications import Verdict

#: Default bound on the verifications one repair may run.
DEFAULT_MAX_RUNS = 12


@dataclass(frozen=True)
class Statement:
    """One top-level statement: ``key`` orders it, ``source`` is its text."""

    key: tuple
    source: str
    execution_count: int | None = None
    dump: str = ""
    names: frozenset = frozenset()


@dataclass
class Plan:
    """What a repair starts from: the slice's statements and the left-out ones."""

    base: list[Statement]
    missing: list[Statement]
    notes: list[str] = field(default_factory=list)


@dataclass
class Repair:
    """The outcome of :func:`search`: the best slice found, its verdict, what was added."""

    code: str
    cells: list
    added: list[Statement]
    verdict: Verdict
    runs: int
    found: bool
    notes: list = field(default_factory=list)


def _python(raw: str) -> str | None:
    try:
        ast.parse(raw)
        return raw
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(raw)
    except Exception:  # IPython missing or text it cannot transform
        return None


def _sources(tree: ast.Module, src: str) -> list[str]:
    """Each top-level statement's text, as written when it has lines of its own."""
    lines = src.splitlines(keepends=True)
    body, out = tree.body, []
    for i, node in enumerate(body):
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        shared = (i and body[i - 1].end_lineno >= first) or (i + 1 < len(body) and body[i + 1].lineno <= node.end_lineno)
        out.append(ast.unparse(node) if shared or node.col_offset else "".join(lines[first - 1:node.end_lineno]).rstrip())
    return out


_BUILTINS = frozenset(dir(builtins))


def _names(node: ast.AST) -> frozenset:
    """Every non-builtin name a statement reads, binds, imports or defines."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(n.name)
        elif isinstance(n, ast.alias):
            found.add((n.asname or n.name).split(".")[0])
    return frozenset(found - _BUILTINS)


def _connected(base: list[Statement], missing: list[Statement]) -> list[Statement]:
    """The left-out statements that share a name with the slice, directly or through each other.

    Aliases (``f = xs.sort``), seeds (``random``) and mutations all share a
    name with what they affect; a file written under a literal path does
    not, which is why this is only tried first, not trusted.
    """
    names = set().union(*(s.names for s in base))
    chosen: set[int] = set()
    grew = True
    while grew:
        grew = False
        for i, s in enumerate(missing):
            if i not in chosen and s.names & names:
                chosen.add(i)
                names |= s.names
                grew = True
    return [s for i, s in enumerate(missing) if i in chosen]


def _replayable(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in ("get_ipython", "lineapy_ext"):
            return False
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
            if any(m.split(".")[0] == "lineapy_ext" for m in mods):
                return False
    return True


def _magic_save_name(words: list[str]) -> str | None:
    positional, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w.startswith("--"):
            skip = "=" not in w and w != "--verify"
        else:
            positional.append(w)
    return (positional[1] if len(positional) > 1 else positional[0]) if positional else None


def _saves(node: ast.AST, name: str) -> int:
    """How many saves of artifact ``name`` statement ``node`` makes."""
    count = 0
    for n in ast.walk(node):
        if not isinstance(n, ast.Call):
            continue
        func = getattr(n.func, "attr", getattr(n.func, "id", ""))
        consts = [a.value for a in n.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if func == "run_line_magic" and len(consts) >= 2 and consts[0] == "lineapy":
            words = consts[1].split()
            count += words[:1] == ["save"] and _magic_save_name(words[1:]) == name
        elif func == "save":
            named = consts[-1:] + [k.value.value for k in n.keywords if k.arg == "name" and isinstance(k.value, ast.Constant)]
            count += name in named
    return count


def session_statements(cells, name: str, earlier_saves: int) -> tuple[list[Statement], list[str]]:
    """The statements that ran before the ``earlier_saves + 1``-th save of ``name``.

    Parameters
    ----------
    cells : list of CellRecord
        The session's cells in execution order.
    name : str
        The artifact name.
    earlier_saves : int
        How many versions of ``name`` this session saved before this one.

    Returns
    -------
    (list of Statement, list of str)
        All statements up to the save (replayable or not: ``dump`` is empty
        for those that are not) and notes on what was skipped.
    """
    out, notes, unusable, seen = [], [], [], 0
    for cell in cells:
        src = _python(cell.source)
        tree = None
        if src is not None:
            try:
                tree = ast.parse(src)
            except SyntaxError:
                pass
        if tree is None:
            notes.append(f"cell [{cell.execution_count}] is not Python and was skipped")
            continue
        for node, text in zip(tree.body, _sources(tree, src)):
            seen += _saves(node, name)
            if seen > earlier_saves:
                return out, notes + _unusable_note(unusable)
            usable = cell.success and _replayable(node)
            out.append(Statement((len(out), 0), text, cell.execution_count, ast.dump(node) if usable else "",
                                 _names(node)))
            if cell.success and not usable and "'lineapy'" not in text:
                unusable.append(f"[{cell.execution_count}] {text}")
        if not cell.success:
            notes.append(f"cell [{cell.execution_count}] raised; its statements were not offered")
    return out, notes + _unusable_note(unusable)


def _unusable_note(unusable: list[str]) -> list[str]:
    if not unusable:
        return []
    shown = "; ".join(unusable[:3]) + ("; ..." if len(unusable) > 3 else "")
    return [f"{len(unusable)} statement(s) call IPython or lineapy_ext and cannot be replayed: {shown}"]


def plan(slice_code: str, statements: list[Statement]) -> Plan:
    """Match the slice to the session's ``statements``; return the slice and what it left out."""
    tree = ast.parse(slice_code)
    pieces = list(zip(tree.body, _sources(tree, slice_code)))
    matched: list[int | None] = [None] * len(pieces)
    limit = len(statements)
    for i in range(len(pieces) - 1, -1, -1):  # latest occurrence first: re-run cells
        dump = ast.dump(pieces[i][0])
        for j in range(limit - 1, -1, -1):
            if statements[j].dump == dump:
                matched[i], limit = j, j
                break
    base, previous, extra = [], -1, 0
    for (node, text), j in zip(pieces, matched):
        if j is None:  # rewritten by the slicer (e.g. a %time line): stays after its predecessor
            extra += 1
            ec = base[-1].execution_count if base else None
            base.append(Statement((previous, extra), text, ec, ast.dump(node), _names(node)))
        else:
            previous, extra = j, 0
            base.append(Statement((j, 0), text, statements[j].execution_count, statements[j].dump, statements[j].names))
    used = {j for j in matched if j is not None}
    missing = [s for j, s in enumerate(statements) if j not in used and s.dump]
    unmatched = sum(j is None for j in matched)
    notes = [f"{unmatched} slice statement(s) were not found as such in the session"] if unmatched else []
    return Plan(base, missing, notes)


def assemble(statements: list[Statement]) -> tuple[str, list]:
    """Code and ``(execution_count, code)`` cells of ``statements`` in execution order."""
    ordered = sorted(statements, key=lambda s: s.key)
    cells: list[list] = []
    for s in ordered:
        if cells and cells[-1][0] == s.execution_count:
            cells[-1][1] += "\n" + s.source
        else:
            cells.append([s.execution_count, s.source])
    return "\n".join(s.source for s in ordered) + "\n", [tuple(c) for c in cells]


class _OutOfRuns(Exception):
    pass


class _Unrunnable(Exception):
    """A left-out statement raises in a fresh interpreter even with everything before it."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement


def _statement_at(statements: list[Statement], line: int) -> Statement | None:
    """The statement of ``assemble(statements)`` that holds code line ``line``."""
    end = 0
    for s in statements:
        end += s.source.count("\n") + 1
        if line <= end:
            return s
    return None


class _Search:
    """Candidate runs of one repair, their budget and the best verifying candidate."""

    def __init__(self, p: Plan, test: Callable[[str], Verdict], max_runs: int) -> None:
        self.p, self.test, self.max_runs = p, test, max_runs
        self.runs, self.best, self.last = 0, None, None

    def ok(self, extra: list[Statement], whole: bool = False) -> bool:
        if self.runs >= self.max_runs:
            raise _OutOfRuns
        self.runs += 1
        statements = sorted(self.p.base + extra, key=lambda s: s.key)
        code, cells = assemble(statements)
        verdict = self.last = self.test(code)
        if verdict.ok and (self.best is None or len(extra) < len(self.best.added)):
            self.best = Repair(code, cells, sorted(extra, key=lambda s: s.key), verdict, 0, True)
        if whole and verdict.status == "failed" and verdict.line:
            # With all that ran before it present, a statement that raises
            # cannot run outside the session (a file written by a shell
            # command, say): it is no candidate.
            culprit = _statement_at(statements, verdict.line)
            if culprit is not None and culprit in extra:
                raise _Unrunnable(culprit)
        return verdict.ok

    def whole(self, missing: list[Statement], dropped: list[Statement]) -> bool:
        """Whether all of ``missing`` verifies, after removing (into ``dropped``) those that raise."""
        while missing:
            try:
                return self.ok(missing, whole=True)
            except _Unrunnable as e:
                missing.remove(e.statement)
                dropped.append(e.statement)
        return False


def search(p: Plan, test: Callable[[str], Verdict], max_runs: int = DEFAULT_MAX_RUNS) -> Repair:
    """Find a small set of ``p.missing`` statements that makes ``p.base`` verify.

    Parameters
    ----------
    p : Plan
    test : callable
        ``test(code) -> Verdict``: verifies one candidate slice.
    max_runs : int
        At most this many calls of ``test``.

    Returns
    -------
    Repair
        ``found`` is whether a verifying slice was found; when the budget
        ran out mid-way, the smallest verifying candidate so far.  ``notes``
        name the statements left out because they raise on their own.
    """
    run, missing, dropped = _Search(p, test, max_runs), list(p.missing), []
    try:
        if run.whole(missing, dropped):
            connected = _connected(p.base, missing)
            if len(connected) < len(missing) and run.ok(connected):
                missing = connected
            lo, hi = 0, len(missing)  # missing[:hi] verifies, missing[:lo] does not (lo=0: the slice itself)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if run.ok(missing[:mid]) else (mid, hi)
            needed = missing[hi - 1]
            _ddmin(missing[:hi - 1], lambda sub: run.ok(sub + [needed]))
    except _OutOfRuns:
        pass
    notes = [f"{len(dropped)} statement(s) raise outside the session and were not offered: "
             + "; ".join(f"[{s.execution_count}] {s.source}" for s in dropped[:3])] if dropped else []
    if run.best is not None:
        run.best.runs, run.best.notes = run.runs, notes
        return run.best
    code, cells = assemble(p.base)
    if not missing:
        why = "the session has no other replayable statement before the save"
    else:
        why = f"with all {len(missing)} left-out statements the slice does not verify either ({run.last})"
    return Repair(code, cells, [], Verdict("not run", f"no repair found: {why}"), run.runs, False, notes)


def _ddmin(items: list, ok: Callable[[list], bool]) -> list:
    """Delta debugging: a 1-minimal subset of ``items`` for which ``ok`` holds (``ok(items)`` is known)."""
    if not items or ok([]):
        return []
    n = 2
    while len(items) >= 2:
        size = math.ceil(len(items) / n)
        for start in range(0, len(items), size):
            complement = items[:start] + items[start + size:]
            if ok(complement):
                items, n = complement, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    return items
