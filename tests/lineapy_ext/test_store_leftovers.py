"""Issue 12 leftovers: what ``%config`` prints, bad ``LINEAPY_*`` variables, unreachable MLflow, export/get refusals.

Every test drives a real IPython shell (``tests.shells``) or a real socket.
"""

from __future__ import annotations

import pytest

from tests.shells import close_shell, new_shell

KEY, SECRET = "AKIAQX7LEFTOVER", "s3cr3t/Leftover+9"


def test_config_magic_masks_storage_options(ipython, capsys):
    ipython.run_cell(f'%config LineaPy.storage_options = {{"key": "{KEY}", "secret": "{SECRET}", '
                     '"client_kwargs": {"region_name": "us-east-1"}}')
    capsys.readouterr()
    result = ipython.run_cell("%config LineaPy.storage_options")
    ipython.run_cell("%config LineaPy")
    ipython.run_cell("%config LineaPy.default_storage_backend_options = {'token': 'tok-" + SECRET + "'}")
    ipython.run_cell("%config LineaPy.default_storage_backend_options")
    shown = capsys.readouterr().out
    assert "'key': '***'" in shown and "'secret': '***'" in shown and "'token': '***'" in shown, shown
    assert KEY not in shown and SECRET not in shown, shown
    # The values themselves still reach the code that uses them (fsspec keys its cache on str()).
    assert result.result["key"] == KEY and dict(result.result)["secret"] == SECRET
    assert SECRET in str({"s3": result.result})


ENV_TRAIT = {"LINEAPY_LOGGING_LEVEL": "logging_level", "LINEAPY_VERIFY_TIMEOUT": "verify_timeout",
             "LINEAPY_DEFAULT_STORAGE_BACKEND": "default_storage_backend"}


@pytest.mark.parametrize("var, bad, says", [
    ("LINEAPY_LOGGING_LEVEL", "LOUD", "valid choices are CRITICAL, ERROR, WARNING, INFO, DEBUG; using the default 'WARNING'"),
    ("LINEAPY_VERIFY_TIMEOUT", "abc", "expected a number; using the default 300.0"),
    ("LINEAPY_VERIFY_TIMEOUT", "-3", "use a finite number > 0 (seconds); using the default 300.0"),
    ("LINEAPY_DEFAULT_STORAGE_BACKEND", "no good", "use 'lineapy' or a dotted path 'pkg.module.Class'"),
])
def test_bad_env_var_does_not_stop_load_ext(lineapy_home, monkeypatch, caplog, var, bad, says):
    # Outside pytest the warning reaches stderr through logging's last-resort handler.
    monkeypatch.setenv(var, bad)
    shell = new_shell()
    try:
        with caplog.at_level("WARNING", logger="lineapy_ext"):
            shell.run_line_magic("load_ext", "lineapy_ext")
        lines = [r.getMessage() for r in caplog.records if var in r.getMessage()]
        assert len(lines) == 1 and f"{var}={bad!r} ignored: {says}" in lines[0], lines
        assert "\n" not in lines[0]
        # Loaded, on the default, and working: a save and a get go through.
        shell.run_cell("x = 41 + 1")
        shell.run_line_magic("lineapy", "save x answer")
        shell.run_cell("del x")
        shell.run_line_magic("lineapy", "get answer")
        assert shell.user_ns["answer"] == 42
        from lineapy_ext.context import get_context

        options = get_context().options
        assert options.source_of(ENV_TRAIT[var]) == "default"
    finally:
        shell.run_line_magic("unload_ext", "lineapy_ext")
        close_shell(shell)



MODEL_CELL = ("import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
              "m = LogisticRegression().fit(np.random.RandomState(0).rand(20, 2), [0, 1] * 10)")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["closed port", "accepts and never answers"])
def test_unreachable_mlflow_server_fails_a_save_fast_in_one_line(ipython, tmp_path, monkeypatch, capsys, kind):
    import importlib
    import socket
    import time

    pytest.importorskip("mlflow")
    pytest.importorskip("sklearn")
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    listener = None
    if kind == "closed port":
        port = free_port()
    else:
        # Connections complete in the kernel's backlog; nothing ever reads or answers them.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
    try:
        ipython.run_line_magic("config", f"LineaPy.mlflow_tracking_uri = 'http://127.0.0.1:{port}'")
        assert ipython.run_cell(MODEL_CELL).success
        importlib.import_module("mlflow.sklearn")  # import time is not what is measured

        capsys.readouterr()
        start = time.monotonic()
        result = ipython.run_cell("%lineapy save m model")
        elapsed = time.monotonic() - start
    finally:
        if listener is not None:
            listener.close()
    out = capsys.readouterr()
    text = out.out + out.err
    assert not result.success and elapsed < 15, (elapsed, text)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [f"UsageError: cannot reach the MLflow tracking server at http://127.0.0.1:{port}: "
                     + ("[Errno 111] Connection refused" if kind == "closed port" else "no answer within 5 s")
                     + " (check that the server is running and LineaPy.mlflow_tracking_uri)"], text
    assert "Traceback" not in text
    # Nothing was recorded, and the kernel goes on capturing.
    import lineapy_ext

    assert ipython.run_cell("k = 1").success
    assert [a.name for a in lineapy_ext.artifact_store()] == []


def test_export_refuses_to_overwrite_without_force_and_warns_about_shadowing(ipython, tmp_path, monkeypatch, capsys):
    from IPython.core.error import UsageError

    from lineapy_ext.exceptions import LineaPyWarning

    monkeypatch.chdir(tmp_path)
    ipython.run_cell("numpy = [1, 2, 3]\nresult = sum(numpy)")
    ipython.run_line_magic("lineapy", "save result result")
    ipython.run_line_magic("lineapy", "save numpy numpy")
    mine = tmp_path / "result.py"
    mine.write_text("# my own script\n")
    with pytest.raises(UsageError, match=r"cannot export to 'result.py': the file exists; add --force"):
        ipython.run_line_magic("lineapy", "export result")
    assert mine.read_text() == "# my own script\n"
    with pytest.raises(UsageError, match="the file exists"):
        ipython.run_line_magic("lineapy", "export result --function")
    assert mine.read_text() == "# my own script\n"
    ipython.run_line_magic("lineapy", "export result --force")
    assert "sum(numpy)" in mine.read_text()

    # numpy.py would be what `import numpy` finds next to it.
    with pytest.warns(LineaPyWarning, match=r"'numpy.py' has the name of the module 'numpy'"):
        ipython.run_line_magic("lineapy", "export numpy")
    assert (tmp_path / "numpy.py").is_file()
    with pytest.warns(LineaPyWarning, match=r"module 'json'"):
        ipython.run_line_magic("lineapy", "export result -o json.py")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", LineaPyWarning)  # no warning for an ordinary name
        ipython.run_line_magic("lineapy", "export result -o my_result_script.py")


@pytest.mark.parametrize("reserved", ["In", "Out", "get_ipython", "exit", "quit", "_i", "_i3", "_ii", "_7", "_"])
def test_get_refuses_the_shells_own_names(ipython, reserved):
    from IPython.core.error import UsageError

    ipython.run_cell("x = 5")
    ipython.run_line_magic("lineapy", "save x x")
    before = ipython.user_ns.get(reserved)
    with pytest.raises(UsageError) as err:
        ipython.run_line_magic("lineapy", f"get x --as {reserved}")
    assert str(err.value).startswith(f"cannot bind to {reserved!r}: it is a name IPython itself uses")
    assert "\n" not in str(err.value)
    assert ipython.user_ns.get(reserved) is before
    ipython.run_line_magic("lineapy", "get x --as _x1")  # names that only look alike still work
    assert ipython.user_ns["_x1"] == 5
