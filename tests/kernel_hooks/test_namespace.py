"""Tests of ``kernel_hooks.namespace``: packed ids and where two snapshots differ."""

from __future__ import annotations

import random

import pytest

from kernel_hooks.namespace import MISSING, after, current_ids, differing, packed_ids, unpack_ids, values_of, Snapshot


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


def test_current_ids_notes_deleted_names_even_when_their_value_was_none():
    ns = {"a": None, "b": [1], "c": 2}
    snap = Snapshot(["a", "b", "c"], packed_ids(values_of(ns, ["a", "b", "c"])), len(ns), {"a", "b", "c"})
    del ns["a"]
    ids, gone = current_ids(ns, snap)
    assert gone == ["a"] and unpack_ids(ids)[0] == id(MISSING)
    assert unpack_ids(ids)[1:] == [id(ns["b"]), id(ns["c"])]


def test_after_marker():
    ns = {"x": 1, "m": 0, "y": 2, "z": 3}
    assert after(ns, "m") == ["y", "z"] and after(ns, "q") is None
