"""The %lineapy magic through a real InteractiveShell: parsing, output, errors, completion."""

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.completer import provisionalcompleter
from IPython.utils.capture import capture_output

from lineapy_ext import magics
from lineapy_ext.magics import Table, format_size, literal, split_backend_kwargs


@pytest.fixture
def shell(ipython):
    """The conftest shell (extension loaded, isolated lineapy home)."""
    return ipython


def run(shell, line):
    """Run ``%lineapy line``; return (result, stdout)."""
    with capture_output() as out:
        result = shell.run_line_magic("lineapy", line)
    return result, out.stdout


def completions(shell, text):
    with provisionalcompleter():
        return sorted({c.text for c in shell.Completer.completions(text, len(text))})


# -- pure helpers -------------------------------------------------------------


def test_split_backend_kwargs_parses_literals_and_keeps_known_options():
    argv = ["model", "clf", "--backend", "mlflow", "--registered_model_name", "clf",
            "--max-depth", "-1", "--tags={'a': 1}", "--path", "models/x"]
    rest, extra = split_backend_kwargs(argv, {"--backend"})
    assert rest == ["model", "clf", "--backend", "mlflow"]
    assert extra == {"registered_model_name": "clf", "max_depth": -1, "tags": {"a": 1}, "path": "models/x"}
    with pytest.raises(UsageError, match="--flag needs a value"):
        split_backend_kwargs(["x", "--flag"], set())
    assert literal("[1, 2]") == [1, 2] and literal("True") is True and literal("a b") == "a b"


def test_table_renders_aligned_text_and_escaped_html():
    table = Table(["name", "size"], [("clf", format_size(2048)), ("<b>", format_size(10))])
    assert repr(table).splitlines() == ["name  size", "----  -------", "clf   2.0 KiB", "<b>   10 B"]
    html = table._repr_html_()
    assert "<th>name</th>" in html and "&lt;b&gt;" in html and "<b>" not in html
    assert repr(Table(["a"], [], empty="nothing")) == "nothing"


# -- through the shell, no store needed ---------------------------------------


def test_help_and_usage_errors(shell):
    _, out = run(shell, "--help")
    for sub in magics.SUBCOMMANDS:
        assert f"%lineapy {sub}" in out
    _, out = run(shell, "save --help")
    assert out.startswith("usage: %lineapy save [--backend BACKEND] [--verify] VAR [NAME]")
    assert "--backend BACKEND" in out and "log_model" in out

    with pytest.raises(UsageError, match=r"unknown sub-command 'sav'; did you mean 'save'\?"):
        run(shell, "sav x")
    with pytest.raises(UsageError, match=r"required: VAR\nusage: %lineapy save"):
        run(shell, "save")
    with pytest.raises(UsageError, match=r"one of the arguments --version --latest --all is required"):
        run(shell, "delete clf")
    with pytest.raises(UsageError, match=r"invalid int value: 'two'\nusage: %lineapy get"):
        run(shell, "get clf --version two")


def test_save_unknown_variable_suggests_close_names(shell):
    shell.run_cell("model = 1")
    with pytest.raises(UsageError, match=r"^name 'modle' is not defined; did you mean 'model'\?$"):
        run(shell, "save modle")


def test_completion_of_subcommands(shell):
    assert completions(shell, "%lineapy ex") == ["export"]
    assert "save" in completions(shell, "%lineapy ")


def test_unload_removes_magic_and_completer(shell):
    before = len(shell.Completer.custom_matchers)
    shell.run_line_magic("reload_ext", "lineapy_ext")
    assert len(shell.Completer.custom_matchers) == before
    assert "lineapy" in shell.magics_manager.magics["line"]
    magics.unregister(shell)
    assert "lineapy" not in shell.magics_manager.magics["line"]
    assert len(shell.Completer.custom_matchers) == before - 1
    magics.register(shell)  # the fixture unloads it again


# -- end to end over the store ------------------------------------------------


def test_save_get_code_in_same_cell(shell):
    shell.run_cell("import math\nunrelated = print('noise')\nbase = 20\n")
    with capture_output() as out:
        shell.run_cell("answer = base * 2 + 2\n%lineapy save answer ans\n")
    assert out.stdout.startswith("Saved 'ans' version 1 (backend lineapy)"), out.stdout
    assert len(out.stdout.strip().splitlines()) == 1

    _, code = run(shell, "code ans")
    assert "base = 20" in code and "answer = base * 2 + 2" in code
    assert "print" not in code and "lineapy" not in code

    shell.run_cell("del answer")
    value, out = run(shell, "get ans --as answer")
    assert value == 42 and shell.user_ns["answer"] == 42
    assert out.startswith("Loaded 'ans' version 1 into 'answer' (saved ")
    assert "by session " in out
    shell.run_cell("x = %lineapy get ans")
    assert shell.user_ns["x"] == 42 and shell.user_ns["ans"] == 42


def test_versions_list_delete_and_errors(shell):
    shell.run_cell("w = [1]\n%lineapy save w weights\nw.append(2)\n%lineapy save w weights\n")
    shell.run_cell("other = 'x'\n%lineapy save other")
    table, _ = run(shell, "list")
    text = repr(table)
    assert text.splitlines()[0].split() == ["name", "version", "versions", "backend", "type", "size", "saved", "at"]
    row = next(line.split() for line in text.splitlines() if line.startswith("weights"))
    assert row[1:4] == ["2", "2", "lineapy"]
    assert "<td>weights</td>" in table._repr_html_()
    filtered, _ = run(shell, "list wei*")
    assert [r[0] for r in filtered.rows] == ["weights"]

    with pytest.raises(UsageError, match=r"weigths.*did you mean 'weights'"):
        run(shell, "get weigths")
    with pytest.raises(UsageError, match=r"version 7.*1, 2"):
        run(shell, "get weights --version 7")
    with pytest.raises(UsageError, match=r"\.\."):
        run(shell, "save w ../evil")

    _, out = run(shell, "delete weights --version 1")
    assert "Deleted version 1 of 'weights'" in out
    value, _ = run(shell, "get weights")
    assert value == [1, 2]
    _, out = run(shell, "delete weights --all")
    with pytest.raises(UsageError, match="weights"):
        run(shell, "get weights")
    assert completions(shell, "%lineapy get ot") == ["other"]


def test_export_script_and_notebook(shell, tmp_path):
    shell.run_cell("a = 3")
    shell.run_cell("print('display only')")
    shell.run_cell("b = a * 5\n%lineapy save b")
    script = tmp_path / "b.py"
    _, out = run(shell, f"export b -o {script}")
    assert str(script) in out
    ns = {}
    exec(script.read_text(), ns)
    assert ns["b"] == 15
    assert script.read_text().startswith("# Slice of artifact 'b' version 1, saved ")

    nb_path = tmp_path / "b.ipynb"
    run(shell, f"export b --version 1 -o {nb_path}")
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and "`b` (version 1)" in nb.cells[0].source
    code_cells = [c.source for c in nb.cells[1:]]
    assert all(c.cell_type == "code" and not c.outputs for c in nb.cells[1:])
    assert "a = 3" in code_cells[0] and "b = a * 5" in "\n".join(code_cells)
    assert not any("print" in c for c in code_cells)
    with pytest.raises(UsageError, match=r"must end with \.py or \.ipynb"):
        run(shell, f"export b -o {tmp_path / 'b.txt'}")


def test_config_masks_secrets(shell):
    shell.run_line_magic(
        "config", "LineaPy.mlflow_tracking_uri = 'http://me:hunter2@mlflow.example:5000'"
    )
    table, _ = run(shell, "config")
    text = repr(table)
    assert "hunter2" not in text and "hunter2" not in table._repr_html_()
    row = next(r for r in table.rows if r[0] == "mlflow_tracking_uri")
    assert "mlflow.example" in row[1] and row[2] != ""


def test_save_with_an_option_the_lineapy_backend_does_not_take(shell):
    shell.run_cell("x = 1")
    with pytest.raises(UsageError, match=r"^unknown save option\(s\) for the lineapy backend: foo, max_depth; it takes none"):
        run(shell, "save x --foo 1 --max-depth 2")
    with capture_output() as cap:
        result = shell.run_cell("%lineapy save x --foo 1")
    assert isinstance(result.error_in_exec, UsageError)
    shown = cap.stdout + cap.stderr
    assert "Traceback" not in shown and "TypeError" not in shown and "lineapy.py" not in shown
    assert "foo" in shown
    table, _ = run(shell, "list")
    assert len(table) == 0  # nothing saved


def test_bare_get_prints_one_line_and_assigned_get_returns_the_value(shell):
    shell.run_cell("x = [1, 2, 3]\n%lineapy save x xs")
    with capture_output() as cap:
        result = shell.run_cell("%lineapy get xs")
    result.raise_error()
    assert result.result is None
    assert len(cap.stdout.splitlines()) == 1
    assert cap.stdout.startswith("Loaded 'xs' version 1 into 'xs'") and "Out[" not in cap.stdout
    assert shell.user_ns["xs"] == [1, 2, 3]
    assert [1, 2, 3] not in shell.user_ns["Out"].values()

    with capture_output() as cap:
        shell.run_cell("y = %lineapy get xs --as z").raise_error()
    assert shell.user_ns["y"] == [1, 2, 3] and shell.user_ns["z"] == [1, 2, 3]
    assert len(cap.stdout.splitlines()) == 1
    # Not the last line, or inside an expression: still the value.
    shell.run_cell("w = %lineapy get xs --as v\nlen(w)").raise_error()
    assert shell.user_ns["w"] == [1, 2, 3]
    result = shell.run_cell("get_ipython().run_line_magic('lineapy', 'get xs')[1:]")
    assert result.result == [2, 3]
    # Outside a cell (no running statement to ask about) the value is returned.
    assert run(shell, "get xs")[0] == [1, 2, 3]


def test_export_to_an_unwritable_path_is_one_line(shell, tmp_path):
    import lineapy_ext
    from lineapy_ext.exceptions import ExportError, LineaPyError
    from lineapy_ext.export import write_export

    shell.run_cell("b = 2\n%lineapy save b")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a dir")
    with pytest.raises(UsageError, match=r"^cannot export to .*a_file/b\.py'.*choose a writable path$"):
        run(shell, f"export b -o {blocker / 'b.py'}")
    art = lineapy_ext.get("b")
    with pytest.raises(ExportError, match="must end with") as err:
        write_export(tmp_path / "b.txt", art)
    assert isinstance(err.value, LineaPyError) and isinstance(err.value, ValueError)


# -- issue 17: no silent replacement, no directory chains, flag completion ----


def test_get_says_when_it_replaced_a_different_value(shell):
    shell.run_cell("top = [3, 1]\n%lineapy save top")
    _, out = run(shell, "get top")
    assert "replaced" not in out  # an equal value is no news
    shell.run_cell("top = 'my own top'")
    _, out = run(shell, "get top")
    assert shell.user_ns["top"] == [3, 1]
    assert out.count("\n") == 1
    assert out.startswith("Loaded 'top' version 1 into 'top' (saved ")
    assert out.rstrip().endswith("; it replaced a different 'top' (str)")
    _, out = run(shell, "get top --as fresh")
    assert "replaced" not in out


def test_export_creates_only_the_files_own_folder(shell, tmp_path):
    shell.run_cell("b = 2\n%lineapy save b")
    _, out = run(shell, f"export b -o {tmp_path / 'new' / 'b.py'}")
    assert (tmp_path / "new" / "b.py").is_file() and "Wrote the slice of 'b'" in out
    missing = tmp_path / "missing"
    for line in (f"export b -o {missing / 'deeper' / 'b.py'}",
                 f"export b --function -o {missing / 'deeper' / 'm.py'}"):
        with pytest.raises(UsageError, match=rf"^cannot export to '.*deeper/.\.py': the folder '{missing}' "
                                             r"does not exist; create it first or choose another path$"):
            run(shell, line)
    # A pipeline's -o is the folder written: it is created when its parent exists.
    with pytest.raises(UsageError, match=rf"^cannot write the pipeline to '.*missing/p': the folder '{missing}' "
                                         r"does not exist"):
        run(shell, f"pipeline b --to script -o {missing / 'p'}")
    assert not missing.exists()
    run(shell, f"pipeline b --to script -o {tmp_path / 'p'}")
    assert (tmp_path / "p" / "pipeline.py").is_file()


def test_completion_of_each_subcommands_flags_and_their_values(shell):
    shell.run_cell("model = 1\nmodel_b = 2")
    assert completions(shell, "%lineapy save --") == ["--backend", "--verify"]
    assert completions(shell, "%lineapy save model --b") == ["--backend"]
    assert completions(shell, "%lineapy save model --backend ") == ["lineapy", "mlflow"]
    assert completions(shell, "%lineapy save model --backend ml") == ["mlflow"]
    assert completions(shell, "%lineapy save model --backend=ml") == ["mlflow"]
    # Past the flags, the variable to save is still completed.
    assert completions(shell, "%lineapy save --backend mlflow mod") == ["model", "model_b"]
    assert completions(shell, "%lineapy pipeline a --to ") == ["airflow", "dvc", "script"]
    with_flags = 0
    for sub, func in magics.SUBCOMMANDS.items():
        flags = sorted(func.parser._option_string_actions)
        if flags:  # (list, config, store have none)
            with_flags += 1
            assert completions(shell, f"%lineapy {sub} x -") == flags, sub
    assert with_flags >= 7
    assert completions(shell, "%lineapy delete x --") == ["--all", "--latest", "--version"]
    assert not any(c.startswith("--") for c in completions(shell, "%lineapy get x --version "))
