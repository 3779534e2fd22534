"""Loading and unloading the extension into an IPython shell.

``load`` and ``unload`` are exact mirrors, so ``%reload_ext lineapy_ext`` is
clean: the config object is registered with the shell, the capture hooks are
installed through :class:`~lineapy_ext.tracking.Tracker`, and the
``%lineapy`` magic is registered; unloading removes all three.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def load(shell) -> None:
    """Attach lineapy_ext to ``shell`` (idempotent)."""
    from lineapy_ext import magics
    from lineapy_ext.context import get_context
    from lineapy_ext.tracking import Tracker

    ctx = get_context()
    if ctx.tracker is not None:
        if ctx.tracker.shell is shell:
            return
        unload(ctx.tracker.shell)
    ctx.attach_shell(shell)
    ctx.tracker = Tracker(shell)
    magics.register(shell)


def unload(shell) -> None:
    """Detach lineapy_ext from ``shell``: undo everything :func:`load` did."""
    from lineapy_ext import magics
    from lineapy_ext.context import get_context

    ctx = get_context()
    magics.unregister(shell)
    if ctx.tracker is not None:
        ctx.tracker.close()
        ctx.tracker = None
    ctx.detach_shell(shell)
