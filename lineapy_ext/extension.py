"""Loading and unloading the extension into an IPython shell.

``load`` and ``unload`` are exact mirrors, so ``%reload_ext lineapy_ext`` is
clean: the config object is registered with the shell, the capture hooks are
installed through :class:`~lineapy_ext.tracking.Tracker`, and the
``%lineapy`` magic is registered; unloading removes all three.
"""

from __future__ import annotations

import logging
import weakref

log = logging.getLogger(__name__)

# Trackers of unloaded shells, so %reload_ext keeps what was captured
# (with its runtime facts) instead of recovering it from bare history.
_PARKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
    parked = _PARKED.pop(shell, None)
    if parked is not None:
        parked.resume()
        ctx.tracker = parked
    else:
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
        try:
            _PARKED[shell] = ctx.tracker
        except TypeError:  # a shell that cannot be weakly referenced
            pass
        ctx.tracker = None
    ctx.detach_shell(shell)
