"""The dependency graph of a session, built statement by statement.

Each executed top-level statement becomes a :class:`Node`.  The graph keeps,
as of "now" in the session:

- ``bindings``: global name -> object key (two names with one key are
  aliases), and ``binder``: the statement that last bound the name;
- ``writers``: object key -> the statements that created or changed that
  object (in-place mutations included);
- ``contains``: object key -> keys of objects it may hold references to
  (containers, views), so a change to an element is a change to the whole.

When a statement is added, its dependencies are fixed from the state *at
that moment* (what it reads, as bound and mutated so far), which gives
late binding for free: a global changed after a value was computed never
leaks into that value's slice.  Calls are resolved here, because only now
do we know what a name refers to: a function defined in the session is
analysed through its :class:`FunctionSummary` (transitively), a module
function by its dotted path, a method by its name and what we know of the
receiver.  Runtime facts from the capture (object identities at the end of
the cell) refine the static picture: aliasing that syntax cannot see,
names bound by ``exec`` or star imports, methods that returned a fresh
object and so did not mutate their receiver.

Everything uncertain errs on the side of more dependencies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from lineapy_ext.analysis.statements import (
    CLASS_OF,
    DISPLAYED,
    MUTATING_BUILTINS,
    MUTATING_METHODS,
    MUTATING_MODULE_FUNCS,
    OPAQUE_BUILTINS,
    PURE_BUILTINS,
    PURE_METHODS,
    RANDOM_READING_METHODS,
    CallSite,
    ClassSummary,
    FunctionSummary,
    StatementFacts,
    _looks_like_path,
)

__all__ = ["DependencyGraph", "Node"]

_RNG_TYPES = frozenset({
    ("numpy.random._generator", "Generator"),
    ("numpy.random.mtrand", "RandomState"),
    ("random", "Random"),
    ("random", "SystemRandom"),
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


def _module_state_key(path: str) -> str | None:
    """Hidden-state key of a module-level call, e.g. ``numpy.random.rand`` ->
    ``"state:numpy.random"``; None when the call keeps no hidden state."""
    parts = path.split(".")
    if "random" in parts:
        return "state:" + ".".join(parts[: parts.index("random") + 1])
    if parts[-1] in ("seed", "manual_seed", "set_seed"):
        return "state:" + (parts[0] + ".random" if parts[0] != "random" else "random")
    return None


class DependencyGraph:
    """Incrementally built statement-level dependency graph of a session."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.bindings: dict[str, int] = {}
        self.binder: dict[str, int] = {}
        self.writers: dict[int, tuple[int, ...]] = {}
        self.contains: dict[int, frozenset[int]] = {}
        self.key_of_id: dict[int, int] = {}
        self.id_of_key: dict[int, int] = {}
        self.functions: dict[int, FunctionSummary] = {}
        self.classes: dict[int, ClassSummary] = {}
        self.instance_of: dict[int, int] = {}
        self.modules: dict[str, str] = {}
        self.strings: dict[int, str] = {}
        self.rng_objects: set[int] = set()
        self.pending_elements: dict[int, set[int]] = {}
        self.holders: dict[int, set[int]] = {}  # reverse of ``contains``
        self.dirty: dict[int, set[int]] = {}  # held objects changed since the holder's head
        self.atomic: set[int] = set()
        self.deferred: dict[int, int] = {}
        self.star_nodes: list[int] = []
        self.types: dict[int, tuple[str, str]] = {}
        self.class_bases: dict[int, tuple[int, ...]] = {}
        self.method_index: dict[str, set[int]] = {}  # method name -> classes defining it
        self.failed: list[tuple[int | None, int, frozenset[str]]] = []
        self._ctr_cache: dict[int, frozenset[str]] = {}
        self._ctr_deps: dict[str, set[int]] = {}
        self.files: dict[str, tuple[int, ...]] = {}
        self.state: dict[str, tuple[int, ...]] = {}
        self._next_key = 0

    # -- copies ---------------------------------------------------------------
    def fork(self) -> "DependencyGraph":
        """A copy that can take more statements without changing this one.

        Used for a save made from inside a running cell: the statements of
        that cell that already ran are added to the fork only.
        """
        g = DependencyGraph.__new__(DependencyGraph)
        for k, v in self.__dict__.items():
            g.__dict__[k] = v.copy() if isinstance(v, (dict, list, set)) else v
        # Dicts whose values are mutated in place must not be shared.
        g._ctr_deps = {k: set(v) for k, v in self._ctr_deps.items()}
        g.pending_elements = {k: set(v) for k, v in self.pending_elements.items()}
        g.method_index = {k: set(v) for k, v in self.method_index.items()}
        g.holders = {k: set(v) for k, v in self.holders.items()}
        g.dirty = {k: set(v) for k, v in self.dirty.items()}
        return g

    # -- keys -----------------------------------------------------------------
    def _new_key(self) -> int:
        self._next_key += 1
        return self._next_key

    def _add_writer(self, key: int, nid: int) -> None:
        # ``writers`` holds the *heads* of an object's history: a statement
        # that changes an object always depends on the previous heads (it
        # reads the object, and what it holds, first), so the new statement
        # alone stands for the whole history.  This keeps every read
        # O(what changed since), not O(history).
        self.writers[key] = (nid,)
        self.dirty.pop(key, None)
        self._dirty_up(key)

    def _add_contains(self, holder: int, held: int) -> None:
        """``holder`` may hold a reference to ``held`` from now on."""
        if holder == held:
            return
        self.contains[holder] = self.contains.get(holder, frozenset()) | {held}
        self.holders.setdefault(held, set()).add(holder)
        # Its history is not (necessarily) part of the holder's yet.
        self.dirty.setdefault(holder, set()).add(held)
        self._dirty_up(holder)

    def _dirty_up(self, key: int) -> None:
        """Tell everything holding ``key`` (transitively) that it changed."""
        stack, seen = [key], {key}
        while stack:
            k = stack.pop()
            for h in self.holders.get(k, ()):
                if h in self.atomic:
                    continue
                self.dirty.setdefault(h, set()).add(k)
                if h not in seen:
                    seen.add(h)
                    stack.append(h)

    def closure(self, key: int) -> set[int]:
        """Heads of the history of ``key`` and of everything it holds.

        Only held objects changed since ``key``'s own last change are
        visited: that change already depended on the rest.
        """
        out: set[int] = set()
        atomic = self.atomic
        stack, seen = [key], {key}
        while stack:
            k = stack.pop()
            out.update(self.writers.get(k, ()))
            for c in self.dirty.get(k, ()):
                if c not in seen and c not in atomic:
                    seen.add(c)
                    stack.append(c)
        return out

    def _reachable(self, key: int) -> set[int]:
        # Immutable atoms (ints, strings...) cannot change after they were
        # stored, and the statement storing them already depends on them.
        atomic = self.atomic
        stack, seen = [key], {key}
        while stack:
            for c in self.contains.get(stack.pop(), ()):
                if c not in seen and c not in atomic:
                    seen.add(c)
                    stack.append(c)
        return seen

    # -- cells ----------------------------------------------------------------
    def add_cell(self, cell, facts: list[StatementFacts]) -> list[int]:
        """Add the completed statements of ``cell`` (a ``kernel_hooks``
        CellRecord) with their static ``facts``; return the new node ids."""
        n = min(cell.completed, len(facts), len(cell.statements))
        last_def: dict[str, int] = {}
        for i in range(n):
            for name in facts[i].defs:
                last_def[name] = i
        ctx = _CellContext(cell, last_def)
        new = [self._add_statement(cell, cell.statements[i], facts[i], ctx) for i in range(n)]
        if cell.has_runtime_facts:
            self._reconcile(cell, facts[:n], new)
        return new

    def _add_statement(self, cell, st, f: StatementFacts, ctx: "_CellContext") -> int:
        nid = len(self.nodes)
        node = Node(nid, cell.index, cell.execution_count, st.index, st.source, f.emit,
                    drop=f.drop, opaque=f.opaque, artifact_get=f.artifact_get)
        self.nodes.append(node)
        if f.drop:
            return nid
        deps: set[int] = set()
        mutated: dict[int, bool] = {}
        extra_defs: list[str] = []

        def read(name: str, lazy: bool = True) -> None:
            b = self.binder.get(name)
            if b is not None:
                deps.add(b)
            k = self.bindings.get(name)
            if k is None and self.star_nodes:
                # Maybe bound by ``from m import *`` in a cell without runtime facts.
                deps.update(self.star_nodes)
            if k is not None:
                deps.update(self.closure(k))
                if not lazy:
                    return
                if k in self.deferred:
                    # A generator runs its body (and reads its globals) when
                    # consumed, not when created.
                    for r in self.call_time_reads(self.deferred[k]):
                        read(r, lazy=False)
                if k in self.functions or k in self.classes:
                    # A function passed along (df.map(f), sorted(key=f)) may be
                    # called right here, reading its globals as they are now.
                    for r in self.call_time_reads(k):
                        read(r, lazy=False)

        def mark(key: int | None, deep: bool = False) -> None:
            if key is not None:
                mutated[key] = mutated.get(key, False) or deep

        def touch_state(skey: str, write: bool = True) -> None:
            deps.update(self.state.get(skey, ()))
            if write:
                self.state[skey] = (nid,)

        for u in f.uses:
            read(u)
        if f.unknown_effects:
            # exec(code), globals()[...]: may read and change anything.
            for name in list(self.bindings):
                read(name, lazy=False)
                key = self.bindings[name]
                if key not in self.atomic:
                    mark(key, True)
        env = _Env(self.bindings.get, read, mark, touch_state, extra_defs, [], [CALL_BUDGET])
        try:
            for call in f.calls:
                self._call(call, env, ctx, set(), st.index)
            callees = {c.chain[0] for c in f.calls if c.chain and len(c.chain) == 1}
            for u in f.uses:
                k = self.bindings.get(u)
                if k in self.functions and u not in callees:
                    # map(f, xs), sorted(key=f), df.apply(f): f is probably called here.
                    self._apply(self.functions[k], k, [], {}, _INDIRECT, env, ctx, set(), None)
            for name, deep in f.mutations:
                self._mark_name(name, deep, self.bindings.get, mark)
                key = self.bindings.get(name)
                for hook in self._setters(key):
                    # obj.x = v / obj[k] = v run __setattr__/__setitem__/property setters.
                    self._apply(hook, key, [key], {}, _INDIRECT, env, ctx, set(), None)
        except _TooDeep:
            # Too many calls to follow: assume it may read and change anything.
            for name in list(self.bindings):
                read(name, lazy=False)
                key = self.bindings[name]
                if key not in self.atomic:
                    mark(key, True)

        self._files(f, nid, deps)

        for key, deep in mutated.items():
            deps.update(self.closure(key))
            self._add_writer(key, nid)
            if deep:
                for c in self._reachable(key):
                    self._add_writer(c, nid)
        for name in f.augmented:
            if name in self.bindings:
                self.binder[name] = nid
        for name in f.defs:
            if name not in f.augmented or name not in self.bindings:
                self._bind(name, nid)
        for name in list(f.maybe_defs) + extra_defs:
            read(name)
            self._bind(name, nid)
        for target, source in f.aliases:
            if source in self.bindings:
                self.bindings[target] = self.bindings[source]
        for holder, held in f.contains:
            kh, kn = self.bindings.get(holder), self.bindings.get(held)
            if kh is not None and kn is not None and kh != kn:
                self._add_contains(kh, kn)
        for name in f.defs:
            self.modules.pop(name, None)
        for name, path in f.imports:
            self.modules[name] = path
        for name, summary in f.functions.items():
            if name in self.bindings:
                self.functions[self.bindings[name]] = summary
        for name, summary in f.classes.items():
            if name in self.bindings:
                key = self.bindings[name]
                self.classes[key] = summary
                for m in summary.methods:
                    self.method_index.setdefault(m, set()).add(key)
                self.class_bases[key] = tuple(self.bindings[b] for b in summary.bases if b in self.bindings)
        for target, cls in f.instances:
            kc = self.bindings.get(cls)
            if kc in self.classes and target in self.bindings:
                self.instance_of[self.bindings[target]] = kc
        if f.star_imports:
            self.star_nodes.append(nid)
        for target, holder in env.returned_from:
            if target in self.bindings and holder not in self.atomic:
                self._add_contains(holder, self.bindings[target])
        for target, fkey in env.generators:
            if target in self.bindings:
                self.deferred[self.bindings[target]] = fkey
        for name in f.deletes:
            self.bindings.pop(name, None)
            self.binder.pop(name, None)
            self.modules.pop(name, None)
        for name in (*f.defs, *f.maybe_defs, *extra_defs, *f.deletes, *(t for t, _ in f.aliases)):
            self._rebound(name)
        deps.discard(nid)
        node.deps = tuple(sorted(deps))
        return nid

    def _rebound(self, name: str) -> None:
        """Forget cached call-time reads that looked ``name`` up."""
        for key in self._ctr_deps.pop(name, ()):
            self._ctr_cache.pop(key, None)

    def _mark_name(self, name: str, deep: bool, resolve, mark) -> None:
        """Mark the object ``name`` refers to as changed; ``<class-of>x``
        (``type(x).attr = ...``) changes the class of ``x`` as well."""
        if name.startswith(CLASS_OF):
            key = resolve(name[len(CLASS_OF):])
            mark(self.instance_of.get(key) if key is not None else None, True)
            mark(key, True)
        else:
            mark(resolve(name), deep)

    def note_failed(self, execution_count: int | None, f: StatementFacts) -> None:
        """Remember a statement that raised: slices it may have partly
        changed get a warning (its partial effects are not replayed)."""
        names = set(f.defs) | set(f.maybe_defs) | {m for m, _ in f.mutations}
        for c in f.calls:
            if c.chain and len(c.chain) > 1:
                names.add(c.chain[0])
            names.update(a for a in c.args if a)
        if names:
            self.failed.append((execution_count, len(self.nodes), frozenset(names)))

    def _bind(self, name: str, nid: int) -> None:
        key = self._new_key()
        self.writers[key] = (nid,)
        self.bindings[name] = key
        self.binder[name] = nid

    def _files(self, f: StatementFacts, nid: int, deps: set[int]) -> None:
        paths = list(f.paths)
        for u in f.uses:
            k = self.bindings.get(u)
            if k in self.strings and _looks_like_path(self.strings[k]):
                paths.append(self.strings[k])
        for p in paths:
            norm = os.path.normpath(p)
            for known, writers in self.files.items():
                # Same file, a directory and what is in it, or a name whose
                # suffix the writer adds (np.save("a") -> a.npy).
                if (known == norm or known.startswith(norm + os.sep) or norm.startswith(known + os.sep)
                        or norm.startswith(known + ".") or known.startswith(norm + ".")):
                    deps.update(writers)
            if f.writes_files:
                self.files[norm] = (nid,)

    # -- calls ----------------------------------------------------------------
    def _call(self, call: CallSite, env: "_Env", ctx: "_CellContext", visited: set, st_index: int) -> None:
        chain = call.chain
        args = [env.resolve(a) if a else None for a in call.args]
        kwargs = {k: env.resolve(v) for k, v in call.kwargs}
        for name in call.out:
            env.mark(env.resolve(name), False)
        if chain is None:
            self._mark_args(call, env, args, kwargs)
            return
        root = chain[0]
        rkey = env.resolve(root)
        path = self._module_path(root, chain, env)
        if path is not None:
            skey = _module_state_key(path)
            if skey:
                env.touch_state(skey)
            pos = MUTATING_MODULE_FUNCS.get(chain[-1], -1)
            if pos is not None and pos >= 0 and pos < len(args):
                env.mark(args[pos], True)
            if call.inplace and args:
                env.mark(args[0], False)
            return
        if len(chain) == 1:
            if rkey in self.functions and not call.receiver_deep:
                self._apply(self.functions[rkey], rkey, args, kwargs, call, env, ctx, visited, None)
            elif rkey in self.classes and not call.receiver_deep:
                init, _ = self._method(rkey, "__init__")
                if init is not None:
                    self._apply(init, rkey, [None] + args, kwargs, call, env, ctx, visited, rkey)
            elif call.receiver_deep and rkey is not None:
                # fs[0](), handlers["x"](): any session function held there may run.
                env.mark(rkey, True)
                self._mark_args(call, env, args, kwargs)
                for k in self._reachable(rkey):
                    if k in self.functions:
                        self._apply(self.functions[k], k, args, kwargs, call, env, ctx, visited, None)
            elif rkey is None and root in PURE_BUILTINS:
                pass
            elif rkey is None and root in MUTATING_BUILTINS:
                if args:
                    env.mark(args[0], True)
            elif rkey is None and root in OPAQUE_BUILTINS:
                pass
            else:
                # A callable object made in the session (a closure, a
                # functools.partial, an instance with __call__) may keep state.
                env.mark(rkey, True)
                self._mark_args(call, env, args, kwargs)
            return
        # A method call on (something reached from) ``root``.
        method = chain[-1]
        deep = len(chain) > 2 or call.receiver_deep or call.through_call
        if rkey in self.classes and len(chain) == 2:
            # C.method(...): a static/class method, or a method given its self.
            summary, kind = self._method(rkey, method)
            if summary is not None:
                self._apply(summary, rkey, ([rkey] if kind == "class" else []) + args, kwargs,
                            call, env, ctx, visited, rkey)
                return
        cls = self.instance_of.get(rkey) if rkey is not None else None
        if cls is not None and len(chain) > 2 and self._is_class_attr(cls, chain[1]) and (
                method in MUTATING_METHODS or method not in PURE_METHODS):
            env.mark(cls, True)  # c.items.append(1) where items lives on the class
        if cls is not None and not deep:
            summary, kind = self._method(cls, method)
            if summary is not None:
                first = [] if kind == "static" else [cls] if kind == "class" else [rkey]
                self._apply(summary, rkey, first + args, kwargs, call, env, ctx, visited, cls)
                return
            for r in self.classes[cls].all_reads():
                env.read(r)
        elif (rkey is None or deep) and self._maybe_session_object(rkey):
            # objs[0].add(x), a loop variable: the receiver may be an instance
            # of any session class that has this method.
            for ckey in list(self.method_index.get(method, ())):
                cls_summary = self.classes.get(ckey)
                summary = cls_summary.methods.get(method) if cls_summary is not None else None
                if summary is None:  # the class was redefined since
                    continue
                kind = cls_summary.kinds.get(method)
                first = [] if kind == "static" else [ckey] if kind == "class" else [rkey]
                self._apply(summary, rkey, first + args, kwargs, call, env, ctx, visited, ckey)
        if rkey in self.rng_objects:
            env.mark(rkey)
            return
        if method in RANDOM_READING_METHODS:
            # Estimators without a random_state draw from the global generator.
            for skey in list(self.state):
                env.touch_state(skey)
        if call.inplace:
            env.mark(rkey, deep)
        elif method in MUTATING_METHODS:
            env.mark(rkey, deep)
            if rkey is not None:
                held = {k for k in args if k is not None and k != rkey}
                if held:
                    for k in held:
                        self._add_contains(rkey, k)
        elif method in PURE_METHODS:
            pass
        elif not self._returned_fresh(call, rkey, ctx, st_index):
            env.mark(rkey, deep)

    def _method(self, cls_key: int, name: str, seen: set | None = None):
        """(summary, kind) of method ``name`` on a session class, following
        its session-defined base classes; (None, None) if not found."""
        seen = seen if seen is not None else set()
        if cls_key in seen or cls_key not in self.classes:
            return None, None
        seen.add(cls_key)
        cls = self.classes[cls_key]
        if name in cls.methods:
            return cls.methods[name], cls.kinds.get(name, "method")
        for base in self.class_bases.get(cls_key, ()):
            found = self._method(base, name, seen)
            if found[0] is not None:
                return found
        return None, None

    def _is_class_attr(self, cls_key: int, attr: str, seen: set | None = None) -> bool:
        seen = seen if seen is not None else set()
        if cls_key in seen or cls_key not in self.classes:
            return False
        seen.add(cls_key)
        return attr in self.classes[cls_key].attrs or any(
            self._is_class_attr(b, attr, seen) for b in self.class_bases.get(cls_key, ()))

    def _setters(self, key) -> list[FunctionSummary]:
        """Methods run by assigning to an attribute or item of ``key``."""
        out: list[FunctionSummary] = []
        stack = [self.instance_of.get(key)] if key is not None else []
        seen: set = set()
        while stack:
            c = stack.pop()
            if c is None or c in seen or c not in self.classes:
                continue
            seen.add(c)
            out.extend(self.classes[c].setters)
            stack.extend(self.class_bases.get(c, ()))
        return out

    def _maybe_session_object(self, key) -> bool:
        if not self.classes:
            return False
        t = self.types.get(key) if key is not None else None
        return t is None or t[0] == "__main__" or t[1] in ("list", "dict", "tuple", "set")

    def _returned_fresh(self, call: CallSite, rkey, ctx: "_CellContext", st_index: int) -> bool:
        """Runtime rule: a method whose result is a new, non-None object did
        not (we assume) change its receiver."""
        cell = ctx.cell
        if not cell.has_runtime_facts or rkey is None or call.assigned_to is None:
            return False
        recv_id = self.id_of_key.get(rkey)
        if call.assigned_to == DISPLAYED:
            if st_index != len(cell.statements) - 1 or cell.result_id is None:
                return False
            return recv_id is not None and cell.result_id != recv_id
        if ctx.last_def.get(call.assigned_to) != st_index:
            return False
        b = cell.bound.get(call.assigned_to)
        return (b is not None and b.type_name != "NoneType" and recv_id is not None
                and b.id != recv_id)

    def _mark_args(self, call, env, args, kwargs) -> None:
        for k in args:
            env.mark(k, True)
        for k in kwargs.values():
            env.mark(k, True)
        for name in call.deep_args:
            env.mark(env.resolve(name), True)

    def _module_path(self, root: str, chain, env) -> str | None:
        if root not in self.modules or env.resolve(root) != self.bindings.get(root):
            return None
        return ".".join((self.modules[root],) + tuple(chain[1:]))

    def _apply(self, summary: FunctionSummary, fkey, args, kwargs, call, env, ctx, visited,
               self_class=None) -> None:
        """Apply the call-time effects of a session function.

        ``self_class`` is the class a method runs for: ``type(self).x = ...``
        in ``__init__`` changes it even though the instance is not known yet.
        """
        # One set per statement, shared by the whole call tree: each function
        # is applied once per distinct argument binding, which bounds the work
        # (applying twice would change nothing).
        marker = (fkey, id(summary), tuple(args), tuple(sorted(kwargs.items())), self_class)
        if marker in visited:
            return
        visited.add(marker)
        env.budget[0] -= 1
        if env.budget[0] < 0 or env.depth > MAX_CALL_DEPTH:
            raise _TooDeep
        pmap: dict[str, int | None] = {}
        for i, p in enumerate(summary.params):
            if i < len(args):
                pmap[p] = args[i]
        for k, v in kwargs.items():
            pmap[k] = v
        params = set(summary.params) | set(summary.kwonly)
        for r in summary.reads:
            env.read(r)
        for w in summary.writes:
            env.read(w)
            env.extra_defs.append(w)
        first = summary.params[0] if summary.params else None

        def resolve(name: str):
            if name in pmap:
                return pmap[name]
            if name in params:
                return None
            return self.bindings.get(name)

        def resolve_class_of(name: str):
            key = resolve(name)
            return key if key is not None or name != first else -1

        if summary.is_generator and ctx is not _NO_CELL and call.assigned_to:
            env.generators.append((call.assigned_to, fkey))
        if summary.returns_parts_of and ctx is not _NO_CELL and call.assigned_to:
            for name in summary.returns_parts_of:
                holder = resolve(name)
                if holder is not None:
                    env.returned_from.append((call.assigned_to, holder))
        for name, deep in summary.mutations:
            bare = name[len(CLASS_OF):] if name.startswith(CLASS_OF) else name
            if name.startswith(CLASS_OF) and self_class is not None and resolve(bare) is None and bare == first:
                env.mark(self_class, True)
            elif bare == first and self_class is not None and pmap.get(bare) == self_class:
                env.mark(self_class, deep)  # cls.n += 1 in a classmethod
            elif bare in pmap or bare not in params:
                self._mark_name(name, deep, resolve, env.mark)
                if bare not in params and bare in self.bindings:
                    env.read(bare)
            elif summary.has_varargs or bare in params:
                self._mark_args(call, env, args, kwargs)

        inner = _Env(resolve, env.read, env.mark, env.touch_state, env.extra_defs, env.generators,
                     env.budget, env.depth + 1, env.returned_from)
        for c in summary.calls:
            if c.chain and c.chain[0] in params and c.chain[0] not in pmap:
                continue
            self._call(c, inner, _NO_CELL, visited, -1)

    # -- runtime facts ---------------------------------------------------------
    def _reconcile(self, cell, facts: list[StatementFacts], new: list[int]) -> None:
        for name in list(cell.bound) + list(cell.deleted):
            self._rebound(name)
        static = set()
        for f in facts:
            static.update(f.defs)
            static.update(f.maybe_defs)
            static.update(f.deletes)
        live = [nid for nid in new if not self.nodes[nid].drop]
        suspects = [nid for nid, f in zip(new, facts) if f.unknown_effects or f.opaque or f.star_imports]
        if not suspects:
            suspects = [nid for nid, f in zip(new, facts) if f.calls and not f.drop] or live
        for name, b in cell.bound.items():
            if name not in static or name not in self.bindings:
                if not suspects:
                    continue
                key = self._new_key()
                self.writers[key] = tuple(suspects)
                self.bindings[name] = key
                self.binder[name] = suspects[-1]
                for nid in suspects:
                    node = self.nodes[nid]
                    node.deps = tuple(sorted(set(node.deps) | {s for s in suspects if s < nid}))
            key = self.bindings[name]
            other = self.key_of_id.get(b.id)
            if other is not None and other != key and not b.atomic and self._is_live(other, name):
                self.writers[other] = tuple(sorted(set(self.writers.get(other, ())) | set(self.writers.get(key, ()))))
                for holder in list(self.holders.get(key, ())):
                    self._add_contains(holder, other)
                for held in self.contains.get(key, ()):
                    self._add_contains(other, held)
                self.dirty.setdefault(other, set()).update(self.dirty.get(key, ()))
                self._dirty_up(other)
                self.bindings[name] = key = other
            if b.atomic:
                self.atomic.add(key)
                # An int or a string holds no references: drop the edges the
                # syntax suggested (y = len(results) does not hold results).
                for held in self.contains.pop(key, ()):
                    self.holders.get(held, set()).discard(key)
                self.dirty.pop(key, None)
            else:
                self.atomic.discard(key)
                self.key_of_id[b.id] = key
                self.id_of_key[key] = b.id
            if b.str_value is not None:
                self.strings[key] = b.str_value
            for holder in self.pending_elements.pop(b.id, ()):
                if holder != key:
                    self._add_contains(holder, key)
            held = set()
            for e in b.element_ids:
                if e in self.key_of_id:
                    held.add(self.key_of_id[e])
                else:  # bound to a name later, perhaps (lst = d['k'])
                    self.pending_elements.setdefault(e, set()).add(key)
            if b.base_id is not None and b.base_id in self.key_of_id:
                base = self.key_of_id[b.base_id]
                held.add(base)
                self._add_contains(base, key)
            held.discard(key)
            for k in held:
                self._add_contains(key, k)
            self.types[key] = (b.type_module, b.type_name)
            if b.type_module == "__main__":
                cls = self.bindings.get(b.type_name.split(".")[0])
                if cls in self.classes:
                    self.instance_of[key] = cls
                    self._ctr_cache.pop(key, None)
            if (b.type_module, b.type_name) in _RNG_TYPES:
                self.rng_objects.add(key)
        for name in cell.deleted:
            if name not in static:
                self.bindings.pop(name, None)
                self.binder.pop(name, None)

    def _is_live(self, key: int, except_name: str) -> bool:
        return any(k == key and n != except_name for n, k in self.bindings.items())

    # -- queries ---------------------------------------------------------------
    def call_time_reads(self, key: int) -> frozenset[str]:
        """Global names a function, class or instance reads when used later.

        Cached per key; callees are looked up by name, so an entry is dropped
        when one of the names it looked up is rebound (:meth:`_rebound`).
        """
        cached = self._ctr_cache.get(key)
        if cached is None:
            looked: set[str] = set()
            cached = self._ctr_cache[key] = frozenset(self._call_time_reads(key, set(), looked))
            for name in looked:
                self._ctr_deps.setdefault(name, set()).add(key)
        return cached

    def _call_time_reads(self, key: int, visited: set, looked: set) -> set[str]:
        if key in visited:
            return set()
        visited.add(key)
        summaries: list[FunctionSummary] = []
        if key in self.functions:
            summaries.append(self.functions[key])
        cls = self.classes.get(key) or self.classes.get(self.instance_of.get(key, -1))
        if cls is not None:
            summaries.extend(cls.methods.values())
        names: set[str] = set()
        for s in summaries:
            names |= s.reads | s.writes
            for c in s.calls:
                if c.chain:
                    looked.add(c.chain[0])
                    if c.chain[0] in self.bindings:
                        names |= self._call_time_reads(self.bindings[c.chain[0]], visited, looked)
        return names

    def seeds(self, name: str) -> set[int]:
        """Statements a slice for ``name`` must start from."""
        out = {self.binder[name]} if name in self.binder else set()
        key = self.bindings[name]
        out |= self.closure(key)
        for k in self._reachable(key):
            for r in self.call_time_reads(k):
                if r in self.binder:
                    out.add(self.binder[r])
                if r in self.bindings:
                    out |= self.closure(self.bindings[r])
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


@dataclass(slots=True)
class _Env:
    resolve: Callable[[str], int | None]
    read: Callable[[str], None]
    mark: Callable[[int | None, bool], None]
    touch_state: Callable[..., None]
    extra_defs: list
    generators: list
    budget: list  # [calls left to resolve in this statement], shared by nested envs
    depth: int = 0
    returned_from: list = field(default_factory=list)  # (target, key it may be part of)


@dataclass(slots=True)
class _CellContext:
    cell: object
    last_def: dict


class _NoCell:
    has_runtime_facts = False
    statements = ()
    bound: dict = {}
    result_id = None


_NO_CELL = _CellContext(_NoCell(), {})

#: How many session-function applications one statement may take, and how
#: deep calls are followed, before it is treated as "may change anything".
CALL_BUDGET = 300
MAX_CALL_DEPTH = 40


class _TooDeep(Exception):
    """Raised inside call resolution when a statement's budget is spent."""

#: A call made somewhere we cannot see (a function passed as a value).
_INDIRECT = CallSite(chain=None)
