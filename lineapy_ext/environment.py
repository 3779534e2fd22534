"""The environment a value was computed in: Python version and imported distributions.

This module is the one place that maps import names to the distributions
that provide them (:func:`distribution_version`), used by the MLflow
backend's pinned requirements, by pipelines' ``requirements.txt`` and by
:func:`capture` at every save.  What a save records::

    {"python": "3.11.7",
     "packages": {"numpy": "2.3.1", "scikit-learn": "1.7.0"},   # distribution -> version
     "modules": {"numpy": "numpy", "sklearn": "scikit-learn"}}  # import name -> distribution

Only the top-level modules the slice imports count (standard library,
``lineapy_ext`` and modules no installed distribution provides, such as the
session's own files, are left out).  :func:`differences` compares such a
record with the running interpreter: a different major or minor version
(of Python or of a recorded distribution) or a missing distribution
matters; patch levels do not.

Cheap to import (``sys`` and ``re`` only): ``get`` checks every artifact.
"""

from __future__ import annotations

import re
import sys

#: Top-level module -> distribution names to try first (when they differ).
DISTRIBUTION_ALIASES = {
    "sklearn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "prophet": ("prophet",),
    "yaml": ("PyYAML",),
    "dateutil": ("python-dateutil",),
}

#: Top-level modules never recorded: this extension and its capture hooks.
_OWN_MODULES = frozenset({"lineapy_ext", "kernel_hooks", "__future__", "__main__"})

_PACKAGES_DISTRIBUTIONS: dict | None = None

# Leading release numbers of a version string (an epoch ``N!`` skipped).
_RELEASE = re.compile(r"\s*v?(?:\d+!)?(\d+)(?:\.(\d+))?")


def _packages_distributions() -> dict:
    # ~0.4 s over a few hundred installed distributions: built once per process.
    global _PACKAGES_DISTRIBUTIONS
    if _PACKAGES_DISTRIBUTIONS is None:
        from importlib.metadata import packages_distributions

        _PACKAGES_DISTRIBUTIONS = packages_distributions()
    return _PACKAGES_DISTRIBUTIONS


def distribution_version(top: str) -> tuple[str, str] | None:
    """Return ``(distribution, version)`` of the installed distribution providing module ``top``.

    Parameters
    ----------
    top : str
        A top-level import name (``sklearn``, ``PIL``, ``numpy``).

    Returns
    -------
    tuple of str, or None
        ``("scikit-learn", "1.7.0")``; None when no installed distribution
        provides it (a local module, or not installed).
    """
    from importlib.metadata import PackageNotFoundError, version

    for dist in DISTRIBUTION_ALIASES.get(top, (top, top.replace("_", "-"))):
        try:
            return dist, version(dist)
        except PackageNotFoundError:
            continue
    if _not_installed(top):
        return None
    # Rare: the module name says nothing about its distribution (PIL ->
    # Pillow).  The full map is slow to build, so only on a miss.
    for dist in _packages_distributions().get(top) or []:
        try:
            return dist, version(dist)
        except PackageNotFoundError:
            continue
    return None


def _normalized(name: str) -> str:
    # PEP 503 names, spelled as wheel's .dist-info directories spell them.
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info_versions() -> dict[str, str]:
    """``{normalized name: version}`` from the ``NAME-VERSION.dist-info`` folders on ``sys.path``.

    What a get needs, without importing :mod:`importlib.metadata` (~25 ms)
    in a fresh kernel; the first folder on ``sys.path`` wins, as for imports.
    """
    import os

    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, a folder that went away
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, _, version = folder[: -len(".dist-info")].partition("-")
                if version:
                    found.setdefault(_normalized(name), version)
    return found


def _not_installed(top: str) -> bool:
    """Whether module ``top`` is surely no distribution's: not importable, or a file of the working directory.

    The common miss of :func:`distribution_version` is a session's own
    module (``import helpers`` next to the notebook); this spares it the
    full distribution map (~0.4 s).  A virtual environment inside the
    working directory is not mistaken for local files.
    """
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False  # let the map decide
    if spec is None:
        return True
    where = spec.origin if spec.has_location else next(iter(spec.submodule_search_locations or []), None)
    if not where:
        return False
    path = os.path.abspath(where)
    parts = set(path.split(os.sep))
    return path.startswith(os.path.join(os.getcwd(), "")) and not parts & {"site-packages", "dist-packages"}


def installed_version(dist: str, listed: dict | None = None) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed.

    ``listed`` is :func:`_dist_info_versions` when the caller asks about
    several; what it does not list (egg-info installs) is asked of
    :mod:`importlib.metadata`.
    """
    listed = _dist_info_versions() if listed is None else listed
    if _normalized(dist) in listed:
        return listed[_normalized(dist)]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def top_level_imports(nodes) -> list[str]:
    """Top-level names of the modules imported in ``nodes`` (AST nodes), first-seen order.

    Standard-library modules, relative imports and this extension's own
    modules are left out.
    """
    import ast

    names: list[str] = []
    for root in nodes:
        for node in ast.walk(root):
            names += _imported(node)
    return _kept(names)


def _imported(node) -> list[str]:
    import ast

    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module.split(".")[0]]
    return []


def _kept(names: list[str]) -> list[str]:
    stdlib = sys.stdlib_module_names
    return [n for n in dict.fromkeys(names) if n not in stdlib and n not in _OWN_MODULES]


#: Imports of statement texts parsed before (see :func:`_imports_in`): every
#: save parses only the parts of its slice it has not seen.
_PARSED: dict[str, tuple] = {}
_PARSED_CHARS = 0
_MAX_PARSED_CHARS = 16 << 20


def _imports_in(text: str) -> tuple | None:
    """``(depth, position, module)`` of each import in ``text``, in :func:`ast.walk`
    order; None when ``text`` does not parse on its own.

    An import statement has the keyword in its text: a text without it is
    not parsed.
    """
    global _PARSED_CHARS
    if "import" not in text:
        return ()
    found = _PARSED.get(text)
    if found is not None:
        return found
    import ast
    from collections import deque

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    out, todo, position = [], deque([(tree, 0)]), 0
    while todo:  # ast.walk, with each node's depth
        node, depth = todo.popleft()
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
        out += [(depth, position, name) for name in _imported(node)]
        position += 1
    if _PARSED_CHARS > _MAX_PARSED_CHARS:
        _PARSED.clear()
        _PARSED_CHARS = 0
    _PARSED[text] = found = tuple(out)
    _PARSED_CHARS += len(text)
    return found


def _imports_of_parts(code: str, parts: list[str]) -> list[str] | None:
    """What ``top_level_imports([ast.parse(code)])`` finds, from the texts
    ``code`` is joined from (``"\n\n".join(parts) + "\n"``, each whole
    statements), or None when that cannot be told apart.

    ``ast.walk`` goes breadth first: the whole code's imports are those of
    its parts ordered by depth, then part, then their order in the part.
    """
    joined = "\n\n".join(parts)
    if code != (joined + "\n" if joined else "") or "\0" in code:
        return None
    found = []
    for i, part in enumerate(parts):
        imports = _imports_in(part)
        if imports is None:
            return None
        found += [(depth, i, position, name) for depth, position, name in imports]
    found.sort()
    return _kept([name for *_, name in found])


def python_version() -> str:
    """The running interpreter's version, ``"3.11.7"``."""
    return "{}.{}.{}".format(*sys.version_info[:3])


def capture(code: str, parts: list[str] | None = None) -> dict:
    """Record the environment of a value whose slice is ``code``.

    Parameters
    ----------
    code : str
        The slice ("" when saved without one: then only Python is recorded).
    parts : list of str, optional
        The slice's cells (``code`` is ``"\n\n".join(parts) + "\n"``): only
        those holding an import are parsed, each once per process, so a save
        in a long session does not parse the whole slice again.  The record
        is the same whenever the slice parses (one cut from cells that ran
        always does); for one that does not, the imports of the cells that
        parse are recorded instead of none.

    Returns
    -------
    dict
        ``{"python": ..., "packages": {distribution: version}, "modules":
        {import name: distribution}}`` (see the module docstring).
    """
    import ast

    tops = _imports_of_parts(code, parts) if parts is not None else None
    if tops is None:
        try:
            tree = ast.parse(code)
        except SyntaxError:  # slices are valid Python; a bad one just records no packages
            tree = ast.Module(body=[], type_ignores=[])
        tops = top_level_imports([tree])
    packages: dict[str, str] = {}
    modules: dict[str, str] = {}
    for top in tops:
        found = distribution_version(top)
        if found is not None:
            modules[top] = found[0]
            packages[found[0]] = found[1]
    return {"python": python_version(), "packages": packages, "modules": modules}


def extend(environment: dict | None, code: str) -> dict | None:
    """``environment`` plus the distributions of modules ``code`` imports that it does not record.

    For a slice replaced after the save (a repair may add an import): what
    was recorded stays; the new modules get their installed versions.  None
    (nothing recorded at save) stays None.
    """
    if environment is None:
        return None
    now = capture(code)
    modules = dict(environment.get("modules") or {})
    packages = dict(environment.get("packages") or {})
    for module, dist in now["modules"].items():
        if module not in modules:
            modules[module] = dist
            packages.setdefault(dist, now["packages"][dist])
    return {**environment, "packages": packages, "modules": modules}


def merge(environments) -> dict | None:
    """One environment from several recorded ones (oldest save first: later saves win); None if none was recorded."""
    recorded = [env for env in environments if env]
    if not recorded:
        return None
    merged: dict = {"python": "", "packages": {}, "modules": {}}
    for env in recorded:
        merged["python"] = env.get("python") or merged["python"]
        merged["packages"].update(env.get("packages") or {})
        merged["modules"].update(env.get("modules") or {})
    return merged


def describe(environment: dict | None) -> str:
    """One sentence naming what was recorded: ``"Saved with Python 3.11.7, numpy==2.3.1."`` ("" if nothing)."""
    if not environment or not environment.get("python"):
        return ""
    packages = sorted((environment.get("packages") or {}).items(), key=lambda kv: kv[0].lower())
    return "Saved with " + ", ".join([f"Python {environment['python']}", *(f"{d}=={v}" for d, v in packages)]) + "."


def _major_minor(version: str) -> tuple[int, int] | None:
    match = _RELEASE.match(str(version))
    return None if match is None else (int(match.group(1)), int(match.group(2) or 0))


def matters(saved: str, installed: str | None) -> bool:
    """Whether running with ``installed`` instead of ``saved`` matters (None: not installed).

    Different major or minor versions matter; patch levels and pre-release
    tags do not.  Versions without leading numbers matter when they differ.
    """
    if installed is None:
        return True
    a, b = _major_minor(saved), _major_minor(installed)
    if a is None or b is None:
        return str(saved).strip() != str(installed).strip()
    return a != b


def differences(environment: dict | None) -> list[str]:
    """What differs, in ways that matter, between ``environment`` (recorded) and the running one.

    Parameters
    ----------
    environment : dict or None
        What :func:`capture` recorded; None (a version saved before
        environments were recorded) has no differences.

    Returns
    -------
    list of str
        One phrase each: ``"numpy 1.26.4 (installed: 2.3.1)"``,
        ``"scipy 1.13.0 (not installed)"``, ``"Python 3.10.14 (running: 3.11.7)"``.
    """
    if not environment:
        return []
    found = []
    python = environment.get("python")
    if python and matters(python, python_version()):
        found.append(f"Python {python} (running: {python_version()})")
    packages = environment.get("packages") or {}
    listed = _dist_info_versions() if packages else {}
    for dist, saved in sorted(packages.items(), key=lambda kv: kv[0].lower()):
        now = installed_version(dist, listed)
        if matters(saved, now):
            found.append(f"{dist} {saved} ({'not installed' if now is None else f'installed: {now}'})")
    return found


def pins(environments, modules) -> tuple[dict, list[str]]:
    """Pin the distributions of ``modules``: recorded versions first, installed ones otherwise.

    Parameters
    ----------
    environments : list of dict or None
        Recorded environments, oldest save first; for a distribution
        recorded several times the latest save wins.
    modules : list of str
        Top-level import names to pin.

    Returns
    -------
    dict, list of str
        ``{distribution: (version, "recorded" | "installed")}`` and the
        modules no record and no installed distribution provides.
    """
    merged = merge(environments) or {}
    recorded_dist: dict[str, str] = merged.get("modules") or {}
    recorded_version: dict[str, str] = merged.get("packages") or {}
    pinned: dict[str, tuple[str, str]] = {}
    unknown: list[str] = []
    for module in modules:
        dist = recorded_dist.get(module)
        if dist not in recorded_version:
            found = distribution_version(module)
            if found is None:
                unknown.append(module)
                continue
            dist = found[0]
            if dist not in recorded_version:
                pinned.setdefault(dist, (found[1], "installed"))
                continue
        pinned[dist] = (recorded_version[dist], "recorded")
    return pinned, unknown
