"""Lineage of artifacts saved in real shells: nodes, edges, text tree, magics, and the SVG in Chromium.

Two shells one after the other on the same store stand for two kernels: the
second loads artifacts the first saved, so the lineage crosses sessions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import zlib

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from lineapy_ext.lineage import Lineage, layout, read_slice_cell


@contextlib.contextmanager
def shell_session():
    """A fresh shell with the extension loaded, in a new session of the current store."""
    from lineapy_ext.context import reset_context
    from tests.shells import close_shell, new_shell

    reset_context()
    shell = new_shell()
    shell.run_line_magic("load_ext", "lineapy_ext")
    try:
        yield shell
    finally:
        try:
            shell.run_line_magic("unload_ext", "lineapy_ext")
        finally:
            close_shell(shell)
            reset_context()


def run(shell, code: str):
    """Run a cell as a notebook would (execution counts advance); fail on errors."""
    with capture_output() as out:
        result = shell.run_cell(code, store_history=True)
    assert result.success, (code, result.error_in_exec or result.error_before_exec, out.stdout)
    return out.stdout


def edges(lineage: Lineage) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["kind"]) for e in lineage.edges}


def cell_with(lineage: Lineage, first_line: str) -> dict:
    found = [n for n in lineage.nodes if n["kind"] == "cell" and n["first_line"].startswith(first_line)]
    assert len(found) == 1, (first_line, [n.get("first_line") for n in lineage.nodes])
    return found[0]


@pytest.fixture
def two_sessions(lineapy_home, tmp_path, monkeypatch):
    """Session 1 reads a CSV and saves ``total`` twice; session 2 builds ``double`` from both versions."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    with shell_session() as first:
        run(first, "import csv\nPATH = 'data.csv'\nrows = list(csv.reader(open(PATH)))")
        run(first, "total = sum(int(r[0]) for r in rows[1:])\nprint(total)")
        run(first, "%lineapy save total")
        run(first, "noise = [1, 2, 3]")
        run(first, "total = total + 1")
        run(first, "%lineapy save total")
    with shell_session() as second:
        run(second, "%lineapy get total --version 1")
        run(second, "import lineapy_ext\nt2 = lineapy_ext.get('total').get_value()")
        run(second, "with open('out.txt', 'w') as f:\n    f.write(str(t2))")
        run(second, "extra = int(open('out.txt').read())")
        run(second, "unrelated = 5")
        run(second, "double = total * 2 + t2 + extra\nunused = 7")
        run(second, "%lineapy save double")
        yield second


def test_lineage_crosses_sessions_with_versions_cells_and_files(two_sessions):
    from lineapy_ext import api

    double = api.get("double")
    total_v1, total_v2 = api.get("total", 1), api.get("total", 2)
    assert double.get_value() == 4 * 2 + 5 + 5 and total_v1.session_id != double.session_id
    lineage = double.lineage()
    assert lineage.root == "artifact:double:1"
    artifacts = {n["id"]: n for n in lineage.nodes if n["kind"] == "artifact"}
    assert set(artifacts) == {"artifact:double:1", "artifact:total:1", "artifact:total:2"}
    assert artifacts["artifact:total:1"]["session_id"] == total_v1.session_id
    assert not any(a["missing"] for a in artifacts.values())

    get_cell = cell_with(lineage, "%lineapy get total --version 1")
    api_cell = cell_with(lineage, "import lineapy_ext")
    write_cell, read_cell = cell_with(lineage, "with open('out.txt'"), cell_with(lineage, "extra = int(")
    save_cell = cell_with(lineage, "double = total * 2")
    csv_cell, sum_cell = cell_with(lineage, "import csv"), cell_with(lineage, "total = sum(")
    bump_cell = cell_with(lineage, "total = total + 1")
    assert [c["execution_count"] for c in (get_cell, api_cell, write_cell, read_cell, save_cell)] == [1, 2, 3, 4, 6]
    assert [c["execution_count"] for c in (csv_cell, sum_cell, bump_cell)] == [1, 2, 5]
    assert save_cell["statements"] == ["double = total * 2 + t2 + extra"]  # `unused = 7` was not kept
    assert api_cell["statements"] == ["t2 = artifact 'total'"]
    assert csv_cell["statements"] == ["import csv", "PATH = 'data.csv'", "rows = list(csv.reader(open(PATH)))"]
    assert all(c["stored"] for c in (get_cell, save_cell, csv_cell, bump_cell))
    texts = [n.get("first_line", "") for n in lineage.nodes]
    assert not any("unrelated" in t or "noise" in t for t in texts)

    files = {n["id"]: n["role"] for n in lineage.nodes if n["kind"] == "file"}
    assert files == {"file:data.csv": "input", "file:out.txt": "intermediate"}
    expected = {
        ("artifact:total:1", get_cell["id"], "loads"),
        ("artifact:total:2", api_cell["id"], "loads"),
        (sum_cell["id"], "artifact:total:1", "produces"),
        (bump_cell["id"], "artifact:total:2", "produces"),
        (sum_cell["id"], bump_cell["id"], "data"),
        (csv_cell["id"], sum_cell["id"], "data"),
        ("file:data.csv", csv_cell["id"], "reads"),
        (api_cell["id"], write_cell["id"], "data"),
        (write_cell["id"], "file:out.txt", "writes"),
        ("file:out.txt", read_cell["id"], "reads"),
        (get_cell["id"], save_cell["id"], "data"),
        (api_cell["id"], save_cell["id"], "data"),
        (read_cell["id"], save_cell["id"], "data"),
        (save_cell["id"], "artifact:double:1", "produces"),
    }
    assert expected <= edges(lineage), expected - edges(lineage)
    # The writer feeds the reader through the file, not through a name.
    assert (write_cell["id"], read_cell["id"], "data") not in edges(lineage)
    # Session 1's cells are shared by both versions of total, not drawn twice.
    assert len([n for n in lineage.nodes if n["kind"] == "cell"]) == 8


def test_text_tree_and_magic(two_sessions):
    shell = two_sessions
    with capture_output() as out:
        lineage = shell.run_line_magic("lineapy", "lineage double")
    assert isinstance(lineage, Lineage) and out.stdout == ""
    tree = repr(lineage).splitlines()
    assert tree[0].startswith("artifact double v1 (int, saved ")
    assert tree[1] == "└── cell [6] double = total * 2 + t2 + extra …"
    assert "    │   · double = total * 2 + t2 + extra" in tree
    assert any(line.endswith("── file data.csv (input)") for line in tree)
    assert any(line.endswith("── file out.txt (written, then read)") for line in tree)
    assert any("── artifact total v1 (int, saved" in line for line in tree)
    assert any("(see above)" in line for line in tree)
    # The terminal shows the tree, Jupyter the picture.
    from IPython.lib.pretty import pretty

    assert pretty(lineage) == repr(lineage)
    assert lineage._repr_svg_().startswith("<svg") and "<svg" in lineage._repr_html_()

    older = shell.run_line_magic("lineapy", "lineage total --version 1")
    assert older.root == "artifact:total:1"
    assert {n["kind"] for n in older.nodes} == {"artifact", "cell", "file"}
    with pytest.raises(UsageError, match=r"artifact 'total' has no version 9: existing versions are 1, 2"):
        shell.run_line_magic("lineapy", "lineage total --version 9")
    with pytest.raises(UsageError, match=r"no artifact named 'dubble': did you mean 'double'\?"):
        shell.run_line_magic("lineapy", "lineage dubble")


def test_list_links_rows_to_lineage_in_html_only(two_sessions):
    shell = two_sessions
    table = shell.run_line_magic("lineapy", "list")
    text = repr(table).splitlines()
    assert text[0].split() == ["name", "version", "versions", "backend", "type", "size", "saved", "at"]
    html = table._repr_html_()
    assert html.count("<details><summary>show lineage</summary>") == 2
    assert html.count("<svg") == 2 and "<th>lineage</th>" in html
    assert "Lineage of double v1" in html and "Lineage of total v2" in html
    assert "cells of the 1 earlier session(s) are violet" in html


def test_deleted_upstream_version_is_marked_missing(two_sessions):
    from lineapy_ext import api

    api.delete("total", 1)
    lineage = api.get("double").lineage()
    gone = lineage.node("artifact:total:1")
    assert gone["missing"] is True and gone["version"] == 1
    assert not lineage.node("artifact:total:2")["missing"]
    assert "artifact total v1 (no longer in the store)" in lineage.text()


def test_slice_text_facts_without_a_shell():
    literals = {}
    cell = read_slice_cell(3, "import pandas as pd\nSRC = 'in/a.csv'\ndf = pd.read_csv(SRC)\n"
                              "df.to_parquet('b.parquet')\ntext = Path('notes.txt').read_text()\n"
                              "df.dropna(inplace=True)", literals)
    assert cell.reads == ["in/a.csv", "notes.txt"] and cell.writes == ["b.parquet"]
    assert {"pd", "SRC", "df", "text"} <= cell.defs and {"pd", "SRC", "Path"} <= cell.uses
    assert literals == {"SRC": "in/a.csv"}
    inlined = ("# value of artifact 'm', recomputed from its own slice\ndef _lineapy_artifact_m():\n"
               "    _ns = {'__name__': '__main__'}\n    exec(compile('m = 1', 'lineapy:m', 'exec'), _ns)\n"
               "    return _ns['m']\nm = X = _lineapy_artifact_m()")
    loaded = read_slice_cell(2, inlined, {})
    assert loaded.loads == [("m", "m = 1", "m = X")] and loaded.statements == ["m = X = artifact 'm'"]
    assert {"m", "X"} <= loaded.defs
    left_out = read_slice_cell(1, "# lineapy: left out `%lineapy get model` (loads 'model' from the store)", {})
    assert left_out.loads == [("model", None, "")]


# -- the picture in a real browser -------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the system Chromium, installed with apt-get when missing (we run as root in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail("Chromium is needed to render the lineage picture: install the Debian package "
                    "`chromium` (apt-get is not available here)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(["apt-get", "install", "-y", "chromium"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], env=env, capture_output=True, text=True)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"`apt-get install -y chromium` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return found


def read_png(path) -> tuple[int, int, list[bytes]]:
    """``(width, height, rows)`` of an 8-bit RGB/RGBA PNG; rows are RGB bytes (a tiny decoder, zlib only)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if channels == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        previous = line
    return width, height, rows


def screenshot(chromium: str, page, png, width: int, height: int) -> None:
    cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--force-device-scale-factor=1", f"--window-size={width},{height}", f"--screenshot={png}",
           page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and png.exists(), done.stderr[-500:]


def pixel(rows, x: int, y: int) -> tuple[int, int, int]:
    return tuple(rows[y][3 * x:3 * x + 3])


def near(rgb, hex_colour: str, tolerance: int = 12) -> bool:
    want = bytes.fromhex(hex_colour.lstrip("#"))
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want))


@pytest.mark.slow
@pytest.mark.parametrize("background", ["#ffffff", "#111111"], ids=["light", "dark"])
def test_svg_renders_in_headless_chromium(two_sessions, chromium, tmp_path, background):
    from lineapy_ext import api

    lineage = api.get("double").lineage()
    svg = lineage._repr_svg_()
    boxes, width, height = layout(lineage)
    width, height = int(round(width)), int(round(height))
    assert f'width="{width}" height="{height}"' in svg
    page = tmp_path / "lineage.html"
    page.write_text(f'<html><body style="margin:0;background:{background};color:#eee">{svg}</body></html>')
    png = tmp_path / "lineage.png"
    screenshot(chromium, page, png, width, height)
    w, h, rows = read_png(png)
    assert (w, h) == (width, height)
    values = [v for row in rows[::4] for v in row[::12]]
    mean = sum(values) / len(values)
    assert sum((v - mean) ** 2 for v in values) / len(values) > 500, "the screenshot is (nearly) blank"
    # Every box is drawn where the layout put it, filled, with dark text on it
    # (readable whatever the page's theme).
    fills = {"cell": "#dce9fb", "earlier cell": "#e9e2f7", "artifact": "#fde7c4", "file": "#def2df"}
    assert {b.style for b in boxes} == set(fills)
    for box in boxes:
        x, y = int(box.x + box.w - 5), int(box.y + box.h - 5)
        assert near(pixel(rows, x, y), fills[box.style]), (box.id, pixel(rows, x, y))
        inside = [pixel(rows, int(box.x) + dx, int(box.y) + dy)
                  for dy in range(6, int(box.h) - 4) for dx in range(6, int(box.w) - 4, 2)]
        assert sum(1 for p in inside if max(p) < 90) > 20, f"no dark text in {box.id}"
    if background == "#ffffff":
        shutil.copy(png, os.environ.get("LINEAPY_LINEAGE_PNG", tmp_path / "kept.png"))


def test_artifact_saved_without_a_slice_is_a_lone_node(lineapy_home):
    from lineapy_ext import api

    api.save_value([1, 2], "plain")  # no shell: nothing captured, no slice
    lineage = api.get("plain").lineage()
    assert [n["id"] for n in lineage.nodes] == ["artifact:plain:1"] and lineage.edges == []
    assert lineage.text().startswith("artifact plain v1 (list, saved ")
    assert lineage._repr_svg_().count("<rect") == 1


def test_save_in_the_computing_cell_matches_that_cell(lineapy_home):
    from lineapy_ext import api

    with shell_session() as shell:
        run(shell, "a = 1")
        run(shell, "b = a + 1\nprint(b)\n%lineapy save b")
        run(shell, "c = b * 2")
        run(shell, "%lineapy save c")  # stores the cells run so far, the one that saved b included
        lineage = api.get("b").lineage()
    cells = [n for n in lineage.nodes if n["kind"] == "cell"]
    assert [(c["execution_count"], c["first_line"], c["stored"]) for c in cells] == [
        (1, "a = 1", True), (2, "b = a + 1 …", True)]
    assert cells[1]["statements"] == ["b = a + 1"]
