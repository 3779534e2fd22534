"""What the session defined: functions, classes, instances, imported modules.

The static side of call resolution: summaries of the functions and classes
defined in the session (by object key, so a redefinition is a new entry),
which objects are instances of which session class, which names are imported
modules (and under which dotted path), generator objects whose body runs
later, and the cache of "globals a function reads when called".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lineapy_ext.analysis.objects import copy_state
from lineapy_ext.analysis.statements import ClassSummary, FunctionSummary

__all__ = ["Program"]


@dataclass
class Program:
    """Definitions made by the session, keyed by object key."""

    functions: dict[int, FunctionSummary] = field(default_factory=dict)
    classes: dict[int, ClassSummary] = field(default_factory=dict)
    class_bases: dict[int, tuple[int, ...]] = field(default_factory=dict)
    instance_of: dict[int, int] = field(default_factory=dict)
    method_index: dict[str, set[int]] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    rng_objects: set[int] = field(default_factory=set)
    deferred: dict[int, int] = field(default_factory=dict)
    star_nodes: list[int] = field(default_factory=list)
    ctr_cache: dict[int, frozenset[str]] = field(default_factory=dict)
    ctr_deps: dict[str, set[int]] = field(default_factory=dict)

    def copy(self) -> "Program":
        """An independent copy (sets held in dicts are copied too)."""
        return copy_state(self, ("method_index", "ctr_deps"))

    def method(self, cls_key: int, name: str, seen: set | None = None):
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
            found = self.method(base, name, seen)
            if found[0] is not None:
                return found
        return None, None

    def is_class_attr(self, cls_key: int, attr: str, seen: set | None = None) -> bool:
        """Whether ``attr`` is a class attribute of a session class (or a base)."""
        seen = seen if seen is not None else set()
        if cls_key in seen or cls_key not in self.classes:
            return False
        seen.add(cls_key)
        return attr in self.classes[cls_key].attrs or any(
            self.is_class_attr(b, attr, seen) for b in self.class_bases.get(cls_key, ()))

    def setters(self, key) -> list[FunctionSummary]:
        """Methods run by assigning to an attribute or item of instance ``key``."""
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

    def forget_reads(self, name: str) -> None:
        """``name`` was rebound: drop cached call-time reads that looked it up."""
        for key in self.ctr_deps.pop(name, ()):
            self.ctr_cache.pop(key, None)
