"""Cleaning up after interrupted saves and deletes.

Every save and delete records its intent in the metadata database before it
acts (:mod:`lineapy_ext.store.artifact_store`), so an interruption at any
point (a SIGKILLed kernel, a lost connection) leaves one of:

- a row in state ``writing`` whose writer is gone: the save is rolled back
  (its value file, final or temporary, is removed, then the row);
- a row in state ``deleting``: the delete is completed (the value is
  removed, the row becomes a tombstone);
- a temporary value file whose writer is gone: it is removed.

Only files named by this database's rows, and temporary files of dead
writers (never visible, never referenced by a ready row of any database),
are touched: a storage dir shared by several databases is safe.
:func:`cleanup_store` backs ``lineapy_ext.cleanup()`` and
``python -m lineapy_ext cleanup``.
"""

from __future__ import annotations

import logging
import time

from lineapy_ext.store import writers
from lineapy_ext.store.records import DELETING, WRITING

log = logging.getLogger(__name__)

#: Default minimum age (seconds) of unfinished work whose writer cannot be
#: checked (another machine): a running save keeps it fresh.
DEFAULT_OLDER_THAN = 3600


def cleanup_store(store, *, older_than: float = DEFAULT_OLDER_THAN, dry_run: bool = False) -> list[str]:
    """Finish or undo the interrupted saves and deletes of ``store``; remove dead writers' temporary files.

    Parameters
    ----------
    store : lineapy_ext.store.artifact_store.ArtifactStore
        The store (its database says what was interrupted).
    older_than : float
        Work of another machine is taken as abandoned only when untouched
        for this many seconds; work of this machine once its process is
        gone, and never while it runs.
    dry_run : bool
        Only list what would be done.

    Returns
    -------
    list of str
        What was (or would be) cleaned: temporary files relative to the
        storage dir, then ``NAME version N: interrupted save (rolled back)``
        or ``...: interrupted delete (completed)``.

    Raises
    ------
    lineapy_ext.exceptions.StorageError
        The database or storage dir cannot be reached.
    """
    from lineapy_ext.backends.lineapy import LineaPyBackend

    temp = LineaPyBackend.from_options(store.options, storage_dir=store.storage_dir)
    done = temp.remove_orphaned_temp_files(older_than=older_than, dry_run=dry_run)
    now = time.time()
    for record, writer, updated_at in store.db.unfinished():
        if record.state == WRITING:
            pid, where = writers.parse(writer)
            age = None if updated_at is None else now - updated_at.timestamp()
            if not writers.is_gone(pid, where, age, older_than):
                continue
        if dry_run or _finish(store, record):
            what = "interrupted save (rolled back)" if record.state == WRITING else "interrupted delete (completed)"
            done.append(f"{record.name} version {record.version}: {what}")
    return done


def _finish(store, record) -> bool:
    """Roll back a ``writing`` row or complete a ``deleting`` one; False if its value could not be removed.

    The value goes first, the row after: a cleanup interrupted in turn is
    simply run again.  Database errors propagate (nothing can be cleaned).
    """
    try:
        backend = store.backend(record.backend)
        if record.state == WRITING:
            if record.location:
                backend.discard({"location": record.location})
        else:
            backend.delete(record.backend_view())
    except Exception as e:  # e.g. an unreachable MLflow server or S3: the next cleanup retries
        log.warning("cleanup: %s version %s of %r not finished: %s", record.state, record.version, record.name, e)
        return False
    if record.state == WRITING:
        store.db.discard_artifact(record)
    elif record.state == DELETING:
        store.db.mark_deleted([record])
    return True


def cleanup_temp_files(options, *, older_than: float = DEFAULT_OLDER_THAN, dry_run: bool = False) -> list[str]:
    """:func:`cleanup_store` on the store that ``options`` configures (the CLI's entry point).

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        The configuration (database URL, storage dir and ``storage_options``).
    older_than, dry_run
        As for :func:`cleanup_store`.
    """
    from lineapy_ext.store.artifact_store import ArtifactStore

    store = ArtifactStore(options)
    try:
        return cleanup_store(store, older_than=older_than, dry_run=dry_run)
    finally:
        store.close()
