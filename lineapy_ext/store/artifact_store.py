"""Saving and loading artifacts so that values and metadata rows agree.

The order of operations is what keeps the store consistent, and every step
is recorded before it is taken, so an interruption at any point (SIGKILL,
power loss) leaves a state that :mod:`lineapy_ext.store.cleanup` can finish
or undo from the database alone:

- save: the backend says where the value will go; a row in state
  ``writing`` records that (and the version) before anything is written;
  the backend writes the value atomically (temporary name, then rename);
  the row becomes ``ready``.  A failure on the way removes the value and
  the row.  Readers only ever see ``ready`` rows, whose value is in place.
- delete: rows become ``deleting`` (invisible) first, then the values are
  removed, then the rows become ``deleted`` tombstones that keep their
  version numbers from ever being handed out again.
"""

from __future__ import annotations

import logging
import platform
from datetime import datetime, timezone
from typing import Any

from lineapy_ext.backends import make_backend
from lineapy_ext.exceptions import ArtifactNotFoundError, StorageError
from lineapy_ext.store.metadata import MetadataDB
from lineapy_ext.store.names import validate_name
from lineapy_ext.store.records import READY, WRITING, ArtifactRecord, SessionRecord

log = logging.getLogger(__name__)

#: Keys of a backend's ``save`` result that have columns of their own.
_COLUMN_KEYS = ("location", "size", "checksum")


def type_name(value: Any) -> str:
    """Return ``module.QualName`` of ``type(value)`` (``int`` for builtins)."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def new_session_record(session_id: str) -> SessionRecord:
    """Describe the running process as session ``session_id``."""
    from lineapy_ext import __version__

    return SessionRecord(
        id=session_id,
        started_at=datetime.now(timezone.utc),
        python_version=platform.python_version(),
        lineapy_version=__version__,
    )


class ArtifactStore:
    """The metadata database and value storage of one configuration.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        Read when the store opens (database URL, storage dir) and at each
        save/load (storage options, backend settings).
    """

    def __init__(self, options) -> None:
        self.options = options
        self.database_url = options.database_url
        self.storage_dir = options.artifact_storage_dir
        self.db = MetadataDB(self.database_url)
        self._known_sessions: set[str] = set()

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    def backend(self, spec: str, **kwargs: Any):
        """Return backend ``spec`` bound to this store's storage dir."""
        if spec == "lineapy":
            kwargs.setdefault("storage_dir", self.storage_dir)
        return make_backend(spec, self.options, **kwargs)

    def ensure_session(self, session_id: str) -> None:
        """Record session ``session_id`` (once per process)."""
        if session_id not in self._known_sessions:
            self.db.ensure_session(new_session_record(session_id))
            self._known_sessions.add(session_id)

    def save(
        self,
        value: Any,
        name: str,
        *,
        backend: str,
        session_id: str,
        backend_kwargs: dict | None = None,
        slice_code: str = "",
        slice_cells: list | None = None,
        var_names: list | None = None,
        environment: dict | None = None,
    ) -> ArtifactRecord:
        """Write ``value`` with backend ``backend`` and record it as the next version of ``name``.

        Returns
        -------
        ArtifactRecord
            The new row.

        Raises
        ------
        InvalidNameError, SerializationError, StorageError, BackendError
            Nothing is left behind in any of these cases.
        """
        validate_name(name)
        store = self.backend(backend)
        self.ensure_session(session_id)
        # Configured secrets (storage_options values, URL passwords) never
        # reach the database, even when user code spelled them out.
        from lineapy_ext.secrets import Scrubber  # saves only: a get in a fresh process need not import it

        scrub = Scrubber(self.options)
        reserved = store.reserve(name)
        record = self.db.begin_artifact(
            name=name,
            session_id=session_id,
            backend=backend,
            location=reserved.get("location", ""),
            value_type=type_name(value),
            slice_code=scrub.code(slice_code, f"the slice of {name!r}"),
            slice_cells=scrub([list(c) for c in (slice_cells or [])]),
            var_names=list(var_names or []),
            environment=environment,
        )
        saved = None
        try:
            saved = store.save_reserved(value, name, reserved, **(backend_kwargs or {}))
            return self.db.finish_artifact(
                record,
                # A backend may hand a value on to another one (MLflow -> lineapy
                # for values MLflow cannot store); the row names the one that holds it.
                backend=saved.get("backend") or backend,
                location=saved.get("location", ""),
                size=saved.get("size"),
                checksum=saved.get("checksum"),
                backend_metadata=scrub({k: v for k, v in saved.items() if k not in _COLUMN_KEYS and k != "backend"}),
            )
        except BaseException as e:
            self._undo_save(store, record, reserved, saved, e)
            raise

    def _undo_save(self, store, record: ArtifactRecord, reserved: dict, saved: dict | None, error) -> None:
        # Value first, row last: should this be interrupted too, the
        # ``writing`` row still tells cleanup what to remove.  A backend that
        # failed has already removed what it wrote; when it could not (the
        # storage went away) the row stays for cleanup rather than the store
        # being retried now, which would only make the failure slower.
        try:
            if saved is not None:
                store.delete(saved)
            elif getattr(error, "lineapy_value_may_remain", False):
                log.warning("the failed save of %r version %s may have left its value behind: run cleanup",
                            record.name, record.version)
                return
            self.db.discard_artifact(record)
        except Exception as e:  # keep the original error; cleanup finishes this
            log.warning("could not undo the failed save of %r version %s (run cleanup): %s",
                        record.name, record.version, e)

    def load(self, record: ArtifactRecord) -> Any:
        """Return the value of ``record`` through the backend that saved it.

        Raises
        ------
        ArtifactNotFoundError
            Also when the version was deleted after ``record`` was read.
        """
        try:
            return self.backend(record.backend).load(record.backend_view())
        except (ArtifactNotFoundError, StorageError) as e:
            # A get racing a delete: the value went after the row was read.
            try:
                state = self.db.artifact_state(record.name, record.version)
            except StorageError:
                raise e from None
            if state in (READY, WRITING):
                raise
            raise ArtifactNotFoundError(
                f"version {record.version} of {record.name!r} was deleted while it was being loaded"
            ) from e

    def delete(self, records: list[ArtifactRecord]) -> list[int]:
        """Delete ``records`` of one name (hide rows, remove values, leave tombstones); return the versions."""
        if not records:
            return []
        deleting = self.db.mark_deleting(records[0].name, [r.version for r in records])
        done = []
        for record in deleting:
            try:
                self.backend(record.backend).delete(record.backend_view())
                done.append(record)
            except Exception as e:  # the row stays ``deleting``: cleanup retries it
                log.warning("version %s of %r: its value was not removed (run cleanup to retry): %s",
                            record.version, record.name, e)
        self.db.mark_deleted(done)
        return sorted(r.version for r in deleting)
