"""Static facts about one top-level statement: what it reads, binds, mutates.

:func:`analyze` turns an ``ast.stmt`` (as IPython ran it, after input
transforms) into :class:`StatementFacts`.  Everything here is purely
syntactic and knows nothing of IPython beyond recognising the calls that
IPython's transforms produce for magics and shell lines
(``get_ipython().run_line_magic(...)`` etc.), which are rewritten into plain
Python where that is possible and dropped where they have no effect.

Scoping follows Python's rules: names bound in function bodies,
comprehensions and lambdas are local; ``global``/``nonlocal`` are honoured;
a walrus in a comprehension binds in the enclosing scope.  Reads are
*read-before-write* in evaluation order, so ``for i in ...: total += i``
reads ``total`` but not ``i``.

Calls are not resolved here: which function or method a call reaches is only
known at the time the statement ran, so calls are recorded as
:class:`CallSite` objects and resolved by :mod:`lineapy_ext.analysis.graph`.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field

#: ``CallSite.assigned_to`` of a call whose value is displayed (a cell's
#: trailing expression) rather than bound to a name.
DISPLAYED = "<displayed>"

__all__ = ["DISPLAYED", "CallSite", "FunctionSummary", "ClassSummary", "StatementFacts", "analyze", "CLASS_OF"]


@dataclass(slots=True)
class CallSite:
    """One call expression.

    ``chain`` is the dotted access the callee was reached through when it is
    rooted at a name (``np.random.rand`` -> ``("np", "random", "rand")``),
    else None.  ``through_call`` is set when the receiver is the result of
    another call (``d.get(k).append(1)``).  ``args``/``kwargs`` hold the
    arguments that are plain names; ``deep_args`` the roots of arguments that
    are subscripts or attributes (``f(x[0])`` may mutate what ``x`` holds),
    and of the items of list, tuple and set displays (``f([a, b])``).
    ``name`` is the called attribute or function name; ``literals`` the
    string constants passed, as ``(argument spec, value)`` (``"0"`` for the
    first positional, the keyword otherwise); ``receiver_type`` the type of a
    literal receiver (``"builtins.str"`` for ``"a b".split()``);
    ``writes_guess`` the last-resort guess, from the name alone, that the
    call writes files (used only when nothing better is known);
    ``first_slot`` the constant key of the root's item the receiver lies in
    (``cfg["model"]["features"].append(x)`` -> ``"model"``); ``first_call``,
    when the receiver is the result of calls, the method of the root that the
    innermost of them called (``df.groupby("k")["c"].transform(f)`` -> ``"groupby"``).
    """

    chain: tuple[str, ...] | None
    args: tuple[str | None, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()
    deep_args: tuple[str, ...] = ()
    inplace: bool = False
    out: tuple[str, ...] = ()
    through_call: bool = False
    assigned_to: str | None = None
    receiver_deep: bool = False
    name: str | None = None
    literals: tuple[tuple[str, str], ...] = ()
    receiver_type: str | None = None
    writes_guess: bool = False
    unpacked: tuple[str, ...] = ()
    method_refs: tuple[tuple[str, str], ...] = ()
    first_slot: str | None = None
    first_call: str | None = None
    texts: tuple[tuple[str, str], ...] = ()
    dict_keys: tuple[str, tuple[str, ...], bool] | None = None
    with_name: str | None = None
    inner_names: tuple[str, ...] = ()


@dataclass(slots=True)
class FunctionSummary:
    """What a function does to the world when called (not when defined)."""

    params: tuple[str, ...]
    kwonly: tuple[str, ...]
    has_varargs: bool
    reads: frozenset[str]
    writes: frozenset[str]
    mutations: tuple[tuple[str, bool], ...]
    calls: tuple[CallSite, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    is_generator: bool = False
    returns_parts_of: frozenset[str] = frozenset()
    makes_functions: bool = False


@dataclass(slots=True)
class ClassSummary:
    """Methods of a class defined in the session, by name.

    ``kinds`` marks static and class methods (``"static"``/``"class"``);
    ``setters`` are the methods that run on attribute or item assignment
    (``__setitem__``, ``__setattr__``, property setters...); ``bases`` are
    the names of the base classes, looked up when a method is not found.
    """

    methods: dict[str, FunctionSummary]
    kinds: dict[str, str] = field(default_factory=dict)
    setters: tuple[FunctionSummary, ...] = ()
    bases: tuple[str, ...] = ()
    attrs: frozenset[str] = frozenset()

    def all_reads(self) -> frozenset[str]:
        out: set[str] = set()
        for m in self.methods.values():
            out |= m.reads
        return frozenset(out)


@dataclass(slots=True)
class StatementFacts:
    """Static facts about one top-level statement.

    ``emit`` is the plain-Python text to put in a slice when it differs from
    the source (magic rewritten); ``drop`` marks statements that have no
    effect a slice could need (``%matplotlib``, ``!ls``, ``%lineapy save``);
    ``opaque`` marks statements with effects that cannot be written as plain
    Python (an unknown magic that binds names).
    """

    uses: frozenset[str] = frozenset()
    defs: tuple[str, ...] = ()
    maybe_defs: frozenset[str] = frozenset()
    deletes: tuple[str, ...] = ()
    mutations: tuple[tuple[str, bool], ...] = ()
    augmented: frozenset[str] = frozenset()
    calls: tuple[CallSite, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    contains: tuple[tuple[str, str], ...] = ()
    imports: tuple[tuple[str, str], ...] = ()
    star_imports: tuple[str, ...] = ()
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    instances: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    attr_targets: tuple[tuple[str, ...], ...] = ()
    unknown_effects: bool = False
    emit: str | None = None
    drop: bool = False
    opaque: bool = False
    artifact_get: tuple[str, int | None, str] | None = None
    artifact_selector: tuple[tuple[str, object], ...] = ()
    keyed_reads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    keyed_writes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    item_reads: frozenset[str] = frozenset()
    keyed_read_methods: tuple[tuple[str, tuple[str, ...]], ...] = ()
    nested_writes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    attr_reads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Top-level ``for`` loops over one name, outermost first: (target, roots
    #: (see ``_loop_roots``), iterates over a literal, the body may change the target).
    loop_targets: tuple[tuple[str, tuple[str, ...], bool, bool], ...] = ()


# --- knowledge about common callables ---------------------------------------

#: Builtins that neither mutate their arguments nor keep hidden state.
PURE_BUILTINS = frozenset("""
abs all any ascii bin bool bytearray bytes callable chr complex dict dir divmod
enumerate filter float format frozenset getattr hasattr hash help hex id int
isinstance issubclass iter len list map max min oct ord pow print range repr
reversed round set slice sorted str sum tuple type zip display vars locals
memoryview object super property staticmethod classmethod input
""".split())

#: Builtins that change their first argument.
MUTATING_BUILTINS = frozenset({"setattr", "delattr", "next"})

#: Builtins whose effects on the namespace cannot be seen statically.
OPAQUE_BUILTINS = frozenset({"exec", "eval", "globals", "__import__", "compile"})

#: Method names that never change their receiver (whatever its type).
PURE_METHODS = frozenset("""
copy deepcopy head tail describe info count index get keys values items
startswith endswith format join split rsplit strip lstrip rstrip lower upper
title replace find rfind encode decode isdigit isalpha isnumeric
predict predict_proba predict_log_proba decision_function score transform
inverse_transform get_params get_feature_names_out to_numpy to_list tolist
to_dict to_frame to_string to_markdown to_html to_records astype reshape
ravel flatten mean median sum std var min max argmin argmax prod cumsum
cumprod nunique unique value_counts isna isnull notna notnull any all
groupby agg aggregate apply applymap map merge concat dropna fillna
drop drop_duplicates rename reset_index set_index sort_values sort_index
query filter select_dtypes corr cov round abs clip dot T transpose
show summary conf_int params pvalues
issubset issuperset union intersection difference symmetric_difference
isdisjoint nbytes sample where mask pivot pivot_table melt stack unstack
explode assign pipe rolling expanding resample shift diff pct_change rank
idxmin idxmax quantile mode memory_usage equals isin between duplicated
to_csv to_parquet to_json to_pickle to_excel to_feather savefig
""".split())

#: Methods that return (a reference to) an element of their receiver.
ELEMENT_METHODS = frozenset({"get", "setdefault", "pop", "popleft", "popitem", "__getitem__"})

#: Method names that change their receiver whatever the receiver is.
MUTATING_METHODS = frozenset("""
append extend insert remove pop popitem clear update setdefault add discard
sort reverse fit partial_fit fit_transform fit_predict set_params seed
shuffle fill resize put itemset setflags intersection_update
difference_update symmetric_difference_update appendleft extendleft
popleft rotate send throw close write writelines truncate flush seek read
readline readlines __next__
__setitem__ __delitem__ __iadd__ set_output
""".split())

#: Mutating methods that change only their receiver, never what it holds
#: (container operations); other changes of a library object (``fit``) may
#: change the objects it holds (a Pipeline's steps).
SHALLOW_METHODS = frozenset("""
append extend insert remove pop popitem clear update setdefault add discard
sort reverse appendleft extendleft popleft rotate intersection_update
difference_update symmetric_difference_update __setitem__ __delitem__ __iadd__
write writelines truncate flush seek read readline readlines close
""".split())

#: Methods that consult global random state when the estimator has no seed.
RANDOM_READING_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "sample"})

#: Module-level functions that change an argument (by position).
MUTATING_MODULE_FUNCS = {
    "shuffle": 0, "copyto": 0, "put": 0, "place": 0, "putmask": 0,
    "fill_diagonal": 0, "heappush": 0, "heappop": 0, "heapify": 0,
    "heapreplace": 0, "heappushpop": 0, "insort": 0, "insort_left": 0,
    "insort_right": 0, "seed": None,
}

_WRITE_CALLS = frozenset("""
to_csv to_parquet to_json to_pickle to_excel to_feather to_hdf to_stata
to_orc savefig save savez savez_compressed savetxt dump write write_text
write_bytes mkdir makedirs touch copy copyfile copy2 copytree move rename
replace unlink remove rmdir rmtree dump_svmlight_file imsave imwrite tofile
""".split())

_READ_CALLS = frozenset("""
open load loadtxt genfromtxt fromfile read_csv read_parquet read_json read_pickle
read_excel read_feather read_table read_hdf read_text read_bytes listdir exists
isfile isdir glob scandir walk stat load_svmlight_file imread
""".split())

_PATH_LIKE = re.compile(r"^[\w\-.~/\\:]+$")


#: A file mode (``open(p, "w")``, ``gzip.open(p, mode="rt")``), not a path.
_FILE_MODE = re.compile(r"^[rwxabtU+]{1,4}$")


def _looks_like_path(s: str) -> bool:
    if not s or len(s) > 300 or "\n" in s or not _PATH_LIKE.match(s):
        return False
    return "/" in s or bool(re.search(r"\.[A-Za-z0-9]{1,10}$", s))


def _call_arguments(node: ast.Call):
    """(names passed positionally, (keyword, name) pairs, roots of subscript
    or attribute arguments, ``inplace=True`` given, names passed as ``out=``).

    A keyword passed as anything but a plain name pairs with ``""``; ``*xs``
    and ``**kw`` add the pairs ``("*", "")`` and ``("**", "")``."""
    args, deep_args, kwargs = [], [], []
    for a in node.args:
        if isinstance(a, ast.Starred):
            kwargs.append(("*", ""))  # f(*paths): any position may be passed
            a = a.value
        if isinstance(a, ast.Name):
            args.append(a.id)
        else:
            args.append(None)
            if isinstance(a, (ast.Subscript, ast.Attribute)):
                r = _root(a)
                if r:
                    deep_args.append(r)
            elif isinstance(a, (ast.List, ast.Tuple, ast.Set)):
                deep_args += _loop_roots(a)  # f([train, test]): f gets both objects
    inplace, out = False, []
    for kw in node.keywords:
        if kw.arg is None:
            kwargs.append(("**", ""))  # f(**opts): any keyword may be passed
            continue
        if isinstance(kw.value, ast.Name):
            kwargs.append((kw.arg, kw.value.id))
        else:
            kwargs.append((kw.arg, ""))  # passed, not as a plain name (an f-string, a call)
        if isinstance(kw.value, (ast.Subscript, ast.Attribute)):
            r = _root(kw.value)
            if r:
                deep_args.append(r)
        if kw.arg == "inplace" and not (isinstance(kw.value, ast.Constant) and not kw.value.value):
            inplace = True
        if kw.arg == "out":
            out.extend(n.id for n in ast.walk(kw.value) if isinstance(n, ast.Name))
    return args, kwargs, deep_args, inplace, out


def _string_literals(call: ast.Call) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``(argument spec, value)`` of the string constants a call passes: the
    short one-line ones (paths, names), and the others (SQL text), with the
    one string of a wrapper call (``text("select ...")``)."""
    short, long = [], []
    specs = [(str(i), a) for i, a in enumerate(call.args)] + [(k.arg, k.value) for k in call.keywords if k.arg]
    for spec, a in specs:
        wrapped = type(a) is ast.Call and len(a.args) == 1 and not a.keywords
        if wrapped:
            a = a.args[0]
        if type(a) is not ast.Constant or type(a.value) is not str or not a.value:
            continue
        if "\n" not in a.value and len(a.value) < 300 and not wrapped:
            short.append((spec, a.value))
        elif len(a.value) < 20000:
            long.append((spec, a.value))
    return tuple(short), tuple(long)


def _chain(node) -> tuple[tuple[str, ...] | None, bool, bool]:
    """Dotted chain of ``node`` -> (names, deep, through_call).

    ``a.b.c`` -> (("a","b","c"), ...); subscripts are stepped through and make
    the access deep; a call in the chain sets ``through_call``.
    """
    parts: list[str] = []
    deep = through_call = False
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            deep = True
            node = node.value
        elif isinstance(node, ast.Call):
            through_call = True
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return tuple(reversed(parts)), deep, through_call
        else:
            return None, deep, through_call


def _dict_keys(call: ast.Call) -> tuple[str, tuple[str, ...], bool] | None:
    """``m({"a": 0, "b": 1})``: the one literal dict argument with constant
    string keys, as (argument spec, keys, whether every value is a dict)."""
    found = [(str(i), a) for i, a in enumerate(call.args) if type(a) is ast.Dict]
    if call.keywords:
        found += [(k.arg, k.value) for k in call.keywords if k.arg and type(k.value) is ast.Dict]
    if len(found) != 1:
        return None
    spec, d = found[0]
    if not d.keys or not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in d.keys):
        return None
    return spec, tuple(k.value for k in d.keys), all(isinstance(v, ast.Dict) for v in d.values)


def _inner_names(node) -> tuple[str, ...]:
    """``Pipeline([("s", scaler)]).fit(X)``, ``list(rows)[0].append(1)``: the
    names in the arguments of the innermost call of the chain ``node`` (the
    object that call made may hold them, or be one of their elements)."""
    inner = None
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        if isinstance(node, ast.Call):
            inner = node
        node = node.func if isinstance(node, ast.Call) else node.value
    if inner is None:
        return ()
    args = [*inner.args, *(k.value for k in inner.keywords)]
    return tuple(dict.fromkeys(n.id for a in args for n in ast.walk(a)
                               if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)))


def _first_call(node) -> str | None:
    """``root.m(...)...``: ``m``, the method of the root name that the
    innermost call of ``node``'s chain called; None when that call is not
    a method called on a plain name."""
    first = None
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        if isinstance(node, ast.Call):
            first = node.func
        node = node.func if isinstance(node, ast.Call) else node.value
    if isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name):
        return first.attr
    return None


#: Prefix of a mutation target meaning "the class of this object"
#: (``type(self).count += 1``).
CLASS_OF = "<class-of>"


def _class_of(node) -> str | None:
    """``x`` for ``type(x)`` or ``x.__class__``, else None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name)):
        return node.args[0].id
    if isinstance(node, ast.Attribute) and node.attr == "__class__" and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def _namespace_call(node) -> bool:
    """``globals()``, ``locals()`` or ``dir()`` with no arguments."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args
            and not node.keywords and node.func.id in ("globals", "locals", "dir"))


def _root(node) -> str | None:
    chain, _, _ = _chain(node)
    return chain[0] if chain else None


# --- magics -----------------------------------------------------------------

_CODE_LINE_MAGICS = frozenset({"time", "prun", "capture"})
_CODE_CELL_MAGICS = frozenset({"time", "prun", "capture", "python", "python3"})
_TIMEIT = "timeit"
_TIMEIT_FLAGS = {"-n": True, "-r": True, "-p": True, "-t": False, "-c": False, "-q": False, "-o": False}
_DROP_MAGICS = frozenset("""
matplotlib load_ext unload_ext reload_ext config pip conda who whos who_ls
lsmagic magic history hist pwd ls env alias_magic pinfo pinfo2 psearch
precision xmode colors doctest_mode automagic autocall autoawait page pdoc
pdef psource pfile debug pdb tb notebook save recall rerun edit logstart
logstop logon logoff logstate reset_selective sx system sc bookmark dhist
dirs popd pushd cd load_ipython_extension html javascript js latex markdown
svg script bash sh sx lineapy
""".split())


def _ipython_call(node) -> tuple[str, tuple] | None:
    """Recognise ``get_ipython().<method>(<str literals>)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    inner = node.func.value
    if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
            and inner.func.id == "get_ipython" and not inner.args):
        return None
    args = []
    for a in node.args:
        if isinstance(a, ast.Constant) and isinstance(a.value, str):
            args.append(a.value)
        else:
            args.append(None)
    return node.func.attr, tuple(args)


#: ``%cd`` arguments written as plain Python: a path, optionally after ``-q``.
_CD_PATH = re.compile(r"(-q\s+)?[\w./~][\w./~ -]*")


def _magic_code(call) -> tuple[str, str | None] | None:
    """For an IPython call, return (kind, code): kind is 'code' (run ``code``
    as Python), 'drop', 'getoutput' (code is the command), 'lineapy' or
    'opaque'."""
    method, args = call
    if method == "run_line_magic" and len(args) >= 2 and args[0]:
        name, line = args[0], args[1]
        if name in _CODE_LINE_MAGICS and line is not None:
            return "code", _line_magics_to_python(line)
        if name == _TIMEIT and line is not None:
            return "timeit", line
        if name == "lineapy":
            return "lineapy", line
        if name == "cd" and line is not None and _CD_PATH.fullmatch(line.strip()):
            # what relative paths mean from here on (bookmarks, -, $vars: dropped as before)
            path = line.strip().removeprefix("-q").strip()
            where = repr(path) if not path.startswith("~") else f"os.path.expanduser({path!r})"
            return "code", f"import os\nos.chdir({where})"
        if name in _DROP_MAGICS:
            return "drop", None
        return "opaque", None
    if method == "run_cell_magic" and len(args) >= 3 and args[0]:
        name, body = args[0], args[2]
        if name in _CODE_CELL_MAGICS and body is not None:
            return "code", _line_magics_to_python(body)
        if name == _TIMEIT and body is not None:
            return "timeit", (args[1] or "") + "\n" + body
        if name == "writefile" and body is not None and args[1]:
            return "writefile", (args[1], body)
        if name in _DROP_MAGICS:
            return "drop", None
        return "opaque", None
    if method in ("system", "run_line_magic", "run_cell_magic"):
        return "drop", None
    if method == "getoutput" and args and args[0] is not None:
        return "getoutput", args[0]
    return "opaque", None


def _line_magics_to_python(code: str) -> str:
    """``%name args`` lines (and ``x = %name args``) of a magic's body as the
    ``get_ipython()`` calls IPython would run, so nested magics are analysed
    like top-level ones (``%time %lineapy get clf``)."""
    out = []
    for line in code.splitlines():
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        target = ""
        head, eq, rest = stripped.partition("=")
        if eq and rest.lstrip().startswith("%") and head.strip().isidentifier():
            target, stripped = head.strip() + " = ", rest.lstrip()
        if stripped.startswith("%") and not stripped.startswith("%%"):
            name, _, args = stripped[1:].partition(" ")
            line = f"{indent}{target}get_ipython().run_line_magic({name!r}, {args.strip()!r})"
        out.append(line)
    return "\n".join(out)


def _timeit_code(text: str) -> tuple[str, int | None]:
    """(statement, number of runs or None) of a ``%timeit`` line or cell."""
    first, _, body = text.partition("\n")
    words = first.split()
    n = r = None
    i = 0
    while i < len(words) and words[i] in _TIMEIT_FLAGS:
        takes = _TIMEIT_FLAGS[words[i]]
        if takes and i + 1 < len(words):
            if words[i] == "-n" and words[i + 1].isdigit():
                n = int(words[i + 1])
            if words[i] == "-r" and words[i + 1].isdigit():
                r = int(words[i + 1])
            i += 1
        i += 1
    setup = " ".join(words[i:])
    runs = n * (r or 7) if n is not None else None
    return (setup + "\n" + body if body else setup), runs


def _timeit_statements(text: str) -> list[ast.stmt] | None:
    """``%timeit STMT`` ran STMT (at least once) in a namespace of its own
    whose globals are the user's: a function called as often as we know."""
    code, runs = _timeit_code(text)
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return None
    if not body:
        return None
    fn = ast.FunctionDef(name="_lineapy_timeit_body", args=ast.arguments([], [], None, [], [], None, []),
                         body=body, decorator_list=[], returns=None, type_params=[])
    call = "_lineapy_timeit_body()"
    loop = ast.parse(f"for _ in range({runs}):\n    {call}" if runs and runs > 1 else call).body
    return [ast.fix_missing_locations(fn), *loop]


#: ``%lineapy get`` options that choose a version through the MLflow
#: registry: the version they resolved to is pinned when the cell runs.
_SELECTORS = {"--alias": "alias", "--registered-version": "registered_version", "--stage": "stage"}


def _lineapy_selector(line: str | None) -> tuple[tuple[str, object], ...]:
    """``(("alias", "champion"),)`` for ``get NAME --alias champion``."""
    words: list[str] = []
    for w in (line or "").split():
        words.extend(w.split("=", 1) if w.startswith("--") and "=" in w else [w])
    out = []
    for flag, value in zip(words, words[1:]):
        if flag in _SELECTORS:
            key = _SELECTORS[flag]
            out.append((key, int(value) if key == "registered_version" and value.isdigit() else value))
    return tuple(out)


def _lineapy_get(line: str | None) -> tuple[str, int | None, str] | None:
    """Parse ``get NAME [--version N] [--as VAR]`` from a %lineapy line."""
    if not line:
        return None
    words = line.split()
    if not words or words[0] != "get" or len(words) < 2:
        return None
    name, version, var = words[1], None, words[1]
    flat: list[str] = []
    for w in words[2:]:  # argparse also accepts --as=VAR
        flat.extend(w.split("=", 1) if w.startswith("--") and "=" in w else [w])
    it = iter(flat)
    for w in it:
        if w == "--version":
            try:
                version = int(next(it, "0"))
            except ValueError:
                version = None
        elif w == "--as":
            var = next(it, var)
    return name, version, var


def _rewrite_magics(stmt: ast.stmt) -> tuple[list[ast.stmt] | None, str, object]:
    """Rewrite a statement that is (or assigns) an IPython magic call.

    Returns (new statements or None, kind, extra).  None means "leave as is".
    """
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    call = _ipython_call(value) if value is not None else None
    if call is None:
        return None, "", None
    kind, code = _magic_code(call)
    if kind == "timeit" and isinstance(stmt, ast.Expr):
        body = _timeit_statements(code)
        return (body, "timeit", None) if body else (None, "opaque", None)
    if kind == "writefile":
        path, text = code
        flags, _, target = path.rpartition(" ")
        mode = "a" if "-a" in flags.split() or "--append" in flags.split() else "w"
        src = f"with open({target.strip()!r}, {mode!r}) as _lineapy_file:\n    _lineapy_file.write({text!r})"
        return ast.parse(src).body, "code", None
    if kind == "code":
        try:
            body = ast.parse(code).body
        except SyntaxError:
            return None, "opaque", None
        if len(body) == 1 and _ipython_call(getattr(body[0], "value", None)) is not None and not (
                isinstance(stmt, ast.Assign) and isinstance(body[0], ast.Assign)):
            # %time %lineapy get clf: the inner magic decides
            inner = body[0] if isinstance(stmt, ast.Expr) else ast.Assign(targets=stmt.targets, value=body[0].value)
            return _rewrite_magics(ast.fix_missing_locations(ast.copy_location(inner, stmt)))
        if isinstance(stmt, ast.Expr):
            return body, "code", None
        if len(body) == 1 and isinstance(body[0], ast.Expr):
            new = ast.Assign(targets=stmt.targets, value=body[0].value)
            return [ast.fix_missing_locations(ast.copy_location(new, stmt))], "code", None
        return None, "opaque", None
    if kind == "getoutput" and isinstance(stmt, ast.Assign):
        src = (f"import subprocess\n{ast.unparse(stmt.targets[0])} = subprocess.run("
               f"{code!r}, shell=True, capture_output=True, text=True).stdout.splitlines()")
        return ast.parse(src).body, "code", None
    if kind == "lineapy":
        return None, "lineapy", _lineapy_get(code)
    return None, kind, None


# --- the walkers ------------------------------------------------------------

#: Methods Python calls on ``obj.attr = v`` / ``obj[k] = v`` / ``del``.
_ASSIGNMENT_HOOKS = frozenset({"__setitem__", "__setattr__", "__delitem__", "__delattr__"})

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _stored_names(body: list[ast.AST]) -> set[str]:
    """Names bound directly in a function body (Python's local-variable rule)."""
    out: set[str] = set()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name != "*":
                    out.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.NamedExpr):
            out.add(node.target.id)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            out.add(node.rest)
        if isinstance(node, _COMPREHENSIONS):
            # Only walrus targets leak out of a comprehension.
            out.update(n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


class _Walker:
    """Walks one statement (or a function body) in evaluation order."""

    def __init__(self, local_names: set[str] | None = None, declared_global: set[str] | None = None):
        # local_names is None at module level; inside a function it is the set
        # of the function's local variables.
        self.local_names = local_names
        self.declared_global = declared_global or set()
        self.uses: set[str] = set()
        self.defs: list[str] = []
        self.maybe: set[str] = set()
        self.assigned: set[str] = set()
        self.deletes: list[str] = []
        self.mutations: dict[str, bool] = {}
        self.augmented: set[str] = set()
        self.calls: list[CallSite] = []
        self.aliases: list[tuple[str, str]] = []
        self.contains: list[tuple[str, str]] = []
        self.imports: list[tuple[str, str]] = []
        self.star_imports: list[str] = []
        self.functions: dict[str, FunctionSummary] = {}
        self.classes: dict[str, ClassSummary] = {}
        self.paths: list[str] = []
        self.attr_targets: list[tuple[str, ...]] = []
        self.unknown = False
        self.cond = 0
        self.nested_writes: set[str] = set()  # globals assigned by nested functions
        self.shadow: list[set[str]] = []  # names local to enclosing comprehensions/lambdas
        self.element_of: dict[str, list[str]] = {}  # comprehension variable -> iterated roots
        self.with_roots: dict[str, str] = {}  # with X(...) as name: name -> root of X
        self.loop_targets: list[tuple[str, tuple[str, ...], bool, bool]] = []
        self.looping: list[set[str]] = []  # targets of the enclosing for loops
        self.called_through: set[str] = set()  # loop targets a method not known pure was called on

    # -- helpers --
    def _is_global(self, name: str) -> bool:
        if any(name in s for s in self.shadow):
            return False
        if self.local_names is None:
            return True
        return name in self.declared_global or name not in self.local_names

    def load(self, name: str) -> None:
        if not self._is_global(name):
            return
        if self.local_names is None and name in self.assigned:
            return
        self.uses.add(name)

    def store(self, name: str) -> None:
        if any(name in s for s in self.shadow):
            return
        if self.local_names is not None and name not in self.declared_global:
            return
        if self.cond:
            self.maybe.add(name)
        elif name not in self.defs:
            self.defs.append(name)
        # conditional() restores ``assigned`` on exit, so a binding inside a
        # branch only hides later reads within that branch.
        self.assigned.add(name)

    def mutate(self, name: str | None, deep: bool) -> None:
        if name is None:
            return
        if any(name in s for s in self.shadow):
            for root in self.element_of.get(name, ()):
                if not any(root in s for s in self.shadow):
                    self.mutate(root, True)
            return
        if name.startswith(CLASS_OF):
            self.load(name[len(CLASS_OF):])
        else:
            self.load(name)
        self.mutations[name] = self.mutations.get(name, False) or deep

    # -- dispatch --
    def visit(self, node) -> None:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            method(node)
        else:
            self.generic(node)

    def generic(self, node) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def visit_list(self, nodes) -> None:
        for n in nodes:
            self.visit(n)

    def conditional(self, nodes) -> None:
        self.cond += 1
        saved = set(self.assigned)
        self.visit_list(nodes)
        self.assigned = saved
        self.cond -= 1

    # -- expressions --
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.load(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.store(node.id)
        else:
            self.deletes.append(node.id)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _looks_like_path(node.value):
            self.paths.append(node.value)

    def _target(self, node) -> None:
        """An assignment target: names are bound, subscripts/attributes mutate."""
        if isinstance(node, ast.Name):
            self.visit_Name(node)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self._target(elt)
        elif isinstance(node, ast.Starred):
            self._target(node.value)
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            chain, deep, _ = _chain(node.value)
            if isinstance(node, ast.Subscript):
                self.visit(node.slice)
            self.visit(node.value)
            owner = _class_of(node.value)
            if isinstance(node, ast.Attribute) and chain and not deep:
                self.attr_targets.append(chain + (node.attr,))
            if owner is not None:
                self.mutate(CLASS_OF + owner, True)
            elif chain:
                self.mutate(chain[0], deep or len(chain) > 1)
        else:
            self.visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        magic = _ipython_call(node)
        if magic is not None and _magic_code(magic)[0] in ("drop", "lineapy"):
            return  # %lineapy save / %matplotlib inside a block: no effect on values
        self.visit(node.func)
        self.visit_list(node.args)
        for kw in node.keywords:
            self.visit(kw.value)
        chain, deep, through = _chain(node.func)
        args, kwargs, deep_args, inplace, out = _call_arguments(node)
        if chain and len(chain) > 1 and any(chain[0] in sh for sh in self.shadow):
            roots = [r for r in self.element_of.get(chain[0], ()) if not any(r in sh for sh in self.shadow)]
            if roots:  # [r.append(0) for r in rows]: a method call on an element of rows
                chain, deep = (roots[0],) + chain[1:], True
        with_name = None
        if chain and len(chain) > 1 and chain[0] in self.with_roots and self.local_names is None:
            with_name = chain[0] if len(chain) == 2 else None
            chain, deep = (self.with_roots[chain[0]],) + chain[1:], True
        name = chain[-1] if chain else (node.func.attr if isinstance(node.func, ast.Attribute) else None)
        if chain and len(chain) > 1 and name not in PURE_METHODS and any(chain[0] in t for t in self.looping):
            self.called_through.add(chain[0])
        if not chain and isinstance(node.func, ast.Attribute) and name not in PURE_METHODS:
            for root in _chosen_roots(node.func.value):  # (odd if i % 2 else even).append(i)
                self.mutate(root, False)
        literals, texts = _string_literals(node)
        if name in _WRITE_CALLS or name in _READ_CALLS:
            # np.save("a", x), os.makedirs("out"): paths without the usual look;
            # open(p, "w"): not the mode after the path
            for spec, v in literals:
                if v not in self.paths and not (spec != "0" and _FILE_MODE.match(v)):
                    self.paths.append(v)
        writes = name in _WRITE_CALLS
        if name == "open" and chain == ("open",):
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            writes = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))
        if chain and len(chain) == 1 and chain[0] in OPAQUE_BUILTINS:
            self._opaque_call(chain[0], node)
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        rtype = None
        if isinstance(receiver, ast.Constant):
            rtype = "builtins." + type(receiver.value).__name__
        elif isinstance(receiver, ast.JoinedStr):
            rtype = "builtins.str"
        refs = tuple((a.value.id, a.attr) for a in [*node.args, *(k.value for k in node.keywords)]
                     if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name))
        self.calls.append(CallSite(
            chain=chain, args=tuple(args), kwargs=tuple(kwargs), deep_args=tuple(deep_args),
            inplace=inplace, out=tuple(out), through_call=through, receiver_deep=deep,
            name=name, literals=literals, texts=texts, receiver_type=rtype, writes_guess=writes, method_refs=refs,
            first_slot=_first_slot(node.func) if deep and not through else None,
            first_call=_first_call(node.func) if through else None, dict_keys=_dict_keys(node),
            inner_names=_inner_names(node.func) if through else (),
            with_name=with_name,
        ))

    def visit_Compare(self, node: ast.Compare) -> None:
        # "x" in globals(): whether x is bound, a read of x (not "anything")
        if (len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
                and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
                and _namespace_call(node.comparators[0]) and self.local_names is None):
            if node.left.value.isidentifier():
                self.load(node.left.value)
            return
        self.generic(node)

    def _opaque_call(self, name: str, node: ast.Call) -> None:
        # exec("literal") is analysed as code; anything else is unknown.
        if name in ("exec", "eval") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and len(node.args) == 1:
            try:
                tree = ast.parse(node.args[0].value, mode="exec" if name == "exec" else "eval")
            except SyntaxError:
                self.unknown = True
                return
            self.visit_list(tree.body if name == "exec" else [tree.body])
            return
        if name in ("__import__", "compile"):
            return
        self.unknown = True

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit_list(node.args.defaults)
        self.visit_list([d for d in node.args.kw_defaults if d is not None])
        params = {a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs}
        for extra in (node.args.vararg, node.args.kwarg):
            if extra:
                params.add(extra.arg)
        self.shadow.append(params)
        saved = self.cond
        self.cond += 1
        self.visit(node.body)
        self.cond = saved
        self.shadow.pop()

    def _comprehension(self, node, elts) -> None:
        gens = node.generators
        self.visit(gens[0].iter)  # evaluated in the enclosing scope
        targets: set[str] = set()
        for g in gens:
            names = {n.id for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            targets |= names
            for n in names:  # [x.append(0) for x in lst] changes lst's elements
                self.element_of[n] = _iter_roots(g.iter)
        self.shadow.append(targets)
        self.cond += 1
        for i, g in enumerate(gens):
            if i:
                self.visit(g.iter)
            self.visit_list(g.ifs)
        self.visit_list(elts)
        self.cond -= 1
        self.shadow.pop()

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        saved, self.shadow = self.shadow, []  # walrus binds in the enclosing scope
        self.store(node.target.id)
        self.shadow = saved

    # -- statements --
    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Lambda) and all(isinstance(t, ast.Name) for t in node.targets):
            # f = lambda ...: a function like any def; its body runs when called.
            lam = node.value
            self.visit_list(lam.args.defaults)
            self.visit_list([d for d in lam.args.kw_defaults if d is not None])
            summary = summarize_function(lam)
            for t in node.targets:
                self.store(t.id)
                if self.local_names is None:
                    self.functions[t.id] = summary
                else:
                    self.uses |= {r for r in summary.reads if self._is_global(r)}
                    self.calls.extend(summary.calls)
            return
        self.visit(node.value)
        n_calls = len(self.calls)
        for t in node.targets:
            self._target(t)
        self._record_flow(node.targets, node.value, n_calls)
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        for other in names[1:]:  # x = y = []: one object, two names
            self.aliases.append((other, names[0]))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            n_calls = len(self.calls)
            self._target(node.target)
            self._record_flow([node.target], node.value, n_calls)
        self.visit(node.annotation)

    def _record_flow(self, targets, value, n_calls) -> None:
        """Aliasing and containment created by an assignment."""
        simple = [t.id for t in targets if isinstance(t, ast.Name)
                  and not any(t.id in sh for sh in self.shadow)]
        if isinstance(value, ast.Name):
            for t in simple:
                self.aliases.append((t, value.id))
            # obj.attr = x / d[k] = x: obj (or d) now holds x.
            for t in targets:
                if isinstance(t, (ast.Subscript, ast.Attribute)):
                    r = _root(t)
                    if r and r != value.id:
                        self.contains.append((r, value.id))
            return
        if isinstance(value, ast.Call) and n_calls and len(targets) == 1 and isinstance(targets[0], ast.Tuple) \
                and all(isinstance(e, ast.Name) for e in targets[0].elts):
            # fig, ax = plt.subplots(): the names the result was unpacked into
            self.calls[n_calls - 1].unpacked = tuple(e.id for e in targets[0].elts)
        if isinstance(value, ast.Call) and n_calls and simple:
            # The value's own call is the last one visited before the targets.
            self.calls[n_calls - 1].assigned_to = simple[0]
            if isinstance(value.func, ast.Attribute) and value.func.attr in ELEMENT_METHODS:
                r = _root(value.func.value)
                if r:  # bucket = store.setdefault(k, []): store holds bucket
                    for h in simple:
                        self.contains.append((r, h))
                    return
        # Names placed directly in a container display, or passed to a call,
        # may be referenced by the new value.
        holders = list(simple)
        holders += [r for t in targets if isinstance(t, (ast.Subscript, ast.Attribute))
                    for r in [_root(t)] if r]
        if not holders:
            return
        if isinstance(value, (ast.Subscript, ast.Attribute)):
            # x = d['k'] / x = obj.attr: x is (part of) what d holds.
            r = _root(value)
            if r:
                for h in simple:
                    self.contains.append((r, h))
            return
        for n in _referenced_names(value):
            for h in holders:
                if h != n:
                    self.contains.append((h, n))

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.load(node.target.id)
            self.store(node.target.id)
            if self._is_global(node.target.id):
                self.augmented.add(node.target.id)
                self.mutations[node.target.id] = self.mutations.get(node.target.id, False)
        else:
            # d['arr'] += 1 changes the array held in d in place, then stores it back.
            self._target(node.target)
            r = _root(node.target)
            if r is not None and r in self.mutations:
                self.mutations[r] = True

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if isinstance(t, ast.Name):
                if self._is_global(t.id):
                    self.deletes.append(t.id)
            else:
                self._target(t)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            bound = a.asname or a.name.split(".")[0]
            self.store(bound)
            self.imports.append((bound, a.name if a.asname else bound))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = "." * node.level + (node.module or "")
        for a in node.names:
            if a.name == "*":  # what it binds is learnt from the runtime diff
                self.star_imports.append(mod)
                continue
            bound = a.asname or a.name
            self.store(bound)
            self.imports.append((bound, f"{mod}.{a.name}"))

    def visit_For(self, node) -> None:
        self.visit(node.iter)
        self.cond += 1
        saved = set(self.assigned)
        self._target(node.target)
        # The loop variable refers to elements of what is iterated over:
        # changing it in place changes the container.
        targets = [n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)]
        roots = tuple(_loop_roots(node.iter))
        # A top-level loop over one name is left to the graph, which knows the elements' types.
        top = self.local_names is None and isinstance(node.target, ast.Name)
        entry = len(self.loop_targets)
        if top:
            self.loop_targets.append((node.target.id, roots, isinstance(node.iter, (ast.List, ast.Tuple, ast.Set)), False))
        for src in _iter_roots(node.iter):
            for t in targets:
                if t != src:
                    self.contains.append((src, t))
        # The loop target is bound before the body reads it.
        self.assigned |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        earlier = {t: self.mutations.pop(t) for t in targets if t in self.mutations}
        self.looping.append(set(targets))
        self.visit_list(node.body)
        self.looping.pop()
        through = [t for t in targets if t in self.mutations or t in self.called_through]
        for t, deep in earlier.items():
            self.mutations[t] = self.mutations.get(t, False) or deep
        if top:
            self.loop_targets[entry] = self.loop_targets[entry][:3] + (bool(through),)
        if through:
            # The target is each element in turn, and the capture only sees
            # the last one: `for df in [train, test]: df["b"] = 1` changes both.
            enclosing = set().union(*self.looping)
            for root in roots:
                if root not in targets and (not top or root in enclosing):
                    self.mutate(root, True)
        self.assigned = saved
        self.cond -= 1
        self.conditional(node.orelse)

    visit_AsyncFor = visit_For

    def visit_While(self, node) -> None:
        self.conditional([node.test] + node.body + node.orelse)

    def visit_If(self, node) -> None:
        self.visit(node.test)
        self.conditional(node.body)
        self.conditional(node.orelse)

    def visit_With(self, node) -> None:
        for item in node.items:
            n_calls = len(self.calls)
            self.visit(item.context_expr)
            if (isinstance(item.context_expr, ast.Call) and isinstance(item.optional_vars, ast.Name)
                    and len(self.calls) > n_calls):
                # with sqlite3.connect(p) as conn: conn is what the call returned (entered)
                self.calls[-1].assigned_to = item.optional_vars.id
            if item.optional_vars is not None:
                self._target(item.optional_vars)
                root = _root(item.context_expr)
                if isinstance(item.optional_vars, ast.Name) and root and root != item.optional_vars.id \
                        and isinstance(item.context_expr, ast.Call):
                    # with engine.begin() as conn: conn is (part of) engine here
                    self.with_roots[item.optional_vars.id] = root
        self.visit_list(node.body)

    visit_AsyncWith = visit_With

    def visit_Try(self, node) -> None:
        self.conditional(node.body)
        for h in node.handlers:
            if h.type is not None:
                self.visit(h.type)
            self.cond += 1
            if h.name:
                self.store(h.name)
            self.cond -= 1
            self.conditional(h.body)
        self.conditional(node.orelse)
        self.visit_list(node.finalbody)

    visit_TryStar = visit_Try

    def visit_Match(self, node) -> None:
        self.visit(node.subject)
        for case in node.cases:
            self.cond += 1
            for n in ast.walk(case.pattern):
                if isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
                    self.store(n.name)
                elif isinstance(n, ast.MatchMapping) and n.rest:
                    self.store(n.rest)
                elif isinstance(n, ast.MatchValue):
                    self.visit(n.value)
                elif isinstance(n, ast.MatchClass):
                    self.visit(n.cls)
            self.cond -= 1
            if case.guard is not None:
                self.conditional([case.guard])
            self.conditional(case.body)

    def visit_Global(self, node) -> None:
        pass

    visit_Nonlocal = visit_Global

    def _decorators(self, decorators) -> None:
        # Applying a decorator calls it (with the function being defined).
        for d in decorators:
            self.visit(d)
            chain, deep, through = _chain(d)
            if chain and not isinstance(d, ast.Call):
                self.calls.append(CallSite(chain=chain, args=(None,), receiver_deep=deep))

    def visit_FunctionDef(self, node) -> None:
        self._decorators(node.decorator_list)
        args = node.args
        self.visit_list(args.defaults)
        self.visit_list([d for d in args.kw_defaults if d is not None])
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self.visit(a.annotation)
        if node.returns is not None:
            self.visit(node.returns)
        summary = summarize_function(node)
        if self.local_names is None:
            self.functions[node.name] = summary
        else:
            # A nested function: what it reads and changes when called is
            # read and changed by us (it may be called, or returned and called).
            self.uses |= {r for r in summary.reads if self._is_global(r)}
            for call in summary.calls:
                self.calls.append(call)
            for name, deep in summary.mutations:
                bare = name[len(CLASS_OF):] if name.startswith(CLASS_OF) else name
                if self._is_global(bare):
                    self.mutations[name] = self.mutations.get(name, False) or deep
            self.nested_writes |= summary.writes
        self.store(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._decorators(node.decorator_list)
        self.visit_list(node.bases)
        for kw in node.keywords:
            self.visit(kw.value)
        methods: dict[str, FunctionSummary] = {}
        kinds: dict[str, str] = {}
        setters: list[FunctionSummary] = []
        # Names bound in a class body are class attributes, not globals.
        self.shadow.append(_stored_names(node.body))
        for st in node.body:
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.visit_list(st.decorator_list)
                self.visit_list(st.args.defaults)
                self.visit_list([d for d in st.args.kw_defaults if d is not None])
                summary = summarize_function(st)
                decos = {d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else None
                         for d in st.decorator_list}
                if decos & {"setter", "deleter"} or st.name in _ASSIGNMENT_HOOKS:
                    setters.append(summary)
                    if decos & {"setter", "deleter"}:
                        continue  # the getter keeps the name
                if "staticmethod" in decos:
                    kinds[st.name] = "static"
                elif "classmethod" in decos:
                    kinds[st.name] = "class"
                methods[st.name] = summary
            else:
                self.visit(st)
        self.shadow.pop()
        bases = tuple(b.id for b in node.bases if isinstance(b, ast.Name))
        attrs = frozenset(_stored_names([st for st in node.body
                                         if not isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef))]))
        if self.local_names is None:
            self.classes[node.name] = ClassSummary(methods, kinds, tuple(setters), bases, attrs)
        self.store(node.name)


def _iter_roots(node) -> list[str]:
    """Names whose elements a ``for`` iterates over: ``lst``, ``d.items()``,
    ``enumerate(rows)``, ``zip(a, b)``."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        r = _root(node)
        return [r] if r else []
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return _iter_roots(node.func.value)
        out = []
        for a in node.args:
            out += _iter_roots(a)
        return out
    return []


def _chosen_roots(node) -> list[str]:
    """Names an expression that picks one of several objects may evaluate to:
    ``a if c else b``, ``a or b``, ``(a, b)[i]``; [] for anything else."""
    if isinstance(node, ast.IfExp):
        return _chosen_roots(node.body) + _chosen_roots(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [r for v in node.values for r in _chosen_roots(v)]
    if isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Tuple, ast.List)):
        return [r for e in node.value.elts for r in _chosen_roots(e)]
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        r = _root(node)
        return [r] if r else []
    return []


def _loop_roots(node) -> list[str]:
    """Names whose objects a change through a ``for`` target may reach: those
    listed in a literal (``for r in [a, b.c, *rest]``: the target is each of
    them), else what :func:`_iter_roots` finds (the target is an element)."""
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return _iter_roots(node)
    out = []
    for e in node.elts:
        if isinstance(e, ast.Starred):
            out += _iter_roots(e.value)
        elif isinstance(e, (ast.Name, ast.Attribute, ast.Subscript)):
            r = _root(e)
            if r:
                out.append(r)
    return out


def _referenced_names(value) -> list[str]:
    """Names a new value may hold a reference to (not copies)."""
    out: list[str] = []
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        for e in value.elts:
            e = e.value if isinstance(e, ast.Starred) else e
            if isinstance(e, ast.Name):
                out.append(e.id)
            else:
                out.extend(_referenced_names(e))
    elif isinstance(value, ast.Dict):
        for v in value.values:
            if isinstance(v, ast.Name):
                out.append(v.id)
            elif v is not None:
                out.extend(_referenced_names(v))
    elif isinstance(value, ast.Call):
        # Constructors and user functions may keep their arguments
        # (Pipeline([("s", scaler)]), Wrapper(lst)); module functions such as
        # np.array copy, which the graph decides with the import map.
        for a in list(value.args) + [k.value for k in value.keywords]:
            a = a.value if isinstance(a, ast.Starred) else a
            if isinstance(a, ast.Name):
                out.append(a.id)
            else:
                out.extend(_referenced_names(a))
        if isinstance(value.func, ast.Attribute) and isinstance(value.func.value, ast.Call):
            # Holder(lst).fit(): a method may return its receiver, which keeps lst
            out.extend(_referenced_names(value.func.value))
    elif isinstance(value, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        # {r["d"]: r for r in runs}: the new container holds runs' elements
        roots = {n.id: _iter_roots(g.iter) for g in value.generators for n in ast.walk(g.target)
                 if isinstance(n, ast.Name)}
        for e in ([value.key, value.value] if isinstance(value, ast.DictComp) else [value.elt]):
            for name in ([e.id] if isinstance(e, ast.Name) else _referenced_names(e)):
                out.extend(roots.get(name, ()))
    elif isinstance(value, (ast.Subscript, ast.Attribute)):
        r = _root(value)
        if r:
            out.append(r)
    return out


def _walk_own_scope(node):
    """Like ast.walk, without descending into nested functions and classes."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in ast.iter_child_nodes(n):
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.append(c)


def _scan_own_scope(body, all_params):
    """One pass over a function's own scope (nested functions have theirs):
    (global/nonlocal names, local aliases of parameters, whether it yields,
    roots of what it returns that may live on)."""
    declared: set[str] = set()
    aliases: dict[str, str] = {}
    is_generator = False
    returned: set[str] = set()
    for st in body:
        for n in _walk_own_scope(st):
            if isinstance(n, (ast.Global, ast.Nonlocal)):
                declared.update(n.names)
            elif isinstance(n, (ast.Yield, ast.YieldFrom)):
                is_generator = True
            elif isinstance(n, ast.Return) and n.value is not None:
                # return cache[k] / return self.items / return d.get(k):
                # the caller gets (part of) an object that lives on.
                v = n.value
                if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in ELEMENT_METHODS:
                    v = v.func.value
                if isinstance(v, (ast.Name, ast.Subscript, ast.Attribute)):
                    r = _root(v)
                    if r:
                        returned.add(r)
            elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id in all_params:
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        aliases[t.id] = n.value.id
    return declared, aliases, is_generator, returned


def summarize_function(node) -> FunctionSummary:
    """Summarise what calling the function ``node`` reads and changes."""
    args = node.args
    params = tuple(a.arg for a in args.posonlyargs + args.args)
    kwonly = tuple(a.arg for a in args.kwonlyargs)
    all_params = set(params) | set(kwonly)
    for extra in (args.vararg, args.kwarg):
        if extra is not None:
            all_params.add(extra.arg)
    body = node.body if not isinstance(node, ast.Lambda) else [ast.Expr(node.body)]
    declared, aliases, is_generator, returned = _scan_own_scope(body, all_params)
    local_names = (_stored_names(body) | all_params) - declared
    w = _Walker(local_names=local_names, declared_global=declared)
    w.visit_list(body)
    mutations = []
    for name, deep in w.mutations.items():
        prefix = ""
        if name.startswith(CLASS_OF):
            prefix, name = CLASS_OF, name[len(CLASS_OF):]
        target = aliases.get(name, name)
        if target in all_params or target not in local_names:
            mutations.append((prefix + target, deep))
    calls = tuple(c for c in w.calls if c.chain)
    # Method calls on local aliases of parameters act on the parameter.
    if aliases:
        calls = tuple(dataclasses.replace(c, chain=(aliases.get(c.chain[0], c.chain[0]),) + c.chain[1:])
                      for c in calls)
    makes_functions = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                          for st in body for n in ast.walk(st))
    return FunctionSummary(
        makes_functions=makes_functions,
        is_generator=is_generator,
        returns_parts_of=frozenset(returned),
        params=params,
        kwonly=kwonly,
        has_varargs=args.vararg is not None or args.kwarg is not None,
        reads=frozenset(w.uses),
        writes=frozenset(n for n in w.defs + sorted(w.maybe) if n in declared) | w.nested_writes,
        mutations=tuple(mutations),
        calls=calls,
        aliases=aliases,
    )


def analyze(node: ast.stmt) -> StatementFacts:
    """Static facts of one top-level statement.

    Parameters
    ----------
    node : ast.stmt
        A statement from the cell's module body, after IPython's transforms.

    Returns
    -------
    StatementFacts
    """
    body, kind, extra = _rewrite_magics(node)
    if kind in ("drop",):
        return StatementFacts(drop=True)
    if kind == "lineapy":
        facts = _artifact_get_facts(node, extra)
        line = _ipython_call(node.value)[1][1] if isinstance(node, (ast.Expr, ast.Assign)) and \
            _ipython_call(node.value) is not None else None
        selector = _lineapy_selector(line)
        return dataclasses.replace(facts, artifact_selector=selector) if selector else facts
    if kind == "opaque":
        return StatementFacts(unknown_effects=True, opaque=True)
    if kind == "timeit":
        return _timeit_facts(body)
    api = _lineapy_api_call(node)
    if api is not None:
        return api
    stmts = body if body is not None else [node]
    stripped = None
    if body is None and hasattr(node, "body"):
        stripped = _strip_nested_lineapy(node)
        if stripped is not None:
            stmts = [stripped]
    w = _Walker()
    w.visit_list(stmts)
    last = stmts[-1] if stmts else None
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and w.calls:
        w.calls[-1].assigned_to = DISPLAYED
    # Anything else calling get_ipython() (user code poking the shell) has
    # effects plain Python cannot reproduce.
    opaque = "get_ipython" in w.uses
    if opaque:
        w.unknown = True
    emit = None
    if body is not None or stripped is not None:
        emit = "\n".join(ast.unparse(s) for s in stmts)
    return _facts_of(w, stmts, emit, opaque)


def _artifact_get_facts(node: ast.stmt, extra) -> StatementFacts:
    """``%lineapy get NAME [--as VAR]`` (or ``x = %lineapy get NAME``)."""
    if extra is None:
        return StatementFacts(drop=True)
    name, version, var = extra
    names, aliases = [var], ()
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        # x = %lineapy get NAME binds NAME and returns the same object.
        target = node.targets[0].id
        if target != var:
            names.append(target)
            aliases = ((target, var),)
    return StatementFacts(defs=tuple(names), aliases=aliases, artifact_get=(name, version, tuple(names)))


def _const_keys(node) -> tuple[str, ...] | None:
    """``"a"`` -> ``("a",)``; ``["a", "b"]`` -> ``("a", "b")``; else None
    (a tuple is one key of a dict or of a DataFrame's MultiIndex)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.List) and node.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


def _selecting_call(name: ast.Name, parents: dict) -> tuple[str, set] | None:
    """``name.m("k", ...)[["a", "b"]]`` with only constant arguments: the
    method and the keys named (whether ``m`` reads only those items is the
    registry's ``selects_items`` fact about the receiver's type)."""
    attr = parents.get(name)
    call = parents.get(attr)
    sub = parents.get(call)
    if not (isinstance(attr, ast.Attribute) and isinstance(call, ast.Call) and call.func is attr):
        return None
    if _inplace_keyword(call) and (d := _dict_keys(call)) is not None:
        return attr.attr, set(d[1])  # df.fillna({"a": 0}, inplace=True): the registry says (dict_items)
    if not (isinstance(sub, ast.Subscript) and sub.value is call and isinstance(sub.ctx, ast.Load)):
        return None
    keys = set(_const_keys(sub.slice) or ())
    if not keys:
        return None
    for a in [*call.args, *(k.value for k in call.keywords if k.arg == "by")]:
        k = _const_keys(a)
        if k is None:
            return None
        keys.update(k)
    if any(k.arg is None or (k.arg != "by" and not isinstance(k.value, ast.Constant)) for k in call.keywords):
        return None
    return attr.attr, keys


def _inplace_keyword(call: ast.Call) -> bool:
    return any(k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def _name_load(node: ast.Name, parent, parents: dict) -> tuple[str, object]:
    """How a loaded name is read: ``("keys", keys)`` (``df["a"]``; no keys
    for a subscript target), ``("method", (m, keys))`` (a selecting call),
    ``("attr", name)`` (``df.a``, not called) or ``("whole", None)``."""
    if isinstance(parent, ast.Subscript) and parent.value is node:
        keys = _const_keys(parent.slice)
        if keys is not None:
            return "keys", keys if isinstance(parent.ctx, ast.Load) else ()
    selecting = _selecting_call(node, parents)
    if selecting is not None:
        return "method", selecting
    if isinstance(parent, ast.Attribute) and parent.value is node and isinstance(parent.ctx, ast.Load):
        above = parents.get(parent)
        if not (isinstance(above, ast.Call) and above.func is parent):
            return "attr", parent.attr
    return "whole", None


def _item_access(stmts: list[ast.stmt]) -> tuple[tuple, tuple, frozenset, tuple, tuple, tuple]:
    """Names read only through constant keys (with the keys), names changed
    only by ``name["k"] = ...`` assignments (with the keys), names read as
    ``name[...]`` at all, the selecting methods (``df.groupby("k")["c"]``)
    some of those reads went through, the names changed only inside one
    of their items (``cfg["model"]["alpha"] = 1``, with the item keys), and
    the attributes read of names otherwise read by keys (``df.a``: a column,
    if the graph finds ``a`` is one and no attribute of the type)."""
    parents, stack = {}, list(stmts)
    while stack:  # ast.walk, keeping each node's parent
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            parents[child] = node
            stack.append(child)
    if not any(type(n) in (ast.Subscript, ast.Dict) or type(n) is ast.Attribute and type(n.value) is ast.Name
               and not (type(p) is ast.Call and p.func is n) for n, p in parents.items()):
        return (), (), frozenset(), (), (), ()  # every fact here is about x[...], x.a or m({...}): most have none
    reads: dict[str, set] = {}
    writes: dict[str, set] = {}
    methods: dict[str, set] = {}
    nested: dict[str, set] = {}
    attrs: dict[str, set] = {}
    whole_read, other_change, subscripted = set(), set(), set()
    for node, parent in parents.items():
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, ast.Load):
                subscripted.add(node.id)
            kind, value = _name_load(node, parent, parents)
            if kind == "keys":
                reads.setdefault(node.id, set()).update(value)
            elif kind == "method":
                methods.setdefault(node.id, set()).add(value[0])
                reads.setdefault(node.id, set()).update(value[1])
            elif kind == "attr":
                attrs.setdefault(node.id, set()).add(value)
            else:
                whole_read.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            root = _root(node)
            keys = _const_keys(node.slice) if isinstance(node, ast.Subscript) else None
            slot = _first_slot(node) if isinstance(parent, ast.Assign) else None
            if (keys is not None and isinstance(node.value, ast.Name) and isinstance(parent, ast.Assign)
                    and any(t is node for t in parent.targets)):
                writes.setdefault(root, set()).update(keys)
            elif slot is not None and any(t is node for t in parent.targets):
                nested.setdefault(root, set()).add(slot)
            elif root:
                other_change.add(root)

    def by_name(d: dict, skip: set) -> tuple:
        return tuple((n, tuple(sorted(k))) for n, k in sorted(d.items()) if n not in skip)
    return (by_name(reads, whole_read), by_name(writes, other_change), frozenset(subscripted),
            by_name(methods, whole_read), by_name(nested, other_change), by_name(attrs, whole_read))


def _first_slot(target) -> str | None:
    """``cfg["model"]["alpha"]`` / ``cfg["model"].alpha`` as a target: the
    constant key under which ``cfg`` holds the object changed (``"model"``)."""
    node, steps = target, 0
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        inner = node.value
        if isinstance(node, ast.Subscript) and isinstance(inner, ast.Name):
            keys = _const_keys(node.slice)
            return keys[0] if keys and len(keys) == 1 and steps else None
        node, steps = inner, steps + 1
    return None


def _facts_of(w: "_Walker", stmts: list[ast.stmt], emit: str | None, opaque: bool) -> StatementFacts:
    instances = []
    for st in stmts:
        if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name):
            for t in st.targets:
                if isinstance(t, ast.Name):
                    instances.append((t.id, st.value.func.id))
    keyed_reads, keyed_writes, item_reads, selecting, nested, attr_reads = _item_access(stmts)
    return StatementFacts(
        uses=frozenset(w.uses),
        defs=tuple(w.defs),
        maybe_defs=frozenset(w.maybe - set(w.defs)),
        deletes=tuple(w.deletes),
        mutations=tuple(w.mutations.items()),
        augmented=frozenset(w.augmented),
        calls=tuple(w.calls),
        aliases=tuple(w.aliases),
        contains=tuple(w.contains),
        imports=tuple(w.imports),
        star_imports=tuple(w.star_imports),
        functions=w.functions,
        classes=w.classes,
        instances=tuple(instances),
        paths=tuple(dict.fromkeys(w.paths)),
        attr_targets=tuple(w.attr_targets),
        unknown_effects=w.unknown,
        emit=emit,
        opaque=opaque,
        keyed_reads=keyed_reads,
        keyed_writes=keyed_writes,
        item_reads=item_reads,
        keyed_read_methods=selecting,
        nested_writes=nested,
        attr_reads=attr_reads,
        loop_targets=tuple(w.loop_targets),
    )



def _timeit_facts(stmts: list[ast.stmt]) -> StatementFacts:
    """A ``%timeit`` body binds nothing in the user's namespace; what it reads,
    changes and calls is what its function body (``stmts[0]``) does."""
    summary = summarize_function(stmts[0])
    mutations = tuple((n, d) for n, d in summary.mutations)
    return StatementFacts(uses=summary.reads | summary.writes, mutations=mutations, calls=summary.calls,
                          maybe_defs=summary.writes, emit="\n".join(ast.unparse(s) for s in stmts))


_API_MODULES = frozenset({"lineapy_ext", "lineapy"})


def _lineapy_api_call(node) -> StatementFacts | None:
    """``lineapy_ext.save(...)`` as a statement (no effect on values) and
    ``x = lineapy_ext.get("name"[, version]).get_value()`` (loads an artifact)."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        chain, _, _ = _chain(node.value.func)
        if chain and len(chain) == 2 and chain[0] in _API_MODULES and chain[1] in ("save", "delete"):
            return StatementFacts(drop=True)
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)):
        return None
    outer = node.value.func
    if not (isinstance(outer, ast.Attribute) and outer.attr == "get_value"
            and isinstance(outer.value, ast.Call)):
        return None
    inner = outer.value
    chain, _, _ = _chain(inner.func)
    if not (chain and len(chain) == 2 and chain[0] in _API_MODULES and chain[1] == "get"):
        return None
    args = [a.value if isinstance(a, ast.Constant) else None for a in inner.args]
    version = args[1] if len(args) > 1 else next(
        (k.value.value for k in inner.keywords if k.arg == "version" and isinstance(k.value, ast.Constant)), None)
    if not args or not isinstance(args[0], str):
        return None
    target = node.targets[0].id
    selector = tuple((k.arg, k.value.value) for k in inner.keywords
                     if k.arg in _SELECTORS.values() and isinstance(k.value, ast.Constant))
    return StatementFacts(defs=(target,), artifact_get=(args[0], version, (target,)), artifact_selector=selector)


class _LineapyStripper(ast.NodeTransformer):
    """Removes ``%lineapy``/no-effect magic lines and ``lineapy_ext.save``
    calls nested in a block (a save made inside ``with``/``for``/``if``)."""

    def __init__(self):
        self.removed = False

    def _is_lineapy(self, st) -> bool:
        if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)):
            return False
        magic = _ipython_call(st.value)
        if magic is not None:
            return _magic_code(magic)[0] in ("drop", "lineapy")
        return _lineapy_api_call(st) is not None

    def generic_visit(self, node):
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(node, field_name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                kept = [st for st in block if not self._is_lineapy(st)]
                if len(kept) != len(block):
                    self.removed = True
                    setattr(node, field_name, kept or [ast.Pass()])
        return super().generic_visit(node)


def _strip_nested_lineapy(node):
    """A copy of the compound statement ``node`` without lineapy lines, or
    None when it has none."""
    import copy

    if not any(isinstance(n, ast.Name) and (n.id == "get_ipython" or n.id in _API_MODULES)
               for n in ast.walk(node)):
        return None
    stripper = _LineapyStripper()
    new = stripper.visit(copy.deepcopy(node))
    return ast.fix_missing_locations(new) if stripper.removed else None
