"""The object model of a session: names, objects, containment, history heads.

Objects are identified by *keys* (small ints).  The model keeps, as of "now"
in the session:

- ``bindings``: global name -> key (two names with one key are aliases) and
  ``binder``: the statement that last bound the name;
- ``writers``: key -> the *heads* of the object's history, the statements
  that last created or changed it (a statement that changes an object
  depends on its previous heads, so the heads stand for the whole history);
- ``contains``/``holders``: which objects may hold references to which
  (containers, views, closures), and ``dirty``: for a holder, the held
  objects changed since the holder's own last change, so that a read visits
  only what changed since (never the whole history);
- ``parts``: items of an object kept apart under constant keys (a
  DataFrame's columns): each is an object of its own, held by its owner, so
  that a read of ``df["a"]`` visits ``df``'s own history and that of item
  ``"a"``, not the history of the other columns;
- runtime facts the capture saw: identities, types (MRO names), short
  strings (paths), the global names a runtime-made function reads, the file
  a connection is tied to (and the cursors working on it, whose changes,
  their rows and position, are not writes of the file).

:meth:`ObjectModel.copy` is the one explicit copy used to fork a graph.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field, fields

__all__ = ["ObjectModel", "copy_state"]


def copy_state(obj, dicts_of_sets: tuple[str, ...]):
    """A copy of dataclass ``obj`` that shares nothing mutable with it: its
    dicts, sets and lists are copied, and so are the sets held by the dicts
    named in ``dicts_of_sets``."""
    out = type(obj)()
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.name in dicts_of_sets:
            # in C, without a thread switch: a save from another thread
            # copies while the main thread's cells change the graph
            v = dict(zip(list(v), map(set, list(v.values()))))
        elif isinstance(v, (dict, set, list)):
            v = _copy.copy(v)
        setattr(out, f.name, v)
    return out


@dataclass
class ObjectModel:
    """Names, objects and their histories (see the module docstring)."""

    bindings: dict[str, int] = field(default_factory=dict)
    binder: dict[str, int] = field(default_factory=dict)
    writers: dict[int, tuple[int, ...]] = field(default_factory=dict)
    contains: dict[int, frozenset[int]] = field(default_factory=dict)
    holders: dict[int, set[int]] = field(default_factory=dict)
    dirty: dict[int, set[int]] = field(default_factory=dict)
    atomic: set[int] = field(default_factory=set)
    key_of_id: dict[int, int] = field(default_factory=dict)
    id_of_key: dict[int, int] = field(default_factory=dict)
    mro: dict[int, tuple[str, ...]] = field(default_factory=dict)
    element_mro: dict[int, tuple[str, ...]] = field(default_factory=dict)
    strings: dict[int, str] = field(default_factory=dict)
    code_reads: dict[int, frozenset[str]] = field(default_factory=dict)
    file_of: dict[int, str] = field(default_factory=dict)
    cursors: set[int] = field(default_factory=set)  # tied to a file_of, holding none of it: changes are their own
    anonymous: set[int] = field(default_factory=set)  # container elements no name referred to
    parts: dict[tuple[int, str], int] = field(default_factory=dict)  # (owner, item key) -> part
    part_of: dict[int, int] = field(default_factory=dict)  # part -> owner
    next_key: int = 0

    def copy(self) -> "ObjectModel":
        """An independent copy (sets held in dicts are copied too)."""
        return copy_state(self, ("holders", "dirty"))

    # -- keys and names ------------------------------------------------------
    def new_key(self) -> int:
        """A key for a new object."""
        self.next_key += 1
        return self.next_key

    def bind(self, name: str, nid: int) -> int:
        """``name`` now refers to a new object made by statement ``nid``."""
        key = self.new_key()
        self.writers[key] = (nid,)
        self.bindings[name] = key
        self.binder[name] = nid
        return key

    def type_of(self, key) -> tuple[str, ...]:
        """MRO names of the object's type as seen at run time, or ()."""
        return self.mro.get(key, ()) if key is not None else ()

    # -- histories -------------------------------------------------------------
    def add_writer(self, key: int, nid: int) -> None:
        """Statement ``nid`` changed ``key``: it becomes the history's head."""
        self.writers[key] = (nid,)
        self.dirty.pop(key, None)
        self.dirty_up(key)

    def add_contains(self, holder: int, held: int, fresh: bool = False) -> None:
        """``holder`` may hold a reference to ``held`` from now on.

        ``fresh`` says that ``held``'s history so far is already part of the
        holder's (the statement that linked them read ``held``, or ``held``
        was taken out of ``holder``): only later changes of ``held`` count.
        """
        if holder == held:
            return
        self.contains[holder] = self.contains.get(holder, frozenset()) | {held}
        self.holders.setdefault(held, set()).add(holder)
        if not fresh:
            self.dirty.setdefault(holder, set()).add(held)
            self.dirty_up(holder)

    def drop_contains(self, holder: int, keep: set[int] | None = None) -> None:
        """Forget what ``holder`` holds (all of it, or all but ``keep``);
        its parts (items kept apart) are its own and stay."""
        parts = {c for c in self.contains.get(holder, ()) if self.part_of.get(c) == holder}
        if parts:
            keep = parts | (keep or set())
        for held in self.contains.get(holder, ()):
            if keep is None or held not in keep:
                self.holders.get(held, set()).discard(holder)
        if keep is None:
            self.contains.pop(holder, None)
            self.dirty.pop(holder, None)
        else:
            self.contains[holder] = frozenset(k for k in self.contains.get(holder, ()) if k in keep)
            if holder in self.dirty:
                self.dirty[holder] &= keep

    def dirty_up(self, key: int) -> None:
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
        """Heads of the history of ``key`` and of everything it holds that
        changed since ``key``'s own last change."""
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

    def part(self, key: int, item: str) -> int:
        """The part of ``key`` kept under item ``item`` (made on first use)."""
        p = self.parts.get((key, item))
        if p is None:
            p = self.parts[(key, item)] = self.new_key()
            self.part_of[p] = key
            self.add_contains(key, p, fresh=True)
        return p

    def closure_of_items(self, key: int, items) -> set[int]:
        """Like :meth:`closure`, for a read of only ``items`` of ``key``: the
        changes of its other parts since ``key``'s own last change are left out."""
        wanted = {self.parts[(key, i)] for i in items if (key, i) in self.parts}
        out = set(self.writers.get(key, ()))
        for c in self.dirty.get(key, ()):
            if c not in self.atomic and (c in wanted or self.part_of.get(c) != key):
                out |= self.closure(c)
        for p in wanted:
            out |= self.closure(p)
        return out

    def reachable(self, key: int) -> set[int]:
        """``key`` and every non-atomic object it may hold, transitively."""
        atomic = self.atomic
        stack, seen = [key], {key}
        while stack:
            for c in self.contains.get(stack.pop(), ()):
                if c not in seen and c not in atomic:
                    seen.add(c)
                    stack.append(c)
        return seen

    def merge_into(self, key: int, other: int) -> None:
        """``key`` turned out (at run time) to be the same object as ``other``."""
        self.writers[other] = tuple(sorted(set(self.writers.get(other, ())) | set(self.writers.get(key, ()))))
        for holder in list(self.holders.get(key, ())):
            self.add_contains(holder, other)
        for held in self.contains.get(key, ()):
            self.add_contains(other, held)
        self.dirty.setdefault(other, set()).update(self.dirty.get(key, ()))
        self.dirty_up(other)

    def file_behind(self, key: int) -> str | None:
        """The file (a database) ``key`` or an object holding it is tied to."""
        stack, seen = [key], {key}
        while stack:
            k = stack.pop()
            if k in self.file_of:
                return self.file_of[k]
            for h in self.holders.get(k, ()):
                if h not in seen and len(seen) < 50:
                    seen.add(h)
                    stack.append(h)
        return None

    def is_live(self, key: int, except_name: str) -> bool:
        """Whether a name other than ``except_name`` refers to ``key``."""
        return any(k == key and n != except_name for n, k in self.bindings.items())
