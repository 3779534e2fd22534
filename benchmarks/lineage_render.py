"""Time to build and draw an artifact's lineage for a long session.

Usage::

    python benchmarks/lineage_render.py [--cells 200] [--repeats 21]

Runs ``--cells`` cells of the mixed synthetic session of
``slicing_scale.py`` (assignments, mutations, functions, classes, loops,
prints, a running ``total`` that reaches back through most of the session)
in an ``InteractiveShell`` with ``%load_ext lineapy_ext`` and
``store_history=True``, saves ``total`` with ``%lineapy save``, then in a
second shell on the same store loads it with ``%lineapy get`` and saves an
artifact built from it (so the lineage crosses sessions). It times, median
over ``--repeats``:

- ``build``: ``Artifact.lineage()`` (metadata reads, slice parsing, matching);
- ``svg``: ``Lineage._repr_svg_()`` (layered layout + SVG text) — what
  Jupyter draws;
- ``html``: ``Lineage._repr_html_()``;
- ``text``: the terminal tree.

Target (issue 16): a 200-cell session's lineage draws in well under a second.
Writes ``benchmarks/results/lineage_render.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

from _common import median, table, use_isolated_env, write_results


def _run(shell, cells) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            result = shell.run_cell(cell, store_history=True)
            if not result.success:
                raise RuntimeError(f"cell failed: {cell!r}")


def build_store(n: int) -> None:
    """Session 1: ``n`` synthetic cells, ``total`` saved; session 2: ``report`` built from it."""
    from IPython.core.interactiveshell import InteractiveShell

    from lineapy_ext.context import reset_context
    from slicing_scale import make_cell

    for cells in ([make_cell(i) for i in range(n)] + ["%lineapy save total"],
                  ["%lineapy get total", "report = {'total': total, 'half': total // 2}", "%lineapy save report"]):
        reset_context()
        InteractiveShell.clear_instance()
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "lineapy_ext")
        _run(shell, cells)
        shell.run_line_magic("unload_ext", "lineapy_ext")


def timed(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return median(times) * 1e3, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    use_isolated_env()
    build_store(args.cells)
    from lineapy_ext import api

    rows, results = [], []
    for name in ("total", "report"):
        art = api.get(name)
        build_ms, lineage = timed(art.lineage, args.repeats)
        svg_ms, svg = timed(lineage._repr_svg_, args.repeats)
        html_ms, _ = timed(lineage._repr_html_, args.repeats)
        text_ms, _ = timed(lineage.text, args.repeats)
        cells = sum(1 for n in lineage.nodes if n["kind"] == "cell")
        result = {"artifact": name, "nodes": len(lineage.nodes), "cells": cells, "edges": len(lineage.edges),
                  "svg_bytes": len(svg), "build_ms": build_ms, "svg_ms": svg_ms, "html_ms": html_ms,
                  "text_ms": text_ms, "build_and_svg_ms": build_ms + svg_ms}
        results.append(result)
        rows.append([name, len(lineage.nodes), cells, len(lineage.edges), build_ms, svg_ms, text_ms,
                     build_ms + svg_ms])
    print(table(["artifact", "nodes", "cells", "edges", "build ms", "svg ms", "text ms", "build+svg ms"], rows))
    path = write_results("lineage_render", {"session_cells": args.cells, "repeats": args.repeats,
                                            "target": "build + svg well under 1000 ms", "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
