"""Connectivity between the capture hooks and the slicing engine.

This is the only engine-side module that touches the IPython shell: it
installs :mod:`kernel_hooks` on a shell, feeds each captured cell to the
dependency graph (:mod:`lineapy_ext.analysis`), and answers the questions the
API asks when a value is saved: which variables hold this value, and what is
the slice that recomputes them.

Public surface used by the rest of the package::

    tracker = Tracker(shell)          # installs the hooks
    tracker.close()                   # removes them (symmetric)
    tracker.names_for_value(value)    # -> list[str], names bound to value
    tracker.slice(names)              # -> Slice
    tracker.session_code()            # -> str, everything that ran
    tracker.executed_cells()          # -> list[ExecutedCell]
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ExecutedCell:
    """One executed cell as the store keeps it."""

    execution_count: int | None
    source: str
    success: bool


@dataclass
class Slice:
    """The result of slicing: plain Python that recomputes ``names``.

    Attributes
    ----------
    code : str
        The slice as one script.
    cells : list of (int or None, str)
        The same code split by the cell it came from, as
        ``(execution_count, code)`` pairs in execution order (for notebook export).
    names : list of str
        The variables the slice was cut for; running ``code`` binds them.
    """

    code: str
    cells: list[tuple[int | None, str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
