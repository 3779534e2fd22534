"""Top-level statements of a saved slice and the names each one reads and binds.

Code generation works on the saved slice text only (``Artifact.get_code()``):
this module parses it with :mod:`ast` into :class:`Stmt` objects, one per
top-level statement, and computes for each the names it *reads* (loads of
names bound outside the statement, including the free names of functions and
lambdas it defines, which are read when they are called), the names it
*binds* at module level, and the names it may *change in place* (method
receivers, attribute/subscript targets, values aliased by an assignment).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from lineapy_ext.exceptions import SliceError

#: Names Python provides without an import; not inputs of generated code.
BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass
class Stmt:
    """One top-level statement of a slice.

    Attributes
    ----------
    node : ast.stmt
        The parsed statement.
    source : str
        Its source text, as saved.
    key : str
        ``ast.dump`` of the node: equal for the same statement in two slices.
    reads, binds, changes : set of str
        Names read, bound at module level, and possibly changed in place.
    deferred : set of str
        Free names of the functions/lambdas it defines (read when called).
    globals_declared : set of str
        Names declared ``global`` inside functions it defines.
    lines : dict of str to int
        Line in each artifact's slice where this statement starts.
    """

    node: ast.stmt
    source: str
    key: str
    reads: set = field(default_factory=set)
    binds: set = field(default_factory=set)
    changes: set = field(default_factory=set)
    deferred: set = field(default_factory=set)
    globals_declared: set = field(default_factory=set)
    lines: dict = field(default_factory=dict)

    @property
    def is_import(self) -> bool:
        return isinstance(self.node, (ast.Import, ast.ImportFrom))

    @property
    def mentions(self) -> set:
        return self.reads | self.binds | self.changes

    def first_line(self) -> str:
        """The statement's first source line, shortened for docstrings."""
        line = self.source.strip().splitlines()[0]
        return line if len(line) <= 70 else line[:67] + "..."


def parse_slice(code: str, artifact: str) -> list[Stmt]:
    """Split the slice ``code`` of ``artifact`` into analysed top-level statements.

    Parameters
    ----------
    code : str
        The saved slice (plain Python).
    artifact : str
        The artifact name, recorded with each statement's line number.

    Returns
    -------
    list of Stmt

    Raises
    ------
    lineapy_ext.exceptions.SliceError
        If the slice is empty or is not valid Python.
    """
    if not code.strip():
        raise SliceError(f"artifact {artifact!r} has no slice to generate code from; save it again "
                         "with the extension loaded (%load_ext lineapy_ext)")
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise SliceError(f"the slice of {artifact!r} is not valid Python (line {e.lineno}): {e.msg}") from e
    stmts = []
    for node in tree.body:
        source = ast.get_source_segment(code, node) or ast.unparse(node)
        if _has_multiline_string(node):
            # Generated code indents statements; indenting a string that
            # spans lines would change it, so such statements are rendered
            # again by ast (same code, comments lost).
            source = ast.unparse(node)
        stmt = Stmt(node=node, source=source, key=ast.dump(node), lines={artifact: node.lineno})
        _analyse(stmt)
        stmts.append(stmt)
    return stmts


def _analyse(stmt: Stmt) -> None:
    visitor = _Names()
    visitor.visit(stmt.node)
    stmt.binds = visitor.binds
    stmt.reads = visitor.reads | visitor.deferred
    stmt.deferred = visitor.deferred
    stmt.changes = visitor.changes
    stmt.globals_declared = visitor.globals_declared


class _Names(ast.NodeVisitor):
    """Collect module-level reads/binds/changes of one top-level statement."""

    def __init__(self) -> None:
        self.reads: set = set()
        self.binds: set = set()
        self.changes: set = set()
        self.deferred: set = set()
        self.globals_declared: set = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        else:
            self.binds.add(node.id)

    def visit_Import(self, node) -> None:
        for alias in node.names:
            self.binds.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.reads.add(node.target.id)
            self.changes.add(node.target.id)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        # ``b = a`` (or ``b = [a]``) makes b an alias of a: later changes
        # through b change a.
        self.changes |= _aliased(node.value)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = _base_name(node)
        if base and not isinstance(node.ctx, ast.Load):
            self.changes.add(base)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        base = _base_name(node)
        if base and not isinstance(node.ctx, ast.Load):
            self.changes.add(base)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            base = _base_name(node.func)
            if base:
                self.changes.add(base)  # obj.method(...) may change obj
        self.generic_visit(node)

    def _scope(self, node, outer_parts) -> None:
        """Names used inside a function/lambda/class/comprehension body."""
        for part in outer_parts:
            self.visit(part)
        inner = _Names()
        for child in ast.iter_child_nodes(node):
            if child not in outer_parts:
                inner.visit(child)
        local = inner.binds | _arg_names(node)
        self.deferred |= (inner.reads | inner.deferred) - local
        self.deferred |= inner.globals_declared
        self.globals_declared |= inner.globals_declared

    def visit_FunctionDef(self, node) -> None:
        self.binds.add(node.name)
        outer = [*node.decorator_list, *_defaults(node.args)]
        if node.returns is not None:
            outer.append(node.returns)
        self._scope(node, outer)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, list(_defaults(node.args)))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.binds.add(node.name)
        outer = [*node.decorator_list, *node.bases, *node.keywords]
        # A class body runs now; its methods read their free names later.
        self._scope(node, outer)
        self.reads |= self.deferred

    def _comprehension(self, node) -> None:
        self._scope(node, [node.generators[0].iter])
        # Comprehensions run immediately.
        self.reads |= self.deferred

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Global(self, node: ast.Global) -> None:
        self.globals_declared.update(node.names)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.binds.add(node.target.id)
        self.visit(node.value)


def _arg_names(node) -> set:
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return set()
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _defaults(args: ast.arguments):
    return [d for d in (*args.defaults, *args.kw_defaults) if d is not None]


def _base_name(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _aliased(value) -> set:
    if isinstance(value, ast.Name):
        return {value.id}
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return set().union(*(_aliased(e) for e in value.elts)) if value.elts else set()
    if isinstance(value, ast.Dict):
        return set().union(set(), *(_aliased(v) for v in value.values))
    return set()


def expand_calls(stmts: list[Stmt]) -> None:
    """Add to each statement the deferred reads of the functions it mentions.

    ``m = f()`` reads what ``f``'s body reads when it is called; the
    statements binding ``f`` recorded those names as deferred.  Applied until
    nothing changes, so functions calling functions are covered.
    """
    deferred_of: dict[str, set] = {}
    for stmt in stmts:
        for name in stmt.binds:
            if stmt.deferred:
                deferred_of.setdefault(name, set()).update(stmt.deferred)
    changed = True
    while changed:
        changed = False
        for stmt in stmts:
            extra = set().union(*(deferred_of.get(n, set()) for n in stmt.mentions)) - stmt.reads
            if extra:
                stmt.reads |= extra
                changed = True
                for name in stmt.binds:
                    if name in deferred_of:
                        deferred_of[name] |= extra


def _has_multiline_string(node: ast.stmt) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr) or (isinstance(sub, ast.Constant) and isinstance(sub.value, (str, bytes))):
            if (sub.end_lineno or sub.lineno) > sub.lineno:
                return True
    return False
