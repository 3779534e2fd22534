"""Replay harness: run cells in a real shell, slice, re-run the slice.

The acceptance test of slicing: the slice runs in a fresh ``python``
process, in an empty directory, and must recompute a value equal to the
one the shell computed.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.shells import new_shell


@dataclass
class Case:
    """One replay case: cells, the variable to slice, what the slice must
    and must not contain, and how to compare (``probe`` is an expression of
    ``v``, evaluated on the value in both processes)."""

    id: str
    cells: list[str]
    target: str
    absent: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    probe: str = "v"
    kwargs: dict = field(default_factory=dict)


#: Libraries whose import makes a case's two interpreters (shell and fresh
#: replay) take a second or more: such cases are marked ``slow``.
HEAVY_IMPORTS = re.compile(r"\b(pandas|sklearn|matplotlib|sqlalchemy|statsmodels|scipy)\b")


def as_params(cases: list[Case]) -> list:
    """``cases`` as pytest parameters named by their ids, those using a heavy library marked slow."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if HEAVY_IMPORTS.search("\n".join(c.cells)) else [])
            for c in cases]


def fresh_shell(tmp_path) -> InteractiveShell:
    """A new shell working in ``tmp_path``; dispose of it with ``close_shell``."""
    shell = new_shell()
    os.chdir(tmp_path)
    # A module another case wrote under the same relative name ('.' on
    # sys.path) must not be found in a stale directory listing.
    importlib.invalidate_caches()
    return shell


def run_cells(shell, cells) -> None:
    for src in cells:
        shell.run_cell(textwrap.dedent(src), store_history=True)


PROBE_SCRIPT = """
import pickle, sys
import numpy as np
def _probe(v):
    return {probe}
with open(sys.argv[1], "wb") as f:
    pickle.dump(_probe({target}), f)
"""


def replay(code: str, target: str, probe: str, workdir) -> object:
    """Run ``code`` in a fresh interpreter in ``workdir``; return the probe."""
    out = os.path.join(str(workdir), "..", f"probe-{os.getpid()}.pkl")
    out = os.path.abspath(out)
    script = code + "\n" + PROBE_SCRIPT.format(probe=probe, target=target)
    proc = subprocess.run([sys.executable, "-c", script, out], cwd=workdir, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise AssertionError(f"slice failed to run:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}")
    with open(out, "rb") as f:
        return pickle.load(f)


def probe_value(value, probe: str):
    import numpy as np  # noqa: F401  (probes may use it)

    ns = {"v": value, "np": np}
    return eval(probe, ns)


def assert_equal(a, b) -> None:
    import numpy as np
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(a, (pd.DataFrame, pd.Series)):
        pd.testing.assert_equal = None
        assert a.equals(b), f"{a!r}\n!=\n{b!r}"
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b, f"{a!r} != {b!r}"
