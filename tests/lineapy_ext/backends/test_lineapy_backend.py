"""The built-in lineapy backend on real local files and fsspec's memory filesystem."""

from __future__ import annotations

import numpy as np
import pytest

from lineapy_ext.backends.lineapy import TEMP_PREFIX, LineaPyBackend
from lineapy_ext.exceptions import (
    ArtifactNotFoundError,
    CorruptedValueError,
    InvalidNameError,
    SerializationError,
)


@pytest.fixture(params=["local", "memory"])
def backend(request, tmp_path):
    if request.param == "local":
        return LineaPyBackend(str(tmp_path / "store"))
    import uuid

    return LineaPyBackend(f"memory://lineapy-test-{uuid.uuid4().hex}")


def test_round_trip_with_out_of_band_buffers(backend):
    value = {"a": np.arange(3_000_000, dtype=np.float64), "b": [1, "two"], "c": np.eye(3)[:, 1]}
    meta = backend.save(value, "arr")
    assert meta["location"].startswith("arr/") and meta["location"].endswith(".pkl")
    assert meta["size"] > 24_000_000 and meta["checksum"].startswith("xxh3_128:")
    got = backend.load(meta)
    np.testing.assert_array_equal(got["a"], value["a"])
    assert got["a"].flags.writeable
    assert got["b"] == [1, "two"]
    np.testing.assert_array_equal(got["c"], value["c"])
    assert backend.exists(meta)
    backend.delete(meta)
    assert not backend.exists(meta)
    backend.delete(meta)  # already gone: fine


def test_location_is_relative_so_the_dir_can_move(tmp_path):
    meta = LineaPyBackend(str(tmp_path / "a")).save([1, 2], "moved")
    (tmp_path / "a").rename(tmp_path / "b")
    assert LineaPyBackend(str(tmp_path / "b")).load(meta) == [1, 2]
    with pytest.raises(ArtifactNotFoundError, match="missing from"):
        LineaPyBackend(str(tmp_path / "a")).load(meta)


def test_corrupted_file_is_detected(tmp_path):
    b = LineaPyBackend(str(tmp_path))
    meta = b.save(np.arange(100_000), "c")
    path = tmp_path / meta["location"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped in the array buffer
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptedValueError, match="checksum"):
        b.load(meta)
    path.write_bytes(bytes(data[:1000]))
    with pytest.raises(CorruptedValueError, match="truncated"):
        b.load(meta)


def test_unpicklable_value_leaves_nothing(tmp_path):
    import threading

    b = LineaPyBackend(str(tmp_path / "s"))
    with pytest.raises(SerializationError, match="lock"):
        b.save([np.ones(1000), threading.Lock()], "locked")
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []
    assert b.orphaned_temp_files() == []


@pytest.mark.parametrize("location", ["../x.pkl", "a/../../x.pkl", "/etc/passwd", "a/b/c.pkl", "..//x"])
def test_locations_cannot_escape_the_root(tmp_path, location):
    b = LineaPyBackend(str(tmp_path))
    with pytest.raises(InvalidNameError):
        b.load({"location": location})


def test_orphaned_temp_files_are_listed(tmp_path):
    b = LineaPyBackend(str(tmp_path))
    b.save(1, "n")
    (tmp_path / "n" / f"{TEMP_PREFIX}dead.part").write_bytes(b"partial")
    assert b.orphaned_temp_files() == [f"n/{TEMP_PREFIX}dead.part"]


def test_save_options_are_refused_with_one_line_backend_error(tmp_path):
    from lineapy_ext.exceptions import BackendError

    b = LineaPyBackend(str(tmp_path / "s"))
    with pytest.raises(BackendError, match=r"^unknown save option\(s\) for the lineapy backend: a, registered_model_name; it takes none") as err:
        b.save([1], "opts", registered_model_name="clf", a=1)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "s").exists() or [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []



def _tamper_with_payload(backend, meta, marker, forge_footer=False) -> None:
    """Overwrite the start of the pickle stream with same-length code that writes ``marker``.

    With ``forge_footer`` the footer's digests are rewritten to match the
    tampered bytes, as an attacker who knows the format would.
    """
    import struct

    import xxhash

    from lineapy_ext.backends.value_file import MAGIC

    path = backend._path(meta["location"])
    with backend.fs.open(path, "rb") as f:
        data = bytearray(f.read())
    code = f"open({str(marker)!r}, 'w').write('payload ran')"
    payload = b"cbuiltins\nexec\n(V" + code.encode() + b"\ntR."
    data[len(MAGIC) : len(MAGIC) + len(payload)] = payload  # same length: size and footer untouched
    if forge_footer:
        footer = struct.Struct("<QQ16s16s8s")
        pickle_len, n, _, buffers_digest, end = footer.unpack(data[-footer.size :])
        digest = xxhash.xxh3_128(bytes(data[len(MAGIC) : len(MAGIC) + pickle_len])).digest()
        data[-footer.size :] = footer.pack(pickle_len, n, digest, buffers_digest, end)
    with backend.fs.open(path, "wb") as f:
        f.write(bytes(data))
    assert backend.fs.size(path) == meta["size"]


@pytest.mark.parametrize("forge_footer", [False, True], ids=["footer-kept", "footer-forged"])
def test_tampered_pickle_never_runs(backend, tmp_path, forge_footer):
    # The whole file is checked against the checksum recorded at save time
    # (kept in the database) before a single opcode is unpickled: the
    # payload never runs, even when the file's own footer was forged.
    marker = tmp_path / "payload-ran"
    meta = backend.save({"s": "x" * 2000, "a": np.arange(1000)}, "evil")
    _tamper_with_payload(backend, meta, marker, forge_footer)
    with pytest.raises(CorruptedValueError, match="checksum"):
        backend.load(meta)
    assert not marker.exists()


def test_value_without_a_recorded_checksum_is_not_unpickled(tmp_path):
    b = LineaPyBackend(str(tmp_path / "store"))
    meta = b.save([1, 2], "nock")
    with pytest.raises(CorruptedValueError, match="no recorded checksum"):
        b.load({**meta, "checksum": None})


def test_gets_in_a_row_share_no_memory(backend):
    # A get keeps the memory of its pickle stream for the next get (issue 13):
    # what the first get returned must not change when the second reads
    # another stream into that memory, smaller or larger.
    from lineapy_ext.backends import value_file as mod

    first = {"blob": bytes(range(256)) * 4000, "arr": np.arange(20_000), "text": "first " * 100}
    larger = {"blob": b"\xff" * 3_000_000, "arr": np.full(50_000, 7), "text": "second"}
    smaller = [b"\x00" * 100, np.zeros(10)]
    metas = [backend.save(v, n) for v, n in ((first, "first"), (larger, "larger"), (smaller, "smaller"))]
    got = [backend.load(m) for m in metas]
    assert mod._spare, "the last stream's memory is kept for the next get"
    again = backend.load(metas[0])
    for value in (got[0], again):
        assert value["blob"] == first["blob"] and value["text"] == first["text"]
        np.testing.assert_array_equal(value["arr"], first["arr"])
        value["arr"][0] = -1  # writable, and its own memory
    assert got[0]["arr"][0] == -1 and again["arr"][0] == -1 and first["arr"][0] == 0
    assert got[1]["blob"] == larger["blob"] and got[2][0] == smaller[0]
    np.testing.assert_array_equal(got[1]["arr"], larger["arr"])


def test_tampered_pickle_never_runs_after_a_good_get(backend, tmp_path):
    # With the previous get's stream memory reused, a tampered file is
    # still refused before anything is unpickled, and no stale bytes of the
    # earlier stream are ever taken for the new one.
    marker = tmp_path / "payload-ran"
    good = backend.save({"s": "x" * 2000, "a": np.arange(1000)}, "good")
    evil = backend.save({"s": "y" * 2000, "a": np.arange(1000)}, "evil")
    assert backend.load(good)["s"] == "x" * 2000
    _tamper_with_payload(backend, evil, marker, forge_footer=True)
    with pytest.raises(CorruptedValueError, match="checksum"):
        backend.load(evil)
    assert not marker.exists()
    assert backend.load(good)["s"] == "x" * 2000


class _Trickle:
    """A file that returns at most 3 bytes per read, as an unbuffered file or a pipe may."""

    def __init__(self, data: bytes) -> None:
        import io

        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(min(n, 3) if n >= 0 else 3)

    def readinto(self, view):
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def test_short_reads_are_completed():
    import xxhash

    from lineapy_ext.backends.value_file import _read_exact, _read_hashed

    assert _read_exact(_Trickle(b"0123456789"), 8) == b"01234567"
    assert _read_exact(_Trickle(b"0123"), 8) == b"0123"  # the end of the file: fewer
    data = bytes(range(256)) * 1200  # more than one slice (_CHUNK)
    view, h = memoryview(bytearray(len(data))), xxhash.xxh3_128()
    assert _read_hashed(_Trickle(data), view, h) and view == data and h.digest() == xxhash.xxh3_128(data).digest()
    assert not _read_hashed(_Trickle(data[:-1]), memoryview(bytearray(len(data))), xxhash.xxh3_128())


class _Meters:
    def __init__(self, value) -> None:
        self.value = value


def test_copyreg_registration_after_a_save_counts(tmp_path):
    # The pickler's dispatch table is merged once and reused (issue 13);
    # a reducer registered with copyreg after a save is used by the next one.
    import copyreg

    b = LineaPyBackend(str(tmp_path))
    assert b.load(b.save(_Meters(1), "m")).value == 1
    copyreg.pickle(_Meters, lambda m: (_Meters, (m.value * 100,)))
    try:
        assert b.load(b.save(_Meters(2), "m")).value == 200
    finally:
        copyreg.dispatch_table.pop(_Meters, None)
    assert b.load(b.save(_Meters(3), "m")).value == 3


def test_functions_and_classes_are_decided_one_by_one_after_ordinary_types_are_cached(tmp_path):
    # The pickler remembers types whose objects cloudpickle leaves to the
    # ordinary rules (arrays, dicts...).  An importable function or class is
    # such a case too, but the next function or class of the same type may
    # exist only here and must then be pickled by value.
    import os.path
    import subprocess
    import sys

    def make():
        offset = 3

        class Local:
            def __init__(self, x):
                self.x = x

        return (lambda v: v + offset), Local

    b = LineaPyBackend(str(tmp_path / "s"))
    first = b.save({"f": os.path.join, "c": OSError, "a": np.arange(5)}, "first")
    add, Local = make()
    second = b.save({"f": add, "obj": Local(7), "a": np.arange(5)}, "second")
    script = (
        "import sys; from lineapy_ext.backends.lineapy import LineaPyBackend as B; import json\n"
        f"b = B({str(tmp_path / 's')!r}); m = json.loads(sys.argv[1]); n = json.loads(sys.argv[2])\n"
        "v = b.load(m); w = b.load(n)\n"
        "print(v['f']('a', 'b'), v['c'].__name__, w['f'](1), type(w['obj']).__name__, w['obj'].x)\n"
    )
    import json

    out = subprocess.run([sys.executable, "-c", script, json.dumps(first), json.dumps(second)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [os.path.join("a", "b"), "OSError", "4", "Local", "7"]
