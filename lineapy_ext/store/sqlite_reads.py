"""Reading artifact rows of a local SQLite store with the standard library alone.

A get in a fresh process (``%lineapy get`` in a new kernel) needs one row,
and importing SQLAlchemy costs more than loading a 500 MB array from the
page cache.  For a database *file* the row reads of
:class:`~lineapy_ext.store.metadata.MetadataDB` (``get_artifact``,
``versions``, ``artifact_state``) therefore go through a plain
:mod:`sqlite3` connection.  It is one code path with the SQLAlchemy one,
not a copy of it:

- the SQL of those reads is the same text on both (:data:`READ_SQL`);
- the connection is opened and set up by the same functions as the
  engine's (:func:`lineapy_ext.store.metadata.sqlite_target`,
  :func:`lineapy_ext.store.metadata.prepare_sqlite`): busy timeout,
  read-only file systems, refusing another application's file;
- it is used only on a schema of exactly this release's version; anything
  else (a new file, an older schema to upgrade, a newer one to refuse, an
  unreadable file) goes through the engine first, which creates, upgrades
  or raises the usual error;
- rows become records through the same ``MetadataDB._record_from``; JSON
  and time columns are decoded by the types the schema declares.

Writes, PostgreSQL and in-memory databases always use SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from datetime import datetime

from lineapy_ext.store.records import READY

#: The reads both paths run, with named parameters (``:name`` is understood
#: by sqlite3 and by SQLAlchemy's ``text()`` alike).
READ_SQL = {
    "artifact": "SELECT * FROM lineapy_artifacts WHERE name = :name AND version = :version AND state = :ready",
    "latest": (
        "SELECT * FROM lineapy_artifacts WHERE name = :name AND state = :ready ORDER BY version DESC LIMIT 1"
    ),
    "state": "SELECT state FROM lineapy_artifacts WHERE name = :name AND version = :version",
    "versions": "SELECT version FROM lineapy_artifacts WHERE name = :name AND state = :ready ORDER BY version",
}

#: What ``:ready`` stands for in :data:`READ_SQL`.
PARAMS = {"ready": READY}

# sqlite:///PATH as SQLAlchemy spells a database file (no driver options,
# no query string, no percent-escapes: those are left to SQLAlchemy).
_FILE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?%]+)")

_DECODERS = {"JSON": json.loads, "DATETIME": datetime.fromisoformat}


def sqlite_file(url: str) -> str | None:
    """The database file of a ``sqlite:///PATH`` URL (``None``: not a plain local file)."""
    m = _FILE_URL.fullmatch(url)
    return None if m is None or m["path"] == ":memory:" else m["path"]


class NotCurrent(Exception):
    """The file is missing or its schema is not this release's: the engine must see it first."""


class SQLiteReader:
    """A stdlib connection to the store's SQLite file, for the reads of :data:`READ_SQL`.

    Parameters
    ----------
    url : str
        The database URL (for error messages and the foreign-file check).
    path : str
        The database file.
    schema_version : int
        The only schema version this reader accepts.

    Raises
    ------
    NotCurrent
        No file, no lineapy tables, another schema version, or SQLite could
        not read it: open the engine (which creates, upgrades or reports).
    ConfigError
        The file is another application's (the check the engine makes too).
    """

    def __init__(self, url: str, path: str, schema_version: int) -> None:
        from lineapy_ext.store.metadata import prepare_sqlite, sqlite_target

        if not os.path.exists(path):
            raise NotCurrent(path)  # the engine creates it
        target, read_only = sqlite_target(path)
        try:
            conn = sqlite3.connect(target, uri=True, timeout=60, check_same_thread=False)
        except sqlite3.Error as e:
            raise NotCurrent(path) from e
        try:
            prepare_sqlite(conn, url, read_only, write=False)
            found = conn.execute("SELECT value FROM lineapy_schema WHERE key = 'schema_version'").fetchone()
            if found is None or found[0] != schema_version:
                raise NotCurrent(path)
            declared = conn.execute("PRAGMA table_info(lineapy_artifacts)").fetchall()
        except sqlite3.Error as e:
            conn.close()
            raise NotCurrent(path) from e
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._lock = threading.Lock()
        # Column name -> decoder, from the types the schema declares (JSON
        # and DATETIME columns are text in SQLite).
        self._decoders = {row[1]: _DECODERS[row[2].upper()] for row in declared if row[2].upper() in _DECODERS}

    def rows(self, query: str, params: dict) -> list[dict]:
        """Run ``READ_SQL[query]`` with ``params``; return decoded rows as dicts.

        Raises
        ------
        sqlite3.Error
            For the caller to report (see ``MetadataDB._unreachable``).
        """
        with self._lock:
            found = self._conn.execute(READ_SQL[query], {**PARAMS, **params}).fetchall()
        out = []
        for row in found:
            row = dict(row)
            for column, decode in self._decoders.items():
                if isinstance(row.get(column), str):
                    row[column] = decode(row[column])
            out.append(row)
        return out

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
