"""Who is writing: process identities recorded with unfinished work.

Temporary value files and ``writing``/``deleting`` rows name the process
that made them (``pid@host``), so that cleanup can tell work whose process
is gone (safe to roll back or complete) from work still running.  A writer
on this machine is checked directly; one on another machine (or unknown)
only by age.
"""

from __future__ import annotations

import os
import re
import socket


def host() -> str:
    """This machine's name, reduced to ``[A-Za-z0-9-]`` (fits in file names)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63]


def writer_id() -> str:
    """``pid@host`` of this process."""
    return f"{os.getpid()}@{host()}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process
        return True
    return True


def is_gone(pid: str | int | None, writer_host: str | None, age: float | None, older_than: float) -> bool:
    """Whether the writer ``pid`` on ``writer_host`` has stopped.

    Parameters
    ----------
    pid, writer_host
        The recorded writer; ``None`` when unknown.
    age : float or None
        Seconds since the work was last touched (``None``: unknown, counts as old).
    older_than : float
        Work of writers that cannot be checked (other machines, unknown) is
        taken as abandoned once this old.
    """
    if pid is not None and writer_host == host():
        return not pid_alive(int(pid))
    return age is None or age >= older_than


def parse(writer: str | None) -> tuple[str | None, str | None]:
    """Split ``pid@host`` into its parts (``(None, None)`` if unknown)."""
    pid, sep, where = (writer or "").partition("@")
    return (pid, where) if sep and pid.isdigit() else (None, None)
