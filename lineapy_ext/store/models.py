"""SQLAlchemy 2 models of the metadata database (private to the store).

Tables are prefixed ``lineapy_`` so the database can be shared with other
applications.  ``lineapy_schema`` holds the schema version; bump
:data:`~lineapy_ext.store.records.SCHEMA_VERSION` with every change to an existing table and add the
step that upgrades older databases in place to
:mod:`lineapy_ext.store.migrations`.

Artifact rows have a life cycle (``state``): ``writing`` (inserted before the
value moves into place, so an interrupted save is always findable),
``ready`` (the only state anyone reads), ``deleting`` (set before the value
is removed, so an interrupted delete is always findable) and ``deleted``
(a tombstone: its version number is never handed out again).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lineapy_ext.store.records import DELETED, DELETING, READY, SCHEMA_VERSION, WRITING  # noqa: F401 - re-exported


class Base(DeclarativeBase):
    """Declarative base of the lineapy_ext tables."""


class SchemaInfo(Base):
    __tablename__ = "lineapy_schema"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class SessionRow(Base):
    __tablename__ = "lineapy_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    python_version: Mapped[str] = mapped_column(String(64), default="")
    lineapy_version: Mapped[str] = mapped_column(String(64), default="")


class CellRow(Base):
    __tablename__ = "lineapy_cells"
    __table_args__ = (UniqueConstraint("session_id", "idx", name="uq_lineapy_cells_session_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("lineapy_sessions.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    execution_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    success: Mapped[bool] = mapped_column(Boolean)


class ArtifactRow(Base):
    __tablename__ = "lineapy_artifacts"
    # The constraint, not a lock, is what makes versions unique across processes.
    __table_args__ = (UniqueConstraint("name", "version", name="uq_lineapy_artifacts_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[str] = mapped_column(ForeignKey("lineapy_sessions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    backend: Mapped[str] = mapped_column(String(300))
    location: Mapped[str] = mapped_column(Text)
    value_type: Mapped[str] = mapped_column(String(300))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)
    slice_code: Mapped[str] = mapped_column(Text, default="")
    slice_cells: Mapped[list] = mapped_column(JSON, default=list)
    var_names: Mapped[list] = mapped_column(JSON, default=list)
    backend_metadata: Mapped[dict] = mapped_column(JSON, default=dict)
    # Added in schema version 2 (see migrations.py): keep in step with it.
    state: Mapped[str] = mapped_column(String(16), default=READY, server_default=READY)
    #: "pid@host" of the process that last changed the state (for cleanup).
    writer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Added in schema version 3: Python version and imported distributions at
    # save (lineapy_ext.environment.capture); NULL in rows saved before.
    environment: Mapped[dict | None] = mapped_column(JSON, nullable=True)


# Tables of other store modules share this Base so that create_all makes them too.
from lineapy_ext.store import verifications as _verifications  # noqa: E402,F401
