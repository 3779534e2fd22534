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
store and starts a new session at once; the tracker's captured history is
kept, so later slices stay complete.  In a shell, the line that says so and
the warning about a half-moved store wait for the end of the cell, so that a
cell setting both halves (two ``%config`` lines) prints one line and no
warning.
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


def _user_line() -> tuple[str, int, str]:
    """``(filename, lineno, module)`` of the first frame outside lineapy_ext,
    traitlets, IPython and contextlib: the user's ``%config`` line or
    ``options.set`` call, not the library code that reacted to it.  Warnings
    point there.  (``warnings.warn``'s ``skip_file_prefixes`` would do this,
    but needs Python 3.12.)"""
    internal = _internal_paths()
    frame = sys._getframe(1)
    while frame.f_back is not None:
        name = frame.f_code.co_filename
        if name.startswith("<"):  # user code (<ipython-input-N>), except IPython's <decorator-gen-N>
            if not name.startswith("<decorator-gen"):
                break
        elif not os.path.abspath(name).startswith(internal):
            break
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno, frame.f_globals.get("__name__", "__main__")


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
        #: The location after the last complete move: a half-move warning
        #: names what still differs from it.
        self._anchor = self._session_location
        #: The user's line that last changed the location, until announced.
        self._pending_change: tuple[str, int, str] | None = None
        self._shell = None
        self._in_cell = False
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

    def reset_session(self, announce: bool = True) -> bool:
        """Start a new session if the store location changed.

        The old store is closed at once, so what runs next uses the new one.
        One line says so, and a warning follows when only one of database
        URL / storage dir moved (they belong together: the metadata rows
        point at values in the storage dir).  Inside a shell's cell both
        wait for the end of the cell; elsewhere they come at once.

        Parameters
        ----------
        announce : bool
            False: no line and no warning.

        Returns
        -------
        bool
            Whether a new session began.
        """
        if self._session_location == self.location():
            return False
        self.close_store()
        self.session_id = new_session_id()
        self._session_location = self.location()
        self.cells_persisted = 0
        if announce:
            self._pending_change = _user_line()
            if not self._in_cell:
                self._announce_location()
        return True

    def _announce_location(self) -> None:
        """Print the store-change line; warn if the store is half-moved."""
        where, self._pending_change = self._pending_change, None
        if where is None:
            return
        new = self.location()
        print(
            f"lineapy_ext: store changed, new session {self.session_id[:8]} "
            f"(database {mask_url(new[0])}, values in {mask_url(new[1])})"
        )
        moved = [new[i] != self._anchor[i] for i in (0, 1)]
        if moved[0] == moved[1]:  # both moved (or both back): consistent
            self._anchor = new
            return
        changed, kept, value = (
            ("database_url", "artifact_storage_dir", new[1]) if moved[0] else ("artifact_storage_dir", "database_url", new[0])
        )
        filename, lineno, module = where
        warnings.warn_explicit(
            f"only {changed} changed, {kept} is still {mask_url(value)!r}: the metadata database and "
            "the storage dir belong together; move both with %lineapy store DIR_URL DB_URL "
            "(or lineapy_ext.options.set_location(dir, db))",
            LineaPyWarning,
            filename,
            lineno,
            module=module,
        )

    def _cell_started(self, *_) -> None:
        self._in_cell = True

    def _cell_ended(self, *_) -> None:
        self._in_cell = False
        self._announce_location()

    # -- shell ---------------------------------------------------------------

    def attach_shell(self, shell) -> None:
        """Register ``options`` with ``shell`` and apply the shell's IPython config.

        After this, ``%config LineaPy`` lists the traits and
        ``%config LineaPy.trait = value`` sets them.
        """
        if self.options not in shell.configurables:
            shell.configurables.append(self.options)
        # The IPython config is where the store is, not a move: no line about it.
        self.options.on_location_change(self._on_location_change, remove=True)
        try:
            self.options.load_ipython_config(getattr(shell, "config", None))
        finally:
            self.options.on_location_change(self._on_location_change)
        if self.reset_session(announce=False):
            self._anchor = self._session_location
        events = shell.events
        if self._cell_ended not in events.callbacks["post_run_cell"]:
            events.register("pre_run_cell", self._cell_started)
            events.register("post_run_cell", self._cell_ended)
        self._shell = shell

    def detach_shell(self, shell) -> None:
        """Undo :meth:`attach_shell` (the options keep their values)."""
        while self.options in shell.configurables:
            shell.configurables.remove(self.options)
        self._unhook_cells(shell)

    def _unhook_cells(self, shell) -> None:
        for event, callback in (("pre_run_cell", self._cell_started), ("post_run_cell", self._cell_ended)):
            if callback in shell.events.callbacks[event]:
                shell.events.unregister(event, callback)
        self._shell, self._in_cell = None, False
        self._announce_location()  # a change made earlier in the unloading cell

    def close(self) -> None:
        """Close the store and forget the location listener."""
        self.options.on_location_change(self._on_location_change, remove=True)
        if self._shell is not None:
            self._unhook_cells(self._shell)
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
