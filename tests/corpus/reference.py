"""The corpus's second run of every notebook, in a process of its own.

``python -m tests.corpus.reference OUT ROOT NB...`` runs each notebook as
:func:`tests.corpus.harness.run_in_shell` does (fresh shell, extension
loaded, fresh dir with the inputs) and writes ``OUT/<name>.pkl`` with the
pictures of its variables.  Comparing them with the session's tells which
values are deterministic: a different process has another hash seed,
freshly seeded global RNGs, another clock and other temp dirs.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from tests.corpus.harness import fresh_workdir, load_notebook, run_in_shell


def main(argv: list[str]) -> int:
    out, root = Path(argv[0]), Path(argv[1])
    for path in argv[2:]:
        nb = load_notebook(Path(path))
        try:
            run = run_in_shell(nb, fresh_workdir(nb, root, "reference"), want_slices=False)
            data = {"pictures": run.pictures, "broken": run.broken}
        except Exception as e:  # one notebook's trouble must not hide the others
            print(f"{nb.name}: {e!r}", flush=True)
            continue
        tmp = out / f"{nb.name}.tmp"
        tmp.write_bytes(pickle.dumps(data))
        os.replace(tmp, out / f"{nb.name}.pkl")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
