"""The storage backend interface: how a value is written, read and removed.

A backend turns a value into something stored somewhere and back.  The
artifact store calls it; it never touches the metadata database.  What
:meth:`StorageBackend.save` returns is kept in the artifact row and handed
back to :meth:`~StorageBackend.load`, :meth:`~StorageBackend.delete` and
:meth:`~StorageBackend.exists`, so a backend needs no state of its own
between a save and a later load in another process.

Writing a custom backend::

    from lineapy_ext.backends.base import StorageBackend

    class DictBackend(StorageBackend):
        '''Keeps values in a dict (for tests).'''
        data = {}

        def save(self, value, name, **kwargs):
            key = f"{name}-{len(self.data)}"
            self.data[key] = value
            return {"location": key}

        def load(self, metadata):
            return self.data[metadata["location"]]

        def delete(self, metadata):
            self.data.pop(metadata["location"], None)

        def exists(self, metadata):
            return metadata["location"] in self.data

    lineapy_ext.save(x, "x", storage_backend="mypkg.backends.DictBackend")
"""

from __future__ import annotations

from typing import Any


class StorageBackend:
    """Base class of storage backends.

    Subclasses are found by dotted path (``"pkg.module.Class"`` or
    ``"pkg.module:Class"``) or by the built-in names ``lineapy`` and
    ``mlflow``.  They are constructed with :meth:`from_options`.

    Parameters
    ----------
    **kwargs
        Constructor options: for the configured default backend, the
        ``default_storage_backend_options`` trait.  Never stored in the
        metadata database (they may hold credentials).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.options = dict(kwargs)

    @classmethod
    def from_options(cls, options, **kwargs: Any) -> "StorageBackend":
        """Build the backend for the current configuration.

        Parameters
        ----------
        options : lineapy_ext.config.LineaPy
            The live configuration (storage dir, storage_options, URIs).
        **kwargs
            Constructor options (see the class docstring).
        """
        return cls(**kwargs)

    def save(self, value: Any, name: str, **kwargs: Any) -> dict:
        """Store ``value`` for artifact ``name``.

        Parameters
        ----------
        value : object
            The value to store.
        name : str
            The artifact name, already validated (letters, digits, ``_ - .``).
        **kwargs
            Backend-specific options of this save (``save(..., **kwargs)``,
            ``%lineapy save ... --KEY VALUE``).

        Returns
        -------
        dict
            JSON-serialisable metadata, kept with the artifact.  Well-known
            keys: ``location`` (where the value went, shown to the user),
            ``size`` (bytes), ``checksum``; every other key is kept as-is.
            Must not contain secrets.

        Raises
        ------
        lineapy_ext.exceptions.SerializationError
            The value cannot be stored by this backend; nothing was written.
        """
        raise NotImplementedError

    def reserve(self, name: str) -> dict:
        """Choose where the next value of ``name`` will go, before anything is written.

        The store records the answer (its ``location``) in a row in state
        ``writing`` before calling :meth:`save_reserved`, so a save that is
        interrupted can be found and undone (:meth:`discard`).  The default,
        ``{}``, is for backends that cannot say in advance.
        """
        return {}

    def save_reserved(self, value: Any, name: str, reserved: dict, **kwargs: Any) -> dict:
        """Store ``value`` where :meth:`reserve` said (default: :meth:`save`)."""
        return self.save(value, name, **kwargs)

    def discard(self, reserved: dict) -> None:
        """Remove whatever an interrupted :meth:`save_reserved` left (default: nothing known)."""

    def load(self, metadata: dict) -> Any:
        """Return the value saved with ``metadata`` (what :meth:`save` returned)."""
        raise NotImplementedError

    def delete(self, metadata: dict) -> None:
        """Remove the stored value; a value already gone is not an error."""
        raise NotImplementedError

    def exists(self, metadata: dict) -> bool:
        """Say whether the value saved with ``metadata`` is still stored."""
        raise NotImplementedError
