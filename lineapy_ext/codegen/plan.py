"""What generated code runs: merged slices, shared blocks and parameter bindings.

The slices of several artifacts saved in one session are subsequences of what
ran in that session.  :func:`merge_slices` aligns them (statements compared by
their AST) into one program in execution order, each statement knowing which
artifacts need it.  :func:`split_blocks` cuts that program into maximal runs
of statements needed by the same artifacts: a run needed by several artifacts
becomes one shared helper.  :func:`resolve_parameter` finds, with a
read-before-write pass over the program, the binding of a variable that the
artifacts' computation used, which the parameter then replaces.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field

from lineapy_ext.codegen.statements import BUILTIN_NAMES, Stmt, expand_calls, parse_slice
from lineapy_ext.exceptions import CodegenError


@dataclass
class Target:
    """One artifact to recompute: its name, version, the variable holding it, its slice."""

    name: str
    version: int
    var: str
    code: str
    session_id: str = ""
    created_at: object = None
    #: ``(execution_count, code)`` of the slice per cell, when saved (orders the merge).
    cells: list = field(default_factory=list)
    #: Python and distribution versions recorded at save (None: not recorded).
    environment: dict | None = None


@dataclass
class Item:
    """A statement of the merged program and the artifacts that need it."""

    stmt: Stmt
    owners: set = field(default_factory=set)


def merge_slices(targets: list[Target]) -> list[Item]:
    """Align the slices of ``targets`` (one session) into one program.

    When the saved cells of every slice carry increasing execution counts,
    statements are ordered by the cell they ran in and statements equal (same
    AST) in the same cell are run once.  Otherwise the whole slices are
    aligned by content and, where they differ, the statements of the earlier
    target come first.  Each slice's own order is always kept.

    Returns
    -------
    list of Item
        The program in execution order.

    Raises
    ------
    CodegenError
        If a slice does not bind its artifact's variable.
    """
    parsed = []
    for target in targets:
        stmts = parse_slice(target.code, target.name)
        if not any(target.var in s.binds | s.globals_declared for s in stmts):
            raise CodegenError(f"the slice of {target.name!r} never binds {target.var!r}, so it cannot be "
                               f"recomputed; %lineapy code {target.name} shows the slice")
        parsed.append((target, stmts, _cell_counts(target, stmts)))
    if all(counts is not None for _, _, counts in parsed):
        # Every statement knows the cell it ran in: cells in execution order,
        # aligned by content only within one cell.
        program = []
        for count in sorted({c for _, _, counts in parsed for c in counts}):
            part: list[Item] = []
            for target, stmts, counts in parsed:
                part = _merge_one(part, [s for s, c in zip(stmts, counts) if c == count], target.name)
            program += part
    else:
        program = []
        for target, stmts, _ in parsed:
            program = _merge_one(program, stmts, target.name)
    expand_calls([item.stmt for item in program])
    return program


def _cell_counts(target: Target, stmts: list[Stmt]) -> list[int] | None:
    """The execution count of the cell each slice statement ran in, when the saved cells tell."""
    counts = [count for count, _ in target.cells]
    if not counts or any(not isinstance(c, int) for c in counts) or any(b <= a for a, b in zip(counts, counts[1:])):
        return None
    keys, per_stmt = [], []
    for count, code in target.cells:
        try:
            body = ast.parse(code).body
        except SyntaxError:
            return None
        keys += [ast.dump(node) for node in body]
        per_stmt += [count] * len(body)
    return per_stmt if keys == [s.key for s in stmts] else None


def _merge_one(program: list[Item], stmts: list[Stmt], name: str) -> list[Item]:
    keys_a = [item.stmt.key for item in program]
    keys_b = [stmt.key for stmt in stmts]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    merged: list[Item] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for item, stmt in zip(program[a0:a1], stmts[b0:b1]):
                item.owners.add(name)
                item.stmt.lines.update(stmt.lines)
                merged.append(item)
            continue
        merged.extend(program[a0:a1])
        merged.extend(Item(stmt, {name}) for stmt in stmts[b0:b1])
    return merged


@dataclass
class Binding:
    """Where parameter ``name`` enters: the statement whose binding it replaces."""

    name: str
    index: int
    item: Item
    literal: object = None
    has_literal: bool = False

    def where(self, artifact: str | None = None) -> str:
        """``line N of the slice of 'A'``: of ``artifact`` if it has the statement, else of the first that has."""
        lines = self.item.stmt.lines
        if artifact not in lines:
            artifact = next(iter(lines))
        return f"line {lines[artifact]} of the slice of {artifact!r}"


def parameter_candidates(program: list[Item]) -> list[str]:
    """Names a parameter may replace: read by some statement after a binding of theirs."""
    names = set()
    bound: set = set()
    for item in program:
        stmt = item.stmt
        names |= stmt.reads & bound
        if not stmt.is_import:
            bound |= stmt.binds
    return sorted(names - _global_names(program))


def _global_names(program: list[Item]) -> set:
    return set().union(set(), *(item.stmt.globals_declared for item in program))


def resolve_parameter(program: list[Item], name: str) -> Binding:
    """Find the statement whose binding of ``name`` the computation used.

    Read-before-write over the top-level statements: each statement reading
    ``name`` uses the latest earlier statement binding it.  Statements that
    read ``name`` only to rebind it (``x = x * 3``) pass it on; the binding
    used by the last other reader is the one replaced.

    Raises
    ------
    CodegenError
        If no statement reads ``name`` after binding it; the message lists
        the names that can be parameters.
    """
    if name not in parameter_candidates(program):
        candidates = parameter_candidates(program)
        close = difflib.get_close_matches(name, candidates, n=3)
        hint = ("did you mean " + " or ".join(map(repr, close)) + "? ") if close else ""
        raise CodegenError(
            f"{name!r} cannot be a parameter: the slices do not read it; {hint}"
            f"variables they read: {', '.join(candidates) or '(none)'}"
        )
    last_binding = consumer = reader = None
    for index, item in enumerate(program):
        stmt = item.stmt
        if name in stmt.reads and last_binding is not None:
            reader = last_binding
            if name not in stmt.binds:
                consumer = last_binding
        if name in stmt.binds and not stmt.is_import:
            last_binding = index
    chosen = consumer if consumer is not None else reader
    binding = Binding(name, chosen, program[chosen])
    value = _literal_value(program[chosen].stmt.node, name)
    if value is not _NO_LITERAL:
        binding.literal, binding.has_literal = value, True
    return binding


_NO_LITERAL = object()
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)


def is_pure_binding(node: ast.stmt, name: str) -> bool:
    """Whether ``node`` does nothing but bind ``name`` (``name = expr``, ``name += expr``...)."""
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        return isinstance(node.target, ast.Name) and node.target.id == name and node.value is not None
    return False


def _literal_value(node: ast.stmt, name: str):
    """The value of ``name = <immutable literal>``, else ``_NO_LITERAL``."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not is_pure_binding(node, name):
        return _NO_LITERAL
    try:
        value = ast.literal_eval(node.value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NO_LITERAL
    if not isinstance(value, _IMMUTABLE) or (isinstance(value, (tuple, frozenset)) and not _hashable(value)):
        return _NO_LITERAL  # a mutable default would be shared between calls
    return value


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclass
class Block:
    """A maximal run of program statements needed by the same artifacts."""

    indices: list
    owners: frozenset


def split_blocks(program: list[Item]) -> list[Block]:
    """Cut the program (imports excluded) into runs of equal owner sets, in order."""
    blocks: list[Block] = []
    for index, item in enumerate(program):
        if item.stmt.is_import:
            continue
        owners = frozenset(item.owners)
        if blocks and blocks[-1].owners == owners:
            blocks[-1].indices.append(index)
        else:
            blocks.append(Block([index], owners))
    return blocks


def combinable(program: list[Item], target: Target) -> bool:
    """Whether ``target`` can be computed in the same run as the others of its session.

    The slicer already decided that statements of other artifacts that ran
    between this artifact's statements do not affect it.  What it could not
    see: statements of other artifacts placed *after* this artifact's last
    statement that change its value in place or rebind it, and statements of
    other artifacts that rebind a name this artifact uses (slices aligned in
    a different order than they ran).  Either makes the artifact computed on
    its own instead.
    """
    mine = [i for i, item in enumerate(program) if target.name in item.owners]
    if not mine:
        return False
    last = mine[-1]
    for index, item in enumerate(program):
        if target.name in item.owners or item.stmt.is_import:
            continue
        if index < last and any(_read_next(program, mine, index, name) for name in item.stmt.binds):
            return False
        if index > last and (item.stmt.changes | item.stmt.binds) & {target.var}:
            return False
    return True


def _read_next(program: list[Item], mine: list[int], index: int, name: str) -> bool:
    """Whether the artifact's first statement after ``index`` mentioning ``name`` reads it.

    It would then read the binding another artifact's statement made at
    ``index`` instead of its own; a statement that only binds ``name`` again
    is unaffected.
    """
    for i in mine:
        stmt = program[i].stmt
        if i > index and name in stmt.mentions:
            return name in stmt.reads or name in stmt.changes
    return False
