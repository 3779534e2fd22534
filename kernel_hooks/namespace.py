"""Identity snapshots of a namespace, cheap enough to take after every cell.

:class:`kernel_hooks.capture.Capture` compares the user namespace before and
after each cell by object identity.  No reference to a value is kept, and no
value is touched: in a long session the namespace holds tens of thousands of
objects scattered over the heap, and reading each one (even to increment its
reference count, as ``tuple(ns.values())`` does) costs a cache miss per name.

On CPython (3.11 to 3.13, checked when this module is imported) a snapshot
is a copy of the dict's *entry table*: the key and value pointers of every
entry in insertion order, deleted entries zeroed, read in one call into C
(:func:`read_table`).  Comparing two snapshots is a ``memcmp`` and finding the
few entries that changed a bisection over it; a deletion zeroes its entry in
place and new names are appended after the old entries, so only a resize of
the table (each doubling of the namespace) forces a comparison name by name.
What is left per cell grows with the namespace at memory bandwidth only (the
copy and the ``memcmp``: ~2 ns per name, 0.1 ms for 50,000 names).  Without
dict watchers (C API of Python 3.12+) an exact answer cannot avoid reading
every value slot: any code may rebind any global.

Elsewhere (or if the check fails) the values are read with
``tuple(ns.values())`` and their ids packed into one ``bytes`` (8 bytes per
name); new names are then found after a marker key that each snapshot moves
to the end of the namespace.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import sysconfig
from array import array
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, repeat, takewhile, tee
from operator import add, attrgetter, itemgetter, lshift, mul, ne
from typing import Callable

_ID = 8  # bytes per packed id
# CPython keeps a tuple's items as a C array of pointers (= their ids) right
# after the header: copy it instead of calling id() on each item.
_RAW_TUPLE = (sys.implementation.name == "cpython" and tuple.__itemsize__ == _ID
              and ctypes.sizeof(ctypes.c_void_p) == _ID)
_TUPLE_ITEMS = tuple.__basicsize__

# CPython's dict layout (Include/internal/pycore_dict.h, 3.11-3.13):
# PyDictObject = ob_refcnt, ob_type, ma_used, ma_version_tag, ma_keys, ...;
# PyDictKeysObject = dk_refcnt, (dk_log2_size, dk_log2_index_bytes, dk_kind
# as bytes 8, 9, 10), dk_usable, dk_nentries, then 2**dk_log2_index_bytes
# bytes of hash index, then the entries.
_KEYS_AT = 4 * _ID
_HEADER = 4 * _ID
_ENTRY = (24, 16, 0)  # bytes per entry by dk_kind: general (hash, key, value), unicode (key, value), split


def packed_ids(values: tuple) -> bytes:
    """``id()`` of each item of ``values`` as native unsigned 64-bit integers."""
    if _RAW_TUPLE:
        return ctypes.string_at(id(values) + _TUPLE_ITEMS, len(values) * _ID) if values else b""
    return array("Q", map(id, values)).tobytes()


def unpack_ids(packed: bytes) -> list[int]:
    """The ids in ``packed`` (see :func:`packed_ids`)."""
    return array("Q", packed).tolist()


def differing(a: bytes, b: bytes) -> list[int]:
    """Indexes of the packed ids that differ between ``a`` and ``b`` (same length)."""
    return _differing(a, b, _ID, len(a) // _ID)


def _differing(a: bytes, b: bytes, size: int, n: int) -> list[int]:
    """Indexes of the ``size``-byte items among the first ``n`` that differ.

    Halves are compared at ``memcmp`` speed (``startswith`` on a view: no
    copy), so k changes cost ~k log n comparisons, not a pass per item.
    """
    out: list[int] = []
    view = memoryview(b)
    todo = [(0, n)]
    while todo:
        lo, hi = todo.pop()
        if a.startswith(view[lo * size:hi * size], lo * size):
            continue
        if hi - lo <= 16:
            out += [i for i in range(lo, hi) if not a.startswith(view[i * size:(i + 1) * size], i * size)]
        else:
            mid = (lo + hi) // 2
            todo += [(mid, hi), (lo, mid)]
    return out


def _table_reader():
    """The function reading a dict's entry table, or None where it is not known to be right."""
    if (sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != _ID
            or sys.version_info[:2] not in ((3, 11), (3, 12), (3, 13)) or sysconfig.get_config_var("Py_GIL_DISABLED")):
        return None
    # A PYFUNCTYPE call keeps the GIL (ctypes.string_at is a Python function
    # and CFUNCTYPE calls release it).
    bytes_at = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
        ("PyBytes_FromStringAndSize", ctypes.pythonapi))
    from_native = partial(int.from_bytes, byteorder=sys.byteorder)

    def read(ns: dict) -> tuple[int, bytes]:
        # One pipeline of C iterators run by one next(): no Python code (so
        # no switch to another thread, which could resize the dict and free
        # its table) between reading the table's address and copying it --
        # unless a Python audit hook is installed (ctypes raises events).
        keys = tee(map(attrgetter("value"), map(ctypes.c_void_p.from_address, (id(ns) + _KEYS_AT,))))
        head = tee(map(bytes_at, keys[0], repeat(_HEADER)), 3)
        size = tee(map(_ENTRY.__getitem__, map(itemgetter(10), head[0])))
        count = map(from_native, map(itemgetter(slice(24, 32)), head[1]))
        start = map(add, map(add, keys[1], repeat(_HEADER)), map(lshift, repeat(1), map(itemgetter(9), head[2])))
        return next(zip(size[0], map(bytes_at, start, map(mul, count, size[1]))))

    try:
        return read if _reads_right(read) else None
    except Exception:
        return None


def _reads_right(read) -> bool:
    """Check ``read`` on dicts of both table kinds, grown and with deletions."""
    big = {f"k{i}": object() for i in range(200)}
    for k in ("k3", "k150", "k199"):
        del big[k]
    for d in ({}, dict.fromkeys("abc"), {1: "x", "a": None, (2,): 3}, big, {"only": 1}):
        size, table = read(d)
        if size not in (16, 24) or len(table) % size:
            return False
        words, step = array("Q", table), size // _ID
        keys, values = words[step - 2::step], words[step - 1::step]
        if ([k for k in keys if k] != [id(k) for k in d] or [v for k, v in zip(keys, values) if k]
                != [id(v) for v in d.values()] or any(v for k, v in zip(keys, values) if not k)):
            return False
    return True


_read = _table_reader()
#: Whether snapshots copy the dict's entry table (see the module docstring).
RAW_TABLES = _read is not None


def read_table(ns: dict) -> tuple[int, bytes] | None:
    """Bytes per entry and the entry table of ``ns``, or None where tables are not read."""
    if _read is None:
        return None
    paused = gc.isenabled()
    gc.disable()  # a collection could run finalizers (Python code) inside the read
    try:
        size, table = _read(ns)
    finally:
        if paused:
            gc.enable()
    return (size, table) if size else None


@dataclass(slots=True)
class Snapshot:
    """Identity snapshot of a namespace, and what changed since the previous one.

    Attributes
    ----------
    keys : list
        The keys: aligned with the entries of ``ids`` (None for a deleted
        entry) when ``entry`` is set, else every key in dict order.
    ids : bytes
        The entry table (:func:`read_table`), or the packed ids of the
        values aligned with ``keys`` (:func:`packed_ids`).
    changed : list of str
        Reportable names new or bound to another object since the previous
        snapshot.
    deleted : set of str
        Reportable names deleted since.
    full : bool
        Compared name by name (no previous snapshot, a rebuilt table, a
        deletion or a moved marker without entry tables).
    entry : int
        Bytes per entry of ``ids``, 0 for packed ids.
    """

    keys: list
    ids: bytes
    changed: list = field(default_factory=list)
    deleted: set = field(default_factory=set)
    full: bool = False
    entry: int = 0


#: "No snapshot yet": the next one is taken from scratch.
EMPTY = Snapshot([], b"", full=True)


def take(ns: dict, old: Snapshot, marker: str, hidden: Callable[[object], bool],
         place_marker: Callable[[dict], None] | None = None) -> Snapshot:
    """Snapshot ``ns`` and compare it with ``old`` by identity.

    Names for which ``hidden`` is true are never reported.  ``place_marker``
    (when given) is called once the snapshot is taken: it puts the key
    ``marker`` in ``ns``, at the end when entry tables are not read (the keys
    inserted before the next snapshot are then those after it).  Passing it
    also means ``old`` is being replaced: its key list is reused, extended in
    place; without it nothing is mutated (a look from inside a running cell).
    """
    raw = read_table(ns)
    if raw is not None:
        snap = _take_table(ns, old, raw[0], raw[1], hidden, place_marker is not None)
        if place_marker is not None:
            place_marker(ns)
        return snap
    return _take_packed(ns, old, marker, hidden, place_marker)


def _take_table(ns: dict, old: Snapshot, size: int, table: bytes, hidden, reuse: bool) -> Snapshot:
    cut = len(old.ids)
    if old is EMPTY or old.entry != size or len(table) < cut:
        return _table_from_scratch(ns, old, size, table, hidden)
    keys = old.keys if reuse else list(old.keys)
    changed, gone = [], []
    at = size - 2 * _ID  # offset of the key pointer in an entry
    for i in _differing(table, old.ids, size, cut // size):
        key = table[i * size + at:i * size + at + _ID]
        if key != old.ids[i * size + at:i * size + at + _ID]:
            if any(key):  # another key there: the table was rebuilt
                return _table_from_scratch(ns, old, size, table, hidden)
            gone.append(i)  # a deleted entry is zeroed in place
        elif keys[i] is not None and not hidden(keys[i]):
            changed.append(keys[i])
    step = size // _ID
    words = array("Q", table[cut:])
    added, values = words[step - 2::step], words[step - 1::step]
    live = [j for j, k in enumerate(added) if k]
    names = list(islice(reversed(ns), len(live)))
    names.reverse()
    if [id(k) for k in names] != [added[j] for j in live]:  # changed meanwhile (another thread)
        return _table_from_scratch(ns, old, size, table, hidden)
    # A deleted name bound again is a new entry: rebound only if to another object.
    was = {keys[i]: _word(old.ids, i * size + size - _ID) for i in gone if keys[i] is not None}
    deleted = {k for k in was if not hidden(k)}
    deleted.difference_update(names)
    for i in gone:
        keys[i] = None
    tail = [None] * len(added)
    for j, name in zip(live, names):
        tail[j] = name
    keys += tail
    changed += [k for j, k in zip(live, names) if not hidden(k) and was.get(k) != values[j]]
    return Snapshot(keys, table, changed, deleted, entry=size)


def bound_to(ns: dict, value: object, snap: Snapshot) -> list | None:
    """Keys of ``ns`` bound to ``value`` (by identity), found in its entry table
    without touching the other names; None where tables are not read.

    ``snap`` is a recent snapshot of ``ns`` (its keys name the entries it
    covers); names bound since are read from the end of ``ns``.
    """
    raw = read_table(ns)
    if raw is None or raw[0] != snap.entry or len(raw[1]) < len(snap.ids):
        return None
    size, table = raw
    needle, found, at = id(value).to_bytes(_ID, sys.byteorder), [], -1
    while (at := table.find(needle, at + 1)) >= 0:
        if at % size == size - _ID:  # a value pointer (not a key or a hash)
            found.append(at // size)
    keys, old = snap.keys, len(snap.ids) // size
    newer = array("Q", table[old * size:])[size // _ID - 2::size // _ID]
    live = [j for j, k in enumerate(newer) if k]
    tail = list(islice(reversed(ns), len(live)))[::-1] if any(i >= old for i in found) else []
    names = []
    for i in found:
        key = keys[i] if i < old else (tail[live.index(i - old)] if i - old in live and tail else None)
        if key is None or id(key) != _word(table, i * size + size - 2 * _ID) or ns.get(key) is not value:
            return None  # the snapshot does not describe this table (rebuilt since): look at every name
        names.append(key)
    return names


def _word(b: bytes, at: int) -> int:
    return int.from_bytes(b[at:at + _ID], sys.byteorder)


def _table_from_scratch(ns: dict, old: Snapshot, size: int, table: bytes, hidden) -> Snapshot:
    step = size // _ID
    words = array("Q", table)
    present, values = words[step - 2::step], words[step - 1::step]
    live = list(ns)
    if len(live) == len(present):
        keys = live
    else:
        names = iter(live)
        keys = [next(names, None) if k else None for k in present]
    if [id(k) if k is not None else 0 for k in keys[-64:]] != present[-64:].tolist():
        return _from_scratch(ns, old, hidden, None)  # changed between the two reads (another thread)
    if old is EMPTY:
        return Snapshot(keys, table, [k for k in live if not hidden(k)], set(), True, size)
    prev = _ids_by_name(old)
    changed = [k for k, v in zip(keys, values) if k is not None and prev.get(k) != v and not hidden(k)]
    deleted = {k for k in prev.keys() - set(live) if not hidden(k)}
    return Snapshot(keys, table, changed, deleted, True, size)


def _ids_by_name(snap: Snapshot) -> dict:
    if not snap.entry:
        return dict(zip(snap.keys, unpack_ids(snap.ids)))
    step = snap.entry // _ID
    return {k: v for k, v in zip(snap.keys, array("Q", snap.ids)[step - 1::step]) if k is not None}


def _take_packed(ns: dict, old: Snapshot, marker: str, hidden, place_marker) -> Snapshot:
    """The snapshot without entry tables: packed ids and a marker key."""
    tail = after(ns, marker)
    n = len(old.keys)
    if (old is EMPTY or old.entry or tail is None or not n or old.keys[-1] != marker
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
    prev = _ids_by_name(old)
    changed = [k for k, i in zip(keys, unpack_ids(ids)) if prev.get(k) != i and not hidden(k)]
    deleted = {k for k in prev.keys() - set(keys) if not hidden(k)}
    return Snapshot(keys, ids, changed, deleted, full=True)


def after(ns: dict, marker: str) -> list | None:
    """Keys inserted after ``marker``, oldest first; None if ``marker`` is absent."""
    if marker not in ns:
        return None
    tail = list(takewhile(partial(ne, marker), reversed(ns)))
    tail.reverse()
    return tail
