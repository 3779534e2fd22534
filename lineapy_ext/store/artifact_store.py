"""Saving and loading artifacts so that values and metadata rows agree.

The order of operations is what keeps the store consistent:

- save: the database is reached first (an unreachable database fails before
  anything is written), then the backend writes the value (atomically), then
  the row is inserted; if the insert fails the value is removed again.  A row
  therefore never points at a missing or partial value.
- delete: the row goes first, then the value; a value whose removal fails is
  an orphan file, never a dangling row.
"""

from __future__ import annotations

import logging
import platform
from datetime import datetime, timezone
from typing import Any

from lineapy_ext.backends import make_backend
from lineapy_ext.secrets import Scrubber
from lineapy_ext.store.metadata import MetadataDB
from lineapy_ext.store.names import validate_name
from lineapy_ext.store.records import ArtifactRecord, SessionRecord

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
        saved = store.save(value, name, **(backend_kwargs or {}))
        # A backend may hand a value on to another one (MLflow -> lineapy for
        # values MLflow cannot store); the row names the one that holds it.
        backend = saved.get("backend") or backend
        # Configured secrets (storage_options values, URL passwords) never
        # reach the database, even when user code spelled them out.
        scrub = Scrubber(self.options)
        try:
            return self.db.insert_artifact(
                name=name,
                session_id=session_id,
                backend=backend,
                location=saved.get("location", ""),
                value_type=type_name(value),
                size=saved.get("size"),
                checksum=saved.get("checksum"),
                slice_code=scrub.text(slice_code, f"the slice of {name!r}"),
                slice_cells=scrub([list(c) for c in (slice_cells or [])]),
                var_names=list(var_names or []),
                backend_metadata=scrub({k: v for k, v in saved.items() if k not in _COLUMN_KEYS and k != "backend"}),
            )
        except BaseException:
            try:
                store.delete(saved)
            except Exception as e:  # keep the original error; the file is an orphan now
                log.warning("could not remove the value of %r after a failed save: %s", name, e)
            raise

    def load(self, record: ArtifactRecord) -> Any:
        """Return the value of ``record`` through the backend that saved it."""
        return self.backend(record.backend).load(record.backend_view())

    def delete(self, records: list[ArtifactRecord]) -> list[int]:
        """Delete ``records`` (rows first, then values); return the deleted versions."""
        if not records:
            return []
        deleted = self.db.delete_artifacts(records[0].name, [r.version for r in records])
        for record in deleted:
            try:
                self.backend(record.backend).delete(record.backend_view())
            except Exception as e:
                log.warning("version %s of %r: the row is gone but its value was not removed: %s",
                            record.version, record.name, e)
        return sorted(r.version for r in deleted)
