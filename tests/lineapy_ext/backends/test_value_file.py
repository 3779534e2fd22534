"""The value file: large buffers hashed on a helper thread (saves and gets), checked before anything is unpickled."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from lineapy_ext.backends import value_file
from lineapy_ext.exceptions import CorruptedValueError


def _round_trip(value, tamper_at=None):
    f = io.BytesIO()
    size, checksum = value_file.write_value(value, f)
    data = bytearray(f.getvalue())
    assert len(data) == size
    if tamper_at is not None:
        data[tamper_at] ^= 0x01
    verified = value_file.read_verified(io.BytesIO(bytes(data)), size, checksum, "test.pkl")
    return value_file.unpickle(verified, "test.pkl")


def test_large_buffers_round_trip_with_their_hash_on_the_helper():
    big = np.random.default_rng(0).random((3 * value_file._HELPER_MIN) // 8 + 5)  # not a whole number of slices
    value = {"big": big, "small": np.arange(10), "again": big[::-1].copy(), "text": "x" * 100}
    got = _round_trip(value)
    np.testing.assert_array_equal(got["big"], big)
    np.testing.assert_array_equal(got["again"], value["again"])
    assert got["text"] == value["text"] and got["big"].flags.writeable


class _ShortReads(io.BytesIO):
    """A file whose reads return at most 1 MB and 3 bytes, as a pipe or a socket may."""

    def readinto(self, view):
        return super().readinto(view[: (1 << 20) + 3])


def test_a_large_read_is_hashed_beside_it_slice_by_slice_in_order():
    import xxhash

    data = np.random.default_rng(1).bytes(value_file._HELPER_READ_MIN + 12345)  # not a whole number of slices
    view, h = memoryview(bytearray(len(data))), xxhash.xxh3_128()
    assert value_file._read_hashed(_ShortReads(data), view, h)
    assert view == data and h.digest() == xxhash.xxh3_128(data).digest()
    # The file ends early: refused, and the helper is idle again afterwards.
    assert not value_file._read_hashed(_ShortReads(data[:-1]), memoryview(bytearray(len(data))), xxhash.xxh3_128())
    assert value_file._read_hashed(_ShortReads(data), memoryview(bytearray(len(data))), xxhash.xxh3_128())


def test_a_failing_hash_beside_a_read_is_raised_once_without_waiting_forever():
    class _Broken:
        calls = 0

        def update(self, data):
            self.calls += 1
            if self.calls == 2:
                raise MemoryError("hash failed")

    data = bytes(value_file._HELPER_READ_MIN + 1)
    with pytest.raises(MemoryError, match="hash failed"):
        value_file._read_hashed(io.BytesIO(data), memoryview(bytearray(len(data))), _Broken())


@pytest.mark.parametrize("where", [0.3, 0.99], ids=["first-large-buffer", "second-large-buffer"])
def test_one_flipped_bit_in_a_large_buffer_is_refused(where):
    big = np.zeros(value_file._HELPER_MIN // 4, dtype=np.float64)  # 2 helper-sized buffers of 8 MB
    f = io.BytesIO()
    size, _ = value_file.write_value([big, big + 1], f)
    with pytest.raises(CorruptedValueError, match="checksum"):
        _round_trip([big, big + 1], tamper_at=int(size * where))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_hashes_with_a_helper_of_its_own():
    # The parent's helper thread does not exist in a forked child: a save
    # there must make its own, not wait forever on the parent's.
    big = np.ones(value_file._HELPER_MIN // 4)
    _round_trip(big)  # the parent's helper exists now
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the round trip finished and matched
        ok = False
        try:
            ok = np.array_equal(_round_trip(big * 2), big * 2)
        finally:
            os._exit(0 if ok else 1)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child's save hung")
