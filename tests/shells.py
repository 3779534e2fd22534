"""Fresh IPython shells for tests, and their clean disposal.

Every ``InteractiveShell`` registers an ``atexit`` handler that resets its
namespace and runs ``gc.collect()``.  With hundreds of shells made by the
suite that work would happen at interpreter exit, shell after shell, and
pytest would seem to hang for minutes after the last test.  Shells made here
use an in-memory history (nothing written to the user's ``~/.ipython``) and
are closed right away by :func:`close_shell`.
"""

from __future__ import annotations

import atexit
import sys

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


def new_shell(config: Config | None = None) -> InteractiveShell:
    """A new singleton ``InteractiveShell`` with in-memory history."""
    InteractiveShell.clear_instance()
    cfg = Config(config) if config is not None else Config()
    cfg.HistoryManager.hist_file = ":memory:"
    return InteractiveShell.instance(config=cfg)


def close_shell(shell: InteractiveShell) -> None:
    """Dispose of ``shell`` now instead of at interpreter exit."""
    atexit.unregister(shell.atexit_operations)
    hm = shell.history_manager
    if hm is not None:
        hm.end_session()
        hm.close() if hasattr(hm, "close") else None
        shell.history_manager = None
    # IPython >= 9.x tees sys.stdout/stderr by patching ``write`` on the stream
    # for the length of run_cell, and restores it outside a ``finally``: a test
    # interrupted inside a cell (pytest-timeout) leaves the patch behind, and
    # every later print would go through this closed shell.
    for stream in (sys.stdout, sys.stderr):
        if "write" in getattr(stream, "__dict__", {}):
            del stream.write
    InteractiveShell.clear_instance()
