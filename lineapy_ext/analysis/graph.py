"""The dependency graph of a session, built statement by statement.

Each executed top-level statement becomes a :class:`Node`.  When a statement
is added, its dependencies are fixed from the session's state *at that
moment* (what it reads, as bound and changed so far), which gives late
binding for free: a global changed after a value was computed never leaks
into that value's slice.

The parts, each in its own module:

- :class:`~lineapy_ext.analysis.objects.ObjectModel`: names, objects,
  containment and the heads of each object's history;
- :class:`~lineapy_ext.analysis.program.Program`: functions, classes and
  modules the session defined or imported;
- :class:`~lineapy_ext.analysis.effects.EffectResolver`: what each call
  read and changed (runtime facts, then the effect registry, then session
  code, then name-only guesses);
- this module: statements in, runtime facts of each cell reconciled
  (identities, types, RNG digests), files and hidden state as resources,
  and the backward walk a slice is cut from.

Everything uncertain errs on the side of more dependencies.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Iterable

from lineapy_ext.analysis.effects import (
    ANY_FILE,
    CALL_BUDGET,
    INDIRECT,
    CellContext,
    EffectResolver,
    Env,
    TooDeep,
)
from lineapy_ext.analysis.objects import ObjectModel
from lineapy_ext.analysis.program import Program
from lineapy_ext.analysis.registry import EffectRegistry
from lineapy_ext.analysis.sql import Databases
from lineapy_ext.analysis.statements import PURE_BUILTINS, PURE_METHODS, StatementFacts, _looks_like_path

__all__ = ["DependencyGraph", "Node"]

_RNG_TYPES = frozenset({
    "numpy.random._generator.Generator",
    "numpy.random.mtrand.RandomState",
    "random.Random",
    "random.SystemRandom",
})


@dataclass(slots=True)
class Node:
    """One executed top-level statement."""

    id: int
    cell: int
    execution_count: int | None
    index: int
    source: str
    emit: str | None = None
    deps: tuple[int, ...] = ()
    drop: bool = False
    opaque: bool = False
    artifact_get: tuple | None = None

    @property
    def code(self) -> str:
        """The plain-Python text of the statement."""
        return self.emit if self.emit is not None else self.source


_LOOPS = (ast.For, ast.AsyncFor, ast.While)
#: The state ``os.chdir`` sets (effects.toml): what relative paths mean.
CWD_STATE = "state:cwd"


@dataclass(slots=True)
class FailedStatement:
    """A statement that raised part-way: its partial effects are not replayed."""

    execution_count: int | None
    position: int  # number of nodes when it ran
    touched: frozenset[str]
    error: str | None = None
    rebound: frozenset[str] = frozenset()  # names it (re)bound before raising


class DependencyGraph:
    """Incrementally built statement-level dependency graph of a session.

    Parameters
    ----------
    registry : EffectRegistry, optional
        Effects of library callables (default: the process-wide registry).
    """

    def __init__(self, registry: EffectRegistry | None = None):
        self.nodes: list[Node] = []
        self.objects = ObjectModel()
        self.program = Program()
        self.files: dict[str, tuple[int, ...]] = {}
        self.state: dict[str, tuple[int, ...]] = {}
        self.state_members: dict[str, frozenset[int]] = {}  # objects a hidden state holds (current axes)
        self.failed: list[FailedStatement] = []
        self.problems: list[tuple[int | None, str]] = []
        self.databases = Databases()  # SQLite files: tables not committed yet, files taken whole
        self.resolver = EffectResolver(self.objects, self.program, registry, self.databases)

    @property
    def bindings(self) -> dict[str, int]:
        """Global name -> object key."""
        return self.objects.bindings

    @property
    def binder(self) -> dict[str, int]:
        """Global name -> the statement that last bound it."""
        return self.objects.binder

    def fork(self) -> "DependencyGraph":
        """A copy that can take more statements without changing this one
        (a save made from inside a running cell)."""
        g = DependencyGraph.__new__(DependencyGraph)
        g.nodes = list(self.nodes)
        g.objects = self.objects.copy()
        g.program = self.program.copy()
        g.files, g.state, g.state_members = dict(self.files), dict(self.state), dict(self.state_members)
        g.databases = self.databases.copy()
        g.failed, g.problems = list(self.failed), list(self.problems)
        g.resolver = EffectResolver(g.objects, g.program, self.resolver._registry, g.databases)
        return g

    # -- cells ----------------------------------------------------------------
    def add_cell(self, cell, facts: list[StatementFacts], failed: StatementFacts | None = None) -> list[int]:
        """Add the completed statements of ``cell`` (a ``kernel_hooks``
        CellRecord) with their static ``facts``; return the new node ids.

        ``failed`` are the facts of the statement that raised, if any: names
        it bound are not blamed on the statements that completed.
        """
        n = min(cell.completed, len(facts), len(cell.statements))
        last_def: dict[str, int] = {}
        for i in range(n):
            for name in (*facts[i].defs, *facts[i].maybe_defs):
                last_def[name] = i
        ctx = CellContext(cell, last_def)
        new = [self._add_statement(cell, cell.statements[i], facts[i], ctx) for i in range(n)]
        for problem in getattr(cell, "problems", ()):
            self.problems.append((cell.execution_count, problem))
        if failed is not None:
            bound = set(failed.defs) | set(failed.maybe_defs)
            if cell.has_runtime_facts:
                bound &= set(cell.bound)
            node = cell.statements[n].node if n < len(cell.statements) else None
            if isinstance(node, _LOOPS):
                # Earlier iterations completed: whatever the loop changes may
                # be half-changed (a dict filled up to the failing key).
                bound |= {m for m, _ in failed.mutations}
                bound |= {c.chain[0] for c in failed.calls if c.chain and len(c.chain) > 1}
            self.note_failed(cell.execution_count, failed, getattr(cell, "error", None), frozenset(bound))
        if cell.has_runtime_facts:
            self._reconcile(cell, facts[:n], new, failed)
        return new

    def _add_statement(self, cell, st, f: StatementFacts, ctx: CellContext) -> int:
        nid = len(self.nodes)
        node = Node(nid, cell.index, cell.execution_count, st.index, st.source, f.emit,
                    drop=f.drop, opaque=f.opaque, artifact_get=f.artifact_get)
        self.nodes.append(node)
        if f.drop:
            return nid
        stmt = _Statement(self, nid, f, ctx, st.index)
        stmt.run(st)
        deps = stmt.deps
        deps.discard(nid)
        node.deps = tuple(sorted(deps))
        return nid

    # -- resources: files and hidden state --------------------------------------
    def _files(self, f: StatementFacts, nid: int, deps: set[int], touched: list) -> None:
        objects = self.objects
        reads = list(f.paths)
        for u in f.uses:
            s = objects.strings.get(objects.bindings.get(u))
            if s and _looks_like_path(s):
                reads.append(s)
        for name, path in f.imports:
            # a module the session wrote (%%writefile mymod.py; import mymod)
            top = path.split(".")[0]
            if top:
                reads += [top + ".py", top]
        writes = []
        for path, w in touched:
            (writes if w else reads).append(path)
        for p in reads + writes:
            deps.update(self.file_writers(p))
        if any(not os.path.isabs(p) for p in reads + writes):
            deps.update(self.state.get(CWD_STATE, ()))  # os.chdir("data"); pd.read_csv("x.csv")
        for p in writes:
            self.files[os.path.normpath(p)] = (nid,)

    def file_writers(self, path: str) -> set[int]:
        """Statements that last wrote ``path``, what is in it (a directory,
        a database's tables) or what holds it."""
        norm, out = os.path.normpath(path), set()
        for known, writers in self.files.items():
            # Same file, a directory and what is in it, a name whose suffix
            # the writer adds (np.save("a") -> a.npy), or a path not known.
            if (known == norm or known.startswith(norm + os.sep) or norm.startswith(known + os.sep)
                    or norm.startswith(known + ".") or known.startswith(norm + ".")
                    or ANY_FILE in (known, norm)):
                out.update(writers)
        return out

    def note_failed(self, execution_count: int | None, f: StatementFacts, error: str | None = None,
                    rebound: frozenset[str] = frozenset()) -> None:
        """Remember a statement that raised: slices it may have partly
        changed get a warning, and a value it last bound cannot be sliced."""
        names = set(f.defs) | set(f.maybe_defs) | {m for m, _ in f.mutations}
        for c in f.calls:
            names |= self._may_change(c)
        if names:
            self.failed.append(FailedStatement(execution_count, len(self.nodes), frozenset(names), error, rebound))

    def _may_change(self, call) -> set[str]:
        """Names a call that raised may have changed part-way: the receiver of
        a method not known to be pure, the arguments of a function that is
        not a known-pure builtin or module function (``data["x"].mean()``
        changes nothing)."""
        objects, program = self.objects, self.program
        chain = call.chain
        if not chain:
            return set()
        root_key = objects.bindings.get(chain[0])
        if len(chain) > 1:
            if chain[0] in program.modules:
                effect = self.resolver.registry.function(".".join((program.modules[chain[0]],) + chain[1:]))
                return {a for a in call.args if a} if effect is None or effect.mutates else set()
            if root_key in objects.atomic or (call.name in PURE_METHODS and not call.inplace):
                return set()
            effect = self.resolver.registry.method(objects.type_of(root_key), call.name or "")
            if effect is not None and not effect.mutates:
                return set()
            return {chain[0]} | {a for a in call.args if a}
        if root_key is None and chain[0] in PURE_BUILTINS:
            return set()
        return {a for a in call.args if a}

    # -- runtime facts ---------------------------------------------------------
    def _reconcile(self, cell, facts: list[StatementFacts], new: list[int], failed) -> None:
        objects = self.objects
        for name in list(cell.bound) + list(cell.deleted):
            self.program.forget_reads(name)
        static = set()
        for f in facts + ([failed] if failed is not None else []):
            static.update(f.defs)
            static.update(f.maybe_defs)
            static.update(f.deletes)
        for name, b in cell.bound.items():
            if name not in static or name not in objects.bindings:
                if failed is not None and name in static:
                    continue  # bound by the statement that raised
                if not self._adopt_unexplained(name, facts, new):
                    continue
            key = objects.bindings[name]
            other = objects.key_of_id.get(b.id)
            if other is not None and other != key and not b.atomic and (
                    objects.is_live(other, name) or objects.holders.get(other)):
                objects.merge_into(key, other)
                objects.bindings[name] = key = other
            self._apply_binding(name, key, b)
        for name in cell.deleted:
            if name not in static:
                objects.bindings.pop(name, None)
                objects.binder.pop(name, None)

    def _adopt_unexplained(self, name: str, facts, new) -> bool:
        """A name bound without a statement saying so (``exec``, star
        imports, a function's ``globals()``): blame the likely statements."""
        objects = self.objects
        live = [nid for nid in new if not self.nodes[nid].drop]
        suspects = [nid for nid, f in zip(new, facts) if f.unknown_effects or f.opaque or f.star_imports]
        if not suspects:
            suspects = [nid for nid, f in zip(new, facts) if f.calls and not f.drop] or live
        if not suspects:
            return False
        key = objects.new_key()
        objects.writers[key] = tuple(suspects)
        objects.bindings[name] = key
        objects.binder[name] = suspects[-1]
        for nid in suspects:
            node = self.nodes[nid]
            node.deps = tuple(sorted(set(node.deps) | {s for s in suspects if s < nid}))
        stars = [f.star_imports for f in facts if f.star_imports]
        if len(stars) == 1 and len(stars[0]) == 1 and not any(f.unknown_effects for f in facts):
            # from numpy import *: calls of `mean` are calls of numpy.mean
            self.program.modules[name] = f"{stars[0][0]}.{name}"
        return True

    def _apply_binding(self, name: str, key: int, b) -> None:
        """Record what the capture saw of the object ``name`` refers to."""
        objects, program = self.objects, self.program
        if not b.atomic and self._independent(b):
            # a new pandas object (copy-on-write) or a numpy array owning its
            # data: it shares nothing with what it was computed from
            objects.drop_contains(key)
        if b.atomic:
            objects.atomic.add(key)
            # An int or a string holds no references: drop the edges the
            # syntax suggested (y = len(results) does not hold results).
            objects.drop_contains(key)
        else:
            objects.atomic.discard(key)
            objects.key_of_id[b.id] = key
            objects.id_of_key[key] = b.id
        if b.str_value is not None:
            objects.strings[key] = b.str_value
        if b.mro:
            objects.mro[key] = b.mro
        if b.element_mro:
            objects.element_mro[key] = b.element_mro
        if b.code_names:
            objects.code_reads[key] = frozenset(b.code_names)
        if key in program.classes and b.class_attrs is not None:
            # what the class really holds: @dataclass removes a field made with default_factory
            summary = program.classes[key]
            program.classes[key] = dataclasses.replace(summary, attrs=summary.attrs & frozenset(b.class_attrs))
        if key in program.functions and b.code_qualname and b.code_qualname.rpartition(".")[2] != name:
            # @decorator def f: the name refers to what the decorator returned
            # (a wrapper), not to the body we summarised.
            program.functions.pop(key, None)
            program.ctr_cache.pop(key, None)
        self._link_elements(name, key, b)
        if b.type_module == "__main__":
            cls = objects.bindings.get(b.type_name.split(".")[0])
            if cls in program.classes:
                program.instance_of[key] = cls
                program.ctr_cache.pop(key, None)
        if f"{b.type_module}.{b.type_name}" in _RNG_TYPES:
            program.rng_objects.add(key)

    def _independent(self, b) -> bool:
        if b.mro and b.mro[0] == "numpy.ndarray":
            return b.base_id is None and not b.element_mro
        return any(self.resolver.registry.independent(c) for c in b.mro)

    def _link_elements(self, name: str, key: int, b) -> None:
        objects = self.objects
        held = set()
        fresh_held = set()
        for e in b.element_ids:
            if e in objects.key_of_id:
                held.add(objects.key_of_id[e])
            else:
                # An element no name refers to (yet): it gets a key, so two
                # containers sharing it (shallow = dict(book)) both see its
                # changes, and a later name for it (lst = d['k']) joins it.
                k = objects.new_key()
                # Its history so far is the container's (book['a'].append(99)
                # earlier in the cell marked book).
                objects.writers[k] = objects.writers.get(key, ())
                objects.key_of_id[e], objects.id_of_key[k] = k, e
                objects.anonymous.add(k)
                fresh_held.add(k)
        slotted = self._slot_elements(key, b, fresh_held) if b.element_keys and self._keyed_type(b) else set()
        held -= slotted
        fresh_held -= slotted
        if b.elements_exact:
            # A small builtin container: what it holds is known exactly, so
            # edges the syntax suggested (s2 = sorted(lst)) are dropped.
            objects.drop_contains(key, keep=held | fresh_held)
        if b.base_id is not None and b.base_id in objects.key_of_id:
            base = objects.key_of_id[b.base_id]
            # A view made from base is not a change of base; a change made
            # through it (even in the same cell) is.  The view's creation
            # read base, so base's history is already the view's.
            fresh = objects.writers.get(key) == (objects.binder.get(name),)
            objects.add_contains(base, key, fresh=fresh)
            objects.add_contains(key, base, fresh=True)
        held.discard(key)
        for k in held:
            objects.add_contains(key, k)
        for k in fresh_held:
            objects.add_contains(key, k, fresh=True)

    def _keyed_type(self, b) -> bool:
        return bool(b.mro) and self.resolver.registry.keyed(b.mro[0])

    def _slot_elements(self, key: int, b, fresh: set[int]) -> set[int]:
        """A dict's values held under string keys: each is held by its item's
        part (``cfg["model"]``), not by the dict directly, so that a change
        of the object in one entry (``cfg["model"]["alpha"] = 1``) is a change
        of that entry only.  ``fresh`` are elements first seen now (their
        history is the dict's).  Returns the element keys so placed."""
        objects = self.objects
        placed = set()
        for e, item in zip(b.element_ids, b.element_keys):
            ek = objects.key_of_id.get(e)
            if item is None or ek is None or ek == key:
                continue
            slot = objects.part(key, item)
            objects.drop_contains(slot)
            objects.add_contains(slot, ek, fresh=ek in fresh)
            objects.contains[key] = objects.contains.get(key, frozenset()) - {ek}
            objects.holders.get(ek, set()).discard(key)
            if key in objects.dirty:
                objects.dirty[key].discard(ek)
            placed.add(ek)
        return placed

    # -- queries ---------------------------------------------------------------
    def call_time_reads(self, key: int) -> frozenset[str]:
        """Global names a function, class or instance reads when used later.

        Cached per key; callees are looked up by name, so an entry is dropped
        when one of the names it looked up is rebound.
        """
        program = self.program
        cached = program.ctr_cache.get(key)
        if cached is None:
            looked: set[str] = set()
            cached = program.ctr_cache[key] = frozenset(self._call_time_reads(key, set(), looked))
            for name in looked:
                program.ctr_deps.setdefault(name, set()).add(key)
        return cached

    def _call_time_reads(self, key: int, visited: set, looked: set) -> set[str]:
        if key in visited:
            return set()
        visited.add(key)
        program, bindings = self.program, self.objects.bindings
        summaries = [program.functions[key]] if key in program.functions else []
        cls = program.classes.get(key) or program.classes.get(program.instance_of.get(key, -1))
        if cls is not None:
            summaries.extend(cls.methods.values())
        names: set[str] = set()
        callees = []
        for s in summaries:
            names |= s.reads | s.writes
            callees.extend(c.chain[0] for c in s.calls if c.chain)
        code = self.objects.code_reads.get(key)
        if code:  # a function made at run time: what its code names
            found = {n for n in code if n in bindings}
            names |= found
            callees.extend(found)
        for callee in callees:
            looked.add(callee)
            if callee in bindings:
                names |= self._call_time_reads(bindings[callee], visited, looked)
        return names

    def seeds(self, name: str) -> set[int]:
        """Statements a slice for ``name`` must start from."""
        objects = self.objects
        out = {objects.binder[name]} if name in objects.binder else set()
        key = objects.bindings[name]
        out |= objects.closure(key)
        if key in objects.file_of and key not in objects.cursors:
            out |= self.file_writers(objects.file_of[key])  # a connection: what its database holds
        for k in objects.reachable(key):
            for r in self.call_time_reads(k):
                if r in objects.binder:
                    out.add(objects.binder[r])
                if r in objects.bindings:
                    out |= objects.closure(objects.bindings[r])
        return out

    def backward(self, seeds: Iterable[int]) -> list[int]:
        """All statements the ``seeds`` depend on, in execution order."""
        seen = set(seeds)
        stack = list(seen)
        nodes = self.nodes
        while stack:
            for d in nodes[stack.pop()].deps:
                if d not in seen:
                    seen.add(d)
                    stack.append(d)
        return sorted(seen)


def _changes_parameters(summary) -> bool:
    """Whether a session function changes (or may change) an object given as a parameter."""
    params = set(summary.params) | set(summary.kwonly)
    return summary.has_varargs or any(n.split(".")[0].split("[")[0] in params for n, _ in summary.mutations) or any(
        c.chain and c.chain[0] in params and len(c.chain) > 1 and c.chain[-1] not in PURE_METHODS
        for c in summary.calls)


@functools.lru_cache(maxsize=512)
def _class_has(cls_name: str, attr: str) -> bool:
    """Whether the class ``cls_name`` (``module.QualName``, as the capture saw
    it) has attribute ``attr``; True when the class cannot be found in the
    modules loaded (the cautious answer)."""
    module, _, qualname = cls_name.rpartition(".")
    obj = sys.modules.get(module)
    while obj is None and "." in module:  # a nested class: module.Outer.Inner
        module, _, outer = module.rpartition(".")
        qualname = outer + "." + qualname
        obj = sys.modules.get(module)
    try:
        for part in qualname.split("."):
            obj = inspect.getattr_static(obj, part)
        inspect.getattr_static(obj, attr)
    except AttributeError:
        return not isinstance(obj, type)
    return True


class _Statement:
    """Resolution of one statement: what it reads, changes and binds."""

    def __init__(self, graph: DependencyGraph, nid: int, f: StatementFacts, ctx: CellContext, st_index: int):
        self.g, self.nid, self.f, self.ctx, self._st_index = graph, nid, f, ctx, st_index
        self.deps: set[int] = set()
        self.mutated: dict[int, bool] = {}
        self.item_writes: list[tuple[int, tuple[str, ...]]] = []  # df["c"] = ...: (key, items)
        self.extra_defs: list[str] = []
        self.env = Env(graph.objects.bindings.get, self.read, self.mark, self.touch_state, self.extra_defs, [],
                       [CALL_BUDGET], stmt_paths=f.paths, runtime=ctx.cell.has_runtime_facts,
                       read_key=self.read_key, atomic_name=self.atomic_name,
                       slot_objects=self._slot_objects, write_items=self.write_items,
                       stale=frozenset(graph.objects.bindings[n] for n in (*f.defs, *f.maybe_defs, *f.augmented)
                                       if n in graph.objects.bindings))

    # -- callbacks for the resolver --
    def read(self, name: str, lazy: bool = True) -> None:
        g, objects = self.g, self.g.objects
        b = objects.binder.get(name)
        if b is not None:
            self.deps.add(b)
        k = objects.bindings.get(name)
        if k is None:
            if g.program.star_nodes:  # maybe bound by a star import without runtime facts
                self.deps.update(g.program.star_nodes)
            return
        self.deps.update(objects.closure(k))
        if not lazy:
            return
        if k in g.program.deferred:
            # A generator runs its body (and reads its globals) when consumed.
            for r in g.call_time_reads(g.program.deferred[k]):
                self.read(r, lazy=False)
        if k in g.program.functions or k in g.program.classes or k in objects.code_reads:
            # A function passed along (df.map(f), sorted(key=f)) may be called
            # right here, reading its globals as they are now.
            for r in g.call_time_reads(k):
                self.read(r, lazy=False)

    def read_key(self, key: int) -> None:
        self.deps.update(self.g.objects.closure(key))

    def atomic_name(self, name: str) -> bool:
        """``name`` refers to an int, a string, a tuple of them (nothing can
        change it), as the capture saw it, also when bound earlier in this cell."""
        objects, cell = self.g.objects, self.ctx.cell
        key = objects.bindings.get(name)
        if key is None or key in objects.atomic:
            return key is not None
        b = cell.bound.get(name) if cell.has_runtime_facts else None
        return b is not None and b.atomic and self.ctx.last_def.get(name, self._st_index) < self._st_index

    def _keyed(self, name: str) -> int | None:
        """The key of ``name`` when the object is of a type whose items are
        apart (registry ``keyed``), as the capture saw it; else None."""
        key = self.g.objects.bindings.get(name)
        if key is None or key in self.g.objects.atomic:
            return None
        mro = self._mro(name)
        return key if mro and self.g.resolver.registry.keyed(mro[0]) else None

    def _slot_objects(self, name: str, items) -> set[int] | None:
        """The objects ``name``'s dict holds under ``items``, one each, as the
        capture placed them; None when any is not known exactly, or when the
        dict holds anything outside its items (a name for one of its values)."""
        if self._keyed(name) is None:
            return None
        objects = self.g.objects
        key, out = objects.bindings[name], set()
        if any(objects.part_of.get(c) != key for c in objects.contains.get(key, ())):
            return None  # m = cfg["model"] earlier: an alias the capture has not placed yet
        for item in items:
            slot = objects.parts.get((key, item))
            held = objects.contains.get(slot, ()) if slot is not None else ()
            if len(held) != 1:
                return None
            out |= held
        return out

    def _selects_items(self, name: str, methods) -> bool:
        """Each of ``methods``, called on ``name``'s object with constant
        arguments and then subscripted, or with a literal dict naming items
        and ``inplace=True``, reads only the items named (registry)."""
        mro, registry = self._mro(name), self.g.resolver.registry
        calls = {c.chain[1]: c for c in self.f.calls if c.chain and len(c.chain) == 2 and c.chain[0] == name}
        for m in methods:
            e = registry.method(mro, m)
            if e is None or not (e.selects_items or m in calls and self.g.resolver.dict_items(e, calls[m])):
                return False
        return True

    def _column_attrs(self, name: str, attrs) -> bool:
        """``df.a`` reads item ``a`` only: ``df`` keeps its items apart, ``a``
        is one of them (a part the session wrote), and the type has no
        attribute ``a`` (pandas looks an attribute up before a column)."""
        key = self._keyed(name)
        if key is None:
            return False
        objects, mro = self.g.objects, self._mro(name)
        return all((key, a) in objects.parts and not _class_has(mro[0], a) for a in attrs)

    def write_items(self, key: int, items) -> bool:
        """``df.fillna({"a": 0}, inplace=True)``: only ``items`` of ``key``
        change, when its type keeps its items apart."""
        mro = self.g.objects.mro.get(key, ())
        if key in self.g.objects.atomic or not mro or not self.g.resolver.registry.keyed(mro[0]):
            return False
        self.item_writes.append((key, tuple(items)))
        return True

    def _mro(self, name: str) -> tuple[str, ...]:
        """MRO names of the object ``name`` refers to, as the capture saw it, or ()."""
        objects, cell = self.g.objects, self.ctx.cell
        mro = objects.mro.get(objects.bindings.get(name))
        if not mro and cell.has_runtime_facts and self.ctx.last_def.get(name, self._st_index) < self._st_index:
            # bound earlier in this cell (and not again): the object the cell ended with
            b = cell.bound.get(name)
            mro = b.mro if b is not None else None
        return mro or ()

    def mark(self, key: int | None, deep: bool | str = False) -> None:
        if key is not None:
            old = self.mutated.get(key, False)
            self.mutated[key] = True if True in (old, deep) else (old or deep)

    def touch_state(self, skey: str, write: bool = True, read: bool = True) -> None:
        state, members = self.g.state, self.g.state_members
        if read:
            self.deps.update(state.get(skey, ()))
        if write:
            state[skey] = (self.nid,)
            if not read:  # a reset (plt.figure()): the old current objects are no longer drawn on
                members.pop(skey, None)
            for k in members.get(skey, ()):
                self.mark(k, False)

    # -- the steps --
    def run(self, st) -> None:
        f = self.f
        keyed = dict(f.keyed_reads)
        for u, methods in f.keyed_read_methods:
            if not self._selects_items(u, methods):
                keyed.pop(u, None)
        for u, attrs in f.attr_reads:
            if self._column_attrs(u, attrs):  # df.a: column a, as df["a"]
                keyed[u] = tuple(keyed.get(u, ())) + attrs
            else:
                keyed.pop(u, None)
        for u in f.uses:
            key = self._keyed(u) if u in keyed else None
            if key is None:
                self.read(u)
            else:  # df["a"]: df's own history and column a's, not the other columns'
                b = self.g.objects.binder.get(u)
                if b is not None:
                    self.deps.add(b)
                self.deps.update(self.g.objects.closure_of_items(key, keyed[u]))
        if f.unknown_effects:
            self._anything()  # exec(code), globals()[...]
        loops = self._enter_loops()
        try:
            self._calls()
        except TooDeep:
            self._anything()  # too many calls to follow
        finally:
            self._leave_loops(loops)
        self._observed_state(st)
        self.g._files(f, self.nid, self.deps, self.env.files)
        self._apply_marks()
        self._bind()

    def _enter_loops(self) -> list:
        """Bind each ``for`` target to its first element while the calls are resolved.

        The capture sees the target bound to the last element, after the
        statement; what the body does through it, it does to every element
        (``for df in [train, test]: df.fillna(0, inplace=True)``).  The first
        element stands for them all (its type says what the calls change);
        :meth:`_leave_loops` gives the others the same changes.  Elements of
        no observed type would resolve the calls worse than no binding (session
        methods are then looked up by name): a body that may change the target
        (the syntax says) then changes the containers and all they reach.
        """
        objects, stale, out = self.g.objects, self.env.stale, []
        for target, roots, literal, through in self.f.loop_targets:
            keys = [objects.bindings.get(r) for r in roots]
            keys = [k for k in dict.fromkeys(keys) if k is not None and k not in objects.atomic and k not in stale]
            elements = keys if literal else [e for k in keys for e in sorted(objects.contains.get(k, ()))]
            if elements and elements[0] in objects.mro:
                out.append((target, objects.bindings.get(target), elements))
                objects.bindings[target] = elements[0]
            elif through:
                for key in keys:
                    self.mark(key, True)
        return out

    def _leave_loops(self, loops: list) -> None:
        objects = self.g.objects
        for target, saved, elements in reversed(loops):
            if saved is None:
                objects.bindings.pop(target, None)
            else:
                objects.bindings[target] = saved
            first = elements[0]
            deep = self.mutated.get(first)
            items = [its for key, its in self.item_writes if key == first]
            for key in elements[1:]:
                if deep is not None:
                    self.mark(key, deep)
                self.item_writes.extend((key, its) for its in items)

    def _anything(self) -> None:
        """May read and change anything bound."""
        objects = self.g.objects
        for name in list(objects.bindings):
            self.read(name, lazy=False)
            key = objects.bindings[name]
            if key not in objects.atomic:
                self.mark(key, True)

    def _calls(self) -> None:
        g, f, env = self.g, self.f, self.env
        resolver, program = g.resolver, g.program
        for call in f.calls:
            resolver.call(call, env, self.ctx, set(), self._st_index)
        callees = {c.chain[0] for c in f.calls if c.chain and len(c.chain) == 1}
        for u in f.uses:
            k = g.objects.bindings.get(u)
            if k in program.functions and u not in callees:
                # map(f, xs), sorted(key=f), df.apply(f): f is probably called here.
                resolver.apply(program.functions[k], k, [], {}, INDIRECT, env, self.ctx, set(), None)
                if _changes_parameters(program.functions[k]):
                    self._passed_along(u)  # s.apply(f, args=(acc,)), df.pipe(f, acc): f may change acc
        for name in f.item_reads:
            key = g.objects.bindings.get(name)
            if key is not None and g.resolver.registry.item_reads_change(self._mro(name)):
                self.mark(key, False)  # counts["new"] of a defaultdict inserts the key
        keyed, nested = dict(f.keyed_writes), dict(f.nested_writes)
        for name, deep in f.mutations:
            key = g.objects.bindings.get(name)
            if self._module_option(name):
                continue
            if not deep and name in keyed and self._keyed(name) is not None:
                self.item_writes.append((key, keyed[name]))
                continue
            held = self._slot_objects(name, nested[name]) if name in nested else None
            if held:
                for e in held:  # cfg["model"]["alpha"] = 1: the object held under "model" changed
                    self.mark(e, True)
                continue
            resolver.mark_name(name, deep, g.objects.bindings.get, self.mark)
            for hook in program.setters(key):
                # obj.x = v / obj[k] = v run __setattr__/__setitem__/property setters.
                resolver.apply(hook, key, [key], {}, INDIRECT, env, self.ctx, set(), None)

    def _passed_along(self, fname: str) -> None:
        """Function ``fname``, which changes its parameters, is passed along:
        whatever else the statement uses may be handed to it."""
        objects, program = self.g.objects, self.g.program
        for u in self.f.uses:
            key = objects.bindings.get(u)
            if u != fname and key is not None and key not in objects.atomic and u not in program.modules \
                    and key not in program.functions and key not in program.classes:
                self.mark(key, True)

    def _module_option(self, name: str) -> bool:
        """``pd.options.display.max_rows = 10``: an assignment to a module
        attribute the registry says has no effect on values."""
        modules = self.g.program.modules
        if name not in modules:
            return False
        chains = [c for c in self.f.attr_targets if c[0] == name]
        registry = self.g.resolver.registry
        return bool(chains) and all(
            (e := registry.function(".".join((modules[name],) + c[1:]))) is not None and e.pure for c in chains)

    def _observed_state(self, st) -> None:
        """Global random generators the capture saw change during the statement."""
        for gen in getattr(st, "rng_changed", ()):
            if gen not in self.env.resets:
                self.touch_state("state:" + gen)

    def _apply_marks(self) -> None:
        objects = self.g.objects
        for key, deep in self.mutated.items():
            self.deps.update(objects.closure(key))
            objects.add_writer(key, self.nid)
            if deep:
                for c in objects.reachable(key):
                    if deep is True or self._library_object(c):
                        objects.add_writer(c, self.nid)
        for key, items in self.item_writes:
            if key in self.mutated:
                continue  # changed as a whole too
            # Replacing item c depends on the earlier writers of c (a column
            # keeps its position), not on the other items.
            self.deps.update(objects.closure_of_items(key, items))
            for item in items:
                slot = objects.part(key, item)
                objects.add_writer(slot, self.nid)
                objects.drop_contains(slot)  # it holds something new; the capture says what at the cell's end
        files = []
        for key in self.mutated:
            # a cursor's rows or position changed: not a write of the file (its SQL says what is)
            path = objects.file_behind(key) if key not in objects.cursors and key not in self.env.handles else None
            if path:
                files.append((path, True))
                # conn.cursor().execute(q) and other changes not read table by table: the next
                # commit settles them too (another connection sees them only then)
                self.g.databases.written(path, {"*"})
        if files:
            self.g._files(StatementFacts(), self.nid, self.deps, files)

    def _library_object(self, key: int) -> bool:
        """Not a builtin container, nor an element of one we never saw the type of."""
        objects = self.g.objects
        if key in objects.part_of:  # an item of a dict or a frame is what its owner is
            return self._library_object(objects.part_of[key])
        mro = objects.mro.get(key)
        if mro:
            return not mro[0].startswith("builtins.")
        return key not in objects.anonymous

    def _bind(self) -> None:
        g, f, nid, env = self.g, self.f, self.nid, self.env
        objects, program = g.objects, g.program
        for name in f.augmented:
            if name in objects.bindings:
                objects.binder[name] = nid
        for name in f.defs:
            if name not in f.augmented or name not in objects.bindings:
                self._type_now(name, objects.bind(name, nid))
        for name in list(f.maybe_defs) + self.extra_defs:
            if not self._surely_rebound(name):
                self.read(name)
            self._type_now(name, objects.bind(name, nid))
        for target, source in f.aliases:
            if source in objects.bindings:
                objects.bindings[target] = objects.bindings[source]
        for holder, held in f.contains:
            kh, kn = objects.bindings.get(holder), objects.bindings.get(held)
            if kh is not None and kn is not None and kh != kn:
                objects.add_contains(kh, kn, fresh=True)
        self._bind_definitions()
        for target, holder in env.returned_from:
            if target in objects.bindings and holder not in objects.atomic:
                objects.add_contains(holder, objects.bindings[target], fresh=True)
        for names, skey in env.state_results:
            keys = {objects.bindings[n] for n in names if n in objects.bindings}
            g.state_members[skey] = g.state_members.get(skey, frozenset()) | keys
        for target, names in env.code_results:
            if target in objects.bindings:
                objects.code_reads[objects.bindings[target]] = frozenset(names)
        for names in env.linked:
            keys = [objects.bindings[n] for n in names if n in objects.bindings]
            for a in keys:
                for b in keys:
                    if a != b:
                        objects.add_contains(a, b, fresh=True)
        for target, path, cursor in env.opened:
            if target in objects.bindings:
                objects.file_of[objects.bindings[target]] = path
                if cursor:
                    objects.cursors.add(objects.bindings[target])
        for target, fkey in env.generators:
            if target in objects.bindings:
                program.deferred[objects.bindings[target]] = fkey
        for name in f.deletes:
            objects.bindings.pop(name, None)
            objects.binder.pop(name, None)
            program.modules.pop(name, None)
        for name in (*f.defs, *f.maybe_defs, *self.extra_defs, *f.deletes, *(t for t, _ in f.aliases)):
            program.forget_reads(name)

    def _type_now(self, name: str, key: int) -> None:
        """The last binding of ``name`` in its cell: the type the capture saw
        at the cell's end is this object's, known now for the statements
        after it in the same cell (the rest of the facts wait for the end)."""
        cell = self.ctx.cell
        if cell.has_runtime_facts and self.ctx.last_def.get(name) == self._st_index:
            b = cell.bound.get(name)
            if b is not None and b.mro:
                self.g.objects.mro[key] = b.mro

    def _surely_rebound(self, name: str) -> bool:
        """A loop target (or other conditional binding) that the capture saw
        bound to a new object, by this statement as the cell's last binder:
        the old value was not kept, so it is not read."""
        cell = self.ctx.cell
        return (cell.has_runtime_facts and name in cell.bound and name in self.f.maybe_defs
                and self.ctx.last_def.get(name) == self._st_index)

    def _bind_definitions(self) -> None:
        f, nid = self.f, self.nid
        objects, program = self.g.objects, self.g.program
        for name in f.defs:
            program.modules.pop(name, None)
        for name, path in f.imports:
            program.modules[name] = path
        for name, summary in f.functions.items():
            if name in objects.bindings:
                program.functions[objects.bindings[name]] = summary
        for name, summary in f.classes.items():
            if name in objects.bindings:
                key = objects.bindings[name]
                program.classes[key] = summary
                for m in summary.methods:
                    program.method_index.setdefault(m, set()).add(key)
                program.class_bases[key] = tuple(objects.bindings[b] for b in summary.bases
                                                 if b in objects.bindings)
        for target, cls in f.instances:
            kc = objects.bindings.get(cls)
            if kc in program.classes and target in objects.bindings:
                program.instance_of[objects.bindings[target]] = kc
        if f.star_imports:
            program.star_nodes.append(nid)
