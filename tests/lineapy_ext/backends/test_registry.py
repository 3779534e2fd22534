"""Finding backends by name or dotted path, and choosing the backend of a save."""

from __future__ import annotations

import pytest

import lineapy_ext
from lineapy_ext.backends import backend_class, choose_backend
from lineapy_ext.backends.base import StorageBackend
from lineapy_ext.backends.lineapy import LineaPyBackend
from lineapy_ext.exceptions import BackendError


class DictBackend(StorageBackend):
    """A custom backend defined in the test suite: values kept in a class-level dict."""

    data: dict = {}

    def save(self, value, name, **kwargs):
        key = f"{name}:{len(self.data)}:{self.options.get('tag', '')}:{kwargs.get('note', '')}"
        self.data[key] = value
        return {"location": key, "size": None}

    def load(self, metadata):
        return self.data[metadata["location"]]

    def delete(self, metadata):
        self.data.pop(metadata["location"], None)

    def exists(self, metadata):
        return metadata["location"] in self.data


def test_builtin_and_dotted_paths():
    assert backend_class("lineapy") is LineaPyBackend
    assert backend_class(f"{__name__}.DictBackend") is DictBackend
    assert backend_class(f"{__name__}:DictBackend") is DictBackend


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz.Backend", "cannot import storage backend"),
        (f"{__name__}.Missing", "not a class"),
        ("not a path", "unknown storage backend"),
    ],
)
def test_bad_backend_names(spec, message):
    with pytest.raises(BackendError, match=message):
        backend_class(spec)


def test_custom_backend_save_get_delete(lineapy_home):
    spec = f"{__name__}.DictBackend"
    art = lineapy_ext.save({"k": 1}, "custom", storage_backend=spec, note="hi")
    assert art.storage_backend == spec
    assert lineapy_ext.get("custom").get_value() == {"k": 1}
    key = art.get_metadata()["location"]
    assert key.endswith(":hi") and key in DictBackend.data
    lineapy_ext.delete("custom", "all")
    assert key not in DictBackend.data


def test_default_backend_from_config_gets_its_options(lineapy_home):
    opts = lineapy_ext.options
    opts.set("default_storage_backend", f"{__name__}.DictBackend")
    opts.set("default_storage_backend_options", {"tag": "T"})
    art = lineapy_ext.save(5, "dflt")
    assert art.storage_backend == f"{__name__}.DictBackend"
    assert ":T:" in art.get_metadata()["location"]
    assert lineapy_ext.get("dflt").get_value() == 5


def test_choose_backend_table(lineapy_home):
    opts = lineapy_ext.options
    assert choose_backend(object(), None, opts) == "lineapy"
    assert choose_backend(object(), "lineapy", opts) == "lineapy"
    with pytest.raises(BackendError, match="tracking URI"):
        choose_backend(object(), "mlflow", opts)
    opts.set("mlflow_tracking_uri", "file:///tmp/mlruns")
    assert choose_backend(object(), "mlflow", opts) == "mlflow"
    assert choose_backend(object(), "lineapy", opts) == "lineapy"
    assert choose_backend(object(), None, opts) == "lineapy"  # not a model
    assert opts.effective_ml_models_storage_backend == "mlflow"
    opts.set("default_ml_models_storage_backend", "lineapy")
    assert opts.effective_ml_models_storage_backend == "lineapy"
