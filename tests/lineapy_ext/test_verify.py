"""Verified slices through real IPython shells and real child interpreters.

Every verdict here comes from a slice really run by ``python`` in a scratch
directory; slices are broken on purpose by editing the stored code with
plain SQL (not through lineapy_ext), or by sessions whose values honestly
depend on something a fresh interpreter does not have.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time

import pytest
from IPython.utils.capture import capture_output

from lineapy_ext.compare import NotComparable, first_difference


@pytest.fixture
def shell(ipython, tmp_path, monkeypatch):
    """The conftest shell, working in an empty directory of its own."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return ipython


def cell(shell, code: str) -> str:
    with capture_output() as out:
        result = shell.run_cell(code, store_history=True)
    assert result.success, (code, result.error_in_exec, out.stdout)
    return out.stdout


def edit_slice(home, name: str, code: str) -> None:
    """Break a stored slice the way a slicer bug would: plain SQL on the metadata file."""
    with sqlite3.connect(home / "db.sqlite") as db:
        assert db.execute("UPDATE lineapy_artifacts SET slice_code = ? WHERE name = ?", (code, name)).rowcount == 1


def edit_slice_version(home, name: str, version: int, code: str) -> None:
    with sqlite3.connect(home / "db.sqlite") as db:
        query = "UPDATE lineapy_artifacts SET slice_code = ? WHERE name = ? AND version = ?"
        assert db.execute(query, (code, name, version)).rowcount == 1


def listing(directory):
    return sorted((p.name, p.stat().st_mtime_ns) for p in directory.iterdir())


# -- the comparison table, no processes ------------------------------------------


def test_comparison_explains_the_first_difference():
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LinearRegression

    nan = float("nan")
    assert first_difference(np.array([1.0, nan]), np.array([1.0, nan])) is None
    assert first_difference(np.eye(2), np.array([[1.0, 0], [0, 2]]), root="m") == "m[1, 1]: 1.0 != 2.0"
    assert first_difference(np.arange(3), np.arange(4), root="a") == "a: shape (3,) != (4,)"
    assert first_difference(np.arange(3), np.arange(3.0), root="a") == "a: dtype int64 != float64"
    df = pd.DataFrame({"x": range(4), "y": [0.0, 1.0, 4.0, nan]})
    other = df.copy()
    assert first_difference(df, other) is None
    other.loc[2, "y"] = 5.0
    assert first_difference(df, other, root="df") == "df['y'] at row 2: 4.0 != 5.0"
    assert first_difference(df, df.astype({"x": float}), root="df") == "df['x']: dtype int64 != float64"
    assert first_difference({"a": [1, {"b": 1.5}]}, {"a": [1, {"b": 2.5}]}, root="d") == "d['a'][1]['b']: 1.5 != 2.5"
    assert first_difference({"a": 1}, {"b": 1}, root="d") == "d['a']: missing in the recomputed value"
    assert first_difference(0.1 + 0.2, 0.3, root="f") == "f: 0.30000000000000004 != 0.3"
    assert first_difference(0.1 + 0.2, 0.3, tolerance=1e-12) is None
    X = np.arange(12.0).reshape(6, 2) ** 1.5
    y = X @ [1.0, 2.0]
    fit = LinearRegression().fit(X, y)
    assert first_difference(fit, LinearRegression().fit(X, y)) is None
    assert first_difference(fit, LinearRegression().fit(X, y + 1), root="clf").startswith("clf.intercept_: ")
    assert first_difference(fit, LinearRegression(fit_intercept=False).fit(X, y), root="clf") == (
        "clf.get_params()['fit_intercept']: True != False")

    with pytest.raises(NotComparable, match="pickled forms differ"):
        first_difference(_Drifting(), _Drifting())


class _Drifting:
    """No __eq__, no state, and a different pickle each time: cannot be judged."""

    __slots__ = ()
    counter = 0

    def __reduce__(self):
        _Drifting.counter += 1
        return (_Drifting, (), None, iter([_Drifting.counter]))


# -- verdicts through the shell -----------------------------------------------------


@pytest.mark.slow
def test_save_verify_shows_verified_in_code_list_and_metadata(shell):
    import lineapy_ext

    cell(shell, "import numpy as np\na = np.arange(6.0)\na[2] = np.nan\nnoise = print('not needed')\n")
    out = cell(shell, "a *= 2\n%lineapy save a arr --verify")
    first, second = out.strip().splitlines()
    assert first.startswith("Saved 'arr' version 1")
    assert second.startswith("Verification: verified (") and second.endswith(" s)")

    code = cell(shell, "%lineapy code arr")
    assert code.splitlines()[0].startswith("# verification: verified (")
    table = shell.run_line_magic("lineapy", "list")
    assert table.columns[-1] == "verification" and table.rows[0][-1].startswith("verified ")
    meta = lineapy_ext.get("arr").get_metadata()["verification"]
    assert meta["status"] == "verified" and meta["seconds"] > 0 and meta["verified_at"]


@pytest.mark.slow
def test_verify_slices_on_verifies_every_save_and_versions_are_verified_apart(shell, lineapy_home):
    import lineapy_ext

    cell(shell, '%config LineaPy.verify_slices = "on"')
    out = cell(shell, "w = {'a': 1}\n%lineapy save w")
    assert out.splitlines()[1].startswith("Verification: verified (")
    cell(shell, "import lineapy_ext\nw['b'] = 2.5\nsaved = lineapy_ext.save(w, 'w')")  # the API honours the option too
    assert lineapy_ext.get("w", version=2).verdict.status == "verified"
    edit_slice_version(lineapy_home, "w", 1, "w = {'a': 2}\n")
    assert cell(shell, "%lineapy verify w --version 1").strip() == "'w' version 1: differs: w['a']: 1 != 2"
    assert lineapy_ext.get("w", version=2).verdict.status == "verified"


@pytest.mark.slow
def test_edited_slice_differs_and_raising_slice_fails_with_its_line(shell, lineapy_home):
    cell(shell, "base = [1, 2]\nvals = base + [3]\n%lineapy save vals")
    edit_slice(lineapy_home, "vals", "base = [1, 2]\nvals = base + [4]\n")
    out = cell(shell, "%lineapy verify vals")
    assert out.strip() == "'vals' version 1: differs: vals[2]: 3 != 4"

    edit_slice(lineapy_home, "vals", "base = [1, 2]\nvals = base + [3 // (len(base) - 2)]\n")
    out = cell(shell, "%lineapy verify vals")
    assert out.strip() == ("'vals' version 1: failed: ZeroDivisionError: integer division or modulo by zero "
                           "(slice line 2: vals = base + [3 // (len(base) - 2)])")
    assert shell.run_line_magic("lineapy", "list").rows[0][-1] == "failed"


@pytest.mark.slow
def test_input_files_are_copied_but_session_outputs_are_not_and_cwd_is_untouched(shell, tmp_path, monkeypatch):
    work = tmp_path / "work"
    monkeypatch.syspath_prepend(str(work))  # as a kernel started in that directory has it
    (work / "data.csv").write_text("1\n2\n3\n")
    (work / "lineapy_test_helper.py").write_text("SCALE = 10\n")  # a local module is an input too
    old = time.time() - 3600
    for name in ("data.csv", "lineapy_test_helper.py"):
        os.utime(work / name, (old, old))  # there before the kernel started
    cell(shell, "import lineapy_test_helper as helper\n"
                "total = sum(map(int, open('data.csv').read().split())) * helper.SCALE\n")
    before = listing(work)
    out = cell(shell, "%lineapy save total --verify")
    assert "Verification: verified" in out
    assert listing(work) == before

    # Written during the session by a shell command the slice does not contain.
    cell(shell, "!echo 5 > n.txt")
    cell(shell, "n = int(open('n.txt').read())\n")
    before = listing(work)
    out = cell(shell, "%lineapy save n --verify")
    assert "Verification: failed: FileNotFoundError: [Errno 2] No such file or directory: 'n.txt' (slice line 1: " in out
    assert listing(work) == before
    sys.modules.pop("lineapy_test_helper", None)


@pytest.mark.slow
def test_env_changes_of_the_session_do_not_reach_the_slice(shell, monkeypatch):
    monkeypatch.delenv("LINEAPY_TEST_SCALE", raising=False)
    cell(shell, "%env LINEAPY_TEST_SCALE=3")
    cell(shell, "import os\nfactor = int(os.environ['LINEAPY_TEST_SCALE']) * 2\n")
    out = cell(shell, "%lineapy save factor --verify")
    assert out.splitlines()[1] == ("Verification: failed: KeyError: 'LINEAPY_TEST_SCALE' "
                                   "(slice line 2: factor = int(os.environ['LINEAPY_TEST_SCALE']) * 2)")
    out = cell(shell, "%lineapy verify factor --repair")
    assert "no repair found" in out and "run_line_magic('env', 'LINEAPY_TEST_SCALE=3')" in out  # not replayable


@pytest.mark.slow
def test_unseeded_random_is_nondeterministic_and_slow_slice_times_out(shell):
    cell(shell, "import random\nr = [random.random() for _ in range(3)]\n")
    out = cell(shell, "%lineapy save r --verify")
    assert "Verification: nondeterministic: two runs disagree: r[0]: " in out

    cell(shell, "import time\nslow = time.sleep(0.6) or 1\n")
    cell(shell, "%lineapy save slow")
    out = cell(shell, "%lineapy verify slow --timeout 0.3")
    assert out.strip() == "'slow' version 1: timeout: the slice ran longer than 0.3 s"


def test_not_run_when_there_is_no_slice(shell):
    import warnings

    import lineapy_ext

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = lineapy_ext.save(41 + 1, "answer")
    verdict = art.verify()
    assert verdict.status == "not run" and "no slice" in verdict.detail
    assert art.get_metadata()["verification"]["status"] == "not run"


@pytest.mark.slow
def test_repair_adds_the_left_out_mutation_and_the_left_out_seed(shell, lineapy_home):
    import lineapy_ext

    cell(shell, "xs = [1, 2]\nunrelated = 10")
    cell(shell, "print(unrelated)\nxs.append(3)\nother = unrelated * 2")
    cell(shell, "%lineapy save xs")
    edit_slice(lineapy_home, "xs", "xs = [1, 2]\n")  # the mutation is lost
    out = cell(shell, "%lineapy verify xs --repair")
    assert "Repaired the slice of 'xs' version 1: 1 statement(s) added" in out
    assert "    [2] xs.append(3)" in out and "bug report" in out
    assert out.strip().splitlines()[-1].startswith("'xs' version 1: verified (")
    art = lineapy_ext.get("xs")
    assert art.get_code() == "xs = [1, 2]\nxs.append(3)\n"
    assert art.get_metadata()["verification"]["added_statements"] == ["xs.append(3)"]
    assert cell(shell, "%lineapy code xs").startswith("# verification: verified (")

    cell(shell, "import random\nrandom.seed(4)\npicks = random.sample(range(100), 3)\n%lineapy save picks")
    seeded_in = shell.execution_count - 1
    edit_slice(lineapy_home, "picks", "import random\npicks = random.sample(range(100), 3)\n")  # seed lost
    assert cell(shell, "%lineapy verify picks").startswith("'picks' version 1: nondeterministic: ")
    out = cell(shell, "%lineapy verify picks --repair --max-runs 6")
    assert f"    [{seeded_in}] random.seed(4)" in out
    assert lineapy_ext.get("picks").verdict.status == "verified"


@pytest.mark.slow
def test_repair_of_a_real_session_skips_statements_that_cannot_run_outside_it(shell):
    import lineapy_ext

    cell(shell, "!echo 3 > k.txt")
    cell(shell, "k = int(open('k.txt').read())")  # raises outside the session: k.txt came from the shell
    cell(shell, "scores = [71, 93, 88]\nrank = scores.sort")
    cell(shell, "rank(reverse=True)\n%lineapy save scores")
    out = cell(shell, "%lineapy verify scores --repair")
    assert out.strip().splitlines()[-1].startswith("'scores' version 1: verified ("), out
    code = lineapy_ext.get("scores").get_code()
    assert "rank(reverse=True)" in code and "k.txt" not in code
    assert lineapy_ext.get("scores").get_value() == [93, 88, 71]


@pytest.mark.slow
def test_background_mode_stores_the_verdict_while_cells_keep_running(shell):
    import lineapy_ext
    from lineapy_ext.verify import background

    cell(shell, '%config LineaPy.verify_slices = "background"')
    cell(shell, "import time\nsq = time.sleep(2) or [i * i for i in range(5)]\n")  # the slice takes >= 2 s
    out = cell(shell, "%lineapy save sq")
    assert "Verification" not in out
    for i in range(5):  # the notebook keeps working meanwhile
        cell(shell, f"step = {i}")
    # Still running after the save and five cells: nothing waited for the slice.
    assert lineapy_ext.get("sq").verdict.status == "pending"
    assert background().wait(60)
    out = cell(shell, "%lineapy code sq")
    assert out.splitlines()[0] == "Background verification of 'sq' version 1: " + str(lineapy_ext.get("sq").verdict)
    assert out.splitlines()[1].startswith("# verification: verified (")
    assert cell(shell, "%lineapy code sq").splitlines()[0].startswith("# verification")  # announced once


@pytest.mark.slow
def test_background_worker_and_its_slice_die_at_shutdown(shell, lineapy_home):
    psutil = pytest.importorskip("psutil")
    import lineapy_ext
    from lineapy_ext.context import get_context
    from lineapy_ext.verify import JOB_OPTIONS, BackgroundVerifier

    cell(shell, "x = 1\n%lineapy save x")
    edit_slice(lineapy_home, "x", "import time\ntime.sleep(60)\nx = 1\n")
    options = get_context().options
    bg = BackgroundVerifier()  # not the process-wide one: this one is shut down
    bg.submit(("x", 1), {"name": "x", "version": 1, "cwd": os.getcwd(), "since": None, "timeout": 120.0,
                         "tolerance": 0.0, "options": {k: getattr(options, k) for k in JOB_OPTIONS},
                         "env": None})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for the worker to start the slice
        worker = bg._current
        kids = psutil.Process(worker.pid).children(recursive=True) if worker is not None else []
        if kids:
            break
        time.sleep(0.05)
    assert kids, "the worker never started the slice"
    processes = [psutil.Process(worker.pid), *kids]
    bg.shutdown()
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, alive
    assert lineapy_ext.get("x").verdict is None  # killed: nothing stored


@pytest.mark.slow
def test_verdicts_and_repairs_are_stored_on_postgresql(shell, postgres_url, tmp_path):
    import lineapy_ext

    lineapy_ext.options.set_location(str(tmp_path / "pg_values"), postgres_url)
    cell(shell, "xs = [1, 2]\nadd = xs.append")
    cell(shell, "add(3)\n%lineapy save xs")
    out = cell(shell, "%lineapy verify xs --repair")
    assert out.strip().splitlines()[-1].startswith("'xs' version 1: verified (")
    meta = lineapy_ext.get("xs").get_metadata()
    assert meta["verification"]["status"] == "verified" and "add(3)" in lineapy_ext.get("xs").get_code()
    assert shell.run_line_magic("lineapy", "list").rows[0][-1].startswith("verified")
