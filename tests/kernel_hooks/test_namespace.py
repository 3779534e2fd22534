"""Tests of ``kernel_hooks.namespace``: entry tables, packed ids and where two snapshots differ.

Snapshots are checked both ways they are taken: by copying the dict's entry
table (CPython 3.11-3.13) and with packed ids and a marker key (elsewhere),
against a plain comparison of two copies of the namespace.
"""

from __future__ import annotations

import random

import pytest

from kernel_hooks import namespace
from kernel_hooks.namespace import EMPTY, after, differing, packed_ids, read_table, take, unpack_ids


@pytest.fixture(params=["tables", "packed"])
def mode(request, monkeypatch):
    """Take snapshots from entry tables, or as where tables are not read."""
    if request.param == "packed":
        monkeypatch.setattr(namespace, "_read", None)
        monkeypatch.setattr(namespace, "RAW_TABLES", False)
    elif not namespace.RAW_TABLES:
        pytest.skip("entry tables are not read on this interpreter")
    return request.param


def test_packed_ids_are_the_ids():
    xs = (object(), 1, "s", None, (1, 2), [3])
    assert unpack_ids(packed_ids(xs)) == [id(x) for x in xs]
    assert packed_ids(()) == b""


@pytest.mark.parametrize("n,k", [(1, 1), (5, 0), (33, 2), (1000, 7), (1000, 1000)])
def test_differing_finds_every_changed_position(n, k):
    rng = random.Random(n * 31 + k)
    xs = [object() for _ in range(n)]
    ys = list(xs)
    changed = sorted(rng.sample(range(n), k))
    for i in changed:
        ys[i] = object()
    assert differing(packed_ids(tuple(ys)), packed_ids(tuple(xs))) == changed


def _hidden(k):
    return k.startswith("_")


def _place(ns):
    ns["m"] = ns.pop("m", 0)


def test_take_reports_new_rebound_and_deleted_names(mode):
    ns = {"a": None, "b": [1], "_h": 1, "m": 0}
    base = take(ns, EMPTY, "m", _hidden, _place)
    assert base.full and sorted(base.changed) == ["a", "b", "m"]
    ns.update(b=[2], c=3, _h=2)
    snap = take(ns, base, "m", _hidden, _place)
    assert not snap.full and snap.changed == ["b", "c"] and snap.deleted == set()
    if mode == "packed":
        assert list(ns)[-1] == "m" and snap.keys == list(ns) and unpack_ids(snap.ids) == [id(v) for v in ns.values()]
    else:
        # the entries as read, before the marker moved
        assert [k for k in snap.keys if k is not None] == ["a", "b", "_h", "m", "c"] and snap.entry in (16, 24)
    del ns["a"]  # None, like a missing value would read
    ns["d"] = 4
    snap2 = take(ns, snap, "m", _hidden, _place)
    assert snap2.changed == ["d"] and snap2.deleted == {"a"}
    assert snap2.full == (mode == "packed")  # a deletion zeroes its entry in place
    keys = list(snap2.keys)
    inside = take(ns, snap2, "m", _hidden)  # no placing: nothing mutated
    assert inside.changed == [] and snap2.keys == keys


def test_entry_table_holds_keys_and_values_in_order():
    if not namespace.RAW_TABLES:
        pytest.skip("entry tables are not read on this interpreter")
    ns = {f"k{i}": object() for i in range(100)}
    del ns["k7"]
    ns[3] = "not a str key: a general table (hash, key, value)"
    for d in (ns, {"a": 1, "b": "x"}):
        size, table = read_table(d)
        words = unpack_ids(table)
        step = size // 8
        keys, values = words[step - 2::step], words[step - 1::step]
        assert [k for k in keys if k] == [id(k) for k in d]
        assert [v for k, v in zip(keys, values) if k] == [id(v) for v in d.values()]


def _reference(before: dict, ns: dict) -> tuple[set, set]:
    changed = {k for k, v in ns.items() if not _hidden2(k) and (k not in before or before[k] is not v)}
    return changed, {k for k in before if k not in ns and not _hidden2(k)}


def _hidden2(k):
    return type(k) is not str or k.startswith("_") or k == "m"


@pytest.mark.parametrize("seed", range(12))
def test_take_agrees_with_a_plain_comparison(mode, seed):
    # Random cells: new names, rebinding, deletions, a name deleted and bound
    # again (to the same object or another), hidden names, a non-str key
    # (the table changes kind), tables grown past their size; some snapshots
    # from inside a cell (compared with the baseline, nothing mutated).
    rng = random.Random(seed)
    objs = [object() for _ in range(30)]
    ns, snap, before = {}, EMPTY, {}
    for _ in range(150):
        for _ in range(rng.choice([0, 1, 3, 40])):
            op, keys = rng.random(), [k for k in ns if k != "m"]
            if op < 0.35 or not keys:
                ns[f"n{rng.randrange(10 ** 6)}"] = rng.choice(objs)
            elif op < 0.6:
                ns[rng.choice(keys)] = rng.choice(objs + [object()])
            elif op < 0.75:
                del ns[rng.choice(keys)]
            elif op < 0.85:
                k = rng.choice(keys)
                ns[k] = ns.pop(k)
            elif op < 0.9:
                k = rng.choice(keys)
                del ns[k]
                ns[k] = object()
            elif op < 0.97:
                ns[f"_h{rng.randrange(20)}"] = object()
            else:
                ns[rng.randrange(5)] = 1
        inside = rng.random() < 0.2
        now = take(ns, snap, "m", _hidden2, None if inside else _place)
        changed, deleted = _reference(before, ns)
        assert sorted(now.changed, key=str) == sorted(changed, key=str) and now.deleted == deleted
        if not inside:
            snap, before = now, dict(ns)


def test_after_marker():
    ns = {"x": 1, "m": 0, "y": 2, "z": 3}
    assert after(ns, "m") == ["y", "z"] and after(ns, "q") is None


def test_bound_to_finds_every_name_of_a_value(mode):
    from kernel_hooks.namespace import bound_to

    value, other = object(), object()
    ns = {f"n{i}": other for i in range(300)}
    ns.update(a=value, b=value)
    snap = take(ns, EMPTY, "m", _hidden2, _place)
    del ns["n5"]
    ns["c"] = value  # bound after the snapshot
    ns["n7"] = value  # rebound in place
    ns["value"] = "value"  # a key that is its own value: never a match by its key
    found = bound_to(ns, value, snap)
    if mode == "packed":
        assert found is None  # callers look at every name
        return
    assert sorted(found) == ["a", "b", "c", "n7"]
    assert bound_to(ns, "value", snap) == ["value"] and bound_to(ns, object(), snap) == []
    for i in range(2000):  # the table is rebuilt: the snapshot no longer names its entries
        ns[f"x{i}"] = other
    ns["z"] = value
    found = bound_to(ns, value, snap)
    assert found is None or sorted(found) == ["a", "b", "c", "n7", "z"]
