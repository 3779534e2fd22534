"""Identity snapshots of a namespace, cheap enough to take after every cell.

:class:`kernel_hooks.capture.Capture` compares the user namespace before and
after each cell by object identity.  A snapshot keeps only the names a diff
can report (not IPython's ``_iN``/``_N`` bookkeeping), with the ids of their
values packed into one ``bytes`` (8 bytes per name): comparing two snapshots
is a ``memcmp``, and finding the few names that changed is a bisection over
slices of it.  The values are fetched with one ``itemgetter`` call, and on
CPython their ids are the tuple's item pointers, copied in one ``memmove``
instead of one ``id()`` int per name.  No reference to a value is kept.
"""

from __future__ import annotations

import ctypes
import sys
from array import array
from dataclasses import dataclass, field
from itertools import repeat, takewhile
from operator import itemgetter
from typing import Callable

MISSING = object()

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

    Bisects over slices (memcmp speed): O(k log n) for k differences.
    """
    out: list[int] = []
    stack = [(0, len(a) // _ID)]
    while stack:
        lo, hi = stack.pop()
        if a[lo * _ID:hi * _ID] == b[lo * _ID:hi * _ID]:
            continue
        if hi - lo <= 32:
            x, y = array("Q", a[lo * _ID:hi * _ID]), array("Q", b[lo * _ID:hi * _ID])
            out.extend(lo + i for i in range(hi - lo) if x[i] != y[i])
        else:
            mid = (lo + hi) // 2
            stack += [(mid, hi), (lo, mid)]
    out.sort()
    return out


@dataclass(slots=True)
class Snapshot:
    """Identity snapshot of a namespace's reportable names.

    Attributes
    ----------
    names : list of str
        The tracked names, in the order of ``ids``.
    ids : bytes
        Packed ids of their values (:func:`packed_ids`).
    size : int
        ``len(namespace)``, hidden names included; -1 for "no snapshot yet".
    tracked : set of str
        ``set(names)``.
    added, gone : list of str
        Names new since the previous snapshot, and deleted since.
    full : bool
        Taken from the whole namespace (not from the previous snapshot).
    rebound : list of str or None
        Tracked names whose value is another object (None: compare by name).
    getter : callable or None
        ``itemgetter(*names)``, built when first needed.
    """

    names: list[str]
    ids: bytes
    size: int
    tracked: set[str]
    added: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    full: bool = False
    rebound: list[str] | None = None
    getter: Callable | None = None


EMPTY = Snapshot([], b"", -1, set())


def values_of(ns: dict, names: list[str]) -> tuple:
    """``tuple(ns[k] for k in names)``; KeyError if one is missing."""
    if not names:
        return ()
    return (ns[names[0]],) if len(names) == 1 else itemgetter(*names)(ns)


def current_ids(ns: dict, old: Snapshot) -> tuple[bytes, list[str]]:
    """Packed ids of ``old.names`` in ``ns`` now, and the names no longer there.

    A deleted name gets the id of a private sentinel (never equal to a value's).
    """
    names = old.names
    if not names:
        return b"", []
    if old.getter is None:  # one C call fetching every value
        old.getter = itemgetter(*names)
    try:
        values = old.getter(ns)
    except KeyError:
        values = tuple(map(ns.get, names, repeat(MISSING)))
        return packed_ids(values), [k for k, v in zip(names, values) if v is MISSING]
    return packed_ids(values if len(names) > 1 else (values,)), []


def after(ns: dict, marker: str) -> list[str] | None:
    """Names inserted after ``marker``, oldest first; None if ``marker`` is absent."""
    if marker not in ns:
        return None
    tail = list(takewhile(marker.__ne__, reversed(ns)))
    tail.reverse()
    return tail
