"""Upgrading metadata databases made by older releases, in place.

Each step brings the schema from version ``n - 1`` to ``n``
(:data:`STEPS`); :func:`upgrade` runs the missing ones, in order, inside the
schema transaction of :class:`~lineapy_ext.store.metadata.MetadataDB` (which
holds the write lock on SQLite and an advisory lock on PostgreSQL, so two
kernels opening an old database at once upgrade it once).  New tables need
no step: ``create_all`` makes them before the steps run.  Steps are written
to be harmless when their change is already there.
"""

from __future__ import annotations

from typing import Callable


def _columns(conn, table: str) -> set[str]:
    from sqlalchemy import inspect

    return {c["name"] for c in inspect(conn).get_columns(table)}


def _to_2(conn) -> None:
    """Artifact row states (crash-safe saves and deletes, tombstones)."""
    from sqlalchemy import text

    have = _columns(conn, "lineapy_artifacts")
    for name, ddl in (
        ("state", "VARCHAR(16) NOT NULL DEFAULT 'ready'"),
        ("writer", "VARCHAR(128)"),
        ("updated_at", "TIMESTAMP"),
    ):
        if name not in have:
            conn.execute(text(f"ALTER TABLE lineapy_artifacts ADD COLUMN {name} {ddl}"))


def _to_3(conn) -> None:
    """The environment recorded at save (Python and imported distributions); old rows keep NULL."""
    from sqlalchemy import text

    if "environment" not in _columns(conn, "lineapy_artifacts"):
        # JSON is a column type on PostgreSQL and a type name SQLite accepts
        # (text affinity), which is what create_all makes on each.
        conn.execute(text("ALTER TABLE lineapy_artifacts ADD COLUMN environment JSON"))


#: ``STEPS[n]`` upgrades a database of schema version ``n - 1`` to ``n``.
STEPS: dict[int, Callable] = {2: _to_2, 3: _to_3}


def upgrade(conn, found: int, target: int) -> None:
    """Run the steps from schema version ``found`` up to ``target`` on ``conn``.

    Parameters
    ----------
    conn : sqlalchemy.engine.Connection
        In a transaction that holds the schema lock.
    found, target : int
        The database's schema version and this release's.
    """
    for version in range(found + 1, target + 1):
        STEPS[version](conn)
