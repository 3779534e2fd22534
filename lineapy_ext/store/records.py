"""Plain records of what the metadata database holds.

These dataclasses are what the API and the magics see; SQLAlchemy models
(:mod:`lineapy_ext.store.models`) never leave the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Artifact row states (see :mod:`lineapy_ext.store.models`).
WRITING, READY, DELETING, DELETED = "writing", "ready", "deleting", "deleted"

#: Version of the database schema this release reads and writes (the tables are
#: in :mod:`lineapy_ext.store.models`; here so that reads need no SQLAlchemy).
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class SessionRecord:
    """One kernel session that saved something."""

    id: str
    started_at: datetime
    python_version: str = ""
    lineapy_version: str = ""


@dataclass(frozen=True)
class CellRecord:
    """One executed cell of a session, in execution order (``index``)."""

    session_id: str
    index: int
    execution_count: int | None
    source: str
    success: bool


@dataclass(frozen=True)
class ArtifactRecord:
    """One saved version of an artifact.

    ``location`` is relative to the storage dir for the ``lineapy`` backend
    (a model URI for ``mlflow``); ``backend_metadata`` is what the backend's
    ``save`` returned besides location, size and checksum.
    """

    id: int
    name: str
    version: int
    session_id: str
    created_at: datetime
    backend: str
    location: str
    value_type: str
    size: int | None
    checksum: str | None
    slice_code: str = ""
    slice_cells: list = field(default_factory=list)
    var_names: list = field(default_factory=list)
    backend_metadata: dict = field(default_factory=dict)
    #: ``writing``, ``ready``, ``deleting`` or ``deleted`` (see
    #: :mod:`lineapy_ext.store.models`); the API only ever sees ``ready``.
    state: str = "ready"
    #: ``{"python", "packages", "modules"}`` recorded at save (see
    #: :mod:`lineapy_ext.environment`); None for versions saved before that.
    environment: dict | None = None

    def backend_view(self) -> dict:
        """The metadata dict the backend's ``save`` returned, rebuilt for ``load``."""
        return {
            **self.backend_metadata,
            "location": self.location,
            "size": self.size,
            "checksum": self.checksum,
        }
