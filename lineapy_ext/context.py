"""The process-wide state of lineapy_ext: options, tracker, store, session.

There is one :class:`Context` per process (:func:`get_context`).  It owns

- ``options``: the :class:`~lineapy_ext.config.LineaPy` configuration;
- ``tracker``: the capture side (set by :mod:`lineapy_ext.extension`, ``None``
  in plain Python);
- ``store``: the :class:`~lineapy_ext.store.artifact_store.ArtifactStore`,
  opened on first use so that ``%load_ext`` imports neither SQLAlchemy nor
  fsspec;
- ``session_id``: the id under which saves of this kernel are recorded.

When the store location (``database_url``/``artifact_storage_dir``, or
``home_dir`` through their defaults) changes, the context closes the old
store and starts a new session; the tracker's captured history is kept, so
later slices stay complete.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
import warnings

from lineapy_ext.config import LineaPy, mask_url
from lineapy_ext.exceptions import LineaPyWarning

log = logging.getLogger(__name__)

_lock = threading.Lock()
_context: "Context | None" = None


#: Modules whose frames stand between a user's ``%config``/``options.set``
#: line and :meth:`Context.reset_session` (traitlets fires observers from
#: a ``contextlib`` context manager); warnings skip them.
_INTERNAL_MODULES = ("lineapy_ext", "traitlets", "IPython", "contextlib")


def _internal_paths() -> tuple[str, ...]:
    paths = []
    for name in _INTERNAL_MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        package_dirs = getattr(module, "__path__", None)
        if package_dirs:
            paths.extend(os.path.join(os.path.abspath(d), "") for d in package_dirs)
        elif getattr(module, "__file__", None):
            paths.append(os.path.abspath(module.__file__))
    return tuple(paths)


def _user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by the caller of this
    function that points at the first frame outside lineapy_ext, traitlets,
    IPython and contextlib: the user's ``%config`` line or ``options.set``
    call, not the library code that reacted to it.  (``warnings.warn``'s
    ``skip_file_prefixes`` would do this, but needs Python 3.12.)"""
    internal = _internal_paths()
    frame, level = sys._getframe(1), 1  # level 1: the caller of warnings.warn
    while frame.f_back is not None:
        name = frame.f_code.co_filename
        if name.startswith("<"):  # user code (<ipython-input-N>), except IPython's <decorator-gen-N>
            if not name.startswith("<decorator-gen"):
                break
        elif not os.path.abspath(name).startswith(internal):
            break
        frame, level = frame.f_back, level + 1
    return level


def new_session_id() -> str:
    """Return a fresh, globally unique session id."""
    return uuid.uuid4().hex


class Context:
    """State shared by the magics, the API and the extension (one per process)."""

    def __init__(self) -> None:
        self.options = LineaPy()
        self.tracker = None
        self.session_id = new_session_id()
        self._store = None
        self._store_lock = threading.Lock()
        self._session_location = self.location()
        #: How many of the tracker's executed cells the current session's
        #: store already holds (cells are persisted at save time, not per cell).
        self.cells_persisted = 0
        self.options.on_location_change(self._on_location_change)

    # -- store ---------------------------------------------------------------

    def location(self) -> tuple[str, str]:
        """Return ``(database_url, artifact_storage_dir)`` currently configured."""
        return (self.options.database_url, self.options.artifact_storage_dir)

    @property
    def store(self):
        """The artifact store of the current location, opened on first use."""
        with self._store_lock:
            if self._store is None:
                from lineapy_ext.store.artifact_store import ArtifactStore

                self._store = ArtifactStore(self.options)
            return self._store

    @property
    def store_is_open(self) -> bool:
        """Whether :attr:`store` has been opened (without opening it)."""
        return self._store is not None

    def close_store(self) -> None:
        """Close the store (if open); the next use of :attr:`store` reopens it."""
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def _on_location_change(self, change) -> None:
        self.reset_session()

    def reset_session(self) -> bool:
        """Start a new session if the store location changed.

        Prints one line when it does, and warns when only one of database
        URL / storage dir changed (they belong together: the metadata rows
        point at values in the storage dir).

        Returns
        -------
        bool
            Whether a new session began.
        """
        old, new = self._session_location, self.location()
        if old == new:
            return False
        self.close_store()
        self.session_id = new_session_id()
        self._session_location = new
        self.cells_persisted = 0
        print(
            f"lineapy_ext: store changed, new session {self.session_id[:8]} "
            f"(database {mask_url(new[0])}, values in {mask_url(new[1])})"
        )
        if (old[0] == new[0]) != (old[1] == new[1]):
            changed, kept = ("database_url", "artifact_storage_dir") if old[0] != new[0] else (
                "artifact_storage_dir", "database_url")
            warnings.warn(
                f"only {changed} changed, {kept} is still {mask_url(kept == 'database_url' and new[0] or new[1])!r}: "
                "the metadata database and the storage dir belong together; set both",
                LineaPyWarning,
                stacklevel=_user_stacklevel(),
            )
        return True

    # -- shell ---------------------------------------------------------------

    def attach_shell(self, shell) -> None:
        """Register ``options`` with ``shell`` and apply the shell's IPython config.

        After this, ``%config LineaPy`` lists the traits and
        ``%config LineaPy.trait = value`` sets them.
        """
        if self.options not in shell.configurables:
            shell.configurables.append(self.options)
        self.options.load_ipython_config(getattr(shell, "config", None))

    def detach_shell(self, shell) -> None:
        """Undo :meth:`attach_shell` (the options keep their values)."""
        while self.options in shell.configurables:
            shell.configurables.remove(self.options)

    def close(self) -> None:
        """Close the store and forget the location listener."""
        self.options.on_location_change(self._on_location_change, remove=True)
        self.close_store()


def get_context() -> Context:
    """Return the process-wide :class:`Context`, creating it on first call."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = Context()
    return _context


def reset_context() -> None:
    """Drop the process-wide context (closing its store).

    The next :func:`get_context` builds a fresh one that re-reads env vars and
    the config file; the test suite uses this for isolation.
    """
    global _context
    with _lock:
        ctx, _context = _context, None
    if ctx is not None:
        ctx.close()
