"""The effect registry: shipped entries, user files, and the config trait."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from lineapy_ext.analysis.registry import EffectRegistry, RegistryError, configure

from .replay import Case
from .test_replay import test_replay as check_case


def test_lookup_by_mro_and_path():
    reg = EffectRegistry()
    assert reg.method(("pandas.core.frame.DataFrame", "pandas.core.generic.NDFrame"), "to_sql").mutates == ("con@1",)
    assert reg.method(("builtins.str", "builtins.object"), "replace").pure
    assert reg.function("numpy.add.at").mutates == ("0",)
    assert reg.function("numpy.random.seed").state_reset == ("numpy.random",)
    assert reg.function("mylib.unknown") is None


def test_value_facts_keyed_and_item_reads(tmp_path):
    reg = EffectRegistry()
    assert reg.keyed("builtins.dict") and reg.keyed("pandas.DataFrame")
    assert not reg.keyed("collections.defaultdict") and not reg.keyed("builtins.list")
    assert reg.item_reads_change(("mylib.Counts", "collections.defaultdict", "builtins.dict"))
    assert not reg.item_reads_change(("builtins.dict", "builtins.object"))
    mine = tmp_path / "mine.toml"
    mine.write_text('[value."mylib.Table"]\nkeyed = true\n')
    assert EffectRegistry([mine]).keyed("mylib.Table")


def test_user_file_overrides_and_bad_files(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('[method."mylib.Box.fill"]\nmutates = ["self", "into@0"]\n'
                    '[function."numpy.random.seed"]\npure = true\n')
    reg = EffectRegistry([good])
    assert reg.method(("mylib.Box",), "fill").mutates == ("self", "into@0")
    assert reg.function("numpy.random.seed").pure
    bad = tmp_path / "bad.toml"
    bad.write_text('[method."x.Y.z"]\nmutate = ["self"]\n')
    with pytest.raises(RegistryError, match=r"unknown field.*mutate"):
        EffectRegistry([bad])
    with pytest.raises(RegistryError, match="cannot be read"):
        EffectRegistry([tmp_path / "missing.toml"])


def test_config_trait_loads_user_entries(tmp_path, ipython):
    """A user's library method that fills an argument: without the entry the
    slice of the argument misses the call; with it, the slice replays."""
    from lineapy_ext import options

    (tmp_path / "case").mkdir()
    entry = tmp_path / "effects.toml"
    entry.write_text('[method."__main__.Filler.fill"]\nmutates = ["into@0"]\n')
    try:
        options.set("effect_registry_files", [str(entry)])
        case = Case("user_registry_entry",
                    ["class Filler:\n    def __init__(self):\n        self.n = 3",
                     "f = Filler()", "target = []",
                     "Filler.fill = lambda self, into: into.extend(range(self.n))",
                     "f.fill(target)"], "target", present=("f.fill(target)",))
        check_case(case, tmp_path / "case")
        with pytest.raises(TraitError, match="effect_registry_files"):
            options.set("effect_registry_files", [str(tmp_path / "nope.toml")])
    finally:
        options.set("effect_registry_files", [])
        configure([])
