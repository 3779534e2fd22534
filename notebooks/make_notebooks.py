"""Write the example notebooks (without outputs) from the cell sources below.

The notebooks are committed; re-run this script after editing a story (or
after editing a notebook of this folder by hand, such as ``04_mlflow.ipynb``):
``python notebooks/make_notebooks.py``.  It also copies every notebook of this
folder to ``lineapy_ext/notebooks/``, the package data that
``python -m lineapy_ext demo`` runs from any install; a test checks that the
two folders hold the same files.
"""

import shutil
from pathlib import Path

import nbformat
from nbformat import v4

from lineapy_ext.export import python_notebook

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "lineapy_ext" / "notebooks"


def md(text):
    return v4.new_markdown_cell(text.strip())


def code(text, tags=()):
    cell = v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


TRAIN = [
    md("""
# 1. Train a model and save it

Load the extension: from now on every cell is captured. We train a classifier on
the iris data set that ships with scikit-learn and save it with
`%lineapy save`, which stores the model *and* the minimal code that recomputes
it.
"""),
    code("%load_ext lineapy_ext"),
    code("""
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
"""),
    code("""
iris = load_iris(as_frame=True)
df = iris.frame
df.head()
"""),
    md("Exploration: none of this is needed to recompute the model, so it stays out of the slice."),
    code("""
print(df.shape)
df.describe()
"""),
    code("""
notes = "petal measurements separate the classes best"
df.groupby("target").mean()
"""),
    code("""
df["petal ratio"] = df["petal length (cm)"] / df["petal width (cm)"]
X = df.drop(columns="target")
y = df["target"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
"""),
    md("The save can sit in the same cell as the code that computes the value."),
    code("""
model = LogisticRegression(max_iter=1000)
model.fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")
%lineapy save model iris_model
"""),
    md("`--verify` re-runs the slice in a fresh interpreter and compares what it computes with the saved "
       "value: *verified* means the code alone recomputes it."),
    code("%lineapy save X_test iris_test_features --verify"),
    md("The slice: only what `model` depends on, without the prints and displays above."),
    code("%lineapy code iris_model"),
]

REUSE = [
    md("""
# 2. Reuse the model in a new kernel

This notebook runs in a different kernel from the one that trained the model.
`%lineapy get` brings the value back; `%lineapy code` and `%lineapy export` give
the code that recomputes it, which we run again and compare.
"""),
    code("%load_ext lineapy_ext"),
    code("%lineapy get iris_model"),
    code("X_test = %lineapy get iris_test_features"),
    code("%lineapy code iris_model"),
    md("Export the slice as a script and as a notebook."),
    code("""
%lineapy export iris_model -o iris_model_slice.py
%lineapy export iris_model -o iris_model_slice.ipynb
"""),
    md("Re-run the slice from scratch and check it recomputes the same model."),
    code("""
import runpy

rerun = runpy.run_path("iris_model_slice.py")["model"]
reloaded_predictions = iris_model.predict(X_test)
rerun_predictions = rerun.predict(X_test)
matched = int((reloaded_predictions == rerun_predictions).sum())
assert matched == len(X_test), "the slice recomputed a different model"
print(f"iris_model: {matched}/{len(X_test)} predictions of the reloaded model match the re-run slice")
""", tags=["lineapy-check"]),
    md("""
`%lineapy pipeline` writes a folder that recomputes artifacts without lineapy_ext: here a script with a
command line (`--to dvc` writes a `dvc.yaml` for `dvc repro`, `--to airflow` an Airflow DAG).
"""),
    code("%lineapy pipeline iris_model --to script -o iris_pipeline"),
    code("""
import pickle
import subprocess
import sys

subprocess.run([sys.executable, "iris_pipeline/pipeline.py"], check=True, capture_output=True)
with open("iris_pipeline/outputs/iris_model.pickle", "rb") as f:
    piped = pickle.load(f)
matched = int((piped.predict(X_test) == iris_model.predict(X_test)).sum())
assert matched == len(X_test), "the pipeline computed a different model"
print(f"iris_pipeline: {matched}/{len(X_test)} predictions of the pipeline's model match the saved model")
""", tags=["lineapy-check"]),
]

STORAGE = [
    md("""
# 3. Storage, configuration and versions

Where artifacts go is configured on the `LineaPy` object, with `%config`, an
`ipython_config.py` or `LINEAPY_*` environment variables. `%lineapy config`
shows the effective values and where each came from.
"""),
    code("%load_ext lineapy_ext"),
    code("%lineapy config"),
    code("""
%config LineaPy.logging_level = "INFO"
%config LineaPy.logging_level
"""),
    md("Saving under the same name again creates a new version."),
    code("""
import numpy as np

rng = np.random.default_rng(0)
weights = rng.normal(size=5)
%lineapy save weights
"""),
    code("""
weights = weights * 2
%lineapy save weights
"""),
    code("%lineapy list"),
    code("""
%lineapy get weights --version 1 --as first_weights
assert np.allclose(first_weights * 2, weights)
"""),
    md("The same through the Python API."),
    code("""
import lineapy_ext

latest = lineapy_ext.get("weights")
print(latest.name, latest.version, latest.storage_backend)
print(latest.get_code())
"""),
    md("Delete the first version, then check what is left."),
    code("""
%lineapy delete weights --version 1
%lineapy list weights
"""),
    code("""
assert lineapy_ext.get("weights").version == 2
"""),
]

NOTEBOOKS = {
    "01_train_and_save.ipynb": TRAIN,
    "02_reuse_in_new_kernel.ipynb": REUSE,
    "03_storage_and_config.ipynb": STORAGE,
}


def main():
    for name, cells in NOTEBOOKS.items():
        nb = python_notebook(cells)
        for i, cell in enumerate(nb.cells):
            # Stable ids keep regenerated notebooks diff-free.
            cell.id = f"cell-{i}"
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {name}")
    PACKAGED.mkdir(exist_ok=True)
    for stale in PACKAGED.glob("*.ipynb"):
        stale.unlink()
    for path in sorted(HERE.glob("*.ipynb")):
        shutil.copyfile(path, PACKAGED / path.name)
    print(f"copied the notebooks to {PACKAGED}")


if __name__ == "__main__":
    main()
