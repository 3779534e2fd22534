"""Environment capture: what a save records, what get warns about, what pipelines pin.

Values are saved in real IPython shells.  A differing environment is made
the honest way: the recorded row in the SQLite metadata database is edited
(that row is exactly what a save in another environment would have left),
then the artifact is got in this one.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import warnings
from importlib.metadata import version

import pytest
from IPython.utils.capture import capture_output

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.environment import differences, matters
from lineapy_ext.exceptions import LineaPyWarning

NUMPY = version("numpy")
MAJOR, MINOR = (int(p) for p in NUMPY.split(".")[:2])


def _cell(shell, code: str) -> str:
    with capture_output() as out:
        shell.run_cell(code).raise_error()
    return out.stdout


def _row_environment(home, name: str) -> dict | None:
    with sqlite3.connect(home / "db.sqlite") as con:
        found = con.execute("SELECT environment FROM lineapy_artifacts WHERE name = ?", (name,)).fetchone()[0]
    return None if found is None else json.loads(found)


def _set_row_environment(home, name: str, environment: dict) -> None:
    with sqlite3.connect(home / "db.sqlite") as con:
        con.execute("UPDATE lineapy_artifacts SET environment = ? WHERE name = ?", (json.dumps(environment), name))
    get_context().store.close()  # no cached reads of the old row


def _get_warnings(shell, line: str) -> list[str]:
    """Run ``line`` in the shell; return the messages of the LineaPyWarnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _cell(shell, line)
    return [str(w.message) for w in caught if issubclass(w.category, LineaPyWarning)]


@pytest.fixture
def saved(ipython, lineapy_home):
    """A shell in which ``arr`` (a numpy slice, also importing json and pandas unused) is saved."""
    _cell(ipython, "import json\nimport numpy as np\nimport pandas as pd\n"
                   "cfg = json.loads('{\"n\": 4}')\narr = np.arange(cfg['n']) * 2\nframe = pd.DataFrame({'a': [1]})")
    _cell(ipython, "%lineapy save arr arr")
    return ipython


def test_save_records_python_and_the_distributions_the_slice_imports(saved, lineapy_home):
    env = lineapy_ext.get("arr").get_metadata()["environment"]
    # numpy only: json is standard library, pandas is imported in the session but not by the slice.
    assert env == {"python": platform.python_version(), "packages": {"numpy": NUMPY}, "modules": {"numpy": "numpy"}}
    assert _row_environment(lineapy_home, "arr") == env
    # Import names that differ from their distribution's, through the same map the pipelines use.
    _cell(saved, "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\n"
                 "%lineapy save scaler scaler")
    env = lineapy_ext.get("scaler").get_metadata()["environment"]
    assert env["packages"] == {"scikit-learn": version("scikit-learn")}
    assert env["modules"] == {"sklearn": "scikit-learn"}


def test_a_session_module_is_not_recorded_and_needs_no_distribution_map(ipython, tmp_path, monkeypatch):
    from lineapy_ext import environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "helpers.py").write_text("SCALE = 3\n")
    monkeypatch.setattr(environment, "_PACKAGES_DISTRIBUTIONS", None)
    _cell(ipython, "import helpers\nimport numpy as np\nscaled = np.arange(2) * helpers.SCALE\n%lineapy save scaled")
    env = lineapy_ext.get("scaled").get_metadata()["environment"]
    assert "import helpers" in lineapy_ext.get("scaled").get_code()
    assert env["packages"] == {"numpy": NUMPY} and "helpers" not in env["modules"]
    assert environment._PACKAGES_DISTRIBUTIONS is None  # the slow map was not built for it
    # An import name that says nothing about its distribution does need the map.
    assert environment.distribution_version("zmq") == ("pyzmq", version("pyzmq"))
    assert environment._PACKAGES_DISTRIBUTIONS is not None


def test_get_warns_in_one_line_on_a_minor_version_difference(saved, lineapy_home):
    env = _row_environment(lineapy_home, "arr")
    _set_row_environment(lineapy_home, "arr", {**env, "packages": {"numpy": f"{MAJOR}.{MINOR + 1}.0"}})
    for line in ("%lineapy get arr", "art = lineapy_ext.get('arr')"):
        found = _get_warnings(saved, "import lineapy_ext\n" + line)
        assert len(found) == 1 and "\n" not in found[0], found
        assert found[0].startswith("'arr' version 1 was saved with numpy ")
        assert f"numpy {MAJOR}.{MINOR + 1}.0 (installed: {NUMPY})" in found[0]
        assert f"pip install numpy=={MAJOR}.{MINOR + 1}.0" in found[0]
    assert (saved.user_ns["arr"] == saved.user_ns["art"].get_value()).all()


def test_get_warns_on_a_major_or_python_difference_and_a_missing_distribution(saved, lineapy_home):
    env = _row_environment(lineapy_home, "arr")
    _set_row_environment(lineapy_home, "arr", {
        "python": f"{platform.python_version_tuple()[0]}.{int(platform.python_version_tuple()[1]) - 1}.3",
        "packages": {"numpy": f"{MAJOR - 1}.{MINOR}.{0}", "lineapy-ext-no-such-dist": "1.2.3"},
        "modules": {**env["modules"], "nosuchmod": "lineapy-ext-no-such-dist"},
    })
    (found,) = _get_warnings(saved, "%lineapy get arr")
    assert "\n" not in found
    older = f"{platform.python_version_tuple()[0]}.{int(platform.python_version_tuple()[1]) - 1}.3"
    assert f"Python {older} (running: {platform.python_version()})" in found
    assert f"numpy {MAJOR - 1}.{MINOR}.0 (installed: {NUMPY})" in found
    assert "lineapy-ext-no-such-dist 1.2.3 (not installed)" in found


def test_patch_level_differences_are_silent(saved, lineapy_home):
    env = _row_environment(lineapy_home, "arr")
    python = platform.python_version_tuple()
    _set_row_environment(lineapy_home, "arr", {
        **env, "python": f"{python[0]}.{python[1]}.{int(python[2]) + 7}",
        "packages": {"numpy": f"{MAJOR}.{MINOR}.{99}rc1"},
    })
    assert _get_warnings(saved, "%lineapy get arr") == []
    assert _get_warnings(saved, "import lineapy_ext\nart = lineapy_ext.get('arr')") == []
    # The same row with a minor step does warn: the check above could fail.
    _set_row_environment(lineapy_home, "arr", {**env, "packages": {"numpy": f"{MAJOR}.{MINOR + 1}.0"}})
    assert len(_get_warnings(saved, "%lineapy get arr")) == 1


def test_code_and_export_do_not_warn_and_the_export_names_the_versions(saved, lineapy_home, tmp_path):
    env = _row_environment(lineapy_home, "arr")
    _set_row_environment(lineapy_home, "arr", {**env, "packages": {"numpy": f"{MAJOR}.{MINOR + 1}.0"}})
    assert _get_warnings(saved, "%lineapy code arr") == []
    assert _get_warnings(saved, f"%lineapy export arr -o {tmp_path / 'arr.py'}") == []
    header = (tmp_path / "arr.py").read_text().splitlines()[:3]
    assert f"# Saved with Python {env['python']}, numpy=={MAJOR}.{MINOR + 1}.0." in header


def test_pipeline_requirements_pin_the_versions_recorded_at_save(saved, lineapy_home, tmp_path):
    _cell(saved, "total = int(arr.sum()) + len(pd.DataFrame({'x': arr}))\n%lineapy save total total")
    env = _row_environment(lineapy_home, "total")
    assert set(env["packages"]) == {"numpy", "pandas"}
    # Saved with another numpy; pandas not recorded (as for a version saved before environments were).
    _set_row_environment(lineapy_home, "total", {**env, "packages": {"numpy": "1.26.4"},
                                                  "modules": {"numpy": "numpy"}})
    _cell(saved, f"%lineapy pipeline total --to script -o {tmp_path / 'p'}")
    lines = (tmp_path / "p" / "requirements.txt").read_text().splitlines()
    assert "numpy==1.26.4" in lines and f"pandas=={version('pandas')}" in lines
    assert lines[0].startswith("# Pinned to the versions recorded when the artifacts were saved")
    assert f"# Saved with Python {env['python']}." in lines
    assert "# Not recorded at save, pinned at the installed version: pandas." in lines


def test_matters_is_major_or_minor():
    assert not matters("2.3.1", "2.3.4") and not matters("2.3.0rc1", "2.3.0") and not matters("2024.1.1", "2024.1")
    assert matters("2.3.1", "2.4.0") and matters("1.26.4", "2.3.1") and matters("2.3", None)
    assert not matters("1!2.0.1", "1!2.0.5") and matters("unknown", "2.0")
    assert differences(None) == [] and differences({}) == []


@pytest.mark.slow
def test_a_repair_that_adds_an_import_records_its_distribution(ipython, lineapy_home):
    _cell(ipython, "import numpy as np\nxs = [1, 2]")
    _cell(ipython, "xs.append(int(np.int64(3)))\n%lineapy save xs xs")
    assert _row_environment(lineapy_home, "xs")["packages"] == {"numpy": NUMPY}
    # A slice that lost its numpy lines (a slicer bug), recorded without numpy.
    with sqlite3.connect(lineapy_home / "db.sqlite") as con:
        con.execute("UPDATE lineapy_artifacts SET slice_code = 'xs = [1, 2]\n' WHERE name = 'xs'")
    _set_row_environment(lineapy_home, "xs", {"python": platform.python_version(), "packages": {}, "modules": {}})
    out = _cell(ipython, "%lineapy verify xs --repair")
    assert "import numpy as np" in lineapy_ext.get("xs").get_code(), out
    assert _row_environment(lineapy_home, "xs")["packages"] == {"numpy": NUMPY}


def test_function_module_docstring_names_the_saved_versions(saved, lineapy_home):
    env = _row_environment(lineapy_home, "arr")
    _set_row_environment(lineapy_home, "arr", {**env, "packages": {"numpy": "1.26.4"}})
    source = lineapy_ext.get_function("arr").source
    doc = source.split('"""')[1]
    assert f"Saved with Python {env['python']}, numpy==1.26.4 (the versions the values were computed with)." in doc
    assert lineapy_ext.get_function("arr")()["arr"].tolist() == [0, 2, 4, 6]


# A slice's cells (``code`` is "\n\n".join(cells) + "\n"): imports nested in
# functions, classes, try blocks and later cells, standard library and
# relative imports, text that only mentions importing, a cell with an import
# that does not parse alone (so the whole slice is parsed, as before).
_SLICE_CELLS = [
    "import numpy as np\nx = np.arange(3)",
    "def load():\n    import pandas as pd\n    return pd\n\nclass C:\n    def m(self):\n        from sklearn import tree\n        return tree",
    "note = 'import yaml'  # a string, not an import\ny = 1",
    "try:\n    import scipy.stats\nexcept ImportError:\n    from . import local\nimport json, zmq",
    "if x[0] == 0:\n    import dateutil.parser\nfrom IPython.display import display",
]


@pytest.mark.parametrize("cells", [_SLICE_CELLS, _SLICE_CELLS[::-1], _SLICE_CELLS[2:3], [],
                                   _SLICE_CELLS[:1] + ["  import pandas"]])
def test_capture_from_the_cells_records_what_the_whole_slice_records(cells):
    from lineapy_ext import environment

    code = "\n\n".join(cells) + "\n" if cells else ""
    whole = environment.capture(code)
    assert environment.capture(code, cells) == whole
    assert list(environment.capture(code, cells)["modules"]) == list(whole["modules"])  # same order too
    # Parts that are not what the code is joined from are not used.
    assert environment.capture(code, cells + ["import pandas"]) == whole


def test_cells_without_imports_are_not_parsed():
    from lineapy_ext import environment

    # So a slice that would not parse as a whole (never one cut from cells
    # that ran) records the imports of its cells instead of none.
    cells = ["import numpy", "  y = 2"]
    code = "\n\n".join(cells) + "\n"
    assert environment.capture(code)["modules"] == {}
    assert environment.capture(code, cells)["modules"] == {"numpy": "numpy"}


def test_a_changed_cell_is_parsed_again():
    from lineapy_ext import environment

    cells = ["import numpy as np\na = np.ones(2)", "b = a * 2"]
    code = "\n\n".join(cells) + "\n"
    assert environment.capture(code, cells)["modules"] == {"numpy": "numpy"}
    assert cells[0] in environment._PARSED and cells[1] not in environment._PARSED  # no import: never parsed
    cells[1] = "import pandas as pd\nb = pd.Series(a)"
    code = "\n\n".join(cells) + "\n"
    assert environment.capture(code, cells)["modules"] == {"numpy": "numpy", "pandas": "pandas"}
