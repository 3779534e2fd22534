"""The metadata database: sessions, executed cells and artifact versions.

SQLite (the default) runs in WAL mode with a busy timeout and takes the
write lock at the start of every write transaction (``BEGIN IMMEDIATE``), so
several kernels can save at once without "database is locked" errors.
PostgreSQL is reached through psycopg 3 with a bounded connect timeout;
version numbers are serialised per name with a transaction-level advisory
lock.  On both, the ``(name, version)`` unique constraint is the final
guarantee and a conflicting insert is retried.

Tables are created on first use; the schema version is checked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import zlib
from datetime import datetime, timezone
from typing import Iterable, Iterator

from lineapy_ext.config import mask_url, normalize_database_url
from lineapy_ext.exceptions import ConfigError, StorageError
from lineapy_ext.store.records import ArtifactRecord, CellRecord, SessionRecord

log = logging.getLogger(__name__)

#: Seconds a connection attempt may take before the save/get fails.
CONNECT_TIMEOUT = 5
#: Seconds SQLite waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 60
_INSERT_ATTEMPTS = 50
# Arbitrary constant that names lineapy_ext's schema-creation advisory lock.
_SCHEMA_LOCK = 0x11AE_A9E0


def _utcnow() -> datetime:
    # Stored naive (SQLite has no time zones), always UTC.
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


class MetadataDB:
    """The metadata database at ``url`` (opened and created on first use).

    Parameters
    ----------
    url : str
        ``sqlite:///path`` or ``postgresql://...`` (``postgres://`` accepted).
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_database_url(url)
        self._engine = None

    # -- connection ----------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self):
        """The SQLAlchemy engine; creates the tables on first access."""
        if self._engine is None:
            engine = self._create_engine()
            try:
                self._ensure_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def _create_engine(self):
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.url)
        except ArgumentError as e:
            raise ConfigError(f"database_url {mask_url(self.url)!r} is not a valid URL: {e}") from e
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn, _record):
                # Let BEGIN below be the only transaction control (pysqlite's
                # implicit BEGIN would be DEFERRED and could deadlock writers).
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT * 1000}")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn):
                immediate = conn.get_execution_options().get("lineapy_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        if url.get_backend_name() == "postgresql":
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")
            try:
                return create_engine(
                    url,
                    connect_args={"connect_timeout": CONNECT_TIMEOUT},
                    pool_pre_ping=True,
                )
            except ImportError as e:
                raise ConfigError(
                    f"database_url {mask_url(self.url)!r} needs psycopg: pip install 'lineapy-ext[postgres]'"
                ) from e
        raise ConfigError(
            f"database_url {mask_url(self.url)!r} is not supported: use sqlite:///PATH or postgresql://..."
        )

    def _unreachable(self, e: Exception) -> StorageError:
        from lineapy_ext.secrets import scrub_text

        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        reason = scrub_text(reason, [p for p in [self._password()] if p])
        return StorageError(
            f"cannot use the metadata database {mask_url(self.url)}: {reason}; "
            "check database_url and that the server is running"
        )

    def _password(self) -> str | None:
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).password
        except Exception:
            return None

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator:
        from sqlalchemy.exc import IntegrityError, OperationalError, InterfaceError

        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(lineapy_write=True)
                with conn.begin():
                    yield conn
        except IntegrityError:
            raise
        except (OperationalError, InterfaceError) as e:
            raise self._unreachable(e) from e

    def write(self):
        """Context manager: a write transaction (exclusive on SQLite)."""
        return self._transaction(write=True)

    def read(self):
        """Context manager: a read transaction."""
        return self._transaction(write=False)

    def _ensure_schema(self, engine) -> None:
        from sqlalchemy import select, text
        from sqlalchemy.exc import IntegrityError, OperationalError, InterfaceError, ProgrammingError

        from lineapy_ext.store.models import SCHEMA_VERSION, Base, SchemaInfo

        for attempt in range(5):
            try:
                with engine.connect() as conn:
                    conn = conn.execution_options(lineapy_write=True)
                    with conn.begin():
                        if not self.is_sqlite:
                            # Concurrent CREATE TABLEs collide in pg_type; one at a time.
                            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                        Base.metadata.create_all(conn)
                        found = conn.execute(select(SchemaInfo.value).where(SchemaInfo.key == "schema_version")).scalar()
                        if found is None:
                            conn.execute(SchemaInfo.__table__.insert().values(key="schema_version", value=SCHEMA_VERSION))
                        elif found > SCHEMA_VERSION:
                            raise StorageError(
                                f"the metadata database {mask_url(self.url)} has schema version {found}, "
                                f"newer than this lineapy_ext supports ({SCHEMA_VERSION}): upgrade lineapy-ext"
                            )
                return
            except (IntegrityError, ProgrammingError) as e:
                if attempt == 4:
                    raise StorageError(f"cannot create tables in {mask_url(self.url)}: {e.orig}") from e
                time.sleep(0.05 * (attempt + 1))
            except (OperationalError, InterfaceError) as e:
                raise self._unreachable(e) from e

    def close(self) -> None:
        """Release every connection; the next use reconnects."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- sessions and cells --------------------------------------------------

    def ensure_session(self, session: SessionRecord) -> None:
        """Insert ``session`` unless it is already recorded."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from lineapy_ext.store.models import SessionRow

        try:
            with self.write() as conn:
                if conn.execute(select(SessionRow.id).where(SessionRow.id == session.id)).first() is None:
                    conn.execute(
                        SessionRow.__table__.insert().values(
                            id=session.id,
                            started_at=session.started_at.astimezone(timezone.utc).replace(tzinfo=None),
                            python_version=session.python_version,
                            lineapy_version=session.lineapy_version,
                        )
                    )
        except IntegrityError:
            pass  # another thread of this process recorded it first

    def get_session(self, session_id: str) -> SessionRecord | None:
        """Return the session ``session_id`` or ``None``."""
        from sqlalchemy import select

        from lineapy_ext.store.models import SessionRow

        with self.read() as conn:
            row = conn.execute(select(SessionRow).where(SessionRow.id == session_id)).first()
        if row is None:
            return None
        return SessionRecord(row.id, _aware(row.started_at), row.python_version, row.lineapy_version)

    def add_cells(self, session_id: str, start: int, cells: Iterable) -> int:
        """Record ``cells`` (objects with ``execution_count, source, success``) from index ``start``.

        Returns
        -------
        int
            The index after the last recorded cell.
        """
        from lineapy_ext.store.models import CellRow

        rows = [
            {
                "session_id": session_id,
                "idx": start + i,
                "execution_count": c.execution_count,
                "source": c.source,
                "success": bool(c.success),
            }
            for i, c in enumerate(cells)
        ]
        if rows:
            with self.write() as conn:
                conn.execute(CellRow.__table__.insert(), rows)
        return start + len(rows)

    def cells(self, session_id: str) -> list[CellRecord]:
        """Return the recorded cells of ``session_id`` in execution order."""
        from sqlalchemy import select

        from lineapy_ext.store.models import CellRow

        with self.read() as conn:
            rows = conn.execute(select(CellRow).where(CellRow.session_id == session_id).order_by(CellRow.idx)).all()
        return [CellRecord(r.session_id, r.idx, r.execution_count, r.source, r.success) for r in rows]

    # -- artifacts -----------------------------------------------------------

    def insert_artifact(self, **fields) -> ArtifactRecord:
        """Insert the next version of ``fields["name"]`` and return its record.

        The version is ``max(version) + 1`` for the name, unique across
        processes: writers are serialised (SQLite write lock, PostgreSQL
        advisory lock per name) and a unique-constraint conflict is retried.
        """
        from sqlalchemy import func, select, text
        from sqlalchemy.exc import IntegrityError

        from lineapy_ext.store.models import ArtifactRow

        name = fields["name"]
        fields = {**fields, "created_at": _utcnow()}
        for attempt in range(_INSERT_ATTEMPTS):
            try:
                with self.write() as conn:
                    if not self.is_sqlite:
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:a, :b)"),
                            {"a": _SCHEMA_LOCK, "b": zlib.crc32(name.encode()) - 2**31},
                        )
                    latest = conn.execute(select(func.max(ArtifactRow.version)).where(ArtifactRow.name == name)).scalar()
                    version = (latest or 0) + 1
                    new_id = conn.execute(
                        ArtifactRow.__table__.insert().values(version=version, **fields).returning(ArtifactRow.id)
                    ).scalar_one()
                return self._record_from(dict(fields, id=new_id, version=version))
            except IntegrityError as e:
                reason = str(e.orig).strip().splitlines()[0]
                version_taken = "uq_lineapy_artifacts_name_version" in reason or "lineapy_artifacts.version" in reason
                if not version_taken:
                    raise StorageError(f"cannot record artifact {name!r} in {mask_url(self.url)}: {reason}") from e
                if attempt == _INSERT_ATTEMPTS - 1:
                    raise StorageError(f"could not allocate a version for {name!r}: too many concurrent saves") from e
                time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _record_from(row) -> ArtifactRecord:
        get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
        return ArtifactRecord(
            id=get("id"),
            name=get("name"),
            version=get("version"),
            session_id=get("session_id"),
            created_at=_aware(get("created_at")),
            backend=get("backend"),
            location=get("location"),
            value_type=get("value_type"),
            size=get("size"),
            checksum=get("checksum"),
            slice_code=get("slice_code") or "",
            slice_cells=[tuple(c) for c in get("slice_cells") or []],
            var_names=list(get("var_names") or []),
            backend_metadata=dict(get("backend_metadata") or {}),
        )

    def get_artifact(self, name: str, version: int | None = None) -> ArtifactRecord | None:
        """Return version ``version`` (default: latest) of ``name``, or ``None``."""
        from sqlalchemy import select

        from lineapy_ext.store.models import ArtifactRow

        query = select(ArtifactRow.__table__).where(ArtifactRow.name == name)
        if version is None:
            query = query.order_by(ArtifactRow.version.desc()).limit(1)
        else:
            query = query.where(ArtifactRow.version == version)
        with self.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._record_from(dict(row))

    def versions(self, name: str) -> list[int]:
        """Return the existing versions of ``name``, ascending."""
        from sqlalchemy import select

        from lineapy_ext.store.models import ArtifactRow

        with self.read() as conn:
            return list(
                conn.execute(select(ArtifactRow.version).where(ArtifactRow.name == name).order_by(ArtifactRow.version)).scalars()
            )

    def names(self) -> list[str]:
        """Return every artifact name, sorted."""
        from sqlalchemy import select

        from lineapy_ext.store.models import ArtifactRow

        with self.read() as conn:
            return list(conn.execute(select(ArtifactRow.name).distinct().order_by(ArtifactRow.name)).scalars())

    def latest_artifacts(self) -> list[tuple[ArtifactRecord, int]]:
        """Return ``(latest record, number of versions)`` for every name, sorted by name."""
        from sqlalchemy import and_, func, select

        from lineapy_ext.store.models import ArtifactRow

        t = ArtifactRow.__table__
        latest = (
            select(t.c.name, func.max(t.c.version).label("v"), func.count().label("n")).group_by(t.c.name).subquery()
        )
        query = (
            select(t, latest.c.n)
            .join(latest, and_(t.c.name == latest.c.name, t.c.version == latest.c.v))
            .order_by(t.c.name)
        )
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [(self._record_from(dict(r)), r["n"]) for r in rows]

    def delete_artifacts(self, name: str, versions: list[int]) -> list[ArtifactRecord]:
        """Delete the rows of ``versions`` of ``name``; return what was deleted."""
        from sqlalchemy import select

        from lineapy_ext.store.models import ArtifactRow

        t = ArtifactRow.__table__
        where = (t.c.name == name) & (t.c.version.in_(versions))
        with self.write() as conn:
            rows = conn.execute(select(t).where(where)).mappings().all()
            conn.execute(t.delete().where(where))
        return [self._record_from(dict(r)) for r in rows]
