"""The metadata database: sessions, executed cells and artifact versions.

SQLite (the default) runs in WAL mode with a busy timeout and takes the
write lock at the start of every write transaction (``BEGIN IMMEDIATE``), so
several kernels can save at once without "database is locked" errors.
PostgreSQL is reached through psycopg 3 with a bounded connect timeout;
version numbers are serialised per name with a transaction-level advisory
lock.  On both, the ``(name, version)`` unique constraint is the final
guarantee and a conflicting insert is retried.

Tables are created on first use; a database of an older schema version is
upgraded in place (:mod:`lineapy_ext.store.migrations`).  On a SQLite file
of the current schema the statements of saves and gets run through the
standard library's :mod:`sqlite3` (:mod:`lineapy_ext.store.plain_sqlite`: the
same SQL, connection set-up and checks), so a get in a fresh process does
not import SQLAlchemy and a save pays no per-statement SQLAlchemy work.

Artifact rows go through states (:mod:`lineapy_ext.store.models`): a save
records its intent (``writing``) before its value moves into place and
makes the row ``ready`` afterwards; a delete marks rows ``deleting`` before
their values are removed and leaves ``deleted`` tombstones, so version
numbers are never handed out twice.  Only ``ready`` rows are ever read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import threading
import time
import zlib
from datetime import datetime, timezone
from typing import Iterable, Iterator
from urllib.parse import quote

from lineapy_ext.config import mask_url, normalize_database_url
from lineapy_ext.exceptions import ConfigError, StorageError
from lineapy_ext.store.records import READY, WRITING, ArtifactRecord, CellRecord, SessionRecord
from lineapy_ext.store.writers import writer_id

log = logging.getLogger(__name__)

#: Seconds a connection attempt may take before the save/get fails.
CONNECT_TIMEOUT = 5
#: Seconds SQLite waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 60
_INSERT_ATTEMPTS = 50
# Versions are 32-bit integers on PostgreSQL; a larger number names no row.
_MAX_VERSION = 2**31 - 1
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
        #: The SQLite file is on a read-only file system: reads only.
        self.read_only = False
        # The SQLite file through plain sqlite3 (see plain_sqlite); False
        # once known not to apply (not a file, or the schema is not ours).
        self._plain_db = None
        self._plain_lock = threading.Lock()

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
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.url)
        except (ArgumentError, ValueError) as e:  # ValueError: a port that is not a number, a bad IPv6 host
            raise ConfigError(
                f"database_url {mask_url(self.url)!r} is not a valid URL ({e}): "
                "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
            ) from e
        if url.get_backend_name() == "sqlite":
            return self._sqlite_engine(url)
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

    def _sqlite_engine(self, url):
        import sqlite3

        from sqlalchemy import create_engine, event

        path = url.database if url.database and url.database != ":memory:" else None
        uri, self.read_only = sqlite_target(path) if path else (None, False)
        if self.read_only:
            engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
                uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False))
        else:
            if path:
                folder = os.path.dirname(os.path.abspath(path))
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as e:  # e.g. home_dir is a file
                    raise ConfigError(
                        f"database_url {mask_url(self.url)!r}: cannot create the folder {folder!r} "
                        f"({e.strerror}); set home_dir or database_url to a directory you can write"
                    ) from e
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            prepare_sqlite(dbapi_conn, self.url, self.read_only)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            immediate = conn.get_execution_options().get("lineapy_write", False) and not self.read_only
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _unreachable(self, e: Exception) -> StorageError:
        from lineapy_ext.secrets import scrub_text

        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        reason = scrub_text(reason, [p for p in [self._password()] if p])
        return StorageError(
            f"cannot use the metadata database {mask_url(self.url)}: {reason}; "
            "check database_url and that the server is running"
        )

    def _password(self) -> str | None:
        if self.is_sqlite:
            return None  # (and a get of a SQLite store need not import SQLAlchemy)
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

        from lineapy_ext.store.migrations import upgrade
        from lineapy_ext.store.models import SCHEMA_VERSION, Base, SchemaInfo

        if self.read_only:
            return self._check_read_only_schema(engine)
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
                        elif found < SCHEMA_VERSION:
                            upgrade(conn, found, SCHEMA_VERSION)
                            conn.execute(
                                SchemaInfo.__table__.update()
                                .where(SchemaInfo.key == "schema_version")
                                .values(value=SCHEMA_VERSION)
                            )
                            log.info("upgraded %s from schema version %s to %s", mask_url(self.url), found, SCHEMA_VERSION)
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

    def _check_read_only_schema(self, engine) -> None:
        # Nothing can be created or upgraded: the schema must be this release's.
        from sqlalchemy import text
        from sqlalchemy.exc import DatabaseError

        from lineapy_ext.store.models import SCHEMA_VERSION

        where = f"the metadata database {mask_url(self.url)} is on a read-only file system"
        try:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT value FROM lineapy_schema WHERE key = 'schema_version'")).scalar()
        except DatabaseError as e:
            raise StorageError(f"{where} and holds no lineapy_ext tables: point database_url at a store") from e
        if found != SCHEMA_VERSION:
            raise StorageError(
                f"{where} and has schema version {found}, this lineapy_ext reads {SCHEMA_VERSION}: "
                + ("open it once where it can be written to upgrade it" if found < SCHEMA_VERSION else "upgrade lineapy-ext")
            )

    def close(self) -> None:
        """Release every connection; the next use reconnects."""
        with self._plain_lock:
            plain, self._plain_db = self._plain_db, None
        if plain:
            plain.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- sessions and cells --------------------------------------------------

    def ensure_session(self, session: SessionRecord) -> None:
        """Insert ``session`` unless it is already recorded."""
        from lineapy_ext.store.plain_sqlite import insert_sql

        row = {
            "id": session.id,
            "started_at": session.started_at.astimezone(timezone.utc).replace(tzinfo=None),
            "python_version": session.python_version,
            "lineapy_version": session.lineapy_version,
        }
        with self._write_tx() as tx:
            # Another thread of this process may have recorded it first.
            tx.execute(insert_sql("lineapy_sessions", row, or_ignore=True), row)

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
        from lineapy_ext.store.plain_sqlite import insert_sql

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
            # Threads of one kernel saving at once may both persist the same
            # new cells: the first insert wins, the others add nothing.
            with self._write_tx() as tx:
                tx.execute(insert_sql("lineapy_cells", rows[0], or_ignore=True), rows)
        return start + len(rows)

    def cells(self, session_id: str) -> list[CellRecord]:
        """Return the recorded cells of ``session_id`` in execution order."""
        from sqlalchemy import select

        from lineapy_ext.store.models import CellRow

        with self.read() as conn:
            rows = conn.execute(select(CellRow).where(CellRow.session_id == session_id).order_by(CellRow.idx)).all()
        return [CellRecord(r.session_id, r.idx, r.execution_count, r.source, r.success) for r in rows]

    # -- artifacts -----------------------------------------------------------

    def begin_artifact(self, **fields) -> ArtifactRecord:
        """Record the intent to save the next version of ``fields["name"]``; return its record.

        The row is in state ``writing`` (invisible to readers) until
        :meth:`finish_artifact`.  The version is one more than any version the
        name ever had, deleted ones included, unique across processes:
        writers are serialised (SQLite write lock, PostgreSQL advisory lock
        per name) and a unique-constraint conflict is retried.
        """
        return self._insert_next_version({**fields, "state": WRITING})

    def insert_artifact(self, **fields) -> ArtifactRecord:
        """Insert the next version of ``fields["name"]``, ready at once; return its record."""
        return self._insert_next_version({**fields, "state": READY})

    def _insert_next_version(self, fields: dict) -> ArtifactRecord:
        from lineapy_ext.store.plain_sqlite import artifact_defaults, insert_sql

        name = fields["name"]
        now = _utcnow()
        fields = {"writer": writer_id(), **artifact_defaults(), **fields, "created_at": now, "updated_at": now}
        insert = insert_sql("lineapy_artifacts", [*fields, "version"], returning="id")
        for attempt in range(_INSERT_ATTEMPTS):
            try:
                with self._write_tx() as tx:
                    version = self._next_version(tx, name)
                    new_id = tx.rows(insert, {**fields, "version": version})[0]["id"]
                return self._record_from(dict(fields, id=new_id, version=version))
            except _Conflict as e:
                reason = e.reason
                version_taken = "uq_lineapy_artifacts_name_version" in reason or "lineapy_artifacts.version" in reason
                if not version_taken:
                    raise StorageError(f"cannot record artifact {name!r} in {mask_url(self.url)}: {reason}") from e
                if attempt == _INSERT_ATTEMPTS - 1:
                    raise StorageError(f"could not allocate a version for {name!r}: too many concurrent saves") from e
                time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    def _next_version(self, tx, name: str) -> int:
        # Tombstones (deleted rows) count: a number once handed out is never
        # handed out again, so a slice pinned to it can never load other content.
        from lineapy_ext.store.plain_sqlite import SQL

        if not self.is_sqlite:
            tx.execute("SELECT pg_advisory_xact_lock(:a, :b)", {"a": _SCHEMA_LOCK, "b": zlib.crc32(name.encode()) - 2**31})
        latest = tx.rows(SQL["max_version"], {"name": name})[0]["latest"]
        return (latest or 0) + 1

    def finish_artifact(self, record: ArtifactRecord, **fields) -> ArtifactRecord:
        """Make ``record`` (state ``writing``) ready with the backend's ``fields``; return it.

        Raises
        ------
        StorageError
            The row is no longer ``writing`` (a cleanup rolled it back).
        """
        from lineapy_ext.store.plain_sqlite import update_sql

        values = {**fields, "state": READY, "updated_at": _utcnow()}
        with self._write_tx() as tx:
            done = tx.execute(
                update_sql("lineapy_artifacts", values, "id = :row_id AND state = :writing"),
                {**values, "row_id": record.id, "writing": WRITING},
            )
        if done != 1:
            raise StorageError(
                f"version {record.version} of {record.name!r} was rolled back by a cleanup while it was being saved; save again"
            )
        return dataclasses.replace(record, **fields, state=READY)

    def discard_artifact(self, record: ArtifactRecord) -> None:
        """Remove the row of a save that did not complete (state ``writing``)."""
        from lineapy_ext.store.plain_sqlite import SQL

        with self._write_tx() as tx:
            tx.execute(SQL["discard"], {"id": record.id, "writing": WRITING})

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
            state=get("state") or "ready",
            environment=dict(get("environment")) if get("environment") else None,
        )

    def get_artifact(self, name: str, version: int | None = None) -> ArtifactRecord | None:
        """Return version ``version`` (default: latest) of ``name``, or ``None``."""
        if version is not None and not 0 < version <= _MAX_VERSION:
            return None  # no such row; and the database would refuse the number
        from lineapy_ext.store.plain_sqlite import SQL

        if version is None:
            rows = self._rows(SQL["latest"], {"name": name})
        else:
            rows = self._rows(SQL["artifact"], {"name": name, "version": version})
        return self._record_from(rows[0]) if rows else None

    def artifact_state(self, name: str, version: int) -> str | None:
        """Return the state of version ``version`` of ``name`` (``None``: never existed)."""
        from lineapy_ext.store.plain_sqlite import SQL

        if not 0 < version <= _MAX_VERSION:
            return None
        rows = self._rows(SQL["state"], {"name": name, "version": version})
        return rows[0]["state"] if rows else None

    def versions(self, name: str) -> list[int]:
        """Return the existing versions of ``name``, ascending."""
        from lineapy_ext.store.plain_sqlite import SQL

        return [r["version"] for r in self._rows(SQL["versions"], {"name": name})]

    # -- statements on either path (see plain_sqlite) -----------------------

    def _rows(self, sql: str, params: dict) -> list[dict]:
        """Run the query ``sql`` (autocommit); rows as dicts, JSON and times decoded."""
        import sqlite3

        from lineapy_ext.store.plain_sqlite import PARAMS

        plain = self._plain()
        if plain:
            try:
                return plain.rows(sql, {**PARAMS, **params})
            except sqlite3.Error as e:
                raise self._unreachable(e) from e
        with self.read() as conn:
            return _SATransaction(conn).rows(sql, {**PARAMS, **params})

    @contextlib.contextmanager
    def _write_tx(self) -> Iterator:
        """A write transaction (exclusive on SQLite) with ``rows(sql, params)`` and ``execute(sql, params)``.

        Raises
        ------
        _Conflict
            A unique constraint refused a row.
        StorageError
            The database cannot be reached or written.
        """
        import sqlite3

        plain = self._plain()
        if plain:
            try:
                with plain.transaction() as tx:
                    yield tx
            except sqlite3.IntegrityError as e:
                raise _Conflict(e) from e
            except sqlite3.Error as e:
                raise self._unreachable(e) from e
            return
        from sqlalchemy.exc import IntegrityError

        try:
            with self.write() as conn:
                yield _SATransaction(conn)
        except IntegrityError as e:
            raise _Conflict(e.orig) from e

    def _plain(self):
        """The :class:`~lineapy_ext.store.plain_sqlite.PlainSQLite` of this file (opened on first use), or ``False``."""
        if self._plain_db is not None:
            return self._plain_db
        from lineapy_ext.store.plain_sqlite import NotCurrent, PlainSQLite, sqlite_file
        from lineapy_ext.store.records import SCHEMA_VERSION

        with self._plain_lock:
            if self._plain_db is None:
                path = sqlite_file(self.url)
                plain = False
                if path is not None:
                    try:
                        plain = PlainSQLite(self.url, path, SCHEMA_VERSION)
                    except NotCurrent:
                        # The engine creates, upgrades or reports (a newer
                        # schema, a damaged file); then the plain path may open.
                        self.engine  # noqa: B018
                        try:
                            plain = PlainSQLite(self.url, path, SCHEMA_VERSION)
                        except NotCurrent:
                            plain = False
                self._plain_db = plain
            return self._plain_db

    def names(self) -> list[str]:
        """Return every artifact name, sorted."""
        from sqlalchemy import select

        from lineapy_ext.store.models import READY, ArtifactRow

        query = select(ArtifactRow.name).where(ArtifactRow.state == READY).distinct().order_by(ArtifactRow.name)
        with self.read() as conn:
            return list(conn.execute(query).scalars())

    def latest_artifacts(self) -> list[tuple[ArtifactRecord, int]]:
        """Return ``(latest record, number of versions)`` for every name, sorted by name."""
        from sqlalchemy import and_, func, select

        from lineapy_ext.store.models import READY, ArtifactRow

        t = ArtifactRow.__table__
        latest = (
            select(t.c.name, func.max(t.c.version).label("v"), func.count().label("n"))
            .where(t.c.state == READY)
            .group_by(t.c.name)
            .subquery()
        )
        query = (
            select(t, latest.c.n)
            .join(latest, and_(t.c.name == latest.c.name, t.c.version == latest.c.v))
            .order_by(t.c.name)
        )
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [(self._record_from(dict(r)), r["n"]) for r in rows]

    def mark_deleting(self, name: str, versions: list[int]) -> list[ArtifactRecord]:
        """Hide the ready ``versions`` of ``name`` (state ``deleting``); return them.

        Their values are removed afterwards; :meth:`mark_deleted` then turns
        the rows into tombstones.  A delete interrupted in between leaves
        ``deleting`` rows that cleanup completes.
        """
        from sqlalchemy import select

        from lineapy_ext.store.models import DELETING, READY, ArtifactRow

        t = ArtifactRow.__table__
        rows = []
        with self.write() as conn:
            for chunk in _chunks(versions):
                where = (t.c.name == name) & (t.c.version.in_(chunk)) & (t.c.state == READY)
                rows += conn.execute(select(t).where(where)).mappings().all()
                conn.execute(t.update().where(where).values(state=DELETING, writer=writer_id(), updated_at=_utcnow()))
        return [self._record_from(dict(r)) for r in rows]

    def mark_deleted(self, records: list[ArtifactRecord]) -> None:
        """Turn the rows of ``records`` (values removed) into tombstones.

        A tombstone keeps name, version and dates, so the number is never
        reused and a get of it can say it was deleted; the slice goes.
        """
        from lineapy_ext.store.models import DELETED, ArtifactRow

        t = ArtifactRow.__table__
        with self.write() as conn:
            for chunk in _chunks([r.id for r in records]):
                conn.execute(
                    t.update()
                    .where(t.c.id.in_(chunk))
                    .values(state=DELETED, updated_at=_utcnow(), slice_code="", slice_cells=[], var_names=[],
                            backend_metadata={}, size=None, checksum=None, environment=None)
                )

    def unfinished(self) -> list[tuple[ArtifactRecord, str | None, datetime | None]]:
        """Return ``(record, writer, updated_at)`` of every ``writing`` or ``deleting`` row."""
        from sqlalchemy import select

        from lineapy_ext.store.models import DELETING, WRITING, ArtifactRow

        t = ArtifactRow.__table__
        with self.read() as conn:
            rows = conn.execute(select(t).where(t.c.state.in_([WRITING, DELETING])).order_by(t.c.id)).mappings().all()
        return [(self._record_from(dict(r)), r["writer"], r["updated_at"] and _aware(r["updated_at"])) for r in rows]

    def delete_artifacts(self, name: str, versions: list[int]) -> list[ArtifactRecord]:
        """Delete ``versions`` of ``name`` at once (rows only, leaving tombstones); return them."""
        records = self.mark_deleting(name, versions)
        self.mark_deleted(records)
        return records


class _Conflict(Exception):
    """A constraint refused a row (on either path); ``reason`` is the database's first line."""

    def __init__(self, error: BaseException) -> None:
        self.reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        super().__init__(self.reason)


class _SATransaction:
    """The plain-SQL interface of :class:`~lineapy_ext.store.plain_sqlite.PlainSQLite` on a SQLAlchemy connection.

    JSON and time columns are typed by the models, so values go in and come
    out as through ``select()``/``insert()``.
    """

    _types: dict | None = None

    def __init__(self, conn) -> None:
        self.conn = conn
        if _SATransaction._types is None:
            from sqlalchemy import JSON, DateTime

            from lineapy_ext.store.models import ArtifactRow, CellRow, SessionRow

            _SATransaction._types = {
                c.name: c.type for t in (ArtifactRow, SessionRow, CellRow)
                for c in t.__table__.c if isinstance(c.type, (JSON, DateTime))
            }

    def _statement(self, sql: str, keys):
        from sqlalchemy import bindparam, text

        typed = [bindparam(k, type_=self._types[k]) for k in keys if k in self._types and re.search(f":{k}\\b", sql)]
        return text(sql).bindparams(*typed)

    def rows(self, sql: str, params: dict) -> list[dict]:
        """Run ``sql``; return its rows as dicts."""
        statement = self._statement(sql, params).columns(**self._types)
        return [dict(r) for r in self.conn.execute(statement, params).mappings()]

    def execute(self, sql: str, params: dict | list[dict]) -> int:
        """Run ``sql`` once, or once per dict of a list; return the number of rows changed."""
        keys = params[0] if isinstance(params, list) else params
        return self.conn.execute(self._statement(sql, keys), params).rowcount


def sqlite_target(path: str) -> tuple[str, bool]:
    """Return ``(URI, read_only)`` for opening the SQLite file ``path`` with :mod:`sqlite3`.

    On a read-only file system (a published snapshot, a read-only mount)
    the store can still be listed and loaded: the URI says ``mode=ro``, and
    without a WAL file nothing can change the file, so it is also
    ``immutable`` (SQLite need not create a WAL index).  Otherwise
    ``mode=rw``: opening never creates the file.
    """
    uri = "file:" + quote(os.path.abspath(path))
    if not _read_only(path):
        return uri + "?mode=rw", False
    uri += "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    return uri, True


def prepare_sqlite(dbapi_conn, url: str, read_only: bool, write: bool = True) -> None:
    """Set up a new :mod:`sqlite3` connection to the store (every connection, both read paths).

    Parameters
    ----------
    dbapi_conn : sqlite3.Connection
    url : str
        The database URL (named in errors).
    read_only : bool
        The file is on a read-only file system.
    write : bool
        The connection may write: make sure the file is in WAL mode.

    Raises
    ------
    ConfigError
        The file is another application's.
    """
    # Let BEGIN (MetadataDB's "begin" listener) be the only transaction
    # control: pysqlite's implicit BEGIN would be DEFERRED and could
    # deadlock writers.  Single reads run in autocommit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT * 1000}")
    _check_foreign_sqlite(cur, url)
    if write and not read_only:
        _use_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _read_only(path: str) -> bool:
    """Whether the SQLite file ``path`` (or its would-be directory) is on a read-only file system."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return os.path.exists(path) and not os.access(path, os.W_OK)


def _use_wal(cur) -> None:
    """Switch the SQLite database of ``cur`` to WAL mode, waiting for other connections.

    Switching a new database to WAL is a write that SQLite does not retry:
    two processes opening a new file at once could fail at once with
    "database is locked", so this retries up to the busy timeout.
    """
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _check_foreign_sqlite(cur, url: str) -> None:
    """Refuse a non-empty SQLite file without our tables before changing anything in it.

    Raises
    ------
    ConfigError
        Naming the file and the tables found.
    """
    found = [r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if found and not any(name.startswith("lineapy_") for name in found):
        listed = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise ConfigError(
            f"database_url {mask_url(url)!r} is another application's SQLite file (tables: {listed}): "
            "point database_url at a new or lineapy_ext file"
        )


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    # Bound the IN (...) lists: SQLite has a limit on bound parameters.
    for start in range(0, len(items), size):
        yield items[start : start + size]
