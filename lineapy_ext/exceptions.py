"""The exceptions lineapy_ext raises.

Every library failure derives from :class:`LineaPyError`, so callers can catch
one class.  User mistakes made through the magics are turned into IPython's
``UsageError`` by the magics layer; the API raises these classes (several of
them also derive from the matching builtin, e.g. ``KeyError``/``ValueError``,
so ordinary ``except`` clauses keep working).

Messages are one line: what was wrong and how to fix it.
"""

from __future__ import annotations


class LineaPyError(Exception):
    """Base class of every error raised by lineapy_ext."""


class ConfigError(LineaPyError, ValueError):
    """A configuration value is unusable (bad URL, unreachable store...)."""


class InvalidNameError(LineaPyError, ValueError):
    """An artifact name is not allowed (path separators, ``..``, empty...)."""


class ArtifactNotFoundError(LineaPyError, KeyError):
    """No artifact (or no such version of it) exists in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SerializationError(LineaPyError, TypeError):
    """A value cannot be pickled (open socket, generator, lock...)."""


class StorageError(LineaPyError, OSError):
    """Reading or writing a value or the metadata database failed."""


class CorruptedValueError(StorageError):
    """A value file does not match the checksum recorded at save time."""


class BackendError(LineaPyError):
    """A storage backend is unknown, not installed or misconfigured."""


class SliceError(LineaPyError):
    """The slice of a value cannot be built."""


class ExportError(LineaPyError, ValueError):
    """A slice cannot be exported to the given path (bad suffix, unwritable file)."""


class CodegenError(LineaPyError, ValueError):
    """Code cannot be generated as asked (a parameter the slices do not read, an artifact without a slice...)."""


class LineaPyWarning(UserWarning):
    """Something works but is probably not what the user wants."""


class InvalidVersionError(LineaPyError, ValueError):
    """A version argument is not a positive int, ``"latest"`` or ``"all"``."""


class ValueGoneError(BackendError):
    """The artifact's row is kept but its value is gone from where it was stored (e.g. deleted in MLflow).

    ``slice_code`` is the slice that recomputes the value ("" when unknown).
    """

    def __init__(self, message: str, slice_code: str = "") -> None:
        super().__init__(message)
        self.slice_code = slice_code
