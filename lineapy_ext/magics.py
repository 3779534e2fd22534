"""The ``%lineapy`` line magic: the notebook face of the Python API.

One line magic with sub-commands (``save get code list delete export
config``).  Each sub-command is a small function whose arguments are declared
with IPython's :mod:`~IPython.core.magic_arguments`; the magic looks the
sub-command up in :data:`SUBCOMMANDS`, parses the rest of the line with that
function's parser, and calls it.  Sub-commands only parse, call
:mod:`lineapy_ext.api` and format: mistakes a user makes (unknown variable or
artifact, missing version, bad name, wrong arguments) become one-line
``UsageError`` messages instead of tracebacks.

This module also owns tab completion (sub-commands, each sub-command's flags
from its parser and their values, artifact names, variables), and
:func:`register`/:func:`unregister`, which are exact mirrors so that
``%reload_ext lineapy_ext`` is clean.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import html
import re
from typing import Callable

from IPython.core.completer import completion_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import (
    ArgDecorator,
    argument,
    magic_arguments,
)

from lineapy_ext.exceptions import LineaPyError

_MAGIC = "lineapy"


class _exclusive(ArgDecorator):
    """Start a required mutually exclusive group for the arguments below it.

    ``magic_arguments`` has groups but no exclusive ones; the arguments that
    follow this decorator in the source are added to the group.
    """

    def add_to_parser(self, parser, group):
        return parser.add_mutually_exclusive_group(required=True)


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


class Table:
    """A small table that renders as HTML in Jupyter and aligned text elsewhere.

    Parameters
    ----------
    columns : list of str
        Column headers.
    rows : list of tuple
        One tuple of cell values per row (anything ``str()`` can format).
    empty : str
        What to show when there are no rows.
    """

    def __init__(self, columns: list[str], rows: list[tuple], empty: str = "(empty)"):
        self.columns = list(columns)
        self.rows = [tuple("" if v is None else str(v) for v in row) for row in rows]
        self.empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        widths = [
            max(len(col), *(len(row[i]) for row in self.rows))
            for i, col in enumerate(self.columns)
        ]
        lines = [self.columns, ["-" * w for w in widths], *self.rows]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
            for line in lines
        )

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.empty)}</p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def format_size(size: int | None) -> str:
    """Human-readable byte count: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _when(created_at) -> str:
    try:
        return created_at.isoformat(sep=" ", timespec="seconds")
    except AttributeError:
        return str(created_at)


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def literal(text: str):
    """Parse a ``--KEY VALUE`` value: a Python literal if it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def split_backend_kwargs(argv: list[str], known: set[str]) -> tuple[list[str], dict]:
    """Separate ``--KEY VALUE`` pairs the parser does not know from ``argv``.

    Parameters
    ----------
    argv : list of str
        The split argument line.
    known : set of str
        Option strings the sub-command declares itself (``--backend``...).

    Returns
    -------
    (list of str, dict)
        The arguments for the parser, and the extra pairs with their values
        parsed by :func:`literal`.  ``--KEY=VALUE`` is accepted too.

    Raises
    ------
    UsageError
        If an unknown option has no value.
    """
    rest: list[str] = []
    extra: dict = {}
    tokens = iter(argv)
    for token in tokens:
        key, eq, value = token.partition("=")
        if not token.startswith("--") or key in known or token == "--":
            rest.append(token)
            continue
        if not eq:
            value = next(tokens, None)
            if value is None:
                raise UsageError(f"option {token} needs a value: {token} VALUE")
        name = key[2:].replace("-", "_")
        if not name.isidentifier():
            raise UsageError(f"{key!r} is not a valid keyword for the storage backend")
        extra[name] = literal(value)
    return rest, extra


# ---------------------------------------------------------------------------
# Sub-commands.  Each takes the shell and the parsed arguments; the docstring
# is the description ``%lineapy SUB --help`` shows.
# ---------------------------------------------------------------------------


def _api():
    # Imported on first use: the API pulls in SQLAlchemy and fsspec, which
    # loading the extension must not pay for.
    from lineapy_ext import api

    return api


def _user_value(shell, var: str):
    ns = shell.user_ns
    if var in ns:
        return ns[var]
    visible = (k for k in ns if not k.startswith("_") and k not in shell.user_ns_hidden)
    raise UsageError(f"name {var!r} is not defined{_did_you_mean(var, visible)}")


@magic_arguments("lineapy save")
@argument("var", metavar="VAR", help="the variable whose value is saved")
@argument("name", metavar="NAME", nargs="?", help="artifact name (default: VAR)")
@argument(
    "--backend",
    metavar="BACKEND",
    help="lineapy, mlflow or pkg.module.Class (default: from the config)",
)
@argument("--verify", action="store_true", help="re-run the slice in a fresh interpreter now and print the verdict")
def _save(shell, args, backend_kwargs):
    """Save the value of VAR as artifact NAME, with the code that computes it.

    Extra --KEY VALUE pairs are passed to the storage backend (for mlflow, the
    log_model keyword arguments, e.g. --registered_model_name clf); values are
    Python literals or plain strings.
    """
    value = _user_value(shell, args.var)
    art = _api().save_value(
        value,
        args.name or args.var,
        var_names=[args.var],
        storage_backend=args.backend,
        backend_kwargs=backend_kwargs,
        verify=True if args.verify else None,
    )
    location = _location(art)
    print(
        f"Saved {art.name!r} version {art.version} (backend {art.storage_backend})"
        + (f" -> {location}" if location else "")
    )
    if args.verify or _verify_mode() == "on":
        print(f"Verification: {art.verdict}")


def _verify_mode() -> str:
    from lineapy_ext.context import get_context

    return get_context().options.verify_slices


@magic_arguments("lineapy verify")
@argument("name", metavar="NAME", help="artifact name")
@argument("--version", type=int, metavar="N", help="version (default: latest)")
@argument("--repair", action="store_true",
          help="if the slice differs, fails or is nondeterministic, find the smallest addition "
          "from the session that verifies and store it")
@argument("--timeout", type=float, metavar="SECONDS", help="per run (default: the verify_timeout option)")
@argument("--max-runs", dest="max_runs", type=int, metavar="N", help="bound on the runs of a repair (default 12)")
def _verify(shell, args, _):
    """Re-run the slice of NAME in a fresh interpreter and record whether it recomputes the saved value."""
    art = _api().find(args.name, version=args.version)
    verdict = art.verify(repair=args.repair, timeout=args.timeout, max_runs=args.max_runs)
    repaired = getattr(art, "last_repair", None)
    if repaired is not None and repaired.found:
        added = repaired.added
        print(f"Repaired the slice of {art.name!r} version {art.version}: {len(added)} statement(s) added "
              f"({repaired.runs} verification runs):")
        for s in added:
            print(f"    [{s.execution_count if s.execution_count is not None else '?'}] "
                  + s.source.replace("\n", "\n        "))
        print("The slicer left these out: a bug report to lineapy_ext should contain them.")
    print(f"{art.name!r} version {art.version}: {verdict}")
    if repaired is not None and not repaired.found:
        print(repaired.verdict.detail)
        for note in repaired.notes:
            print(f"  ({note})")


def _location(art) -> str:
    meta = art.get_metadata()
    if meta.get("model_uri"):
        return str(meta["model_uri"])
    location = meta.get("location") or ""
    if location and art.storage_backend == "lineapy":
        # Stored relative to the storage dir; show where that is now.
        from lineapy_ext.context import get_context

        base = str(get_context().options.masked("artifact_storage_dir")).rstrip("/")
        return f"{base}/{location}"
    return location


@magic_arguments("lineapy get")
@argument("name", metavar="NAME", help="artifact name, or an MLflow registry URI (models:/MODEL@ALIAS, models:/MODEL/N)")
@argument("--version", type=int, metavar="N", help="version (default: latest)")
@argument("--alias", metavar="ALIAS", help="the version that logged what this MLflow registry alias points at now")
@argument("--registered-version", dest="registered_version", type=int, metavar="N",
          help="the version that logged version N of its MLflow registered model")
@argument("--stage", metavar="STAGE", help="legacy MLflow stage (Production, Staging): its latest version")
@argument("--as", dest="as_var", metavar="VAR", help="variable to bind (default: NAME)")
def _get(shell, args, _):
    """Load artifact NAME and bind its value in the user namespace."""
    if args.name.startswith("models:/"):
        value = _get_registry_model(shell, args)
        return None if _is_bare_magic_statement() else value
    target = args.as_var or args.name
    if not target.isidentifier():
        raise UsageError(f"cannot bind to {target!r}: it is not a valid variable name; use --as VAR")
    _refuse_shell_name(target)
    via_registry = args.alias is not None or args.registered_version is not None or args.stage is not None
    art = _api().get(args.name, version=args.version, alias=args.alias,
                     registered_version=args.registered_version, stage=args.stage)
    value = _value_or_slice(art)
    replaced = _replacing_note(shell, target, value)
    shell.push({target: value}, interactive=True)
    print(
        f"Loaded {art.name!r} version {art.version} into {target!r} "
        f"(saved {_when(art.created_at)} by session {art.session_id})"
        + (_registry_note(art.get_metadata()) if via_registry else "") + replaced
    )
    # ``x = %lineapy get NAME`` needs the value; a bare ``%lineapy get NAME``
    # must not also display it as Out[n] (nor keep it in the Out history).
    return None if _is_bare_magic_statement() else value


#: Names IPython itself keeps in the namespace (history, output cache, exit): never rebound by get.
_SHELL_NAMES = re.compile(r"In|Out|get_ipython|exit|quit|_|__|___|_i{1,3}|_i\d+|_\d+|_ih|_oh|_dh")


def _refuse_shell_name(target: str) -> None:
    """Raise UsageError when ``target`` is one of IPython's own names (``In``, ``Out``, ``_i3``, ``_5``...)."""
    if _SHELL_NAMES.fullmatch(target):
        raise UsageError(f"cannot bind to {target!r}: it is a name IPython itself uses "
                         "(In, Out, get_ipython, exit, quit, _, _N, _iN); use --as VAR with another name")


def _replacing_note(shell, target: str, value) -> str:
    """The end of ``get``'s line when binding ``value`` to ``target`` replaces a different value ("" if not).

    Silent replacement of a user's variable is the surprise this guards
    against; an equal value (the same artifact got twice) is no news.
    """
    ns = shell.user_ns
    if target not in ns or ns[target] is value:
        return ""
    from lineapy_ext.compare import first_difference

    old = ns[target]
    try:
        if first_difference(old, value) is None:
            return ""
        judged = "a different"
    except Exception:  # NotComparable or a hostile __eq__: say so rather than replace in silence
        judged = "the earlier"
    return f"; it replaced {judged} {target!r} ({type(old).__name__})"


def _value_or_slice(art):
    """``art.get_value()``; when the value is gone (deleted in MLflow), print the slice that recomputes it first."""
    from lineapy_ext.exceptions import ValueGoneError

    try:
        return art.get_value()
    except ValueGoneError as e:
        if e.slice_code:
            print("The slice that recomputes it:\n" + e.slice_code.rstrip("\n"))
        raise


def _registry_note(meta: dict) -> str:
    aliases = "".join(f" @{a}" for a in meta.get("registered_model_aliases") or [])
    return f"; registered model {meta.get('registered_model_name')!r} version {meta.get('registered_model_version')}{aliases}"


def _get_registry_model(shell, args):
    """``%lineapy get models:/...``: any registry model, with the slice when lineapy logged it."""
    model = _api().get(args.name, version=args.version, alias=args.alias,
                       registered_version=args.registered_version, stage=args.stage)
    target = args.as_var or model.registered_name or ""
    if not target.isidentifier():
        raise UsageError(f"cannot bind {args.name} to {target!r}: it is not a valid variable name; use --as VAR")
    _refuse_shell_name(target)
    value = model.get_value()
    replaced = _replacing_note(shell, target, value)
    shell.push({target: value}, interactive=True)
    art = model.artifact
    if art is not None:
        tail = (f"; logged by lineapy artifact {art.name!r} version {art.version}: "
                f"%lineapy code {art.name} --version {art.version} shows its slice")
    else:
        tail = "; no slice is known: it was not logged by lineapy_ext"
    print(f"Loaded {args.name} ({model.describe()}, {model.flavor} flavor) into {target!r}{tail}{replaced}")
    return value


def _is_bare_magic_statement() -> bool:
    """Whether the running top-level statement is a bare ``%lineapy ...`` line.

    Asks the capture which statement of the cell is running: a bare magic
    line is an expression statement whose value is the
    ``get_ipython().run_line_magic('lineapy', ...)`` call itself.  False
    when it cannot tell (no tracker, not inside a cell, or anything else).
    """
    try:
        from lineapy_ext.context import get_context

        tracker = get_context().tracker
        cell = tracker.capture.current_cell() if tracker is not None else None
        if cell is None or cell.completed >= len(cell.statements):
            return False
        node = cell.statements[cell.completed].node
    except Exception:  # the capture is best effort; returning the value is safe
        return False
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return False
    call = node.value
    return (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_line_magic"
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and call.args[0].value == _MAGIC
    )


@magic_arguments("lineapy code")
@argument("name", metavar="NAME", help="artifact name")
@argument("--version", type=int, metavar="N", help="version (default: latest)")
def _code(shell, args, _):
    """Print the slice: the code that recomputes artifact NAME."""
    art = _api().find(args.name, version=args.version)
    verdict = art.verdict
    if verdict is not None:
        print(f"# verification: {verdict}")
    print(art.get_code())


@magic_arguments("lineapy list")
@argument(
    "pattern",
    metavar="PATTERN",
    nargs="?",
    help="show only names matching this glob (or containing this text)",
)
def _list(shell, args, _):
    """List saved artifacts: the latest version of each name."""
    pattern = args.pattern
    rows, listed = [], []
    for art in _api().artifact_store():
        if pattern and not _matches(art.name, pattern):
            continue
        listed.append(art)
        rows.append(
            (
                art.name,
                art.version,
                _version_count(art),
                art.storage_backend,
                art.value_type,
                format_size(art.size),
                _when(art.created_at),
            )
        )
    columns = ["name", "version", "versions", "backend", "type", "size", "saved at"]
    rows, columns = _with_verification_column(rows, columns)
    rows, columns = _with_registry_column(rows, columns, listed)
    empty = f"no artifacts match {pattern!r}" if pattern else "no artifacts saved yet"
    return _ArtifactTable(columns, rows, empty=empty, artifacts=listed)


class _ArtifactTable(Table):
    """The ``list`` table; in Jupyter each row also opens its artifact's lineage picture."""

    def __init__(self, columns, rows, empty, artifacts):
        super().__init__(columns, rows, empty=empty)
        self.artifacts = list(artifacts)

    def _repr_html_(self) -> str:
        if not self.rows:
            return super()._repr_html_()
        from lineapy_ext.lineage import lineage_details_html

        head = "".join(f"<th>{html.escape(c)}</th>" for c in [*self.columns, "lineage"])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row)
            + f"<td>{lineage_details_html(art, i)}</td></tr>"
            for i, (row, art) in enumerate(zip(self.rows, self.artifacts))
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _with_verification_column(rows: list, columns: list) -> tuple[list, list]:
    """Add a ``verification`` column once any listed artifact has a verdict (or one is pending)."""
    from lineapy_ext.context import get_context
    from lineapy_ext.verify import current_verdict

    db = get_context().store.db
    cells = []
    for row in rows:
        record = db.get_artifact(row[0], int(row[1]))
        verdict = current_verdict(db, record) if record is not None else None
        if verdict is None:
            cells.append("")
        elif verdict.status == "verified":
            cells.append(f"verified {verdict.seconds:.1f} s" if verdict.seconds is not None else "verified")
        else:
            cells.append(verdict.status)
    if not any(cells):
        return rows, columns
    return [(*row, cell or "unverified") for row, cell in zip(rows, cells)], [*columns, "verification"]


def _matches(name: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _with_registry_column(rows: list, columns: list, artifacts: list) -> tuple[list, list]:
    """Add a ``registry`` column (name, version, aliases as they are now) when an artifact is registered in MLflow."""
    if not any(a.storage_backend == "mlflow" for a in artifacts):
        return rows, columns  # nothing to ask MLflow (and no import of it)
    cells = []
    for art in artifacts:
        meta = art.get_metadata() if art.storage_backend == "mlflow" else {}
        name = meta.get("registered_model_name")
        status = meta.get("registry_status", "")
        if not name:
            cells.append("")
        elif status == "registered":
            cells.append(f"{name} v{meta.get('registered_model_version')}"
                         + "".join(f" @{a}" for a in meta.get("registered_model_aliases") or []))
        else:
            short = ("registry unreachable" if "cannot reach" in status
                     else "model deleted in MLflow" if "no registered model" in status else status.split(":")[0])
            cells.append(f"{name} v{meta.get('registered_model_version')} ({short})")
    if not any(cells):
        return rows, columns
    return [(*row, cell) for row, cell in zip(rows, cells)], [*columns, "registry"]


def _version_count(art):
    return art.get_metadata().get("version_count", "")


@magic_arguments("lineapy delete")
@argument("name", metavar="NAME", help="artifact name")
@_exclusive()
@argument("--version", type=int, metavar="N", help="delete this version")
@argument("--latest", action="store_true", help="delete the latest version")
@argument("--all", action="store_true", help="delete every version")
def _delete(shell, args, _):
    """Delete versions of artifact NAME, value files included."""
    which = "all" if args.all else "latest" if args.latest else args.version
    deleted = _api().delete(args.name, version=which)
    what = {"all": "all versions", "latest": "the latest version"}.get(
        which, f"version {which}"
    )
    detail = ""
    if isinstance(deleted, (list, tuple)) and deleted:
        detail = " (" + ", ".join(str(v) for v in deleted) + ")"
    print(f"Deleted {what} of {args.name!r}{detail}")


@magic_arguments("lineapy export")
@argument("names", metavar="NAME", nargs="+", help="artifact name (several with --function)")
@argument("--version", type=int, metavar="N", help="version (default: latest)")
@argument(
    "-o",
    "--output",
    metavar="PATH",
    help="a .py script or .ipynb notebook (default: NAME.py); its folder is created if the folder's parent exists",
)
@argument("--function", action="store_true",
          help="write a module of functions recomputing the artifacts (shared code once), not the bare slice")
@argument("--param", dest="params", action="extend", nargs="+", default=[], metavar="VAR",
          help="with --function: variables of the slices that become keyword parameters")
@argument("--force", action="store_true", help="overwrite the file if it exists")
def _export(shell, args, _):
    """Write the slice of artifact NAME as a script or notebook, or with --function a module of functions."""
    from lineapy_ext.export import write_export, write_function_module

    if args.function:
        what = [(n, args.version) if args.version else n for n in args.names]
        path = write_function_module(args.output or f"{args.names[0]}.py", what, args.params, force=args.force)
        print(f"Wrote functions recomputing {', '.join(map(repr, args.names))} to {path} "
              f"(run_all(), get_<name>(){'; parameters ' + ', '.join(args.params) if args.params else ''})")
        return
    if len(args.names) > 1 or args.params:
        raise UsageError("several NAMEs and --param need --function: %lineapy export NAME... --function -o mod.py")
    art = _api().find(args.names[0], version=args.version)
    path = write_export(args.output or f"{art.name}.py", art, force=args.force)
    print(f"Wrote the slice of {art.name!r} version {art.version} to {path}")


@magic_arguments("lineapy pipeline")
@argument("names", metavar="NAME", nargs="+", help="artifact names (latest versions)")
@argument("--to", required=True, choices=("script", "dvc", "airflow"), help="the kind of pipeline")
@argument("-o", "--output", required=True, metavar="DIR", help="directory to write (created if its parent exists)")
@argument("--param", dest="params", action="extend", nargs="+", default=[], metavar="VAR",
          help="variables of the slices that become pipeline parameters")
@argument("--force", action="store_true", help="overwrite files already in DIR")
def _pipeline(shell, args, _):
    """Write a pipeline recomputing the artifacts that runs without lineapy_ext (script, DVC or Airflow)."""
    from lineapy_ext.codegen.pipeline import to_pipeline

    files = to_pipeline(args.names, args.to, args.output, args.params, force=args.force)
    kind = {"script": "a script", "dvc": "a DVC", "airflow": "an Airflow"}[args.to]
    print(f"Wrote {kind} pipeline for {', '.join(map(repr, args.names))} to {files[0].parent}: "
          + ", ".join(f.name for f in files))


@magic_arguments("lineapy lineage")
@argument("name", metavar="NAME", help="artifact name")
@argument("--version", type=int, metavar="N", help="version (default: latest)")
def _lineage(shell, args, _):
    """Show where artifact NAME came from: the cells, artifacts and files it was built from.

    A picture in Jupyter, an indented text tree in a terminal.
    """
    return _api().find(args.name, version=args.version).lineage()


@magic_arguments("lineapy config")
def _config(shell, args, _):
    """Show the effective configuration and where each value came from."""
    from lineapy_ext.context import get_context

    rows = get_context().options.describe()
    return Table(["trait", "value", "source"], rows, empty="no configuration")


@magic_arguments("lineapy store")
@argument("dir_url", metavar="DIR_URL", help="where values go: a local path or an fsspec URL (s3://bucket/dir)")
@argument("db_url", metavar="DB_URL", help="the metadata database: sqlite:///path or postgresql://user@host/db")
def _store(shell, args, _):
    """Move both halves of the store at once: values to DIR_URL, metadata to DB_URL.

    One new session begins there (one line says so at the end of the cell);
    list, get and save use the new store from the next line on.
    """
    from lineapy_ext.context import get_context

    options = get_context().options
    # The line is split without removing quotes; URLs are often written quoted.
    dir_url, db_url = (_unquote(v) for v in (args.dir_url, args.db_url))
    if not options.set_location(dir_url, db_url):
        print(
            f"lineapy_ext: already using database {options.masked('database_url')}, "
            f"values in {options.masked('artifact_storage_dir')}"
        )


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


#: Sub-command name -> function; the order is the order of the help text.
SUBCOMMANDS: dict[str, Callable] = {
    "save": _save,
    "get": _get,
    "code": _code,
    "list": _list,
    "delete": _delete,
    "export": _export,
    "pipeline": _pipeline,
    "lineage": _lineage,
    "config": _config,
    "verify": _verify,
    "store": _store,
}

#: Sub-commands whose first argument is an artifact name (tab completion).
_NAME_SUBCOMMANDS = ("get", "code", "delete", "export", "lineage", "verify", "pipeline")


def usage() -> str:
    """The help text of ``%lineapy``: one usage line per sub-command."""
    lines = [
        "Save values with the code that computes them, and get them back.",
        "",
        "Sub-commands:",
    ]
    for func in SUBCOMMANDS.values():
        lines.append("  " + _usage_line(func))
    lines += ["", "%lineapy SUB --help shows the options of one sub-command."]
    return "\n".join(lines)


def _usage_line(func) -> str:
    # IPython's help formatter prefixes usage with an RST literal block
    # marker ("::"); one-line messages want the bare command.
    return func.parser.format_usage().split("::", 1)[-1].strip()


def _help(func) -> str:
    return func.parser.format_help().replace("::\n\n  ", "usage: ", 1)


def _parse(func, line: str):
    """Parse ``line`` for sub-command ``func``; errors carry the usage."""
    from IPython.utils.process import arg_split

    parser = func.parser
    try:
        argv = arg_split(line, strict=True)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{exc}\nusage: {_usage_line(func)}") from None
    if "-h" in argv or "--help" in argv:
        return None, None
    extra: dict = {}
    if func is _save:
        argv, extra = split_backend_kwargs(argv, set(parser._option_string_actions))
    try:
        return parser.parse_args(argv), extra
    except UsageError as exc:
        raise UsageError(f"{exc}\nusage: {_usage_line(func)}") from None


def _announce_verifications(sub: str, args) -> None:
    """Print the verdicts of background verifications that finished, of the artifacts this command touches."""
    import sys

    if "lineapy_ext.verify" not in sys.modules:
        return  # nothing was ever verified in the background
    from lineapy_ext.context import get_context
    from lineapy_ext.verify import finished_notices

    names = None if sub == "list" else {n for n in (getattr(args, "name", None), getattr(args, "var", None)) if n}
    if names == set():
        return
    try:
        lines = finished_notices(get_context().store.db, names)
    except Exception:  # an announcement must never break the command
        return
    for line in lines:
        print(line)


@magics_class
class LineaPyMagics(Magics):
    """The ``%lineapy`` magic and its tab completion."""

    @line_magic(_MAGIC)
    def lineapy(self, line: str = ""):
        sub, _, rest = line.strip().partition(" ")
        if sub in ("", "-h", "--help", "help"):
            print(usage())
            return None
        func = SUBCOMMANDS.get(sub)
        if func is None:
            raise UsageError(
                f"unknown sub-command {sub!r}{_did_you_mean(sub, SUBCOMMANDS)} "
                f"(choose from {', '.join(SUBCOMMANDS)}; %lineapy --help)"
            )
        args, extra = _parse(func, rest)
        if args is None:
            print(_help(func))
            return None
        _announce_verifications(sub, args)
        try:
            return func(self.shell, args, extra)
        except LineaPyError as exc:
            # Library errors are written as one line for the user; a
            # traceback into the store would only hide it.
            raise UsageError(str(exc)) from None

    lineapy.__doc__ = usage()

    @completion_matcher(identifier="lineapy_ext.magics", api_version=2)
    def complete(self, context):
        """Complete ``%lineapy`` sub-commands, their flags and flag values, artifact names and variables."""
        matches: list[str] = []
        try:
            matches = self._candidates(context.text_until_cursor, context.token)
        except Exception:  # completion must never break typing
            matches = []
        return {
            "completions": [_completion(m) for m in matches],
            "suppress": bool(matches),
        }

    def _candidates(self, text: str, token: str) -> list[str]:
        start = text.rfind("%" + _MAGIC)
        if start < 0:
            return []
        words = text[start:].split()
        # The word under the cursor (whose part IPython replaces is
        # ``token``: of ``--backend=ml`` only ``ml``); after a space a new
        # word is starting.
        current = "" if text[-1:].isspace() else words[-1]
        done = words[1:-1] if current else words[1:]
        if not done:
            return sorted(c for c in SUBCOMMANDS if c.startswith(token))
        func = SUBCOMMANDS.get(done[0])
        if func is None:
            return []
        options = func.parser._option_string_actions
        option, eq, _ = current.partition("=")
        if eq and option in options:
            choices = _option_values(func, option)
        elif len(done) > 1 and done[-1] in options and options[done[-1]].nargs != 0:
            # A value is due: its choices, or nothing (IPython's own file
            # name completion then works for -o PATH).
            choices = _option_values(func, done[-1])
        elif current.startswith("-"):
            choices = list(options)
        elif not _positionals(func, done[1:]) or done[0] in ("export", "pipeline"):
            choices = self._first_argument(done[0])
        else:
            choices = []
        return sorted(c for c in choices if c.startswith(token))

    def _first_argument(self, sub: str) -> list[str]:
        if sub in _NAME_SUBCOMMANDS:
            return sorted({a.name for a in _api().artifact_store()})
        if sub == "save":
            return [k for k in self.shell.user_ns
                    if not k.startswith("_") and k not in self.shell.user_ns_hidden]
        return []


def _option_values(func, option: str) -> list[str]:
    """What may follow ``option`` of sub-command ``func``: its choices, backend names after ``--backend``."""
    if option == "--backend":
        from lineapy_ext.backends import BUILTINS

        return list(BUILTINS)
    return [str(c) for c in func.parser._option_string_actions[option].choices or ()]


def _positionals(func, words: list[str]) -> list[str]:
    """The positional arguments among ``words`` (options and their values left out)."""
    options = func.parser._option_string_actions
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            action = options.get(word.partition("=")[0])
            skip = "=" not in word and (action is None or action.nargs != 0)  # save's --KEY VALUE too
        else:
            found.append(word)
    return found


def _completion(text: str):
    from IPython.core.completer import SimpleCompletion

    return SimpleCompletion(text=text, type="lineapy")


def register(shell) -> LineaPyMagics:
    """Register ``%lineapy`` and its completer with ``shell``.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell

    Returns
    -------
    LineaPyMagics
        The registered instance (:func:`unregister` removes it again).
    """
    magics = LineaPyMagics(shell)
    shell.register_magics(magics)
    completer = getattr(shell, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(magics.complete)
    return magics


def unregister(shell) -> None:
    """Undo :func:`register`: remove ``%lineapy`` and its completer.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell
    """
    manager = shell.magics_manager
    magics = manager.registry.pop(LineaPyMagics.__name__, None)
    if magics is None:
        return
    line_magics = manager.magics["line"]
    if getattr(line_magics.get(_MAGIC), "__self__", None) is magics:
        del line_magics[_MAGIC]
    completer = getattr(shell, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m for m in completer.custom_matchers
            if getattr(m, "__self__", None) is not magics
        ]
