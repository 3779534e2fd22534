"""The built-in ``lineapy`` backend: cloudpickle files under ``artifact_storage_dir``.

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
when both digests match is the stream unpickled.  Files are written under a temporary name in the artifact's
directory and moved to their final name only when complete, so no partial
file is ever visible under a final name.  Locations are relative to the
storage dir, so the dir can be moved.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
import posixpath
import re
import struct
import sys
import time
import types
import uuid
from typing import Any

from lineapy_ext.backends.base import StorageBackend
from lineapy_ext.config import mask_url
from lineapy_ext.exceptions import (
    ArtifactNotFoundError,
    BackendError,
    CorruptedValueError,
    LineaPyError,
    InvalidNameError,
    SerializationError,
    StorageError,
)
from lineapy_ext.store import writers
from lineapy_ext.store.names import validate_name

log = logging.getLogger(__name__)

FORMAT = "lineapy-pickle5-v1"
MAGIC = b"LNPYVAL1"
MAGIC_END = b"LNPYEND1"
_FOOTER = struct.Struct("<QQ16s16s8s")
_LEN = struct.Struct("<Q")
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
VALUE_SUFFIX = ".pkl"
# .tmp-<token>.<pid>.<host>.part: who writes it, so cleanup can tell a dead
# writer on this machine from a save still running.
_TEMP_NAME = re.compile(r"\.tmp-[0-9a-f]+(?:\.(?P<pid>\d+)\.(?P<host>[A-Za-z0-9-]*))?\.part")
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

#: Protocols of fsspec's S3 filesystem (s3fs).
S3_PROTOCOLS = ("s3", "s3a")
#: Defaults for s3fs unless ``storage_options`` sets them: an unreachable
#: endpoint fails a save or get within seconds, not minutes (s3fs and
#: botocore would otherwise retry with back-off many times).
S3_DEFAULTS = {
    "config_kwargs": {"connect_timeout": 3, "read_timeout": 60, "retries": {"max_attempts": 2, "mode": "standard"}},
}
#: s3fs's own retry loop (a class attribute of ``S3FileSystem``, not an option).
S3_RETRIES = 2


def fs_options(storage_dir: str, storage_options: dict | None) -> dict:
    """Return the fsspec options for ``storage_dir``: ``storage_options`` plus bounded S3 retries.

    Parameters
    ----------
    storage_dir : str
        The storage dir URL; the S3 defaults apply to ``s3://`` and ``s3a://``.
    storage_options : dict or None
        The user's options; what they set wins, key by key (``config_kwargs``
        is merged one level deep).
    """
    options = dict(storage_options or {})
    if _is_s3(storage_dir):
        # Other kernels write to the same bucket: never answer from a stale listing.
        options.setdefault("use_listings_cache", False)
        options["config_kwargs"] = {**S3_DEFAULTS["config_kwargs"], **(options.get("config_kwargs") or {})}
    return options


def _is_s3(storage_dir: str) -> bool:
    return "://" in storage_dir and storage_dir.split("://", 1)[0].lower() in S3_PROTOCOLS


def _reason(e: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _modified(info: dict) -> float | None:
    """Modification time (epoch seconds) from an fsspec ``info`` dict, if it has one."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return value.timestamp()
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def _hasher():
    import xxhash

    return xxhash.xxh3_128()


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


_pickler_class = None
# (copies of the ChainMap's maps, their entries in one dict): see _dispatch_table.
_merged_table: tuple = ((), {})


def _dispatch_table(chain) -> dict:
    """The entries of cloudpickle's ``ChainMap`` dispatch table in one dict, merged again only when a map changed.

    Merging goes through ``ChainMap``'s Python-level iteration and lookups
    (~15-40 us a save); comparing the maps with copies of them is a C-level
    dict comparison of some 30 entries.
    """
    global _merged_table
    copies, merged = _merged_table
    if len(copies) != len(chain.maps) or any(a != b for a, b in zip(copies, chain.maps)):
        merged = dict(chain)
        _merged_table = (tuple(dict(m) for m in chain.maps), merged)
    return merged


# Types whose instances cloudpickle's ``reducer_override`` leaves to the
# ordinary rules (neither classes nor functions): see _pickler.
_ordinary_types: set = set()
# A bound on what the set keeps alive (classes a session redefines).
_ORDINARY_TYPES_MAX = 10_000


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

    cloudpickle's table is a ``ChainMap`` over copyreg's, and the C pickler
    looks the type of every object up in it: a Python-level lookup each (a
    random forest has ~700 objects).  A dict of the same entries (so copyreg
    registrations made until this save count) is looked up in C; the
    pickler only reads it, so saves share it.

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
                self.dispatch_table = _dispatch_table(cloudpickle.CloudPickler.dispatch_table)
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


class _WriteFailed(Exception):
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
            raise _WriteFailed(e) from e
        n = memoryview(data).nbytes
        self.size += n
        return n

    def restart_hash(self):
        """Return the digest so far and start a new one."""
        digest, self.h = self.h.digest(), _hasher()
        return digest


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
    """Fill ``view`` from ``f`` in cache-sized slices, hashing each; False if the file ends first."""
    for start in range(0, len(view), _CHUNK):
        chunk = view[start : start + _CHUNK]
        if _readinto(f, chunk) != len(chunk):
            return False
        h.update(chunk)
    return True


def _allocate(length: int):
    """Return a writable, uninitialised buffer of ``length`` bytes.

    ``bytearray`` zero-fills: one more pass over the memory before the read
    fills it (for a 2 MB pickle stream ~0.1-0.2 ms of a 4 ms get).  Numpy's
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


def _read_exact(f, n: int) -> bytes:
    """Read ``n`` bytes from ``f`` (an unbuffered file may return fewer per call); fewer only at the end."""
    data = f.read(n)
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _checksum(pickle_digest: bytes, buffers_digest: bytes) -> str:
    return "xxh3_128:" + pickle_digest.hex() + buffers_digest.hex()


class LocalFiles:
    """The part of fsspec's filesystem interface this backend uses, for a local storage dir.

    Plain ``os`` calls: fsspec's local filesystem does the same through
    layers of path handling on every call (a save makes five), and importing
    it is a cost a get in a fresh process would pay for nothing.  Paths are
    absolute; errors are the ``OSError`` subclasses fsspec raises too.
    """

    def open(self, path: str, mode: str = "rb"):
        # Reads are of whole slices into their final memory: a read buffer
        # would only add a copy and a layer of calls.
        return open(path, mode, buffering=0) if mode == "rb" else open(path, mode)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def info(self, path: str) -> dict:
        st = os.stat(path)
        return {"name": path, "size": st.st_size, "mtime": st.st_mtime}

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)

    def mv(self, source: str, target: str) -> None:
        os.replace(source, target)  # atomic: the final name appears complete or not at all

    def rm(self, path: str) -> None:
        os.remove(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def ls(self, path: str) -> list[str]:
        return [posixpath.join(path, entry) for entry in os.listdir(path)]

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))


class LineaPyBackend(StorageBackend):
    """Cloudpickle files in a local dir (:class:`LocalFiles`) or through fsspec (``s3://``, ``memory://``...).

    Parameters
    ----------
    storage_dir : str
        Root URL or path (``artifact_storage_dir``).
    storage_options : dict, optional
        fsspec filesystem options (credentials...); never stored.
    """

    def __init__(self, storage_dir: str, storage_options: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.storage_dir = storage_dir
        self._storage_options = dict(storage_options or {})
        self._fs = None
        self._root = None

    @classmethod
    def from_options(cls, options, **kwargs: Any) -> "LineaPyBackend":
        """Build the backend on ``options.artifact_storage_dir`` with its ``storage_options``."""
        kwargs.setdefault("storage_dir", options.artifact_storage_dir)
        kwargs.setdefault("storage_options", options.storage_options)
        return cls(**kwargs)

    # -- paths ---------------------------------------------------------------

    @property
    def fs(self):
        """The filesystem of the storage dir: :class:`LocalFiles` for a local path, else fsspec's (opened on first use)."""
        if self._fs is None and self.is_local:
            # What fsspec's local filesystem makes of the path, without fsspec.
            self._fs, self._root = LocalFiles(), os.path.abspath(os.path.expanduser(self.storage_dir)).rstrip("/")
        if self._fs is None:
            import fsspec

            try:
                self._fs, self._root = fsspec.core.url_to_fs(
                    self.storage_dir, **fs_options(self.storage_dir, self._storage_options)
                )
            except ImportError as e:
                raise StorageError(
                    f"cannot open storage dir {mask_url(self.storage_dir)!r} ({e}); "
                    "for s3:// install 'lineapy-ext[s3]'"
                ) from e
            except Exception as e:  # fsspec raises anything from bad options
                raise StorageError(
                    f"cannot open storage dir {mask_url(self.storage_dir)!r}: {_reason(e)}; "
                    "check artifact_storage_dir and storage_options"
                ) from e
            self._root = self._root.rstrip("/")
            if _is_s3(self.storage_dir):
                self._fs.retries = S3_RETRIES
        return self._fs

    @property
    def is_local(self) -> bool:
        """The storage dir is a path on this machine (no ``PROTOCOL://``): :class:`LocalFiles` reach it."""
        return "://" not in self.storage_dir

    def _path(self, location: str) -> str:
        """Absolute fs path of a relative ``location``; refuses anything outside the root."""
        self.fs  # noqa: B018 - sets self._root
        parts = location.split("/")
        if len(parts) != 2 or not location or any(p in ("", ".", "..") for p in parts):
            raise InvalidNameError(f"invalid value location {location!r}: expected NAME/FILE")
        validate_name(parts[0])
        return posixpath.join(self._root, location)

    # -- StorageBackend ------------------------------------------------------

    def save(self, value: Any, name: str, **kwargs: Any) -> dict:
        """Pickle ``value`` to ``NAME/<uuid>.pkl`` under the storage dir.

        Returns
        -------
        dict
            ``location`` (relative), ``size``, ``checksum``, ``format`` and
            ``storage_dir`` (masked; where it was saved, for error messages).

        Raises
        ------
        BackendError
            ``kwargs`` is not empty: this backend takes no save options.
        SerializationError
            The value cannot be pickled; the temporary file is removed.
        StorageError
            The storage dir cannot be written.
        """
        return self.save_reserved(value, name, self.reserve(name), **kwargs)

    def reserve(self, name: str) -> dict:
        """Return ``{"location": "NAME/<uuid>.pkl"}``, where the next value of ``name`` goes."""
        validate_name(name)
        return {"location": f"{name}/{uuid.uuid4().hex}{VALUE_SUFFIX}"}

    def discard(self, reserved: dict) -> None:
        """Remove the value file of ``reserved`` and its temporary file, if any."""
        final = self._path(reserved["location"])
        token = posixpath.basename(final)[: -len(VALUE_SUFFIX)]
        folder = posixpath.dirname(final)
        try:
            temps = self.fs.glob(posixpath.join(folder, f"{TEMP_PREFIX}{token}*{TEMP_SUFFIX}"))
        except FileNotFoundError:
            temps = []
        for path in [final, *temps]:
            try:
                self.fs.rm(path)
            except FileNotFoundError:
                pass
        self._remove_dir_if_empty(folder)

    def save_reserved(self, value: Any, name: str, reserved: dict, **kwargs: Any) -> dict:
        """Pickle ``value`` to ``reserved["location"]`` (see :meth:`save`)."""
        if kwargs:
            unknown = ", ".join(sorted(kwargs))
            raise BackendError(
                f"unknown save option(s) for the lineapy backend: {unknown}; it takes none: "
                "remove them, or save with the backend they are meant for (e.g. mlflow)"
            )
        validate_name(name)
        location = reserved["location"]
        final = self._path(location)
        if location.split("/")[0] != name:
            raise InvalidNameError(f"invalid value location {location!r}: not under {name!r}")
        token = posixpath.basename(final)[: -len(VALUE_SUFFIX)]
        tmp = posixpath.join(posixpath.dirname(final), f"{TEMP_PREFIX}{token}.{os.getpid()}.{writers.host()}{TEMP_SUFFIX}")
        fs = self.fs

        def write_error(e: Exception) -> StorageError:
            # OSError from local files, botocore/aiohttp errors from s3fs...
            return StorageError(
                f"cannot write value of {name!r} to {mask_url(self.storage_dir)!r}: {_reason(e)}; "
                "check that the storage dir is reachable and writable"
            )

        f = self._open_new(tmp, write_error)  # raises before anything is written
        pickling = False
        try:
            with f:
                pickling = True
                size, checksum = self._write(value, f)
                pickling = False
            fs.mv(tmp, final)
        except BaseException as e:
            # Whether something may remain tells the store whether the
            # failed save's row must stay for cleanup (it says where to look).
            clean = self._remove_quietly(tmp) & self._remove_quietly(final)
            self._remove_dir_if_empty(posixpath.dirname(final))
            if isinstance(e, _WriteFailed):
                error = write_error(e.__cause__)
            elif isinstance(e, Exception) and not isinstance(e, LineaPyError) and not pickling:
                error = write_error(e)
            else:  # the value's own pickling error, or an interrupt
                e.lineapy_value_may_remain = not clean
                raise
            error.lineapy_value_may_remain = not clean
            raise error from (e.__cause__ if isinstance(e, _WriteFailed) else e)
        return {
            "location": location,
            "size": size,
            "checksum": checksum,
            "format": FORMAT,
            "storage_dir": mask_url(self.storage_dir),
        }

    def _open_new(self, tmp: str, write_error):
        # A delete of the name's last version removes the (then empty)
        # folder; one racing this save may do so between makedirs and open,
        # or inside makedirs (os.makedirs finds the folder, then not: "File
        # exists").  The temporary file keeps the folder non-empty from then on.
        for attempt in range(5):
            try:
                self.fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
                return self.fs.open(tmp, "wb")
            except (FileNotFoundError, FileExistsError) as e:
                if attempt == 4:
                    raise write_error(e) from e
            except Exception as e:  # nothing written yet: nothing to clean up
                raise write_error(e) from e

    def _write(self, value: Any, f) -> tuple[int, str]:
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
            for start in range(0, raw.nbytes, _WRITE_CHUNK):
                out.write(raw[start : start + _WRITE_CHUNK])
            buf.release()
        buffers_digest = out.restart_hash()
        out.write(_FOOTER.pack(pickle_len, len(buffers), pickle_digest, buffers_digest, MAGIC_END))
        return out.size, _checksum(pickle_digest, buffers_digest)

    def load(self, metadata: dict) -> Any:
        """Unpickle the value at ``metadata["location"]``, verifying its checksum.

        Raises
        ------
        ArtifactNotFoundError
            The value file is missing (the message names where it looked).
        CorruptedValueError
            The file does not match the size or checksum recorded at save time.
        """
        path = self._path(metadata["location"])
        fs = self.fs
        try:
            size = fs.size(path)
        except FileNotFoundError:
            size = None
        except Exception as e:
            raise self._read_error(metadata, e) from e
        if size is None:
            saved_in = metadata.get("storage_dir") or "unknown"
            raise ArtifactNotFoundError(
                f"value file {metadata['location']!r} is missing from {mask_url(self.storage_dir)!r} "
                f"(looked for {mask_url(path)!r}; it was saved to {saved_in!r}): "
                "point artifact_storage_dir at the directory that holds it"
            )
        expected_size = metadata.get("size")
        if expected_size is not None and size != expected_size:
            raise CorruptedValueError(
                f"value file {metadata['location']!r} has {size} bytes, {expected_size} were saved: it is truncated or altered"
            )
        try:
            return self._read(path, size, metadata.get("checksum"), metadata["location"])
        except LineaPyError:
            raise
        except Exception as e:  # OSError, botocore/aiohttp errors from s3fs...
            raise self._read_error(metadata, e) from e

    def _read_error(self, metadata: dict, e: BaseException) -> StorageError:
        return StorageError(
            f"cannot read value file {metadata['location']!r} from {mask_url(self.storage_dir)!r}: {_reason(e)}; "
            "check that the storage dir is reachable"
        )

    def _read(self, path: str, size: int, checksum: str | None, location: str) -> Any:
        # Verify first, unpickle last: unpickling runs code chosen by whoever
        # wrote the bytes, so nothing is unpickled until every byte of the
        # file matches the checksum kept in the database.  The buffers are
        # read (and hashed) straight into the memory the new object will
        # use, so this costs no second copy of a large array.
        corrupted = CorruptedValueError(
            f"value file {location!r} does not match its checksum: it was altered or damaged"
        )
        if not checksum:
            raise CorruptedValueError(
                f"value file {location!r} has no recorded checksum, so it cannot be verified and is not loaded"
            )
        if size < len(MAGIC) + _FOOTER.size:
            raise corrupted
        with self.fs.open(path, "rb") as f:
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
            # The stream is read (and hashed, slice by slice) into memory of
            # its own (see _spare), then unpickled from there.
            memory, stream = _stream_buffer(pickle_len)
            if not _read_hashed(f, stream, h := _hasher()) or h.digest() != pickle_digest:
                raise corrupted
            if n_buffers and "numpy" not in sys.modules and memory.find(b"numpy", 0, pickle_len) >= 0:
                # The (verified) stream will import numpy anyway; importing it
                # now lets the buffers skip bytearray's zero-fill (see _allocate).
                import numpy  # noqa: F401
            buffers = self._read_buffers(f, n_buffers, buffers_end - len(MAGIC) - pickle_len, buffers_digest, corrupted)
        try:
            value = pickle.loads(stream, buffers=buffers)
        except Exception as e:  # the bytes are the ones saved: the error is real (e.g. a missing module)
            raise SerializationError(f"cannot unpickle value file {location!r}: {_reason(e)}") from e
        _keep_spare(memory, stream)
        return value

    @staticmethod
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

    def delete(self, metadata: dict) -> None:
        """Remove the value file (missing is fine) and its directory once empty."""
        path = self._path(metadata["location"])
        self._remove_quietly(path)
        self._remove_dir_if_empty(posixpath.dirname(path))

    def _remove_dir_if_empty(self, path: str) -> None:
        # A concurrent save may be filling the dir: rmdir then fails, which is fine.
        try:
            if not self.fs.ls(path):
                self.fs.rmdir(path)
        except Exception:  # unreachable storage: leaving an empty dir is harmless
            pass

    def exists(self, metadata: dict) -> bool:
        """Whether the value file is at its location under the current storage dir."""
        return self.fs.exists(self._path(metadata["location"]))

    def orphaned_temp_files(self, older_than: float = 0) -> list[str]:
        """List temporary files left by interrupted saves (paths relative to the root).

        A temporary file is orphaned when the process that wrote it is gone:
        for files written on this machine that is checked directly (a file of
        a running save is never listed); for others (another machine, or an
        unknown writer) the file must not have been modified for
        ``older_than`` seconds.

        Parameters
        ----------
        older_than : float
            Minimum age of temporary files whose writer cannot be checked.
            Files whose age the filesystem does not report count as old.
        """
        fs = self.fs
        try:
            found = fs.glob(posixpath.join(self._root, "*", f"{TEMP_PREFIX}*{TEMP_SUFFIX}"))
        except FileNotFoundError:
            return []
        except Exception as e:
            raise StorageError(
                f"cannot list {mask_url(self.storage_dir)!r}: {_reason(e)}; check that the storage dir is reachable"
            ) from e
        now = time.time()
        old = []
        for path in found:
            m = _TEMP_NAME.fullmatch(posixpath.basename(path))
            pid, where = (m["pid"], m["host"]) if m and m["pid"] else (None, None)
            age = None
            if where != writers.host() and older_than > 0:
                try:
                    modified = _modified(fs.info(path))
                except FileNotFoundError:  # finished or removed meanwhile
                    continue
                age = None if modified is None else now - modified
            if writers.is_gone(pid, where, age, older_than):
                old.append(posixpath.relpath(path, self._root))
        return sorted(old)

    def remove_orphaned_temp_files(self, older_than: float = 0, dry_run: bool = False) -> list[str]:
        """Remove (or with ``dry_run`` only list) what :meth:`orphaned_temp_files` finds.

        Returns
        -------
        list of str
            The temporary files removed (or that would be), relative to the root.
        """
        found = self.orphaned_temp_files(older_than)
        if not dry_run:
            for rel in found:
                path = posixpath.join(self._root, rel)
                try:
                    self.fs.rm(path)
                except FileNotFoundError:
                    pass
                except Exception as e:
                    raise StorageError(f"cannot remove temporary file {rel!r}: {_reason(e)}") from e
                self._remove_dir_if_empty(posixpath.dirname(path))
        return found

    def _remove_quietly(self, path: str) -> bool:
        """Remove ``path`` if it exists; False (logged) if that failed."""
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except Exception as e:  # cleanup must not hide the original error
            log.warning("could not remove %s: %s", path, e)
            return False
        return True
