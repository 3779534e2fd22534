"""The command line: ``python -m lineapy_ext`` and the ``lineapy-ext`` console script."""

import subprocess
import sys
from pathlib import Path


def _usage(cmd: list[str]) -> str:
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def test_usage_names_the_way_it_was_called():
    assert _usage([sys.executable, "-m", "lineapy_ext"]).startswith("usage: python -m lineapy_ext ")
    script = Path(sys.executable).parent / "lineapy-ext"
    assert script.exists(), "the lineapy-ext console script is not installed (pip install -e .)"
    assert _usage([str(script)]).startswith("usage: lineapy-ext ")
    assert _usage([str(script), "demo"]).startswith("usage: lineapy-ext demo ")
