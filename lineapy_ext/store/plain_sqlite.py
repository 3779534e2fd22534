"""The store's SQLite file through the standard library's :mod:`sqlite3` alone.

A get in a fresh process (``%lineapy get`` in a new kernel) needs one row,
and importing SQLAlchemy costs more than loading a 500 MB array from the
page cache; a save of a small value pays SQLAlchemy's per-statement work
(building, caching, result processing) in each of its two transactions.
For a database *file* the statements a save and a get run therefore go
through plain :mod:`sqlite3` connections.  It is one code path with the
SQLAlchemy one, not a copy of it:

- the SQL is the same text on both (:data:`SQL`, :func:`insert_sql`,
  :func:`update_sql`; ``:name`` parameters are understood by sqlite3 and by
  SQLAlchemy's ``text()`` alike), run by the same
  :class:`~lineapy_ext.store.metadata.MetadataDB` methods;
- connections are opened and set up by the same functions as the engine's
  (:func:`lineapy_ext.store.metadata.sqlite_target`,
  :func:`lineapy_ext.store.metadata.prepare_sqlite`): busy timeout, WAL,
  read-only file systems, refusing another application's file; write
  transactions begin with ``BEGIN IMMEDIATE`` as the engine's do;
- the file is used only on a schema of exactly this release's version;
  anything else (a new file, an older schema to upgrade, a newer one to
  refuse, an unreadable file) goes through the engine first, which creates,
  upgrades or raises the usual error;
- JSON and time columns are encoded and decoded by the types the schema
  declares, byte for byte as SQLAlchemy does (``json.dumps``; ``YYYY-MM-DD
  HH:MM:SS.ffffff``), and rows become records through the same
  ``MetadataDB._record_from``.

PostgreSQL, in-memory databases, schema changes and the less frequent
statements (deletes, listings, cleanup) use SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from datetime import datetime
from typing import Iterator

from lineapy_ext.store.records import READY, WRITING

#: Statements both paths run, with named parameters.
SQL = {
    "artifact": "SELECT * FROM lineapy_artifacts WHERE name = :name AND version = :version AND state = :ready",
    "latest": (
        "SELECT * FROM lineapy_artifacts WHERE name = :name AND state = :ready ORDER BY version DESC LIMIT 1"
    ),
    "state": "SELECT state FROM lineapy_artifacts WHERE name = :name AND version = :version",
    "versions": "SELECT version FROM lineapy_artifacts WHERE name = :name AND state = :ready ORDER BY version",
    # Tombstones count: a version number once handed out is never handed out again.
    "max_version": "SELECT MAX(version) AS latest FROM lineapy_artifacts WHERE name = :name",
    "discard": "DELETE FROM lineapy_artifacts WHERE id = :id AND state = :writing",
}

#: What ``:ready`` and ``:writing`` stand for in :data:`SQL`.
PARAMS = {"ready": READY, "writing": WRITING}

def artifact_defaults() -> dict:
    """Values of the artifact columns the models fill in when a new row omits them.

    SQLAlchemy applies the models' Python-side defaults; plain SQL would
    leave NULL.  A test keeps these equal to :mod:`lineapy_ext.store.models`.
    """
    return {"slice_code": "", "slice_cells": [], "var_names": [], "backend_metadata": {}}


#: Tables whose columns' declared types the plain connection learns.
TABLES = ("lineapy_artifacts", "lineapy_sessions", "lineapy_cells")

# sqlite:///PATH as SQLAlchemy spells a database file (no driver options,
# no query string, no percent-escapes: those are left to SQLAlchemy).
_FILE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?%]+)")
_COLUMN = re.compile(r"[a-z_]+")


def _encode_time(value):
    # SQLAlchemy's storage format for DateTime on SQLite (always microseconds).
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


#: Declared type -> (encode for writing, decode after reading).
_CODECS = {
    "JSON": (json.dumps, json.loads),
    "DATETIME": (_encode_time, datetime.fromisoformat),
}


def sqlite_file(url: str) -> str | None:
    """The database file of a ``sqlite:///PATH`` URL (``None``: not a plain local file)."""
    m = _FILE_URL.fullmatch(url)
    return None if m is None or m["path"] == ":memory:" else m["path"]


def insert_sql(table: str, columns, *, returning: str | None = None, or_ignore: bool = False) -> str:
    """``INSERT INTO table (columns) VALUES (:columns)``, optionally ``RETURNING`` / ``ON CONFLICT DO NOTHING``."""
    columns = _checked(columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    if or_ignore:
        sql += " ON CONFLICT DO NOTHING"  # SQLite >= 3.24 and PostgreSQL alike
    return sql + (f" RETURNING {returning}" if returning else "")


def update_sql(table: str, columns, where: str) -> str:
    """``UPDATE table SET c = :c, ... WHERE where``."""
    return f"UPDATE {table} SET {', '.join(f'{c} = :{c}' for c in _checked(columns))} WHERE {where}"


def _checked(columns) -> list[str]:
    columns = list(columns)
    if not all(_COLUMN.fullmatch(c) for c in columns):  # names come from our code; never from values
        raise ValueError(f"not a column name: {columns}")
    return columns


class NotCurrent(Exception):
    """The file is missing or its schema is not this release's: the engine must see it first."""


class PlainSQLite:
    """Plain :mod:`sqlite3` connections to the store's file: one for reads, one for writes.

    Parameters
    ----------
    url : str
        The database URL (for error messages and the foreign-file check).
    path : str
        The database file.
    schema_version : int
        The only schema version this accepts.

    Raises
    ------
    NotCurrent
        No file, no lineapy tables, another schema version, or SQLite could
        not read it: open the engine (which creates, upgrades or reports).
    ConfigError
        The file is another application's (the check the engine makes too).
    """

    def __init__(self, url: str, path: str, schema_version: int) -> None:
        if not os.path.exists(path):
            raise NotCurrent(path)  # the engine creates it
        self.url, self.path = url, path
        self._writer = None
        conn = self._connect(write=False)
        try:
            found = conn.execute("SELECT value FROM lineapy_schema WHERE key = 'schema_version'").fetchone()
            if found is None or found[0] != schema_version:
                raise NotCurrent(path)
            declared = [row for table in TABLES for row in conn.execute(f"PRAGMA table_info({table})")]
        except sqlite3.Error as e:
            conn.close()
            raise NotCurrent(path) from e
        except BaseException:
            conn.close()
            raise
        self._reader = conn
        self._read_lock, self._write_lock = threading.Lock(), threading.Lock()
        # Column name -> codec, from the types the schema declares.  The
        # tables share no such name with different types.
        self._codecs = {row[1]: _CODECS[row[2].upper()] for row in declared if row[2].upper() in _CODECS}

    def _connect(self, write: bool) -> sqlite3.Connection:
        from lineapy_ext.store.metadata import SQLITE_BUSY_TIMEOUT, prepare_sqlite, sqlite_target

        target, self.read_only = sqlite_target(self.path)
        try:
            conn = sqlite3.connect(target, uri=True, timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False)
        except sqlite3.Error as e:
            raise NotCurrent(self.path) from e
        try:
            prepare_sqlite(conn, self.url, self.read_only, write=write)
        except sqlite3.Error as e:
            conn.close()
            raise NotCurrent(self.path) from e
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        return conn

    def rows(self, sql: str, params: dict) -> list[dict]:
        """Run the query ``sql`` with ``params`` (autocommit); return decoded rows as dicts.

        Raises
        ------
        sqlite3.Error
            For the caller to report (see ``MetadataDB._unreachable``).
        """
        with self._read_lock:
            found = self._reader.execute(sql, self._encoded(params)).fetchall()
        return self._decoded(found)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["_Transaction"]:
        """A write transaction (``BEGIN IMMEDIATE``), committed at the end, rolled back on error."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect(write=True)
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Transaction(self, conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _encoded(self, params: dict) -> dict:
        codecs = self._codecs
        return {k: (codecs[k][0](v) if k in codecs else v) for k, v in params.items()}

    def _decoded(self, found) -> list[dict]:
        out = []
        for row in found:
            row = dict(row)
            for column in row.keys() & self._codecs.keys():
                if isinstance(row[column], str):
                    row[column] = self._codecs[column][1](row[column])
            out.append(row)
        return out

    def close(self) -> None:
        """Close the connections."""
        with self._read_lock:
            self._reader.close()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


class _Transaction:
    """The statements of one write transaction (see :meth:`PlainSQLite.transaction`)."""

    def __init__(self, db: PlainSQLite, conn: sqlite3.Connection) -> None:
        self._db, self._conn = db, conn

    def rows(self, sql: str, params: dict) -> list[dict]:
        """Run ``sql``; return its decoded rows."""
        return self._db._decoded(self._conn.execute(sql, self._db._encoded(params)).fetchall())

    def execute(self, sql: str, params: dict | list[dict]) -> int:
        """Run ``sql`` once, or once per dict of a list; return the number of rows changed."""
        if isinstance(params, list):
            return self._conn.executemany(sql, [self._db._encoded(p) for p in params]).rowcount
        return self._conn.execute(sql, self._db._encoded(params)).rowcount
