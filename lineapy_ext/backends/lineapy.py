"""The built-in ``lineapy`` backend: value files under ``artifact_storage_dir``, on a local disk or through fsspec.

What a value file holds, and how it is checked before anything in it is
unpickled, is :mod:`lineapy_ext.backends.value_file`.  This module owns
where files go and how they appear: a file is written under a temporary
name in the artifact's directory (the name says which process writes it,
so cleanup can tell a dead writer's file from a save still running) and
moved to its final name only when complete, so no partial file is ever
visible under a final name.  Locations are relative to the storage dir, so
the dir can be moved.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath
import re
import time
import uuid
from typing import Any

from lineapy_ext.backends import value_file
from lineapy_ext.backends.base import StorageBackend
from lineapy_ext.backends.value_file import FORMAT, WriteFailed
from lineapy_ext.config import mask_url
from lineapy_ext.exceptions import (
    ArtifactNotFoundError,
    BackendError,
    CorruptedValueError,
    LineaPyError,
    InvalidNameError,
    StorageError,
)
from lineapy_ext.store import writers
from lineapy_ext.store.names import validate_name

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
VALUE_SUFFIX = ".pkl"
# .tmp-<token>.<pid>.<host>.part: who writes it, so cleanup can tell a dead
# writer on this machine from a save still running.
_TEMP_NAME = re.compile(r"\.tmp-[0-9a-f]+(?:\.(?P<pid>\d+)\.(?P<host>[A-Za-z0-9-]*))?\.part")
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
                size, checksum = value_file.write_value(value, f)
                pickling = False
            fs.mv(tmp, final)
        except BaseException as e:
            # Whether something may remain tells the store whether the
            # failed save's row must stay for cleanup (it says where to look).
            clean = self._remove_quietly(tmp) & self._remove_quietly(final)
            self._remove_dir_if_empty(posixpath.dirname(final))
            if isinstance(e, WriteFailed):
                error = write_error(e.__cause__)
            elif isinstance(e, Exception) and not isinstance(e, LineaPyError) and not pickling:
                error = write_error(e)
            else:  # the value's own pickling error, or an interrupt
                e.lineapy_value_may_remain = not clean
                raise
            error.lineapy_value_may_remain = not clean
            raise error from (e.__cause__ if isinstance(e, WriteFailed) else e)
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
        # Verified in full before anything is unpickled (see value_file).
        with self.fs.open(path, "rb") as f:
            verified = value_file.read_verified(f, size, checksum, location)
        return value_file.unpickle(verified, location)

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
