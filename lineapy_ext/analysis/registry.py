"""The effect registry: what library callables do, kept as data.

Knowledge about library functions is keyed by *what the program called*,
never by a method name alone:

- ``[function."numpy.random.seed"]``: a module-level function, by the dotted
  path it was reached through after imports are resolved (``np.random.seed``
  with ``import numpy as np``).  Keys may be ``fnmatch`` patterns
  (``"matplotlib.pyplot.*"``); exact keys win over patterns.
- ``[method."pandas.core.generic.NDFrame.to_sql"]``: a method, by
  ``module.QualName`` of any class in the receiver's MRO as the capture saw it
  at run time (the first class of the MRO with an entry wins).
- ``[type."builtins.float"]``: facts about every method of a type
  (``pure = true``: nothing it does changes the receiver or the world).
- ``[value."pandas.core.generic.NDFrame"]``: facts about the values of a
  type: ``independent = true`` says a new value shares no mutable state with
  the objects it was computed from (``since = "pandas 3"``: from that major
  version of the library on); ``keyed = true`` says that the items of an
  object of exactly that type, under constant string keys (a DataFrame's
  columns, a dict's entries), are apart: assigning ``obj["a"]`` never
  changes ``obj["b"]``, and ``obj["b"]`` is computed from that item alone;
  ``item_reads_change = true`` says that reading ``obj[k]`` may change the
  object (a ``defaultdict`` inserts a missing key); ``passive = true`` says
  that an object made from such a value does not change it when fitted or
  run (``sm.OLS(y, X).fit()`` leaves ``X``; a ``Pipeline``'s steps are not
  passive: its fit fits them).

Each entry says (all optional; an argument is named by an *argument spec*:
``"self"`` for the receiver, ``"2"`` for the third positional argument,
``"con"`` for a keyword, ``"con@1"`` for either):

``pure``
    changes nothing (receiver, arguments, files, hidden state);
``mutates``
    the arguments it changes in place;
``state`` / ``state_reset``
    hidden global state it reads and changes (``"numpy.random"``,
    ``"matplotlib.pyplot"``) / overwrites without reading (a seed);
``reads_files`` / ``writes_files``
    arguments holding paths of files it reads / writes;
``opens_file``
    the argument holding the path (or ``sqlite:///`` URL) of a file the
    returned object reads and writes through (a database connection);
``selects_items``
    ``obj.m("k")["c"]`` with constant arguments reads only items ``k`` and
    ``c`` of ``obj`` (``df.groupby("region")["revenue"]``);
``dict_items``
    the argument that, given as a literal dict with constant string keys,
    names the only items of the receiver the call reads and, with
    ``inplace=True``, changes (``df.fillna({"a": 0}, inplace=True)``);
    ``dict_items_nested``: only when every value of that dict is a dict too
    (``df.replace({"c": {"x": "y"}})`` works per column, a flat dict on all);
``reads_at_names``
    the argument holding an expression whose ``@name`` words read the
    caller's variables (``df.query("b > @thr")``);
``runs_sql`` / ``reads_table`` / ``writes_table``
    the argument holding SQL text the call runs (the tables it reads and
    writes are read from the text when it is a plain statement), or the
    name of a table it reads or writes (``df.to_sql("t", con)``), on the
    database ``database`` names (default ``"self"``: a connection or a
    cursor); a database the analysis cannot tie to a SQLite file, or SQL it
    cannot read, counts as the whole database (``mutates`` says what then
    changes);
``settles``
    a commit, rollback or close: the tables written since the database's
    last one become visible to other connections (or are taken back);
    ``closes``: the connection itself is closed too (its state changes,
    the database does not);
``returns``
    ``"part"`` when the result is a part of the receiver (a cursor of a
    connection, a view of an array); ``"new"`` when it never is;
    ``"self"`` when it returns the receiver itself (``cur.execute(q).fetchall()``
    is ``fetchall`` on ``cur``);
    ``"tied"`` when it works on the same file as the receiver without
    holding any of it (a cursor of a SQLite connection);
    ``"linked"`` when the values it returns hold each other (``fig, ax =
    plt.subplots()``: drawing on ``ax`` changes ``fig``).

The shipped entries live in ``effects.toml`` next to this module; users add
their own with the ``effect_registry_files`` option (files in the same
format, loaded after the shipped one, so they can override it).
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Effect", "EffectRegistry", "RegistryError", "default_registry", "arg_value"]

_SHIPPED = Path(__file__).with_name("effects.toml")
_FIELDS = {"pure", "mutates", "state", "state_reset", "reads_files", "writes_files", "opens_file",
           "returns", "doc", "independent", "keyed", "item_reads_change", "selects_items",
           "since", "runs_sql", "reads_table", "writes_table", "database", "settles", "closes", "dict_items",
           "dict_items_nested", "reads_at_names", "passive"}
_SECTIONS = ("function", "method", "type", "value")


class RegistryError(ValueError):
    """An effect registry file is malformed (names the file and the entry)."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What one library callable does (see the module docstring)."""

    pure: bool = False
    mutates: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    state_reset: tuple[str, ...] = ()
    reads_files: tuple[str, ...] = ()
    writes_files: tuple[str, ...] = ()
    opens_file: str | None = None
    returns: str | None = None
    independent: bool = False
    keyed: bool = False
    item_reads_change: bool = False
    selects_items: bool = False
    since: str | None = None
    runs_sql: str | None = None
    reads_table: str | None = None
    writes_table: str | None = None
    database: str = "self"
    settles: bool = False
    closes: bool = False
    dict_items: str | None = None
    dict_items_nested: bool = False
    reads_at_names: str | None = None
    passive: bool = False

    @property
    def sql(self) -> bool:
        """Whether the call runs SQL or touches tables of a database."""
        return bool(self.runs_sql or self.reads_table or self.writes_table or self.settles)


def _effect(raw: dict, where: str) -> Effect:
    unknown = set(raw) - _FIELDS
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {sorted(_FIELDS)}")
    kw = {}
    for k, v in raw.items():
        if k == "doc":
            continue
        if k in ("pure", "independent", "keyed", "item_reads_change", "selects_items", "settles", "closes",
                 "dict_items_nested", "passive"):
            kw[k] = bool(v)
        elif k in ("opens_file", "returns", "since", "runs_sql", "reads_table", "writes_table", "database",
                   "dict_items", "reads_at_names"):
            kw[k] = str(v)
        else:
            if isinstance(v, str):
                v = [v]
            kw[k] = tuple(str(x) for x in v)
    if kw.get("returns") not in (None, "part", "new", "linked", "tied", "self"):
        raise RegistryError(f"{where}: returns must be 'part', 'new', 'linked', 'tied' or 'self', "
                            f"not {kw['returns']!r}")
    return Effect(**kw)


class EffectRegistry:
    """Effects of library callables, looked up by function path or receiver MRO.

    Parameters
    ----------
    paths : list of path-like, optional
        Registry files (TOML) to load after the shipped one.
    """

    def __init__(self, paths=()) -> None:
        self._exact: dict[str, dict[str, Effect]] = {s: {} for s in _SECTIONS}
        self._patterns: dict[str, list[tuple[str, Effect]]] = {s: [] for s in _SECTIONS}
        self.files: list[str] = []
        self._by_name: dict[str, list[Effect]] | None = None
        for p in [_SHIPPED, *paths]:
            self.load(p)

    def load(self, path) -> None:
        """Add (or override) the entries of one registry file."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise RegistryError(f"effect registry file {str(path)!r} cannot be read: {e.strerror or e}") from e
        except tomllib.TOMLDecodeError as e:
            raise RegistryError(f"effect registry file {str(path)!r} is not valid TOML: {e}") from e
        for section, entries in data.items():
            if section not in _SECTIONS or not isinstance(entries, dict):
                raise RegistryError(f"{path}: unknown section [{section}]; valid: {', '.join(_SECTIONS)}")
            for key, raw in entries.items():
                effect = _effect(raw, f"{path}: [{section}.\"{key}\"]")
                if any(c in key for c in "*?["):
                    self._patterns[section].insert(0, (key, effect))
                else:
                    self._exact[section][key] = effect
        self.files.append(str(path))
        self._by_name = None

    def _find(self, section: str, key: str) -> Effect | None:
        found = self._exact[section].get(key)
        if found is not None:
            return found
        for pattern, effect in self._patterns[section]:
            if fnmatch.fnmatchcase(key, pattern):
                return effect
        return None

    def function(self, path: str) -> Effect | None:
        """The effect of module function ``path`` (``"numpy.random.seed"``)."""
        return self._find("function", path)

    def methods_named(self, name: str) -> list[Effect]:
        """Every method entry called ``name``, whatever its class: the
        last-resort guess for a receiver whose type is unknown."""
        index = self._by_name
        if index is None:
            index = self._by_name = {}
            for key, effect in self._exact["method"].items():
                index.setdefault(key.rpartition(".")[2], []).append(effect)
            for key, effect in self._patterns["method"]:
                index.setdefault(key.rpartition(".")[2], []).append(effect)
        return index.get(name, [])

    def independent(self, cls: str) -> bool:
        """Whether values of class ``cls`` never share mutable state with the
        objects they were computed from (``[value."cls"] independent = true``,
        optionally ``since = "pandas 3"``: only when that major version or a
        later one is imported)."""
        entry = self._exact["value"].get(cls)
        return entry is not None and entry.independent and _since_holds(entry.since)

    def passive(self, cls: str) -> bool:
        """Whether values of class ``cls`` are data that an object made from
        them does not change when it is fitted or run (``[value."cls"]
        passive = true``: arrays and frames given to a model; ``since`` is
        about ``independent`` only)."""
        entry = self._exact["value"].get(cls)
        return entry is not None and entry.passive

    def keyed(self, cls: str) -> bool:
        """Whether objects of exactly class ``cls`` keep their items under
        constant keys apart (``[value."cls"] keyed = true``): ``obj["a"] = v``
        changes no other item and ``obj["b"]`` reads that item only."""
        entry = self._exact["value"].get(cls)
        return entry is not None and entry.keyed and _since_holds(entry.since)

    def item_reads_change(self, mro: tuple[str, ...]) -> bool:
        """Whether reading ``obj[k]`` may change an object of a type with MRO
        ``mro`` (``[value."cls"] item_reads_change = true`` on any class of it)."""
        for cls in mro:
            entry = self._exact["value"].get(cls)
            if entry is not None and entry.item_reads_change:
                return _since_holds(entry.since)
        return False

    def method(self, mro: tuple[str, ...], name: str) -> Effect | None:
        """The effect of method ``name`` on a receiver whose type's MRO
        (``module.QualName`` strings, most derived first) is ``mro``."""
        for cls in mro:
            found = self._find("method", f"{cls}.{name}")
            if found is not None:
                return found
            if cls != "builtins.object":
                typ = self._find("type", cls)
                if typ is not None:
                    return typ
        return None


def _since_holds(since: str | None) -> bool:
    """``since = "pandas 3"``: that library is imported at that major version or later."""
    if not since:
        return True
    dist, _, major = since.partition(" ")
    mod = sys.modules.get(dist)
    version = getattr(mod, "__version__", "0") if mod is not None else "0"
    try:
        return int(version.split(".")[0]) >= int(major)
    except ValueError:
        return False


def arg_value(spec: str, positional: tuple, keywords: dict):
    """The argument ``spec`` names, from a call's positional and keyword
    arguments (``"self"`` is looked up as the keyword ``"self"``); None when
    the call did not pass it."""
    name, _, pos = spec.partition("@")
    if name.isdigit():
        name, pos = "", name
    if name and name in keywords:
        return keywords[name]
    if pos:
        i = int(pos)
        if i < len(positional):
            return positional[i]
    return None


_default: EffectRegistry | None = None


def default_registry() -> EffectRegistry:
    """The process-wide registry: the shipped entries plus the files set by
    :func:`configure`."""
    global _default
    if _default is None:
        _default = EffectRegistry()
    return _default


def configure(paths) -> EffectRegistry:
    """Rebuild the process-wide registry with extra files ``paths``.

    Raises
    ------
    RegistryError
        When a file cannot be read or is malformed (nothing is changed then).
    """
    global _default
    _default = EffectRegistry(list(paths))
    return _default
