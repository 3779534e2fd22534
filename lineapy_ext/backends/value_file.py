"""The value file of the ``lineapy`` backend: how a value is pickled, laid out, checksummed and read back.

Values are pickled with cloudpickle (so functions and classes defined in the
session work) using pickle protocol 5: large buffers (numpy arrays, pandas
blocks) are written out-of-band, straight from the value's memory to the
file, and read back straight into the memory of the new object, so neither
direction holds a second copy of the value.  Small buffers (up to 64 KB, 16 MB
in all) stay in the pickle stream: a record each would cost more than the copy.

File layout (all integers little-endian uint64)::

    MAGIC | pickle stream | (len, bytes) per out-of-band buffer | FOOTER

    FOOTER = pickle_len | n_buffers | xxh3_128(pickle) | xxh3_128(buffers) | MAGIC_END

The checksum recorded in the metadata is the two digests; it is computed
while writing.  A load verifies the whole file against the checksum recorded
in the database *before* unpickling anything (unpickling runs code chosen by
whoever wrote the bytes): the buffers are read and hashed straight into the
memory the new object will use, the pickle stream into memory of its own
(the previous get's, when it is large enough: see ``_spare``), and only
when both digests match is the stream unpickled.  When saving, a buffer of
4 MB or more is hashed on a helper thread, slice by slice, while this one
writes the slice, so the checksum of a large value costs little more than
its copy; a get does the same the other way round, hashing each 4 MB slice
of a large buffer on the helper while this thread reads the next.

Two other layouts were measured against this one on a 2 MB random forest
(~400 buffers, most of a few bytes) and dropped: every buffer out-of-band,
the small ones pooled into one aligned allocation (saves 10% slower: the
buffers are then written one by one from Python; gets 20% slower: the pool
is new memory at each get, and page faults on this VM cost as much as the
copy it saves), and the plain C pickler tried first with cloudpickle only
for values that name ``__main__`` (finding the name needs a scan of the
stream, ~0.6 ms per MB, more than cloudpickle's hooks cost).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import types
from typing import Any

from lineapy_ext.exceptions import CorruptedValueError, SerializationError

FORMAT = "lineapy-pickle5-v1"
MAGIC = b"LNPYVAL1"
MAGIC_END = b"LNPYEND1"
_FOOTER = struct.Struct("<QQ16s16s8s")
_LEN = struct.Struct("<Q")
# Hash and copy in slices that stay in the core's L2 cache (2 MB here):
# hashing a slice right after it was read, or before it is written, then
# reads it from cache.  Measured on a 500 MB value: the hash adds ~20 ms with
# 128-256 KB slices and ~40-50 ms with 1-8 MB ones (it then reads from RAM).
_CHUNK = 256 << 10
# Writes go in 1 MB slices (hashed, then copied to the page cache while still
# in cache): each is a system call, and a 100 MB save measured 40 ms with
# 1 MB slices against 50 ms with 256 KB and 43 ms with 8 MB ones.
_WRITE_CHUNK = 1 << 20
# Buffers of at least this size are allocated with numpy when it is
# imported (see _allocate).
_NUMPY_ALLOC_MIN = 256 << 10
# Buffers up to this size stay in the pickle stream (one write and one read
# for all of them, instead of a record each: a random forest has ~400 buffers,
# most of a few bytes), until their total reaches _IN_BAND_TOTAL: what they
# cost is one more copy of at most that much at load.
_IN_BAND_MAX = 64 << 10
_IN_BAND_TOTAL = 16 << 20


def _hasher():
    import xxhash

    return xxhash.xxh3_128()


def _checksum(pickle_digest: bytes, buffers_digest: bytes) -> str:
    return "xxh3_128:" + pickle_digest.hex() + buffers_digest.hex()


# -- pickling -----------------------------------------------------------------------------------

_pickler_class = None
# (copies of the ChainMap's maps, their entries in one dict): see _dispatch_table.
_merged_table: tuple = ((), {})
# Types whose instances cloudpickle's ``reducer_override`` leaves to the
# ordinary rules (neither classes nor functions): see _pickler.
_ordinary_types: set = set()
# A bound on what the set keeps alive (classes a session redefines).
_ORDINARY_TYPES_MAX = 10_000


def _dispatch_table() -> dict:
    """The entries of cloudpickle's ``ChainMap`` dispatch table in one dict, merged again only when a map changed.

    The C pickler looks the type of every object up in it: in a ``ChainMap``
    that is a Python-level lookup each (a random forest has ~700 objects), in
    a dict a C one.  Merging goes through ``ChainMap``'s Python-level
    iteration (~15-40 us a save); comparing the maps with copies of them is a
    C-level comparison of some 30 entries.  Registrations made with copyreg
    until this save count; picklers only read the dict, so saves share it.
    """
    import cloudpickle

    global _merged_table
    chain = cloudpickle.CloudPickler.dispatch_table
    copies, merged = _merged_table
    if len(copies) != len(chain.maps) or any(a != b for a, b in zip(copies, chain.maps)):
        merged = dict(chain)
        _merged_table = (tuple(dict(m) for m in chain.maps), merged)
    return merged


def _remember_ordinary(t: type) -> None:
    """Add ``t`` to :data:`_ordinary_types` if cloudpickle's answer for its instances depends on the type alone.

    Classes and functions are decided one by one (a class or function that
    can be imported elsewhere is pickled by reference, any other by value),
    and cloudpickle asks ``isinstance(obj, FunctionType)``, which also reads
    ``obj.__class__``: a type that defines ``__class__`` (a proxy, a mock) is
    left to be decided object by object too.
    """
    if issubclass(t, (type, types.FunctionType)):
        return
    if any("__class__" in vars(k) for k in t.__mro__ if k is not object):
        return
    if len(_ordinary_types) >= _ORDINARY_TYPES_MAX:
        _ordinary_types.clear()
    _ordinary_types.add(t)


def _pickler(file, buffer_callback):
    """A cloudpickle pickler (protocol 5) with a dict dispatch table and a type-cached ``reducer_override``.

    cloudpickle's ``reducer_override`` runs for every object that is not a
    number, string or builtin container (a random forest: 400 arrays, 200
    trees) and works out from the object's type whether it is a class or a
    function.  Its answer depends on the type alone, so types it answered
    "neither" are looked up in a set: ~0.3 ms of a 2 MB forest's ~5 ms save.
    """
    global _pickler_class
    if _pickler_class is None:
        import cloudpickle

        class _Pickler(cloudpickle.CloudPickler):
            def __init__(self, file, **kwargs) -> None:
                # Before the C initialiser, which reads the attribute once.
                self.dispatch_table = _dispatch_table()
                super().__init__(file, **kwargs)

            def reducer_override(self, obj):
                if type(obj) in _ordinary_types:
                    return NotImplemented
                reduced = super().reducer_override(obj)
                if reduced is NotImplemented:
                    _remember_ordinary(type(obj))
                return reduced

        _pickler_class = _Pickler
    return _pickler_class(file, protocol=5, buffer_callback=buffer_callback)


def _buffer_sorter():
    """Return ``(buffer_callback, out_of_band)`` for one dump: small buffers in-band, the others out-of-band, in order.

    A closure rather than an object with ``__call__``: the pickler calls it
    once per buffer (a random forest has ~400), and a plain function call
    costs a third of a call through ``__call__`` and a ``with`` block.
    """
    out_of_band: list[pickle.PickleBuffer] = []
    in_band_left = _IN_BAND_TOTAL

    def callback(buf: pickle.PickleBuffer) -> bool:
        nonlocal in_band_left
        size = buf.raw().nbytes
        if size <= _IN_BAND_MAX and size <= in_band_left:
            in_band_left -= size
            return True  # true: the pickler writes it into the stream
        out_of_band.append(buf)
        return False

    return callback, out_of_band


# -- hashing beside the copy ------------------------------------------------------------------

# A buffer at least this large is hashed on a helper thread while this one
# writes it, slice by slice in lockstep (each thread waits for the other
# before the next slice, so the second to read a slice finds it in the shared
# cache): xxhash releases the GIL, and a 50 MB frame's hash, ~5 ms at the
# ~9 GB/s memory reads here, was as much as its copy.  4 MB slices measured
# best of 1-4 MB and of hashing the whole buffer at once; a hand-over costs
# ~20 us.  Reads of a buffer of at least _HELPER_READ_MIN do the same the
# other way round (see _read_hashed).
_HELPER_MIN = 4 << 20
_HELPER_WRITE_CHUNK = 4 << 20
_HELPER_READ_MIN = 8 << 20
_HELPER_READ_CHUNK = 4 << 20
_helper_thread: tuple = (None, None)  # (pid that made it, its job queue)


class _Job:
    """One call handed to the helper thread; :meth:`wait` returns when it ran (re-raising its error)."""

    __slots__ = ("fn", "arg", "done", "error")

    def __init__(self, fn, arg) -> None:
        import threading

        self.fn, self.arg, self.error = fn, arg, None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.fn(self.arg)
        except BaseException as e:  # handed back to the waiting thread
            self.error = e
        finally:
            self.done.release()

    def wait(self) -> None:
        self.done.acquire()
        if self.error is not None:
            raise self.error


def _run_jobs(jobs) -> None:
    while True:
        jobs.get().run()


def _helper(fn, arg) -> _Job:
    """Run ``fn(arg)`` on the helper thread (started on first use, and again in a forked child, which has none)."""
    global _helper_thread
    pid, jobs = _helper_thread
    if jobs is None or pid != os.getpid():
        import queue
        import threading

        jobs = queue.SimpleQueue()
        threading.Thread(target=_run_jobs, args=(jobs,), name="lineapy-hash", daemon=True).start()
        _helper_thread = (os.getpid(), jobs)
    job = _Job(fn, arg)
    jobs.put(job)
    return job


# -- writing ------------------------------------------------------------------------------------

class WriteFailed(Exception):
    """Writing to the storage failed while the value was being pickled."""


class _HashingWriter:
    """File-like that hashes and counts everything written through it."""

    def __init__(self, f) -> None:
        self.f = f
        self.h = _hasher()
        self.size = 0

    def write(self, data) -> int:
        self.h.update(data)
        try:
            self.f.write(data)
        except Exception as e:  # tell storage failures from pickling failures
            raise WriteFailed(e) from e
        n = memoryview(data).nbytes
        self.size += n
        return n

    def write_buffer(self, raw) -> None:
        """Write the bytes ``raw`` in slices, each hashed just before its copy (beside it, on the helper, when large)."""
        large = raw.nbytes >= _HELPER_MIN
        step = _HELPER_WRITE_CHUNK if large else _WRITE_CHUNK
        for start in range(0, raw.nbytes, step):
            chunk = raw[start : start + step]
            hashing = _helper(self.h.update, chunk) if large else self.h.update(chunk)
            try:
                self.f.write(chunk)
            except Exception as e:
                raise WriteFailed(e) from e
            finally:
                if hashing is not None:
                    hashing.wait()  # the slice must not be released (or the next hashed) before
        self.size += raw.nbytes

    def restart_hash(self):
        """Return the digest so far and start a new one."""
        digest, self.h = self.h.digest(), _hasher()
        return digest


def write_value(value: Any, f) -> tuple[int, str]:
    """Pickle ``value`` into the binary file ``f``; return ``(bytes written, checksum)``.

    Raises
    ------
    SerializationError
        The value cannot be pickled.
    WriteFailed
        Writing to ``f`` failed (its cause is the storage's error).
    """
    out = _HashingWriter(f)
    out.write(MAGIC)
    out.restart_hash()
    callback, buffers = _buffer_sorter()
    try:
        _pickler(out, callback).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as e:
        raise SerializationError(
            f"cannot pickle value of type {type(value).__module__}.{type(value).__qualname__}: {e}"
        ) from e
    pickle_len = out.size - len(MAGIC)
    pickle_digest = out.restart_hash()
    for buf in buffers:
        raw = buf.raw()
        out.write(_LEN.pack(raw.nbytes))
        out.write_buffer(raw)
        buf.release()
    buffers_digest = out.restart_hash()
    out.write(_FOOTER.pack(pickle_len, len(buffers), pickle_digest, buffers_digest, MAGIC_END))
    return out.size, _checksum(pickle_digest, buffers_digest)


# -- reading ------------------------------------------------------------------------------------

def _readinto(f, view) -> int:
    """Fill ``view`` from ``f`` as far as the file allows."""
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            break
        done += n
    return done


def _read_hashed(f, view, h) -> bool:
    """Fill ``view`` from ``f`` in slices, hashing each; False if the file ends first.

    A small view is read in cache-sized slices, each hashed right after its
    read while it is still in the core's L2 cache.  A large one is read in
    4 MB slices, each hashed on the helper thread while this one reads the
    next (both release the GIL).  Measured on a 500 MB array in fresh
    processes (``python benchmarks/save_get.py --values array``): with the
    copy from the page cache at ~12 GB/s (huge pages), the get took 51-53 ms
    against 57-66 ms hashing in this thread, ``np.load`` 42-46 ms.  (An
    earlier run, with copies at ~3 GB/s, measured the helper slower: 0.25 s
    against 0.20 s; the samples of that run were bimodal on every side.)
    """
    if len(view) >= _HELPER_READ_MIN:
        return _read_hashed_beside(f, view, h)
    for start in range(0, len(view), _CHUNK):
        chunk = view[start : start + _CHUNK]
        if _readinto(f, chunk) != len(chunk):
            return False
        h.update(chunk)
    return True


def _read_hashed_beside(f, view, h) -> bool:
    """:func:`_read_hashed` for a large ``view``: slice ``k`` is hashed on the helper while slice ``k + 1`` is read."""
    hashing = None
    try:
        for start in range(0, len(view), _HELPER_READ_CHUNK):
            chunk = view[start : start + _HELPER_READ_CHUNK]
            filled = _readinto(f, chunk)
            if hashing is not None:
                job, hashing = hashing, None  # waited for once: a second wait would block for good
                job.wait()  # in order: one hasher, one slice at a time
            if filled != len(chunk):
                return False
            hashing = _helper(h.update, chunk)
    finally:
        if hashing is not None:
            hashing.wait()  # the helper must be done with the memory before anyone reuses it
    return True


def _read_exact(f, n: int) -> bytes:
    """Read ``n`` bytes from ``f`` (an unbuffered file may return fewer per call); fewer only at the end."""
    data = f.read(n)
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _allocate(length: int):
    """Return a writable, uninitialised buffer of ``length`` bytes.

    ``bytearray`` zero-fills: one more pass over the memory before the read
    fills it (for a 2 MB buffer ~0.1-0.2 ms of a 4 ms get).  Numpy's
    allocator does not zero-fill, and asks for huge pages for large sizes.
    Numpy is only used when something has already imported it.
    """
    np = sys.modules.get("numpy")
    if np is not None and length >= _NUMPY_ALLOC_MIN:
        return np.empty(length, dtype=np.uint8)
    return bytearray(length)


# Memory of the last pickle stream a get read, kept for the next one (at
# most one, of at most _SPARE_MAX bytes).  A new buffer of a few MB is memory
# the process has not touched yet, or has given back: on this VM its page
# faults cost 0.5-4 ms for a 2 MB stream, as much as the read itself.  The
# unpickler copies everything it keeps out of the stream, so nothing refers
# to it once ``pickle.loads`` returns.
_spare: list = []
_SPARE_MAX = _IN_BAND_TOTAL + (1 << 20)


def _stream_buffer(length: int):
    """Return ``(buffer, view)``: ``view`` is ``length`` writable bytes of ``buffer`` (see :data:`_spare`)."""
    try:
        buf = _spare.pop()  # atomic: a get in another thread takes it or not
    except IndexError:
        buf = None
    if buf is None or len(buf) < length:
        buf = _allocate(length)
    return buf, memoryview(buf).cast("B")[:length]


def _keep_spare(buf, view) -> None:
    """Keep ``buf`` for the next get's stream once ``view`` (the stream) is released, if not too large."""
    try:
        view.release()  # refused while anything still holds a view of it
    except BufferError:
        return
    if len(buf) <= _SPARE_MAX and not _spare:
        _spare.append(buf)


def _read_buffers(f, n: int, length: int, digest: bytes, corrupted) -> list:
    """Read ``n`` out-of-band buffers (``length`` bytes in all) into new memory, checking ``digest``."""
    h, left, out = _hasher(), length, []
    for _ in range(n):
        head = _read_exact(f, _LEN.size)
        h.update(head)
        if len(head) != _LEN.size:
            raise corrupted
        (size,) = _LEN.unpack(head)
        left -= _LEN.size + size
        if left < 0:  # a tampered length must not make us allocate beyond the file
            raise corrupted
        buf = _allocate(size)
        if not _read_hashed(f, memoryview(buf).cast("B"), h):
            raise corrupted
        out.append(buf)
    if left or h.digest() != digest:
        raise corrupted
    return out


def read_verified(f, size: int, checksum: str | None, location: str):
    """Read the value file open as ``f`` (``size`` bytes) and check it against ``checksum``; nothing is unpickled.

    Returns
    -------
    tuple
        What :func:`unpickle` takes.

    Raises
    ------
    CorruptedValueError
        No checksum was recorded, or the file does not match it.
    """
    corrupted = CorruptedValueError(f"value file {location!r} does not match its checksum: it was altered or damaged")
    if not checksum:
        raise CorruptedValueError(
            f"value file {location!r} has no recorded checksum, so it cannot be verified and is not loaded"
        )
    if size < len(MAGIC) + _FOOTER.size:
        raise corrupted
    f.seek(size - _FOOTER.size)
    footer = _read_exact(f, _FOOTER.size)
    if len(footer) != _FOOTER.size:
        raise corrupted
    pickle_len, n_buffers, pickle_digest, buffers_digest, end = _FOOTER.unpack(footer)
    buffers_end = size - _FOOTER.size
    if end != MAGIC_END or _checksum(pickle_digest, buffers_digest) != checksum:
        raise corrupted
    if len(MAGIC) + pickle_len > buffers_end or n_buffers > buffers_end:
        raise corrupted
    f.seek(0)
    if _read_exact(f, len(MAGIC)) != MAGIC:
        raise corrupted
    # The stream is read (and hashed, slice by slice) into memory of its
    # own (see _spare), then unpickled from there.
    memory, stream = _stream_buffer(pickle_len)
    if not _read_hashed(f, stream, h := _hasher()) or h.digest() != pickle_digest:
        raise corrupted
    if n_buffers and "numpy" not in sys.modules and memory.find(b"numpy", 0, pickle_len) >= 0:
        # The (verified) stream will import numpy anyway; importing it now
        # lets the buffers skip bytearray's zero-fill (see _allocate).
        import numpy  # noqa: F401
    buffers = _read_buffers(f, n_buffers, buffers_end - len(MAGIC) - pickle_len, buffers_digest, corrupted)
    return memory, stream, buffers


def unpickle(verified, location: str) -> Any:
    """Unpickle what :func:`read_verified` returned.

    Raises
    ------
    SerializationError
        The (verified) stream cannot be unpickled here, e.g. a module it needs is missing.
    """
    memory, stream, buffers = verified
    try:
        value = pickle.loads(stream, buffers=buffers)
    except Exception as e:  # the bytes are the ones saved: the error is real (e.g. a missing module)
        text = str(e).strip()
        reason = text.splitlines()[0] if text else type(e).__name__
        raise SerializationError(f"cannot unpickle value file {location!r}: {reason}") from e
    _keep_spare(memory, stream)
    return value
