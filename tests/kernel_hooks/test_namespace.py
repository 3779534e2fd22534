"""Tests of ``kernel_hooks.namespace``: packed ids and where two snapshots differ."""

from __future__ import annotations

import random

import pytest

from kernel_hooks.namespace import EMPTY, after, differing, packed_ids, take, unpack_ids


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
    ns["m"] = ns.pop("m")


def test_take_reports_new_rebound_and_deleted_names():
    ns = {"a": None, "b": [1], "_h": 1, "m": 0}
    base = take(ns, EMPTY, "m", _hidden, _place)
    assert base.full and sorted(base.changed) == ["a", "b", "m"]
    ns.update(b=[2], c=3, _h=2)
    snap = take(ns, base, "m", _hidden, _place)
    assert not snap.full and snap.changed == ["b", "c"] and snap.deleted == set()
    assert list(ns)[-1] == "m" and snap.keys == list(ns) and unpack_ids(snap.ids) == [id(v) for v in ns.values()]
    del ns["a"]  # None, like a missing value would read
    ns["d"] = 4
    snap2 = take(ns, snap, "m", _hidden, _place)
    assert snap2.full and snap2.changed == ["d"] and snap2.deleted == {"a"}
    inside = take(ns, snap2, "m", _hidden)  # no placing: nothing mutated
    assert inside.changed == [] and snap2.keys == list(ns)


def test_after_marker():
    ns = {"x": 1, "m": 0, "y": 2, "z": 3}
    assert after(ns, "m") == ["y", "z"] and after(ns, "q") is None
