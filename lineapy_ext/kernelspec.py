"""The "Python 3 (lineapy)" Jupyter kernelspec.

An ordinary ipykernel whose command line loads the extension at start, so
every cell of every notebook opened with it is captured without a
``%load_ext`` cell.  ``python -m lineapy_ext install-kernel`` calls
:func:`install`; the spec itself is written by ipykernel's own
:func:`~ipykernel.kernelspec.write_kernel_spec`, so it follows the installed
ipykernel (resources, interpreter) exactly.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

KERNEL_NAME = "lineapy"
DISPLAY_NAME = "Python 3 (lineapy)"

#: Added to ipykernel's command line: load the extension at kernel start.
EXTENSION_ARGUMENTS = ["--ext=lineapy_ext"]


def write_spec(path: str | Path, display_name: str = DISPLAY_NAME) -> Path:
    """Write the kernelspec directory (``kernel.json`` + logos) to ``path``.

    Parameters
    ----------
    path : str or Path
        Directory to create; it must not exist yet.
    display_name : str
        Name shown in Jupyter's kernel menu.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from ipykernel.kernelspec import write_kernel_spec

    return Path(
        write_kernel_spec(
            path,
            overrides={
                "display_name": display_name,
                "metadata": {"lineapy_ext": {"extension": "lineapy_ext"}},
            },
            extra_arguments=list(EXTENSION_ARGUMENTS),
        )
    )


def install(
    *,
    user: bool = False,
    prefix: str | None = None,
    sys_prefix: bool = False,
    name: str = KERNEL_NAME,
    display_name: str = DISPLAY_NAME,
) -> str:
    """Install the lineapy kernelspec where Jupyter finds it.

    Parameters
    ----------
    user : bool
        Install for the current user only (``~/.local/share/jupyter``).
    prefix : str, optional
        Install under ``PREFIX/share/jupyter/kernels``.
    sys_prefix : bool
        Install into this Python environment (``sys.prefix``).
    name : str
        Kernel name (the directory name, used by ``--kernel NAME``).
    display_name : str
        Name shown in Jupyter's kernel menu.

    Returns
    -------
    str
        The directory the kernelspec was installed to.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if sys_prefix:
        prefix = sys.prefix
    staging = Path(tempfile.mkdtemp(prefix="lineapy_kernelspec_"))
    try:
        spec_dir = write_spec(staging / name, display_name=display_name)
        return KernelSpecManager().install_kernel_spec(
            str(spec_dir), kernel_name=name, user=user, prefix=prefix
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
