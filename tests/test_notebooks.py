"""The example notebooks, executed headless by nbclient in real, separate kernels.

One run of ``python -m lineapy_ext demo`` executes all notebooks (one fresh
kernel each: the model is saved in the first and reloaded in the second);
the assertions then read the report, the executed notebooks and the store.
The notebooks the demo runs are package data, copies of ``notebooks/``; a
wheel built from the tree carries them.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lineapy_ext.demo import NOTEBOOKS_DIR, kernel_env

REPO = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOKS = REPO / "notebooks"


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


def test_packaged_notebooks_are_the_repository_notebooks():
    packaged = {p.name: p.read_bytes() for p in NOTEBOOKS_DIR.glob("*.ipynb")}
    source = {p.name: p.read_bytes() for p in SOURCE_NOTEBOOKS.glob("*.ipynb")}
    assert NOTEBOOKS_DIR.parent.name == "lineapy_ext"
    assert sorted(packaged) == sorted(source) and len(source) >= 3
    stale = [name for name in source if packaged[name] != source[name]]
    assert not stale, f"{stale} differ from notebooks/: run python notebooks/make_notebooks.py"


def test_notebooks_are_committed_without_outputs():
    paths = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert [p.name[:3] for p in paths][:3] == ["01_", "02_", "03_"] and len(paths) >= 3
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.slow
def test_a_wheel_carries_the_notebooks_and_the_demo_finds_them(tmp_path):
    """Build a wheel as `pip install .` does; outside the tree, the demo sees its notebooks."""
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for name in ("lineapy_ext", "kernel_hooks"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(tmp_path / "dist")],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("lineapy_ext-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    code = (
        "import lineapy_ext, lineapy_ext.demo as d\n"
        "print(lineapy_ext.__file__)\n"
        "print(*sorted(p.name for p in d.NOTEBOOKS_DIR.glob('*.ipynb')))\n"
    )
    env = {**kernel_env(tmp_path / "home"), "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith(str(site)), out  # the installed copy, not the checkout
    assert out[1].split() == sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_report_shows_the_model_slice_and_where_the_notebooks_went(demo):
    report, home = demo
    head = re.search(r"^The slice of 'iris_model' \(%lineapy code iris_model\): (\d+) lines, "
                     r"cut from a session of (\d+) lines", report, re.M)
    assert head, report
    slice_lines, session_lines = int(head[1]), int(head[2])
    assert 0 < slice_lines < session_lines
    body = report[head.end():].split("\nValues matched after reload:")[0].splitlines()[1:]
    body = "\n".join(body).strip("\n").splitlines()  # the slice, indented, blank lines kept
    assert len(body) == slice_lines and all(line.startswith("    ") or not line for line in body)
    code = "\n".join(body)
    assert "model.fit(X_train, y_train)" in code and "print(" not in code and "describe()" not in code
    assert f"Executed notebooks (with their outputs): {home / 'executed'}" in report
    assert "--keep" not in report  # --home keeps everything


@pytest.mark.slow
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


@pytest.mark.slow
def test_reuse_notebook_exports_a_pipeline_that_runs_without_lineapy_ext(demo, tmp_path):
    from tests.engines import refusing_python

    report, home = demo
    assert re.search(r"iris_pipeline: (\d+)/\1 predictions of the pipeline's model match", report), report
    folder = home / "work" / "iris_pipeline"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["README.md", "pipeline.py", "requirements.txt"]
    assert "scikit-learn==" in (folder / "requirements.txt").read_text()
    # Run it again where lineapy_ext cannot be imported; compare with the store.
    python = refusing_python(tmp_path / "shim") / "python"
    subprocess.run([python, folder / "pipeline.py", "--output-dir", tmp_path / "out"], check=True, timeout=300,
                   capture_output=True, cwd=tmp_path)
    check = (
        "import pickle, lineapy_ext\n"
        f"rerun = pickle.load(open({str(tmp_path / 'out' / 'iris_model.pickle')!r}, 'rb'))\n"
        "assert (rerun.coef_ == lineapy_ext.get('iris_model').get_value().coef_).all()\n"
        "print('same')\n"
    )
    proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=kernel_env(home),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["same"], proc.stderr


@pytest.mark.slow
def test_storage_notebook_versions_and_delete(demo):
    report, home = demo
    text = _text(nbformat.read(home / "executed" / "03_storage_and_config.ipynb", as_version=4))
    assert "Saved 'weights' version 1" in text and "Saved 'weights' version 2" in text
    assert "Deleted version 1 of 'weights'" in text
    assert "INFO" in text
    assert re.search(r"^weights\s+2\s+lineapy\s+numpy.ndarray", report, re.M), report
