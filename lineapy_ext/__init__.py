"""lineapy_ext: capture IPython sessions, save values with their slice.

``%load_ext lineapy_ext`` starts capturing every executed cell;
``%lineapy save VAR NAME`` stores the value of ``VAR`` with the minimal
plain-Python code that recomputes it.  The same is available as a Python API::

    import lineapy_ext
    art = lineapy_ext.save(model, "clf")
    lineapy_ext.get("clf").get_value()

Heavy submodules are imported lazily so that importing the package (and
loading the extension) stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "artifact_store",
    "cleanup",
    "delete",
    "get",
    "get_function",
    "load_ipython_extension",
    "options",
    "save",
    "to_pipeline",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython):
    """Called by ``%load_ext lineapy_ext``: start capturing, register magics."""
    from lineapy_ext import extension

    extension.load(ipython)


def unload_ipython_extension(ipython):
    """Called by ``%unload_ext lineapy_ext``: undo exactly what loading did."""
    from lineapy_ext import extension

    extension.unload(ipython)


def __getattr__(name):
    # PEP 562 lazy attributes: the API pulls in SQLAlchemy and fsspec, which
    # the extension only needs once something is saved or loaded.
    if name in ("save", "get", "delete", "artifact_store", "Artifact", "cleanup"):
        from lineapy_ext import api

        return getattr(api, name)
    if name == "get_function":
        from lineapy_ext.codegen import get_function

        return get_function
    if name == "to_pipeline":
        from lineapy_ext.codegen.pipeline import to_pipeline

        return to_pipeline
    if name == "options":
        from lineapy_ext.context import get_context

        return get_context().options
    raise AttributeError(f"module 'lineapy_ext' has no attribute {name!r}")
