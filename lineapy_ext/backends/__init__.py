"""Storage backends: the registry and the choice of backend for a save.

A backend is named by a built-in name (``lineapy``, ``mlflow``) or by the
dotted path of a :class:`~lineapy_ext.backends.base.StorageBackend` subclass,
``"pkg.module.Class"`` or ``"pkg.module:Class"``.  Backend modules are
imported only when a save or load needs them, so MLflow is never imported
unless it is used.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from lineapy_ext.exceptions import BackendError

#: Built-in backend name -> dotted path of its class.
BUILTINS = {
    "lineapy": "lineapy_ext.backends.lineapy:LineaPyBackend",
    "mlflow": "lineapy_ext.backends.mlflow:MLflowBackend",
}

#: What to ``pip install`` when a built-in backend's import fails.
INSTALL_HINTS = {
    "mlflow": "pip install 'lineapy-ext[mlflow]'",
}

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")
_classes: dict[str, type] = {}


def _valid_choices() -> str:
    return ", ".join(repr(n) for n in BUILTINS) + " or a dotted path 'pkg.module.Class'"


def backend_class(spec: str) -> type:
    """Import and return the backend class named by ``spec``.

    Parameters
    ----------
    spec : str
        ``lineapy``, ``mlflow``, ``pkg.module.Class`` or ``pkg.module:Class``.

    Raises
    ------
    BackendError
        ``spec`` is malformed, cannot be imported (with an install hint) or
        does not name a backend class.
    """
    if spec in _classes:
        return _classes[spec]
    path = BUILTINS.get(spec, spec)
    if not isinstance(spec, str) or not _DOTTED.match(path):
        raise BackendError(f"unknown storage backend {spec!r}: use {_valid_choices()}")
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = INSTALL_HINTS.get(spec) or f"check that module {module_name!r} is installed and importable"
        raise BackendError(f"cannot import storage backend {spec!r} ({e}): {hint}") from e
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not all(callable(getattr(cls, m, None)) for m in ("save", "load", "delete")):
        raise BackendError(
            f"storage backend {spec!r} is not a class with save/load/delete methods: "
            "subclass lineapy_ext.backends.base.StorageBackend"
        )
    _classes[spec] = cls
    return cls


def make_backend(spec: str, options, **kwargs: Any):
    """Return an instance of backend ``spec`` for the current configuration.

    The configured ``default_storage_backend`` gets
    ``default_storage_backend_options`` as constructor keywords, overridden
    by ``kwargs``.
    """
    cls = backend_class(spec)
    if spec == options.default_storage_backend:
        kwargs = {**options.default_storage_backend_options, **kwargs}
    from_options = getattr(cls, "from_options", None)
    try:
        return from_options(options, **kwargs) if from_options else cls(**kwargs)
    except TypeError as e:
        raise BackendError(f"cannot construct storage backend {spec!r}: {e}") from e


def is_ml_model(value: Any) -> bool:
    """Say whether MLflow has a flavor for ``value`` (False if MLflow is absent)."""
    try:
        from lineapy_ext.backends.mlflow import flavor_of
    except ImportError:
        return False
    try:
        return flavor_of(value) is not None
    except ImportError:
        return False


def choose_backend(value: Any, requested: str | None, options) -> str:
    """Return the name of the backend a save of ``value`` uses.

    Implements the table of the spec: ML models go to MLflow once a
    tracking URI is set (unless ``default_ml_models_storage_backend`` is
    ``lineapy``); other values go to ``default_storage_backend``.  The ML
    model check runs only when a tracking URI is set.

    Parameters
    ----------
    value : object
        The value being saved.
    requested : str or None
        The ``storage_backend`` the caller asked for, if any.
    options : lineapy_ext.config.LineaPy
        The configuration.

    Raises
    ------
    BackendError
        ``mlflow`` was requested but no tracking URI is configured, or
        ``requested`` is not a valid backend name.
    """
    if requested is not None:
        if requested == "mlflow" and not options.mlflow_tracking_uri:
            raise BackendError(
                "storage_backend='mlflow' needs an MLflow tracking URI: "
                "run lineapy_ext.options.set('mlflow_tracking_uri', URI) or "
                "%config LineaPy.mlflow_tracking_uri = URI"
            )
        if requested not in BUILTINS and not _DOTTED.match(str(requested)):
            raise BackendError(f"unknown storage backend {requested!r}: use {_valid_choices()}")
        return requested
    if options.mlflow_tracking_uri and is_ml_model(value):
        return options.effective_ml_models_storage_backend
    return options.default_storage_backend
