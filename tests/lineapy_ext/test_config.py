"""The LineaPy config object: layers, precedence, validation, masking, shell registration."""

from __future__ import annotations

import json
import os
import warnings

import pytest
from traitlets import TraitError
from traitlets.config import Config
from IPython.utils.capture import capture_output

from lineapy_ext.config import LineaPy, mask_options, mask_url
from lineapy_ext.exceptions import ConfigError, LineaPyWarning


@pytest.fixture
def clean_env(lineapy_home, monkeypatch):
    """A home dir with no LINEAPY_* env var except LINEAPY_HOME_DIR."""
    monkeypatch.delenv("LINEAPY_DATABASE_URL")
    monkeypatch.delenv("LINEAPY_ARTIFACT_STORAGE_DIR")
    return lineapy_home


def write_file(home, **values):
    (home / "lineapy_config.json").write_text(json.dumps(values))


def test_defaults_derive_from_home_dir(clean_env):
    o = LineaPy()
    assert o.home_dir == str(clean_env)
    assert o.database_url == f"sqlite:///{clean_env}/db.sqlite"
    assert o.artifact_storage_dir == f"{clean_env}/linea_pickles"
    assert o.source_of("home_dir") == "env"
    assert o.source_of("database_url") == "default"
    assert o.logging_level == "WARNING"
    assert o.effective_ml_models_storage_backend == "lineapy"


def test_precedence_session_over_ipython_over_env_over_file_over_default(clean_env, monkeypatch):
    write_file(clean_env, logging_level="ERROR", mlflow_tracking_uri="file:///from-file",
               mlflow_registry_uri="file:///reg-file", default_storage_backend="pkg.mod.FileBackend")
    monkeypatch.setenv("LINEAPY_LOGGING_LEVEL", "INFO")
    monkeypatch.setenv("LINEAPY_MLFLOW_TRACKING_URI", "file:///from-env")
    o = LineaPy()
    assert (o.default_storage_backend, o.source_of("default_storage_backend")) == ("pkg.mod.FileBackend", "config file")
    assert (o.mlflow_tracking_uri, o.source_of("mlflow_tracking_uri")) == ("file:///from-env", "env")
    assert (o.logging_level, o.source_of("logging_level")) == ("INFO", "env")

    o.load_ipython_config(Config({"LineaPy": {"logging_level": "DEBUG", "mlflow_registry_uri": "file:///reg-ipy"}}))
    assert (o.logging_level, o.source_of("logging_level")) == ("DEBUG", "IPython config")
    assert (o.mlflow_registry_uri, o.source_of("mlflow_registry_uri")) == ("file:///reg-ipy", "IPython config")

    o.set("logging_level", "critical")
    assert (o.logging_level, o.source_of("logging_level")) == ("CRITICAL", "session")
    # IPython config loaded later does not override a session value.
    o.load_ipython_config(Config({"LineaPy": {"logging_level": "ERROR"}}))
    assert o.logging_level == "CRITICAL"
    assert o.source_of("storage_options") == "default"


def test_home_dir_change_moves_derived_defaults_and_rereads_file(clean_env, tmp_path):
    other = tmp_path / "other_home"
    other.mkdir()
    write_file(other, logging_level="ERROR")
    o = LineaPy()
    o.set("database_url", "sqlite:////tmp/explicit.sqlite")
    o.set("home_dir", str(other))
    assert o.artifact_storage_dir == f"{other}/linea_pickles"
    assert o.database_url == "sqlite:////tmp/explicit.sqlite"  # session value kept
    assert (o.logging_level, o.source_of("logging_level")) == ("ERROR", "config file")


@pytest.mark.parametrize(
    "trait, value, expected_in_message",
    [
        ("logging_level", "LOUD", "'DEBUG'"),
        ("database_url", "mysql://h/db", "postgresql://"),
        ("default_ml_models_storage_backend", "s3", "'mlflow', 'lineapy'"),
        ("default_storage_backend", "not a path", "pkg.module.Class"),
        ("home_dir", "s3://bucket/x", "local directory"),
    ],
)
def test_bad_values_raise_trait_error_naming_trait_and_choices(clean_env, trait, value, expected_in_message):
    o = LineaPy()
    before = o.get(trait)
    with pytest.raises(TraitError) as err:
        o.set(trait, value)
    assert trait in str(err.value)
    assert expected_in_message in str(err.value)
    assert o.get(trait) == before


def test_postgres_scheme_is_accepted_as_postgresql(clean_env):
    o = LineaPy()
    o.set("database_url", "postgres://u:pw@localhost/db")
    assert o.database_url == "postgresql://u:pw@localhost/db"


def test_unknown_key_lists_valid_keys(clean_env):
    o = LineaPy()
    with pytest.raises(ConfigError, match="database_url") as err:
        o.get("databse_url")
    assert "'databse_url'" in str(err.value)
    with pytest.raises(ConfigError):
        o.set("nope", 1)


def test_bad_env_var_falls_back_to_default(clean_env, monkeypatch):
    monkeypatch.setenv("LINEAPY_LOGGING_LEVEL", "LOUDEST")
    o = LineaPy()
    assert (o.logging_level, o.source_of("logging_level")) == ("WARNING", "default")


def test_describe_masks_secrets(clean_env):
    o = LineaPy()
    o.set("database_url", "postgresql://alice:hunter2@db.example/lineapy")
    o.set("storage_options", {"key": "AKIAXXX", "secret": "s3cr3t", "client_kwargs": {"endpoint_url": "http://x"}})
    rows = {name: (value, source) for name, value, source in o.describe()}
    assert set(rows) == set(o.trait_names(config=True))
    assert rows["database_url"] == ("postgresql://alice:***@db.example/lineapy", "session")
    assert "hunter2" not in repr(rows) and "s3cr3t" not in repr(rows) and "AKIAXXX" not in repr(rows)
    assert rows["storage_options"][0] == {"key": "***", "secret": "***", "client_kwargs": {"endpoint_url": "***"}}
    assert "hunter2" not in LineaPy.class_get_help(o)


def test_mask_helpers():
    assert mask_url("s3://bucket/x") == "s3://bucket/x"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url("postgresql+psycopg://u:p%40ss@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert mask_options({"a": 1}) == {"a": "***"}


def test_shell_registration_and_percent_config(ipython, lineapy_home, capsys):
    from lineapy_ext import options

    assert options in ipython.configurables
    ipython.run_line_magic("config", "LineaPy")
    assert "LineaPy.database_url" in capsys.readouterr().out
    new_db = lineapy_home / "other.sqlite"
    with pytest.warns(LineaPyWarning, match="only database_url changed"):
        ipython.run_line_magic("config", f'LineaPy.database_url = "sqlite:///{new_db}"')
    assert options.database_url == f"sqlite:///{new_db}"
    assert options.source_of("database_url") == "session"
    ipython.run_line_magic("unload_ext", "lineapy_ext")
    assert options not in ipython.configurables
    ipython.run_line_magic("load_ext", "lineapy_ext")


def test_ipython_config_applies_on_attach(lineapy_home):
    from lineapy_ext.context import get_context
    from tests.shells import close_shell, new_shell

    db = f"sqlite:///{lineapy_home / 'team.sqlite'}"
    shell = new_shell(Config({"LineaPy": {"mlflow_tracking_uri": "file:///ipy", "database_url": db}}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with capture_output() as out:
                shell.run_cell("%load_ext lineapy_ext").raise_error()
        assert out.stdout == ""  # where the config puts the store is no move
        opts = get_context().options
        assert (opts.mlflow_tracking_uri, opts.source_of("mlflow_tracking_uri")) == ("file:///ipy", "IPython config")
        assert get_context().location()[0] == db
        shell.run_line_magic("unload_ext", "lineapy_ext")
    finally:
        close_shell(shell)


def test_location_change_resets_session_once(clean_env, capsys):
    import lineapy_ext
    from lineapy_ext.context import get_context

    ctx = get_context()
    lineapy_ext.save(1, "one")
    old_session = ctx.session_id
    lineapy_home = clean_env
    other = lineapy_home / "elsewhere"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx.options.set("home_dir", str(other))  # moves both: no warning
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "new session" in out
    assert ctx.session_id != old_session
    assert not ctx.store_is_open
    assert lineapy_ext.artifact_store() == []  # the new store is empty
    with pytest.warns(LineaPyWarning, match="only artifact_storage_dir changed"):
        ctx.options.set("artifact_storage_dir", str(lineapy_home / "vals"))
    assert capsys.readouterr().out.count("new session") == 1
    # Setting the same value again is not a change.
    ctx.options.set("artifact_storage_dir", str(lineapy_home / "vals"))
    assert capsys.readouterr().out == ""


def test_load_is_fast_and_does_not_import_heavy_modules(lineapy_home):
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "t = time.perf_counter(); sh.run_line_magic('load_ext', 'lineapy_ext'); dt = time.perf_counter() - t\n"
        "sh.run_line_magic('reload_ext', 'lineapy_ext')\n"
        "sh.run_line_magic('unload_ext', 'lineapy_ext')\n"
        "print(dt, [m for m in ('mlflow', 's3fs', 'sqlalchemy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0
    assert out[1] == "[]"


def test_half_location_change_warning_points_at_the_users_line(ipython, lineapy_home, tmp_path):
    import lineapy_ext

    package_dir = os.path.dirname(lineapy_ext.__file__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with capture_output():
            ipython.run_cell(f"%config LineaPy.database_url = 'sqlite:///{tmp_path / 'other.sqlite'}'").raise_error()
    (w,) = [w for w in caught if issubclass(w.category, LineaPyWarning)]
    assert "only database_url changed" in str(w.message)
    assert not w.filename.startswith(package_dir), w.filename
    assert "traitlets" not in w.filename and "IPython" not in w.filename
    assert w.filename.startswith("<ipython-input-") and w.lineno == 1, (w.filename, w.lineno)  # the cell

    from lineapy_ext.context import get_context

    ctx = get_context()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx.options.set("artifact_storage_dir", str(tmp_path / "other_values"))  # completes the move
        ctx.options.set("artifact_storage_dir", str(tmp_path / "third_values"))  # half again
    (w,) = [w for w in caught if issubclass(w.category, LineaPyWarning)]
    assert "only artifact_storage_dir changed" in str(w.message) and w.filename == __file__


# -- moving the store from a notebook ------------------------------------------


def _cell(shell, code: str):
    """Run one cell; return (stdout, LineaPyWarnings), raising what the cell raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with capture_output() as out:
            shell.run_cell(code).raise_error()
    return out.stdout, [w for w in caught if issubclass(w.category, LineaPyWarning)]


def _names(shell) -> list[str]:
    _, _ = _cell(shell, "_listed = %lineapy list")
    return [row[0] for row in shell.user_ns["_listed"].rows]


def test_lineapy_store_moves_both_halves_and_list_get_follow(ipython, lineapy_home, tmp_path):
    from IPython.core.error import UsageError

    from lineapy_ext.context import get_context

    home_a = (f"{lineapy_home / 'linea_pickles'}", f"sqlite:///{lineapy_home / 'db.sqlite'}")
    home_b = (f"{tmp_path / 'b_values'}", f"sqlite:///{tmp_path / 'b.sqlite'}")
    _cell(ipython, "a = [1, 2]\n%lineapy save a")
    assert _names(ipython) == ["a"]

    out, warned = _cell(ipython, f"%lineapy store {home_b[0]} {home_b[1]}\nin_b = %lineapy list")
    assert out.count("store changed") == 1 and warned == []
    assert f"database {home_b[1]}, values in {home_b[0]}" in out
    assert ipython.user_ns["in_b"].rows == []  # the line after the move already sees the new store
    with pytest.raises(UsageError, match="'a'"):
        _cell(ipython, "%lineapy get a")
    _cell(ipython, "b = 3\n%lineapy save b")
    assert _names(ipython) == ["b"]
    assert (tmp_path / "b.sqlite").exists() and any((tmp_path / "b_values").rglob("*.pkl"))

    out, warned = _cell(ipython, f"%lineapy store {home_a[0]} '{home_a[1]}'")
    assert out.count("store changed") == 1 and warned == []
    assert _names(ipython) == ["a"]
    ipython.user_ns["a"] = None
    _cell(ipython, "%lineapy get a")
    assert ipython.user_ns["a"] == [1, 2]

    session = get_context().session_id
    out, warned = _cell(ipython, f"%lineapy store {home_a[0]} {home_a[1]}")
    assert "already using" in out and "store changed" not in out and get_context().session_id == session
    with pytest.raises(UsageError, match=r"database_url 'mysql://h/db' is not supported.*postgresql://"):
        _cell(ipython, f"%lineapy store {tmp_path / 'c'} mysql://h/db")
    with pytest.raises(UsageError, match="required: DB_URL"):
        _cell(ipython, f"%lineapy store {tmp_path / 'c'}")
    assert get_context().location() == (home_a[1], home_a[0])  # a refused move changes nothing


def test_two_config_lines_in_one_cell_move_the_store_with_one_line_and_no_warning(ipython, tmp_path):
    from lineapy_ext.context import get_context

    db, values = f"sqlite:///{tmp_path / 'team.sqlite'}", str(tmp_path / "team_values")
    out, warned = _cell(
        ipython,
        f"%config LineaPy.database_url = '{db}'\n"
        f"%config LineaPy.artifact_storage_dir = '{values}'\n"
        "x = 1\n"
        "%lineapy save x",
    )
    assert warned == []
    assert out.count("store changed") == 1 and f"values in {values}" in out
    assert get_context().location() == (db, values)
    assert _names(ipython) == ["x"] and any((tmp_path / "team_values").rglob("*.pkl"))


def test_half_move_warns_at_the_end_of_the_cell_until_the_other_half_follows(ipython, tmp_path):
    db = f"sqlite:///{tmp_path / 'half.sqlite'}"
    out, warned = _cell(ipython, f"y = 2\n%config LineaPy.database_url = '{db}'\ny = 3")
    (w,) = warned
    assert str(w.message).startswith("only database_url changed, artifact_storage_dir is still ")
    assert "%lineapy store DIR_URL DB_URL" in str(w.message)
    assert w.filename.startswith("<ipython-input-") and w.lineno == 2  # the %config line
    assert out.count("store changed") == 1

    out, warned = _cell(ipython, f"%config LineaPy.artifact_storage_dir = '{tmp_path / 'half_values'}'")
    assert warned == [] and out.count("store changed") == 1
    out, warned = _cell(ipython, "z = 1")
    assert warned == [] and out == ""


def test_setting_home_dir_alone_moves_both_halves(clean_env, tmp_path):
    from lineapy_ext.context import get_context
    from tests.shells import close_shell, new_shell

    shell = new_shell()
    try:
        shell.run_line_magic("load_ext", "lineapy_ext")
        _cell(shell, "old = 1\n%lineapy save old")
        new_home = tmp_path / "new_home"
        out, warned = _cell(shell, f"%config LineaPy.home_dir = '{new_home}'")
        assert warned == [] and out.count("store changed") == 1
        assert get_context().location() == (f"sqlite:///{new_home}/db.sqlite", f"{new_home}/linea_pickles")
        assert _names(shell) == []
        _cell(shell, "new = 2\n%lineapy save new")
        assert _names(shell) == ["new"] and (new_home / "db.sqlite").exists()
        shell.run_line_magic("unload_ext", "lineapy_ext")
    finally:
        close_shell(shell)


def test_set_location_from_python_is_one_move(clean_env, tmp_path, capsys):
    from lineapy_ext.context import get_context

    ctx = get_context()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ctx.options.set_location(str(tmp_path / "v"), f"sqlite:///{tmp_path / 'm.sqlite'}") is True
    assert capsys.readouterr().out.count("store changed") == 1
    with pytest.raises(ConfigError, match="artifact_storage_dir must be"):
        ctx.options.set_location("  ", f"sqlite:///{tmp_path / 'n.sqlite'}")
    assert ctx.location() == (f"sqlite:///{tmp_path / 'm.sqlite'}", str(tmp_path / "v"))
    assert ctx.options.source_of("database_url") == "session"
