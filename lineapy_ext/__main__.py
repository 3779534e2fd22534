"""Command line of lineapy_ext: ``python -m lineapy_ext COMMAND``.

A small argparse dispatcher; each command lives in its own module
(:mod:`lineapy_ext.kernelspec`, :mod:`lineapy_ext.demo`,
:mod:`lineapy_ext.store.cleanup`).
"""

from __future__ import annotations

import argparse
import os
import sys


def _install_kernel(args) -> int:
    from lineapy_ext import kernelspec

    where = kernelspec.install(
        user=args.user,
        prefix=args.prefix,
        sys_prefix=args.sys_prefix,
        name=args.name,
        display_name=args.display_name,
    )
    print(f"Installed kernelspec {args.name!r} ({args.display_name}) in {where}")
    return 0


def _demo(args) -> int:
    from lineapy_ext import demo

    return demo.main(home=args.home, notebooks=args.notebooks, keep=args.keep)


def _cleanup(args) -> int:
    from lineapy_ext.store.cleanup import cleanup_temp_files
    from lineapy_ext.context import get_context

    from lineapy_ext.exceptions import LineaPyError

    options = get_context().options
    try:
        found = cleanup_temp_files(options, older_than=args.older_than, dry_run=args.dry_run)
    except LineaPyError as e:
        print(f"lineapy_ext cleanup: {e}", file=sys.stderr)
        return 1
    for path in found:
        print(path)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(found)} leftover(s) of interrupted saves and deletes "
          f"(database {options.masked('database_url')}, storage {options.masked('artifact_storage_dir')})")
    return 0


def _prog() -> str:
    """How the user called us: the ``lineapy-ext`` console script or ``python -m``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "lineapy-ext" if name.startswith("lineapy-ext") else "python -m lineapy_ext"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command-line argument parser (one sub-parser per command).

    Parameters
    ----------
    prog : str, optional
        The program name usage lines show; default: as called
        (``lineapy-ext`` or ``python -m lineapy_ext``).
    """
    parser = argparse.ArgumentParser(
        prog=prog or _prog(),
        description="lineapy_ext: save values from Jupyter with the code that computes them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_install_kernel(commands)
    _add_demo(commands)
    _add_cleanup(commands)
    return parser


def _add_install_kernel(commands) -> None:
    from lineapy_ext import kernelspec

    kernel = commands.add_parser(
        "install-kernel",
        help='install the "Python 3 (lineapy)" Jupyter kernel',
        description="Install a Jupyter kernelspec that loads lineapy_ext at start.",
    )
    where = kernel.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix")
    where.add_argument("--prefix", metavar="P", help="install under P/share/jupyter/kernels")
    kernel.add_argument("--name", default=kernelspec.KERNEL_NAME, help="kernel name (default: %(default)s)")
    kernel.add_argument(
        "--display-name",
        default=kernelspec.DISPLAY_NAME,
        help="name shown in Jupyter (default: %(default)s)",
    )
    kernel.set_defaults(run=_install_kernel)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the example notebooks headless in real kernels and report",
        description=(
            "Execute the example notebooks in fresh kernels on the embedded default "
            "store (SQLite + local folder): save in one kernel, get and re-run the "
            "slice in another, and print what happened."
        ),
    )
    demo.add_argument(
        "--home",
        metavar="DIR",
        help="LINEAPY_HOME_DIR for the kernels (default: a temporary directory)",
    )
    demo.add_argument("--notebooks", metavar="DIR", help="notebook directory (default: the bundled notebooks/)")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary home (store, executed notebooks, exported slices); its path is printed",
    )
    demo.set_defaults(run=_demo)


def _add_cleanup(commands) -> None:
    from lineapy_ext.store.cleanup import DEFAULT_OLDER_THAN

    cleanup = commands.add_parser(
        "cleanup",
        help="remove temporary files left by interrupted saves",
        description=(
            "List and remove the temporary value files that saves killed mid-write left "
            "under artifact_storage_dir (configured as for the kernels: env vars, "
            "lineapy_config.json in LINEAPY_HOME_DIR)."
        ),
    )
    cleanup.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    cleanup.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_OLDER_THAN,
        metavar="SECONDS",
        help="minimum age of files written on another machine (default: %(default)s); "
        "files of this machine go once their process has ended",
    )
    cleanup.set_defaults(run=_cleanup)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m lineapy_ext`` with ``argv``; return the exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
