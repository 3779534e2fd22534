"""Lineage of an artifact: the cells, artifacts and input files it came from.

This module owns the lineage graph and its three faces: plain data
(:class:`Lineage` ``.nodes``/``.edges``, what ``Artifact.lineage()``
returns), an indented text tree for terminals, and an SVG picture for
Jupyter drawn with a small layered layout in pure Python (no graphviz
binary).

Everything is rebuilt from what the metadata database stores: the
artifact's slice split by cell (``slice_cells``), the saving session's
executed cells, and the other artifacts' rows.  Facts the store does not
keep are read back from the slice text with :mod:`ast`:

- an artifact loaded with ``%lineapy get``/``lineapy_ext.get`` is inlined
  in the slice as ``def _lineapy_artifact_NAME(): exec(compile(SLICE,
  'lineapy:NAME', 'exec'))``; the version loaded is the one whose own slice
  is ``SLICE`` (``# lineapy: left out `%lineapy get NAME``` when it could not
  be inlined);
- files read are string paths passed to readers (``open``, ``read_csv``,
  ``np.load``...), directly or through a variable bound to a literal;
- which cell feeds which is the usual def-use relation between the kept
  statements, in execution order.

Edges point the way data flows: from a source to what was computed from it.
"""

from __future__ import annotations

import ast
import html
import re
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["Lineage", "build_lineage", "layout", "lineage_details_html", "read_slice_cell", "render_html",
           "render_svg", "text_tree"]

_ARTIFACT_FN = "_lineapy_artifact_"
_LEFT_OUT = re.compile(r"^# lineapy: left out `%lineapy get ([^`\s]+)`", re.M)
_GET_VERSION = re.compile(r"(?:--version[ =]|version\s*=\s*)(\d+)")

#: Calls that read a file named by their first argument (or a path keyword).
READ_CALLS = frozenset("""
open load loadtxt genfromtxt fromfile read_csv read_parquet read_json read_pickle read_excel
read_feather read_table read_hdf read_text read_bytes read_fwf read_orc read_stata read_sas
read_spss read_xml imread load_svmlight_file read_file
""".split())
#: Calls that write a file named by their first argument (or a path keyword).
WRITE_CALLS = frozenset("""
to_csv to_parquet to_json to_pickle to_excel to_feather to_hdf to_stata to_orc to_xml savefig
save savez savez_compressed savetxt write_text write_bytes imsave imwrite tofile to_file
""".split())
_PATH_KEYWORDS = ("filepath_or_buffer", "path_or_buf", "path", "file", "fname", "filename", "io", "fp")

#: How many kept statements a cell shows in the picture and the text tree.
SHOWN_STATEMENTS = 4
#: Longest text line in a picture node (characters).
MAX_LINE = 60


# ---------------------------------------------------------------------------
# Reading one cell of a slice
# ---------------------------------------------------------------------------


@dataclass
class _SliceCell:
    """What one ``(execution_count, code)`` entry of a slice kept and did."""

    count: int | None
    code: str
    statements: list[str] = field(default_factory=list)
    loads: list[tuple[str, str | None, str]] = field(default_factory=list)  # (name, inlined slice, bound to)
    defs: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)


def _first_line(text: str) -> str:
    lines = [ln.rstrip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[0] + (" …" if len(lines) > 1 else "")


def _inlined_artifact(fn: ast.FunctionDef) -> tuple[str, str] | None:
    """``(name, slice)`` of an artifact the slicer inlined as function ``fn``."""
    for node in ast.walk(fn):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "compile"
                and len(node.args) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2])):
            body, filename = node.args[0].value, node.args[1].value
            if isinstance(body, str) and isinstance(filename, str) and filename.startswith("lineapy:"):
                return filename[len("lineapy:"):], body
    return None


def read_slice_cell(count: int | None, code: str, literals: dict[str, str]) -> _SliceCell:
    """Parse one cell of a slice: kept statements, artifacts loaded, names, files.

    Parameters
    ----------
    count : int or None
        The cell's execution count.
    code : str
        The statements the slice kept from that cell.
    literals : dict
        Names bound to string literals by earlier cells (updated in place), so
        ``PATH = "a.csv"; pd.read_csv(PATH)`` still names the file.
    """
    cell = _SliceCell(count, code)
    cell.loads = [(m.group(1), None, "") for m in _LEFT_OUT.finditer(code)]
    try:
        tree = ast.parse(code)
    except SyntaxError:  # shown as text, without facts
        cell.statements = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        return cell
    inlined: dict[str, tuple[str, str]] = {}
    for st in tree.body:
        if isinstance(st, ast.FunctionDef) and st.name.startswith(_ARTIFACT_FN):
            found = _inlined_artifact(st)
            if found is not None:
                inlined[st.name] = found
                continue
        load = _artifact_assignment(st, inlined)
        if load is not None:
            cell.loads.append(load)
            cell.defs.update(t.id for t in st.targets if isinstance(t, ast.Name))
            cell.statements.append(f"{load[2]} = artifact {load[0]!r}")
            continue
        cell.statements.append(_first_line(ast.get_source_segment(code, st) or ast.unparse(st)))
        _Names(cell).visit(st)
        _files(st, cell, literals)
        if (isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant)
                and isinstance(st.value.value, str)):
            literals.update({t.id: st.value.value for t in st.targets if isinstance(t, ast.Name)})
    return cell


def _artifact_assignment(st, inlined) -> tuple[str, str, str] | None:
    if (isinstance(st, ast.Assign) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name)
            and st.value.func.id in inlined and isinstance(st.targets[0], ast.Name)):
        name, body = inlined[st.value.func.id]
        return name, body, " = ".join(t.id for t in st.targets if isinstance(t, ast.Name))
    return None


class _Names(ast.NodeVisitor):
    """Global names a top-level statement binds or changes (``defs``) and reads (``uses``)."""

    def __init__(self, cell: _SliceCell):
        self.cell = cell

    def visit_Name(self, node: ast.Name) -> None:
        (self.cell.uses if isinstance(node.ctx, ast.Load) else self.cell.defs).add(node.id)

    def _root(self, node) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def visit_Attribute(self, node) -> None:
        if not isinstance(node.ctx, ast.Load) and self._root(node):
            self.cell.defs.add(self._root(node))  # x.a = 1 changes x
        self.generic_visit(node)

    visit_Subscript = visit_Attribute

    def visit_Expr(self, node: ast.Expr) -> None:
        # Kept as a bare call, a method call is there for what it changes.
        if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
            root = self._root(node.value.func.value)
            if root:
                self.cell.defs.add(root)
        self.generic_visit(node)

    def visit_Import(self, node) -> None:
        self.cell.defs.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")

    visit_ImportFrom = visit_Import

    def _scope(self, node) -> None:
        # Names bound inside a function, class body or comprehension are local.
        self.cell.uses.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
        if hasattr(node, "name"):
            self.cell.defs.add(node.name)
        self.cell.defs.update(n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _scope
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _scope


def _call_name(func) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _path_arg(call: ast.Call, literals: dict[str, str]) -> str | None:
    """The path a reader/writer call names, when it is a literal (or a name bound to one)."""
    candidates = list(call.args[:1]) + [k.value for k in call.keywords if k.arg in _PATH_KEYWORDS]
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call):
        candidates.append(next(iter(call.func.value.args), None))  # Path("a.csv").read_text()
    for arg in candidates:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value and "\n" not in arg.value:
            return arg.value
        if isinstance(arg, ast.Name) and arg.id in literals:
            return literals[arg.id]
    return None


def _files(st: ast.stmt, cell: _SliceCell, literals: dict[str, str]) -> None:
    for node in ast.walk(st):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node.func)
        if name not in READ_CALLS and name not in WRITE_CALLS:
            continue
        path = _path_arg(node, literals)
        if path is None:
            continue
        writes = name in WRITE_CALLS
        if name == "open":
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            writes = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax"))
        (cell.writes if writes else cell.reads).append(path)


# ---------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------


@dataclass
class Lineage:
    """Where an artifact came from, as plain data.

    Attributes
    ----------
    root : str
        Id of the artifact node the lineage is of.
    nodes : list of dict
        Every node has ``id`` and ``kind``:

        - ``"artifact"``: ``name, version`` (None when it cannot be told),
          ``session_id, created_at`` (ISO 8601), ``value_type``, ``missing``
          (True when that version is no longer in the store);
        - ``"cell"``: ``session_id, execution_count, first_line`` (of the cell
          as typed), ``statements`` (first line of each statement the slice
          kept), ``stored`` (whether the session's cell text is in the store);
        - ``"file"``: ``path`` and ``role``: ``"input"``, or ``"intermediate"``
          for a file a contributing cell wrote and a later one read.
    edges : list of dict
        ``source``, ``target`` (node ids, the way data flows) and ``kind``:
        ``data`` (cell to cell), ``produces`` (cell to the artifact it saved),
        ``loads`` (artifact to the cell that loaded it), ``reads``, ``writes``.
    """

    root: str
    nodes: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """``{"root", "nodes", "edges"}``: JSON-serialisable."""
        return {"root": self.root, "nodes": [dict(n) for n in self.nodes], "edges": [dict(e) for e in self.edges]}

    def node(self, node_id: str) -> dict:
        """The node with id ``node_id`` (``KeyError`` when absent)."""
        for n in self.nodes:
            if n["id"] == node_id:
                return n
        raise KeyError(node_id)

    def text(self) -> str:
        """The lineage as an indented tree: the artifact, then what it came from."""
        return text_tree(self)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text())

    def _repr_svg_(self) -> str:
        return render_svg(self)

    def _repr_html_(self) -> str:
        return render_html(self)


class _Builder:
    """Accumulates nodes and edges while artifacts are walked, newest first."""

    def __init__(self, db):
        self.db = db
        self.nodes: dict[str, dict] = {}
        self.edges: dict[tuple[str, str], dict] = {}
        self._cells: dict[str, list] = {}
        self._records: dict[tuple[str, int], object] = {}
        self._versions: dict[str, list[int]] = {}

    def add_node(self, node: dict) -> str:
        old = self.nodes.get(node["id"])
        if old is None:
            self.nodes[node["id"]] = node
        elif node.get("statements"):  # one cell kept by two artifacts' slices
            old["statements"] = list(dict.fromkeys(old["statements"] + node["statements"]))
        return node["id"]

    def add_edge(self, source: str, target: str, kind: str) -> None:
        if source != target:
            self.edges.setdefault((source, target), {"source": source, "target": target, "kind": kind})

    def session_cells(self, session_id: str) -> list:
        if session_id not in self._cells:
            self._cells[session_id] = self.db.cells(session_id)
        return self._cells[session_id]

    def record(self, name: str, version: int):
        if (name, version) not in self._records:
            self._records[(name, version)] = self.db.get_artifact(name, version)
        return self._records[(name, version)]

    def versions(self, name: str) -> list[int]:
        if name not in self._versions:
            self._versions[name] = self.db.versions(name)
        return self._versions[name]


def _artifact_id(name: str, version) -> str:
    return f"artifact:{name}:{version if version is not None else '?'}"


def _unresolved_node(builder: _Builder, name: str, version: int | None) -> dict:
    """An artifact that was loaded but is deleted, or whose version cannot be told."""
    versions = builder.versions(name)
    missing = not versions or (version is not None and version not in versions)
    return {"id": _artifact_id(name, version), "kind": "artifact", "name": name, "version": version,
            "session_id": None, "created_at": None, "value_type": None, "missing": missing}


def _artifact_node(record) -> dict:
    return {"id": _artifact_id(record.name, record.version), "kind": "artifact", "name": record.name,
            "version": record.version, "session_id": record.session_id,
            "created_at": record.created_at.isoformat(timespec="seconds"), "value_type": record.value_type,
            "missing": False}


def build_lineage(record, db) -> Lineage:
    """Build the lineage of one artifact version from the metadata database.

    Parameters
    ----------
    record : lineapy_ext.store.records.ArtifactRecord
        The artifact version whose lineage is wanted.
    db : lineapy_ext.store.metadata.MetadataDB
        Where its session's cells and the artifacts it loaded are recorded.

    Returns
    -------
    Lineage
        Artifacts it was built from are followed recursively, across sessions.
    """
    builder = _Builder(db)
    root = builder.add_node(_artifact_node(record))
    todo, seen = [record], {root}
    while todo:
        for upstream in _add_artifact(builder, todo.pop(0)):
            if upstream is not None and _artifact_id(upstream.name, upstream.version) not in seen:
                seen.add(_artifact_id(upstream.name, upstream.version))
                todo.append(upstream)
    return Lineage(root, list(builder.nodes.values()), list(builder.edges.values()))


def _slice_entries(record) -> list[tuple[int | None, str]]:
    entries = [(c[0], c[1]) for c in record.slice_cells if len(c) >= 2 and str(c[1]).strip()]
    if not entries and record.slice_code.strip():
        entries = [(None, record.slice_code)]
    return entries


def _add_artifact(builder: _Builder, record) -> list:
    """Add the cells, files and loads behind ``record``; return the artifact records it loaded."""
    target = _artifact_id(record.name, record.version)
    literals: dict[str, str] = {}
    cells = [read_slice_cell(count, code, literals) for count, code in _slice_entries(record)]
    stored = _match_cells(cells, builder.session_cells(record.session_id))
    ids = [builder.add_node(_cell_node(record, i, c, stored[i])) for i, c in enumerate(cells)]
    writers = _link_files(builder, cells, ids)
    last_def = {n: i for i, c in enumerate(cells) for n in c.defs}
    producers = {last_def[n] for n in record.var_names if n in last_def} or ({len(cells) - 1} if cells else set())
    for i in producers:
        builder.add_edge(ids[i], target, "produces")
    _link_cells(builder, cells, ids, writers | producers)
    upstream = []
    for i, cell in enumerate(cells):
        for name, body, _ in cell.loads:
            found = _loaded_version(builder, record, name, body, stored[i])
            node = _artifact_node(found) if found is not None else _unresolved_node(
                builder, name, _stated_version(stored[i], name))
            builder.add_edge(builder.add_node(node), ids[i], "loads")
            upstream.append(found)
    return upstream


def _cell_node(record, i: int, cell: _SliceCell, stored) -> dict:
    if stored is not None:
        node_id = f"cell:{record.session_id}:{stored.index}"
    elif cell.count is not None:
        node_id = f"cell:{record.session_id}:n{cell.count}"
    else:
        node_id = f"cell:{record.session_id}:{record.name}:{record.version}:{i}"
    first = _first_line(stored.source) if stored is not None else (cell.statements[:1] or [""])[0]
    return {"id": node_id, "kind": "cell", "session_id": record.session_id,
            "execution_count": stored.execution_count if stored is not None else cell.count,
            "first_line": first, "statements": list(cell.statements), "stored": stored is not None}


def _squash(text: str) -> str:
    return " ".join(text.split())


def _fits(cell: _SliceCell, source: str) -> bool:
    squashed = _squash(source)
    if any(name in source for name, _, _ in cell.loads):
        return True
    return any(_squash(s.removesuffix(" …")) in squashed for s in cell.statements if s)


def _match_cells(cells: list[_SliceCell], stored: list) -> list:
    """The stored session cell each slice cell came from (None when it is not stored).

    Slice cells are in execution order, so the match moves forward only; a
    stored cell matches when its count is the slice cell's and its text
    holds a kept statement.  The count of a cell that saved while it ran
    can be recorded one too high (IPython 9 advances the counter before the
    cell runs), so the count before it is tried next.
    """
    by_count = defaultdict(list)
    for c in stored:
        by_count[c.execution_count].append(c)
    found, position = [], 0
    for cell in cells:
        counts = [cell.count] if cell.count is None else [cell.count, cell.count - 1]
        pick = next((c for n in counts for c in by_count.get(n, ())
                     if c.index >= position and _fits(cell, c.source)), None)
        found.append(pick)
        if pick is not None:
            position = pick.index + 1
    return found


def _link_cells(builder: _Builder, cells: list[_SliceCell], ids: list[str], feeds: set[int]) -> None:
    """Edges from the cell that last bound or changed a name to the cells that use it.

    ``feeds``: cells already known to feed something (a file, the artifact).
    """
    last_def: dict[str, int] = {}
    feeds = set(feeds)
    for i, cell in enumerate(cells):
        for name in sorted(cell.uses):
            j = last_def.get(name)
            if j is not None:
                builder.add_edge(ids[j], ids[i], "data")
                feeds.add(j)
        last_def.update((n, i) for n in cell.defs)
    for j in range(len(cells) - 1):
        if j not in feeds and ids[j] != ids[j + 1]:
            # Kept for an effect the names do not show (a seed, hidden state).
            builder.add_edge(ids[j], ids[j + 1], "data")


def _link_files(builder: _Builder, cells: list[_SliceCell], ids: list[str]) -> set[int]:
    """Edges from files to the cells that read them; returns the cells whose written files are read later."""
    written: dict[str, int] = {}
    writers = set()
    for i, cell in enumerate(cells):
        for path in cell.reads:
            role = "intermediate" if path in written else "input"
            node = builder.add_node({"id": f"file:{path}", "kind": "file", "path": path, "role": role})
            if role == "intermediate":
                builder.add_edge(ids[written[path]], node, "writes")
                writers.add(written[path])
            builder.add_edge(node, ids[i], "reads")
        written.update((p, i) for p in cell.writes)
    return writers


def _stated_version(stored, name: str) -> int | None:
    """The version a stored ``%lineapy get NAME --version N`` cell asked for."""
    if stored is None:
        return None
    for line in stored.source.splitlines():
        if name in line:
            m = _GET_VERSION.search(line)
            if m:
                return int(m.group(1))
            call = re.search(rf"get\(\s*['\"]{re.escape(name)}['\"]\s*,\s*(\d+)", line)
            if call:
                return int(call.group(1))
    return None


def _loaded_version(builder: _Builder, record, name: str, body: str | None, stored):
    """The record of the version of ``name`` that ``record``'s session loaded, or None.

    The inlined slice names it (the newest version saved before ``record``
    whose slice is that text); without one, the version the cell asked for,
    else the newest saved before ``record``.
    """
    stated = _stated_version(stored, name)
    if stated is not None and body is None:
        return builder.record(name, stated)
    versions = sorted(builder.versions(name), reverse=True)
    earlier = []
    for v in versions:
        rec = builder.record(name, v)
        if rec is None or rec.created_at > record.created_at:
            continue
        earlier.append(rec)
        if body is None or (rec.slice_code.strip() or "pass") == body.strip():
            if stated is None or stated == v:
                return rec
    if body is not None and stated is not None:
        return builder.record(name, stated)
    return earlier[0] if earlier and body is None else None


# ---------------------------------------------------------------------------
# Text tree
# ---------------------------------------------------------------------------


def _short(text: str, limit: int = MAX_LINE) -> str:
    text = text.replace("\t", "    ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(node: dict) -> str:
    """One line naming ``node`` as the text tree shows it.

    Parameters
    ----------
    node : dict
        A node of :attr:`Lineage.nodes`.

    Returns
    -------
    str
        ``artifact NAME vN (type, saved ..., session ...)``, ``cell [N] first
        line`` or ``file PATH (input)``.
    """
    if node["kind"] == "artifact":
        version = f"v{node['version']}" if node["version"] is not None else "(version unknown)"
        if node["missing"]:
            return f"artifact {node['name']} {version} (no longer in the store)"
        if node["created_at"] is None:
            return f"artifact {node['name']} {version}"
        when = node["created_at"].replace("T", " ")[:16]
        return f"artifact {node['name']} {version} ({node['value_type']}, saved {when}, session {node['session_id'][:8]})"
    if node["kind"] == "cell":
        count = node["execution_count"]
        return f"cell [{count if count is not None else ' '}] {node['first_line']}"
    role = "input" if node["role"] == "input" else "written, then read"
    return f"file {node['path']} ({role})"


def _shown_statements(node: dict) -> list[str]:
    statements = node.get("statements") or []
    if statements == [node.get("first_line")]:
        return []
    shown = statements[:SHOWN_STATEMENTS]
    if len(statements) > len(shown):
        shown.append(f"… {len(statements) - len(shown)} more statement(s)")
    return shown


def text_tree(lineage: Lineage) -> str:
    """The lineage as an indented tree: the artifact first, then what each node came from.

    Kept statements are listed under their cell; a node reached a second
    time says ``(see above)`` instead of repeating its inputs.

    Parameters
    ----------
    lineage : Lineage

    Returns
    -------
    str
        One line per node (box-drawing characters show the nesting).
    """
    nodes = {n["id"]: n for n in lineage.nodes}
    inputs = defaultdict(list)
    for e in lineage.edges:
        inputs[e["target"]].append(e["source"])
    order = {n["id"]: i for i, n in enumerate(lineage.nodes)}
    lines, seen = [], set()
    stack = [(lineage.root, "", "", True)]
    while stack:  # iterative: a long session is a deep tree
        node_id, head, prefix, _ = stack.pop()
        node = nodes[node_id]
        repeat = node_id in seen
        seen.add(node_id)
        lines.append(head + label(node) + (" (see above)" if repeat else ""))
        children = [] if repeat else sorted(inputs[node_id], key=order.__getitem__)
        for statement in [] if repeat else _shown_statements(node):
            lines.append(prefix + ("│   " if children else "    ") + "· " + statement)
        for i in reversed(range(len(children))):
            last = i == len(children) - 1
            stack.append((children[i], prefix + ("└── " if last else "├── "),
                          prefix + ("    " if last else "│   "), last))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Picture: layered layout and SVG
# ---------------------------------------------------------------------------

_FONT_SIZE = 12
_CHAR_WIDTH = 0.6 * _FONT_SIZE  # monospace advance; the layout measures text with it
_LINE_HEIGHT = 16
_PAD = 8
_H_GAP = 24
_V_GAP = 40
_MARGIN = 16  # room for edges that go round the outermost boxes
#: kind -> (fill, stroke): light opaque fills with dark text read the same on
#: light and dark notebook themes; edges use mid-tones visible on both.
_STYLE = {"artifact": ("#fde7c4", "#b86e00"), "cell": ("#dce9fb", "#3a6db3"), "file": ("#def2df", "#3b8a40"),
          # Cells of other sessions than the artifact's: counts repeat across kernels.
          "earlier cell": ("#e9e2f7", "#6b56a8")}
_TEXT = "#1d1d1d"
_EDGE = {"loads": "#c98a2b", "reads": "#4e9a55", "writes": "#4e9a55"}
_EDGE_DEFAULT = "#8a8a8a"


@dataclass
class _Box:
    id: str
    style: str  # a key of _STYLE
    lines: list[tuple[str, bool]]
    w: float
    h: float
    title: str = ""
    layer: int = 0
    x: float = 0.0
    y: float = 0.0


def _box_lines(node: dict) -> list[tuple[str, bool]]:
    if node["kind"] == "artifact":
        version = f"v{node['version']}" if node["version"] is not None else "(version ?)"
        lines = [(f"{node['name']} {version}", True)]
        if node["missing"]:
            lines.append(("no longer in the store", False))
        elif node["created_at"] is not None:
            lines.append((node["value_type"] or "", False))
            lines.append((f"saved {node['created_at'].replace('T', ' ')[:16]} · {node['session_id'][:8]}", False))
        return lines
    if node["kind"] == "cell":
        count = node["execution_count"]
        lines = [(f"[{count if count is not None else ' '}] {node['first_line']}", True)]
        return lines + [("  " + s, False) for s in _shown_statements(node)]
    return [(node["path"], True), ("input file" if node["role"] == "input" else "written, then read", False)]


def _style(node: dict, session: str | None) -> str:
    return "earlier cell" if node["kind"] == "cell" and node["session_id"] != session else node["kind"]


def _make_box(node: dict, session: str | None = None) -> _Box:
    lines = [(_short(t), bold) for t, bold in _box_lines(node)]
    width = max(len(t) for t, _ in lines) * _CHAR_WIDTH + 2 * _PAD
    # The tooltip has what the box cuts short, and which session a cell ran in.
    title = "\n".join([label(node), *node.get("statements", ())]
                      + ([f"session {node['session_id']}"] if node["kind"] == "cell" else []))
    return _Box(node["id"], _style(node, session), lines, max(width, 80.0), len(lines) * _LINE_HEIGHT + 2 * _PAD - 4, title)


def _assign_layers(boxes: dict[str, _Box], preds, succs) -> None:
    """Longest path from the sources; sources then sit just above their first user."""
    indegree = {b: len(preds[b]) for b in boxes}
    ready = [b for b in boxes if indegree[b] == 0]
    done = set()
    while ready:
        b = ready.pop(0)
        done.add(b)
        boxes[b].layer = max((boxes[p].layer + 1 for p in preds[b] if p in done), default=0)
        for s in succs[b]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    top = max((boxes[b].layer for b in done), default=0)
    for b in boxes:  # in a cycle (should not happen): below everything else
        if b not in done:
            top += 1
            boxes[b].layer = top
    for b in boxes:
        if not preds[b] and succs[b]:
            boxes[b].layer = max(0, min(boxes[s].layer for s in succs[b]) - 1)


def _order_layers(boxes: dict[str, _Box], preds, succs) -> list[list[str]]:
    """Rows of the picture, ordered by the barycenter of their neighbours to cut crossings."""
    rows: list[list[str]] = [[] for _ in range(max((b.layer for b in boxes.values()), default=0) + 1)]
    for b in boxes.values():
        rows[b.layer].append(b.id)
    position = {b: i for row in rows for i, b in enumerate(row)}
    for sweep in range(4):
        down = sweep % 2 == 0
        neighbours = preds if down else succs
        for row in rows if down else reversed(rows):
            def key(b, row=row):
                near = [position[n] for n in neighbours[b]]
                return sum(near) / len(near) if near else position[b]
            row.sort(key=key)
            position.update((b, i) for i, b in enumerate(row))
    return [row for row in rows if row]


def _place_row(row: list[_Box], wanted: dict[str, float | None]) -> None:
    """Put ``row`` left to right as close to each box's wanted centre as no overlap allows."""
    right, pushes = None, []
    for box in row:
        want = wanted.get(box.id)
        left = (want - box.w / 2) if want is not None else (right + _H_GAP if right is not None else 0.0)
        if right is not None:
            left = max(left, right + _H_GAP)
        if want is not None:
            pushes.append(left - (want - box.w / 2))
        box.x, right = left, left + box.w
    shift = sum(pushes) / len(pushes) if pushes else 0.0
    for box in row:
        box.x -= shift


def layout(lineage: Lineage) -> tuple[list[_Box], float, float]:
    """Place every node: rows by layer, top to bottom, each box under its inputs.

    Returns
    -------
    (list of _Box, float, float)
        The boxes (``x``, ``y`` are the top-left corner) and the picture's width and height.
    """
    session = lineage.node(lineage.root).get("session_id") if lineage.nodes else None
    boxes = {n["id"]: _make_box(n, session) for n in lineage.nodes}
    preds, succs = defaultdict(list), defaultdict(list)
    for e in lineage.edges:
        if e["source"] in boxes and e["target"] in boxes:
            preds[e["target"]].append(e["source"])
            succs[e["source"]].append(e["target"])
    _assign_layers(boxes, preds, succs)
    rows = [[boxes[b] for b in row] for row in _order_layers(boxes, preds, succs)]
    centre = lambda b: b.x + b.w / 2  # noqa: E731
    for row in rows:
        _place_row(row, {b.id: sum(centre(boxes[p]) for p in preds[b.id]) / len(preds[b.id])
                         for b in row if preds[b.id] and all(boxes[p].layer < b.layer for p in preds[b.id])})
    for row in rows:  # sources (files, loaded artifacts) move over their users
        if any(not preds[b.id] for b in row):
            _place_row(row, {b.id: (sum(centre(boxes[s]) for s in succs[b.id]) / len(succs[b.id])
                                    if not preds[b.id] and succs[b.id] else centre(b)) for b in row})
    left = min((b.x for b in boxes.values()), default=0.0)
    y = _MARGIN
    for row in rows:
        for b in row:
            b.x += _MARGIN - left
            b.y = y
        y += max(b.h for b in row) + _V_GAP
    width = max((b.x + b.w for b in boxes.values()), default=0.0) + _MARGIN
    return list(boxes.values()), width, max(y - _V_GAP + _MARGIN, 2 * _MARGIN)


def _ports(boxes: dict[str, _Box], edges: list[dict]) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each edge leaves its source and enters its target: spread along the box edges."""
    out, into = defaultdict(list), defaultdict(list)
    for e in edges:
        out[e["source"]].append(e)
        into[e["target"]].append(e)
    ports = {}
    for group, end, other in ((out, "source", "target"), (into, "target", "source")):
        for node_id, es in group.items():
            box = boxes[node_id]
            es.sort(key=lambda e: boxes[e[other]].x)
            for i, e in enumerate(es):
                ports[(e["source"], e["target"], end)] = box.x + box.w * (i + 1) / (len(es) + 1)
    return ports


def _rows(boxes: list[_Box]) -> list[tuple[float, float, list[_Box]]]:
    """``(top, bottom, boxes left to right)`` of every row of the picture, top to bottom."""
    rows = defaultdict(list)
    for b in boxes:
        rows[b.y].append(b)
    return [(y, y + max(b.h for b in row), sorted(row, key=lambda b: b.x)) for y, row in sorted(rows.items())]


def _detour(x: float, row: list[_Box]) -> float:
    """``x``, or the middle of the nearest gap beside the box of ``row`` that ``x`` would cross."""
    for b in row:
        if b.x - 4 <= x <= b.x + b.w + 4:
            left, right = b.x - _H_GAP / 2, b.x + b.w + _H_GAP / 2
            return left if x - left <= right - x else right
    return x


def _edge_path(src: _Box, tgt: _Box, x1: float, x2: float, rows) -> str:
    """An edge as smooth vertical curves; one that skips rows goes round their boxes, not under them."""
    y1, y2 = src.y + src.h, tgt.y
    if y2 <= y1:  # drawn upwards only in a cycle
        y1, y2 = src.y, tgt.y + tgt.h
        points = [(x1, y1), (x2, y2)]
    else:
        # Straight down from the source; side-step only where a box is in
        # the way, bending in the gap above that row; the last bend is in
        # the gap above the target.
        points, x, above = [(x1, y1)], x1, y1
        for top, bottom, row in rows:
            if y1 < top and bottom < y2:
                moved = _detour(x, row)
                if moved != x:
                    points += [(x, above + 6), (moved, top - 6), (moved, bottom + 6)]
                    x = moved
                above = bottom
        if x != x2 and above > y1:
            points.append((x, above + 6))
        points.append((x2, y2))
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        if xa == xb:
            d.append(f"L{xb:.1f},{yb:.1f}")
        else:
            bend = (yb - ya) / 2
            d.append(f"C{xa:.1f},{ya + bend:.1f} {xb:.1f},{yb - bend:.1f} {xb:.1f},{yb:.1f}")
    return " ".join(d)


def _marker(kind: str, colour: str) -> str:
    return (f'<marker id="lineapy-arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')


def _box_svg(box: _Box, root: bool) -> str:
    fill, stroke = _STYLE[box.style]
    esc = html.escape
    parts = [f'<g class="lineapy-{box.style.replace(" ", "-")}"><title>{esc(box.title)}</title>',
             f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="6" '
             f'fill="{fill}" stroke="{stroke}" stroke-width="{2.5 if root else 1.2}"/>']
    for i, (text, bold) in enumerate(box.lines):
        weight = ' font-weight="bold"' if bold else ""
        parts.append(f'<text x="{box.x + _PAD:.1f}" y="{box.y + _PAD + 11 + i * _LINE_HEIGHT:.1f}"{weight} '
                     f'xml:space="preserve">{esc(text)}</text>')
    return "".join(parts) + "</g>"


def render_svg(lineage: Lineage) -> str:
    """Draw the lineage as a standalone SVG document.

    Parameters
    ----------
    lineage : Lineage

    Returns
    -------
    str
        ``<svg>...</svg>`` sized to the picture: no scripts, external fonts or
        files; each box carries its full text as a tooltip.
    """
    placed, width, height = layout(lineage)
    boxes = {b.id: b for b in placed}
    edges = [e for e in lineage.edges if e["source"] in boxes and e["target"] in boxes]
    ports = _ports(boxes, edges)
    rows = _rows(placed)
    paths = []
    for e in edges:
        colour = _EDGE.get(e["kind"], _EDGE_DEFAULT)
        kind = e["kind"] if e["kind"] in _EDGE else "data"
        d = _edge_path(boxes[e["source"]], boxes[e["target"]], ports[(e["source"], e["target"], "source")],
                       ports[(e["source"], e["target"], "target")], rows)
        paths.append(f'<path d="{d}" stroke="{colour}" marker-end="url(#lineapy-arrow-{kind})"/>')
    markers = "".join(_marker(k, c) for k, c in [("data", _EDGE_DEFAULT), ("loads", _EDGE["loads"]),
                                                  ("reads", _EDGE["reads"]), ("writes", _EDGE["writes"])])
    nodes = "".join(_box_svg(b, b.id == lineage.root) for b in placed)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
            f'font-size="{_FONT_SIZE}" fill="{_TEXT}"><defs>{markers}</defs>'
            f'<g fill="none" stroke-width="1.4">{"".join(paths)}</g>{nodes}</svg>')


def summary(lineage: Lineage) -> str:
    """One line: what the lineage holds."""
    counts = defaultdict(int)
    for n in lineage.nodes:
        counts[n["kind"]] += 1
    root = lineage.node(lineage.root)
    sessions = {n["session_id"] for n in lineage.nodes if n["kind"] == "cell"}
    text = (f"Lineage of {root['name']} v{root['version']}: {counts['cell']} cell(s), "
            f"{counts['artifact'] - 1} artifact(s) it was built from, {counts['file']} file(s) read")
    if sessions - {root["session_id"]}:
        text += f"; cells of the {len(sessions - {root['session_id']})} earlier session(s) are violet"
    return text


def render_html(lineage: Lineage) -> str:
    """The SVG picture with a one-line caption (in the notebook's own text colour).

    Parameters
    ----------
    lineage : Lineage

    Returns
    -------
    str
        A ``<div>`` for Jupyter's ``text/html`` output.
    """
    return (f'<div class="lineapy-lineage"><div>{html.escape(summary(lineage))}</div>'
            f'<div style="overflow:auto">{render_svg(lineage)}</div></div>')


#: ``%lineapy list`` embeds the lineage of at most this many rows (the rest show the command).
LIST_LINEAGE_LIMIT = 50


def lineage_details_html(artifact, row: int) -> str:
    """A collapsed ``<details>`` holding ``artifact``'s lineage picture, for one ``%lineapy list`` row.

    Past :data:`LIST_LINEAGE_LIMIT` rows, or when the lineage cannot be
    built, it names the ``%lineapy lineage`` command to run instead.

    Parameters
    ----------
    artifact : lineapy_ext.api.Artifact
    row : int
        The row's position in the table (from 0).

    Returns
    -------
    str
        HTML for the table cell.
    """
    command = html.escape(f"%lineapy lineage {artifact.name} --version {artifact.version}")
    if row >= LIST_LINEAGE_LIMIT:
        return f"<code>{command}</code>"
    try:
        picture = render_html(artifact.lineage())
    except Exception as e:  # one bad row must not hide the table
        return f"<code>{command}</code> ({html.escape(type(e).__name__)}: {html.escape(str(e))})"
    return f"<details><summary>show lineage</summary>{picture}</details>"
