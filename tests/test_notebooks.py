"""The example notebooks, executed headless by nbclient in real, separate kernels.

One run of ``python -m lineapy_ext demo`` executes all notebooks (one fresh
kernel each: the model is saved in the first and reloaded in the second);
the assertions then read the report, the executed notebooks and the store.
"""

import re
import subprocess
import sys

import nbformat
import pytest

from lineapy_ext.demo import NOTEBOOKS_DIR, kernel_env

pytestmark = pytest.mark.slow


def _text(nb) -> str:
    """All stdout and text/plain outputs of a notebook."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_are_committed_without_outputs():
    paths = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert [p.name[:3] for p in paths][:3] == ["01_", "02_", "03_"] and len(paths) >= 3
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run the demo once; return (stdout, home)."""
    home = tmp_path_factory.mktemp("demo_home")
    proc = subprocess.run(
        [sys.executable, "-m", "lineapy_ext", "demo", "--home", str(home)],
        env=kernel_env(home),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, home


def test_save_in_one_kernel_get_in_another(demo):
    report, home = demo
    pids = re.findall(r"^\d\d_\S+\.ipynb +(\d+) ", report, re.M)
    n = len(list(NOTEBOOKS_DIR.glob("*.ipynb")))
    assert len(pids) == n and len(set(pids)) == n, report

    saved = _text(nbformat.read(home / "executed" / "01_train_and_save.ipynb", as_version=4))
    assert "Saved 'iris_model' version 1 (backend lineapy)" in saved
    assert "Saved 'iris_test_features' version 1" in saved

    reused = _text(nbformat.read(home / "executed" / "02_reuse_in_new_kernel.ipynb", as_version=4))
    assert "Loaded 'iris_model' version 1 into 'iris_model'" in reused
    assert re.search(r"iris_model: (\d+)/\1 predictions", reused), reused
    assert re.search(r"iris_model: \d+/\d+ predictions of the reloaded model match", report)

    row = next(line.split() for line in report.splitlines() if line.startswith("iris_model "))
    slice_lines, session_lines = int(row[-2]), int(row[-1])
    assert 0 < slice_lines < session_lines


def test_exported_slice_is_minimal_and_recomputes_the_model(demo, tmp_path):
    _, home = demo
    script = home / "work" / "iris_model_slice.py"
    header, _, code = script.read_text().partition("\n\n")
    assert header.startswith("# Slice of artifact 'iris_model' version 1, saved ")
    for needed in ("load_iris", "petal ratio", "train_test_split", "model.fit(X_train, y_train)"):
        assert needed in code
    for dropped in ("print(", "describe()", "notes =", "groupby", "%lineapy", "get_ipython", "lineapy_ext"):
        assert dropped not in code

    nb = nbformat.read(home / "work" / "iris_model_slice.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and "iris_model" in nb.cells[0].source
    assert all(c.cell_type == "code" for c in nb.cells[1:]) and len(nb.cells) >= 3

    # A plain python process in an empty directory re-runs the slice and
    # compares with the model as loaded from the store.
    check = (
        "import runpy, lineapy_ext\n"
        f"rerun = runpy.run_path({str(script)!r})['model']\n"
        "saved = lineapy_ext.get('iris_model').get_value()\n"
        "X = lineapy_ext.get('iris_test_features').get_value()\n"
        "assert (rerun.predict(X) == saved.predict(X)).all()\n"
        "assert (rerun.coef_ == saved.coef_).all()\n"
        "print('same', len(X))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env=kernel_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["same", "45"]


def test_storage_notebook_versions_and_delete(demo):
    report, home = demo
    text = _text(nbformat.read(home / "executed" / "03_storage_and_config.ipynb", as_version=4))
    assert "Saved 'weights' version 1" in text and "Saved 'weights' version 2" in text
    assert "Deleted version 1 of 'weights'" in text
    assert "INFO" in text
    assert re.search(r"^weights\s+2\s+lineapy\s+numpy.ndarray", report, re.M), report
