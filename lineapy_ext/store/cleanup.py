"""Cleaning up after interrupted saves: orphaned temporary value files.

A save writes its value under a temporary name and renames it when complete
(:mod:`lineapy_ext.backends.lineapy`).  A kernel killed mid-write leaves that
temporary file behind; it is never visible as a value and no metadata row
points at it, but it takes space.  :func:`cleanup_temp_files` finds and
removes such files under the configured storage dir; it backs
``lineapy_ext.cleanup()`` and ``python -m lineapy_ext cleanup``.
"""

from __future__ import annotations

#: Default minimum age (seconds) of a temporary file whose writer cannot be
#: checked (written on another machine): a running save keeps it fresh.
DEFAULT_OLDER_THAN = 3600


def cleanup_temp_files(options, *, older_than: float = DEFAULT_OLDER_THAN, dry_run: bool = False) -> list[str]:
    """Remove the temporary files of interrupted saves under ``options.artifact_storage_dir``.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        The configuration (storage dir and ``storage_options``).
    older_than : float
        Files written on another machine are removed only when not modified
        for this many seconds; files written on this machine are removed when
        their process is gone, files of a running save never.
    dry_run : bool
        Only list what would be removed.

    Returns
    -------
    list of str
        The files removed (or, with ``dry_run``, that would be), relative to
        the storage dir.

    Raises
    ------
    lineapy_ext.exceptions.StorageError
        The storage dir cannot be listed or a file cannot be removed.
    """
    from lineapy_ext.backends.lineapy import LineaPyBackend

    backend = LineaPyBackend.from_options(options)
    return backend.remove_orphaned_temp_files(older_than=older_than, dry_run=dry_run)
