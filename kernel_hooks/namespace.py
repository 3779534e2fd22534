"""Identity snapshots of a namespace, cheap enough to take after every cell.

:class:`kernel_hooks.capture.Capture` compares the user namespace before and
after each cell by object identity.  A snapshot keeps the keys in dict order
and the ids of the values packed into one ``bytes`` (8 bytes per key):
comparing two snapshots is a ``memcmp`` and finding the few keys that changed
a bisection over slices of it.  Values are read in one sequential pass
(``tuple(ns.values())``: a lookup per name costs several cache misses in a
big namespace), and on CPython their ids are that tuple's item pointers,
copied in one ``memmove`` instead of one ``id()`` int per value.  No
reference to a value is kept.
"""

from __future__ import annotations

import ctypes
import sys
from array import array
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Callable

_ID = 8  # bytes per packed id
# CPython keeps a tuple's items as a C array of pointers (= their ids) right
# after the header: copy it instead of calling id() on each item.
_RAW_TUPLE = (sys.implementation.name == "cpython" and tuple.__itemsize__ == _ID
              and ctypes.sizeof(ctypes.c_void_p) == _ID)
_TUPLE_ITEMS = tuple.__basicsize__


def packed_ids(values: tuple) -> bytes:
    """``id()`` of each item of ``values`` as native unsigned 64-bit integers."""
    if _RAW_TUPLE:
        return ctypes.string_at(id(values) + _TUPLE_ITEMS, len(values) * _ID) if values else b""
    return array("Q", map(id, values)).tobytes()


def unpack_ids(packed: bytes) -> list[int]:
    """The ids in ``packed`` (see :func:`packed_ids`)."""
    return array("Q", packed).tolist()


def differing(a: bytes, b: bytes) -> list[int]:
    """Indexes of the packed ids that differ between ``a`` and ``b`` (same length).

    Compared 512 ids (4 KiB) at a time at memcmp speed; only the chunks that
    differ are compared id by id.
    """
    out: list[int] = []
    step = 512 * _ID
    for off in range(0, len(a), step):
        x, y = a[off:off + step], b[off:off + step]
        if x != y:
            base = off // _ID
            out.extend(base + i for i, (p, q) in enumerate(zip(array("Q", x), array("Q", y))) if p != q)
    return out


@dataclass(slots=True)
class Snapshot:
    """Identity snapshot of a namespace, and what changed since the previous one.

    Attributes
    ----------
    keys : list
        Every key of the namespace, in its (insertion) order.
    ids : bytes
        Packed ids of the values, aligned with ``keys`` (:func:`packed_ids`).
    changed : list of str
        Reportable names new or bound to another object since the previous
        snapshot.
    deleted : set of str
        Reportable names deleted since.
    full : bool
        Compared name by name (a deletion, a moved marker, no previous snapshot).
    """

    keys: list
    ids: bytes
    changed: list = field(default_factory=list)
    deleted: set = field(default_factory=set)
    full: bool = False


#: "No snapshot yet": the next one is taken from scratch.
EMPTY = Snapshot([], b"", full=True)


def take(ns: dict, old: Snapshot, marker: str, hidden: Callable[[object], bool],
         place_marker: Callable[[dict], None] | None = None) -> Snapshot:
    """Snapshot ``ns`` and compare it with ``old`` by identity.

    ``marker`` is a key that ``place_marker`` (when given) moves to the end of
    ``ns`` once the snapshot is taken, so that the keys inserted before the
    next snapshot are exactly those after it.  Names for which ``hidden`` is
    true are never reported.  Without deletions the cost is one pass over
    the values at C speed (sequential, cheaper than a lookup per name) plus
    the new keys; ``old.keys`` is then extended in place when the marker is
    placed (``old`` is being replaced).
    """
    tail = after(ns, marker)
    n = len(old.keys)
    if (old is EMPTY or tail is None or not n or old.keys[-1] != marker
            or len(ns) != n + len(tail)):  # a key was deleted (or the marker moved)
        return _from_scratch(ns, old, hidden, place_marker)
    now = packed_ids(tuple(ns.values()))
    cut = n * _ID
    before = now[:cut]
    changed = [] if before == old.ids else [k for k in map(old.keys.__getitem__, differing(before, old.ids))
                                            if not hidden(k)]
    changed += [k for k in tail if not hidden(k)]
    if place_marker is None:
        return Snapshot(old.keys + tail, now, changed)
    place_marker(ns)
    keys = old.keys
    keys.pop()
    keys += tail
    keys.append(marker)
    return Snapshot(keys, now[:cut - _ID] + now[cut:] + now[cut - _ID:cut], changed)


def _from_scratch(ns: dict, old: Snapshot, hidden, place_marker) -> Snapshot:
    if place_marker is not None:
        place_marker(ns)
    keys = list(ns)
    ids = packed_ids(tuple(ns.values()))
    if old is EMPTY:
        return Snapshot(keys, ids, [k for k in keys if not hidden(k)], set(), full=True)
    prev = dict(zip(old.keys, unpack_ids(old.ids)))
    changed = [k for k, i in zip(keys, unpack_ids(ids)) if prev.get(k) != i and not hidden(k)]
    deleted = {k for k in prev.keys() - set(keys) if not hidden(k)}
    return Snapshot(keys, ids, changed, deleted, full=True)


def after(ns: dict, marker: str) -> list | None:
    """Keys inserted after ``marker``, oldest first; None if ``marker`` is absent."""
    if marker not in ns:
        return None
    tail = list(takewhile(marker.__ne__, reversed(ns)))
    tail.reverse()
    return tail
