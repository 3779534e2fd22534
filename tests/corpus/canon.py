"""A canonical, comparable picture of any value (the corpus's notion of "equal").

``corpus_canon(v)`` turns a value into nested tuples of plain Python data
(str, int, bytes, tuples) that compare equal exactly when the two values
are equal for a user: same array bytes, same frame columns, index, dtypes
and cells, same fitted estimator attributes, same RNG state, same function
code, same database contents.  It never calls user methods with side
effects: objects are read through ``__getstate__``/``vars`` only.

This file is self-contained on purpose (standard library only, numpy and
pandas used only when the value is one of theirs): its source text is
appended to every replayed slice, so the fresh ``python`` computes the
picture with the very same code as the session.
"""

import dis as _corpus_dis
import hashlib as _corpus_hashlib
import sys as _corpus_sys
import types as _corpus_types

_CORPUS_MAX_DEPTH = 14


def _corpus_digest(data: bytes) -> str:
    return _corpus_hashlib.sha1(data).hexdigest()


def _corpus_ndarray(v, depth, seen):
    if v.dtype.kind == "O":
        return ("ndarray", "O", v.shape, _corpus_canon(v.tolist(), depth, seen))
    if v.dtype.kind in "US":
        return ("ndarray", v.dtype.str, v.shape, tuple(v.ravel().tolist()))
    import numpy as np

    return ("ndarray", v.dtype.str, v.shape, _corpus_digest(np.ascontiguousarray(v).tobytes()))


def _corpus_pandas(v, depth, seen):
    import pandas as pd

    if isinstance(v, pd.MultiIndex):
        return ("MultiIndex", tuple(map(str, v.names)), _corpus_canon(v.tolist(), depth, seen))
    if isinstance(v, pd.Index):
        return ("Index", type(v).__name__, str(v.name), str(v.dtype), _corpus_values(v, depth, seen))
    if isinstance(v, pd.Series):
        return ("Series", str(v.name), str(v.dtype), _corpus_pandas(v.index, depth, seen),
                _corpus_values(v, depth, seen))
    if isinstance(v, pd.DataFrame):
        cols = tuple(_corpus_pandas(v.iloc[:, i], depth, seen) for i in range(v.shape[1]))
        return ("DataFrame", _corpus_pandas(v.columns, depth, seen), _corpus_pandas(v.index, depth, seen), cols)
    return None


def _corpus_values(v, depth, seen):
    import numpy as np

    arr = np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v)
    if arr.dtype.kind in "mM":
        arr = arr.view("i8")
    return _corpus_ndarray(arr, depth, seen)


def _corpus_code(co, depth, seen):
    consts = tuple(_corpus_code(c, depth, seen) if isinstance(c, _corpus_types.CodeType) else repr(c)
                   for c in co.co_consts)
    # Not co_code: the same source compiles to other bytecode in a cell and in
    # a script (e.g. LOAD_METHOD or LOAD_ATTR for an imported module).
    return ("code", co.co_name, co.co_argcount, co.co_kwonlyargcount, consts, tuple(sorted(co.co_names)),
            co.co_varnames, co.co_freevars)


def _corpus_function(v, depth, seen):
    cells = ()
    if v.__closure__:
        cells = tuple(_corpus_canon(_corpus_cell(c), depth, seen) for c in v.__closure__)
    # What it reads from its module when called is part of what it computes.
    ns = v.__globals__
    reads = tuple((n, _corpus_canon(ns[n], depth, seen)) for n in sorted(_corpus_names(v.__code__)) if n in ns)
    return ("function", v.__qualname__, _corpus_code(v.__code__, depth, seen),
            _corpus_canon(v.__defaults__, depth, seen), _corpus_canon(v.__kwdefaults__, depth, seen), cells, reads)


def _corpus_names(co):
    # Names it loads as globals: not attribute names (np.random.normal does
    # not read a global `random`, which the session may hold and a slice not).
    names = {i.argval for i in _corpus_dis.get_instructions(co) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for c in co.co_consts:
        if isinstance(c, _corpus_types.CodeType):
            names |= _corpus_names(c)
    return names


def _corpus_cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return "<empty cell>"


def _corpus_class(v, depth, seen):
    own = []
    for k, a in sorted(vars(v).items()):
        if k in ("__dict__", "__weakref__", "__module__", "__doc__"):
            continue
        if isinstance(a, (staticmethod, classmethod)):
            a = a.__func__
        if isinstance(a, property):
            a = (a.fget, a.fset)
        own.append((k, _corpus_canon(a, depth, seen)))
    bases = tuple(b.__qualname__ for b in v.__mro__[1:])
    return ("class", v.__qualname__, bases, tuple(own))


def _corpus_special(v, depth, seen):
    """Values read through their documented accessors (None if not special)."""
    import random

    mod = type(v).__module__ or ""
    if isinstance(v, random.Random):
        return ("Random", _corpus_canon(v.getstate(), depth, seen))
    if mod.startswith("numpy"):
        import numpy as np

        if isinstance(v, np.ndarray):
            return _corpus_ndarray(v, depth, seen)
        if isinstance(v, np.generic):
            return ("npscalar", v.dtype.str, repr(v.item()))
        if isinstance(v, np.random.Generator):
            return ("Generator", _corpus_canon(v.bit_generator.state, depth, seen))
        if isinstance(v, np.random.RandomState):
            return ("RandomState", _corpus_canon(v.get_state(legacy=False), depth, seen))
        if isinstance(v, np.dtype):
            return ("dtype", v.str)
    if mod.startswith("pandas"):
        out = _corpus_pandas(v, depth, seen)
        if out is not None:
            return out
    if mod == "sqlite3":
        import sqlite3

        if isinstance(v, sqlite3.Connection):
            try:
                return ("sqlite3.Connection", tuple(v.iterdump()))
            except sqlite3.ProgrammingError:  # closed
                return ("sqlite3.Connection", "closed")
    if mod.startswith("sqlalchemy"):
        return _corpus_sqlalchemy(v)
    if mod.startswith("statsmodels") and all(hasattr(v, a) for a in ("params", "bse", "model")):
        # Fitted results: what they estimate, not the memos that summary()/display store on them.
        return ("statsmodels results", type(v).__qualname__, _corpus_canon(v.params, depth, seen),
                _corpus_canon(v.bse, depth, seen), _corpus_canon(v.model.endog, depth, seen),
                _corpus_canon(v.model.exog, depth, seen))
    if mod.startswith("matplotlib"):
        return _corpus_matplotlib(v, depth, seen)
    if mod == "pathlib" or mod.startswith("datetime") or mod in ("decimal", "fractions", "re", "uuid"):
        return (type(v).__name__, repr(v))
    return None


def _corpus_sqlalchemy(v):
    """An engine of a SQLite file is pictured by the file's contents; other objects by their repr."""
    url = getattr(v, "url", None)
    if type(v).__name__ == "Engine" and url is not None and url.drivername.startswith("sqlite") and url.database:
        import sqlite3

        con = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
        try:
            return ("sqlalchemy Engine", str(url), tuple(con.iterdump()))
        finally:
            con.close()
    r = repr(v)
    return ("sqlalchemy", type(v).__qualname__, None if " at 0x" in r else r)


def _corpus_matplotlib(v, depth, seen):
    if type(v).__name__ == "Figure":
        return ("Figure", tuple(_corpus_matplotlib(a, depth, seen) for a in v.axes))
    if hasattr(v, "get_xlim") and hasattr(v, "lines"):
        lines = tuple(_corpus_canon(line.get_xydata(), depth, seen) for line in v.lines)
        return ("Axes", tuple(v.get_xlim()), tuple(v.get_ylim()), v.get_title(), lines, len(v.patches),
                len(v.collections))
    return (type(v).__name__,)


def _corpus_object(v, depth, seen):
    """Other objects: their type and pickled state, read without running user code."""
    t = type(v)
    name = f"{t.__module__}.{t.__qualname__}"
    try:
        state = object.__getattribute__(v, "__dict__")
    except AttributeError:
        state = None
    if state is None and t.__getstate__ is not object.__getstate__:
        try:  # library objects with no __dict__ (xgboost's Booster, trees...)
            state = v.__getstate__()
        except Exception:
            state = None
    if state is None:
        slots = [s for c in t.__mro__ for s in getattr(c, "__slots__", ())]
        if slots:
            state = {s: getattr(v, s, "<unset>") for s in slots}
    if isinstance(state, dict) and "_cache" in state:
        # Memoised derived values (statsmodels' cache_readonly): filled by
        # whatever was displayed, not part of the value.
        state = {k: x for k, x in state.items() if k != "_cache"}
    if state is None:
        r = repr(v)
        return ("object", name, None if " at 0x" in r else r)
    return ("object", name, _corpus_canon(state, depth, seen))


def _corpus_canon(v, depth=0, seen=None):
    t = type(v)
    if _corpus_is_lazy_proxy(t):
        # isinstance() would ask its __class__, which runs the factory.
        return ("lazy proxy", t.__qualname__)
    if v is None or t in (bool, int, str, bytes):
        return v
    # Subclasses (enums, numpy scalars, library symbols) as plain data: the
    # picture must unpickle anywhere.
    if isinstance(v, int):
        return (t.__qualname__, int(v))
    if isinstance(v, str):
        return (t.__qualname__, str(v))
    if isinstance(v, bytes):
        return (t.__qualname__, bytes(v))
    if isinstance(v, float):
        return ("float", t.__qualname__, repr(float(v)))
    if isinstance(v, complex):
        return ("complex", t.__qualname__, repr(complex(v)))
    if isinstance(v, bytearray):
        return ("bytearray", _corpus_digest(bytes(v)))
    if depth > _CORPUS_MAX_DEPTH:
        return ("<too deep>", type(v).__qualname__)
    seen = seen if seen is not None else set()
    if id(v) in seen:
        return ("<cycle>", type(v).__qualname__)
    seen = seen | {id(v)}
    depth += 1
    if isinstance(v, (list, tuple)):
        # IPython's SList (``x = !cmd``) is a list with extra methods; the slice makes a list.
        kind = "list" if type(v).__name__ == "SList" else type(v).__name__
        return (kind, tuple(_corpus_canon(x, depth, seen) for x in v))
    if isinstance(v, (set, frozenset)):
        return (type(v).__name__, tuple(sorted((_corpus_canon(x, depth, seen) for x in v), key=repr)))
    if isinstance(v, dict):
        # Sorted, as == compares dicts: a dict built from a set's order is the same value.
        items = [(_corpus_canon(k, depth, seen), _corpus_canon(x, depth, seen)) for k, x in v.items()]
        return (type(v).__name__, tuple(sorted(items, key=repr)))
    if isinstance(v, range):
        return ("range", v.start, v.stop, v.step)
    if isinstance(v, _corpus_types.ModuleType):
        return ("module", v.__name__)
    if isinstance(v, (_corpus_types.FunctionType, _corpus_types.LambdaType)):
        return _corpus_function(v, depth, seen)
    if isinstance(v, _corpus_types.MethodType):
        return ("method", _corpus_canon(v.__func__, depth, seen), _corpus_canon(v.__self__, depth, seen))
    if isinstance(v, (_corpus_types.BuiltinFunctionType, _corpus_types.MethodWrapperType)):
        return ("builtin", getattr(v, "__qualname__", repr(v)))
    if isinstance(v, type):
        return _corpus_class(v, depth, seen)
    if isinstance(v, _corpus_types.GeneratorType):
        return ("generator", v.__qualname__)
    if type(v).__name__ == "partial" and type(v).__module__ == "functools":
        return ("partial", _corpus_canon(v.func, depth, seen), _corpus_canon(v.args, depth, seen),
                _corpus_canon(v.keywords, depth, seen))
    special = _corpus_special(v, depth, seen)
    if special is not None:
        return special
    return _corpus_object(v, depth, seen)


def _corpus_is_lazy_proxy(t):
    """Whether ``t`` is a lazy_object_proxy class (its C type says module 'builtins')."""
    kinds = []
    for name in ("lazy_object_proxy", "lazy_object_proxy.cext", "lazy_object_proxy.slots",
                 "lazy_object_proxy.simple"):
        mod = _corpus_sys.modules.get(name)
        if mod is not None and isinstance(mod.__dict__.get("Proxy"), type):
            kinds.append(mod.__dict__["Proxy"])
    return bool(kinds) and issubclass(t, tuple(kinds))


def corpus_canon(v):
    """The canonical picture of ``v``; raises if ``v`` cannot be read."""
    return _corpus_canon(v)


def corpus_first_difference(a, b, path="v"):
    """Where two pictures differ first, as a short readable string (None if equal)."""
    if a == b:
        return None
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = corpus_first_difference(x, y, f"{path}[{i}]")
            if d is not None:
                return d
    if _corpus_is_items(a) and _corpus_is_items(b):
        ka, kb = [k for k, _ in a], [k for k, _ in b]
        if ka != kb:
            return f"{path}: keys only in the session {[k for k in ka if k not in kb]}, " \
                   f"only in the replay {[k for k in kb if k not in ka]}"
    return f"{path}: {str(a)[:300]} != {str(b)[:300]}"



def _corpus_is_items(t):
    return isinstance(t, tuple) and all(isinstance(x, tuple) and len(x) == 2 for x in t)
