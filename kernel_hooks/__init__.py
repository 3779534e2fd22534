"""kernel_hooks: capture of executed IPython cells.

The capture layer of lineapy_ext, kept separate so that it can be reasoned
about (and benchmarked) on its own: it records what ran, with cheap runtime
facts, and hands each finished cell to a listener.  It never imports
``lineapy_ext``.

>>> from kernel_hooks import Capture
>>> cap = Capture(shell, on_cell=print)
>>> cap.install()
"""

from kernel_hooks.capture import (
    ATOMIC_TYPES,
    Binding,
    Capture,
    CellRecord,
    StatementRecord,
    is_ipython_name,
    statement_records,
)

__all__ = ["ATOMIC_TYPES", "Binding", "Capture", "CellRecord", "StatementRecord", "is_ipython_name", "statement_records"]
