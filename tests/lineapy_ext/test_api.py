"""The Python API: save/get/delete/artifact_store and Artifact, in plain Python and in a shell."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import lineapy_ext
from lineapy_ext.exceptions import ArtifactNotFoundError, InvalidVersionError


def test_artifact_attributes_plain_python(lineapy_home):
    art = lineapy_ext.save({"a": 1}, "cfg")
    assert (art.name, art.version, art.storage_backend, art.value_type) == ("cfg", 1, "lineapy", "dict")
    assert art.size > 0
    assert art.created_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - art.created_at).total_seconds()) < 60
    assert art.session_id == lineapy_ext.get("cfg").session_id
    assert art.get_code() == ""  # no tracker without IPython
    meta = art.get_metadata()
    assert meta["location"].startswith("cfg/") and meta["checksum"]
    assert lineapy_ext.get("cfg").get_value() == {"a": 1}


def test_not_found_messages(lineapy_home):
    with pytest.raises(ArtifactNotFoundError, match="no artifacts are saved"):
        lineapy_ext.get("model")
    lineapy_ext.save(1, "model_v")
    lineapy_ext.save(2, "model_v")
    with pytest.raises(ArtifactNotFoundError, match="did you mean 'model_v'"):
        lineapy_ext.get("model")
    with pytest.raises(ArtifactNotFoundError, match="existing versions are 1, 2"):
        lineapy_ext.get("model_v", version=3)
    with pytest.raises(ArtifactNotFoundError, match="existing versions are 1, 2"):
        lineapy_ext.delete("model_v", 7)
    with pytest.raises(InvalidVersionError, match="'latest' or 'all'"):
        lineapy_ext.delete("model_v", "newest")
    assert [a.version for a in lineapy_ext.artifact_store()] == [2]


def test_save_from_a_cell_records_slice_and_session_code(ipython):
    ipython.run_cell("import lineapy_ext\nxs = [1, 2, 3]\nunrelated = 'noise'\ntotal = sum(xs)")
    result = ipython.run_cell("art = lineapy_ext.save(total, 'total')")
    result.raise_error()
    art = ipython.user_ns["art"]
    assert art.get_value() == 6
    assert "total = sum(xs)" in art.get_code() and "noise" not in art.get_code()
    assert art.get_metadata()["var_names"] == ["total"]
    session = art.get_session_code()
    assert "unrelated = 'noise'" in session and "total = sum(xs)" in session
    # Cells are persisted incrementally: a second save adds only the new ones.
    ipython.run_cell("doubled = total * 2")
    ipython.run_cell("art2 = lineapy_ext.save(doubled, 'doubled')").raise_error()
    code2 = ipython.user_ns["art2"].get_session_code()
    assert code2.count("xs = [1, 2, 3]") == 1 and "doubled = total * 2" in code2


def test_get_in_a_new_context(lineapy_home):
    from lineapy_ext.context import reset_context

    first = lineapy_ext.save([1], "l")
    reset_context()
    again = lineapy_ext.get("l")
    assert again.get_value() == [1]
    assert again.session_id == first.session_id
    assert lineapy_ext.save([2], "l").session_id != first.session_id


def test_save_with_options_the_lineapy_backend_does_not_take(lineapy_home):
    from lineapy_ext.exceptions import BackendError

    with pytest.raises(BackendError, match="unknown save option.*: foo; it takes none"):
        lineapy_ext.save(1, "one", foo=1)
    assert lineapy_ext.artifact_store() == []


@pytest.mark.parametrize("write", [
    "%%writefile shapes_mod.py\n{src}",
    "name = 'shapes_mod'\nwith open(f'{{name}}.py', 'w') as fh:\n    fh.write({src!r})",  # a path not known statically
], ids=["writefile", "fstring_path"])
def test_value_of_a_class_from_a_session_written_module_loads_elsewhere(ipython, lineapy_home, tmp_path,
                                                                        monkeypatch, write):
    """%%writefile shapes.py; import shapes; save(an instance): a fresh python
    in a directory without shapes.py gets the value back (pickled by value)."""
    import os
    import subprocess
    import sys

    work = tmp_path / "nb"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    import types

    import cloudpickle

    try:  # registration is by module name and lasts for the process: start clean
        cloudpickle.unregister_pickle_by_value(types.ModuleType("shapes_mod"))
    except ValueError:
        pass
    module = ("class Square:\n    def __init__(self, s):\n        self.s = s\n"
              "    def area(self):\n        return self.s ** 2\n")
    for src in [write.format(src=module),
                "import importlib\nimportlib.invalidate_caches()\nimport shapes_mod\nsq = shapes_mod.Square(3)",
                "%lineapy save sq"]:
        ipython.run_cell(src, store_history=True).raise_error()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "import lineapy_ext\nv = lineapy_ext.get('sq').get_value()\nprint(type(v).__name__, v.area())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              p for p in sys.path if p and "nb" not in p)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["Square", "9"]
    sys.modules.pop("shapes_mod", None)


def test_class_defined_in_a_shell_loads_in_a_fresh_process(ipython, lineapy_home, tmp_path):
    """A class written in a cell lives in the shell's ``__main__``, where plain
    pickle finds it and would write only a reference to ``__main__.Celsius``
    (absent elsewhere); the save pickles it by value, so a fresh python
    without the class gets the value back.  Guards any faster pickling path
    (issue 13) against losing the classes of the notebook."""
    import os
    import subprocess
    import sys

    for src in ["class Celsius:\n    def __init__(self, c):\n        self.c = c\n"
                "    def fahrenheit(self):\n        return self.c * 9 / 5 + 32\n",
                "import pickle\nreference = pickle.dumps(Celsius(1))  # plain pickle alone would name __main__",
                "temp = Celsius(100)",
                "%lineapy save temp"]:
        ipython.run_cell(src, store_history=True).raise_error()
    assert b"__main__" in ipython.user_ns["reference"]
    code = "import lineapy_ext\nv = lineapy_ext.get('temp').get_value()\nprint(type(v).__name__, v.fahrenheit())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["Celsius", "212.0"]

