"""Type-aware comparison of a saved value with a recomputed one.

:func:`first_difference` returns ``None`` when two values are equal and
otherwise one line that says where they first differ (``df['y'] at row 3:
9 != 10``, ``x: shape (3,) != (4,)``, ``clf.coef_[0, 1]: 0.5 != 0.25``).
Values it cannot judge raise :class:`NotComparable` with the reason instead
of a guess.

What is known about each type lives in :data:`COMPARATORS`, a table from
``module.QualName`` to a comparison function, looked up along the value's
MRO; names rather than classes keep numpy, pandas and scikit-learn
unimported until a value of theirs shows up.  Anything not in the table is
compared with its own ``__eq__`` when it has one, else attribute by
attribute, else by its pickled bytes (identical bytes prove equality;
different bytes prove nothing, so they make the value not comparable).

Floats (Python, numpy, pandas) compare exactly, NaN equal to NaN, unless a
relative ``tolerance`` is given.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any, Callable

#: Deeper nesting than this is reported as not comparable (cycles end here too).
MAX_DEPTH = 60

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4


class NotComparable(Exception):
    """The two values cannot be compared; the message says why."""


@dataclass
class _Ctx:
    tolerance: float = 0.0
    depth: int = 0


def type_name(cls: type) -> str:
    """``module.QualName`` of ``cls`` (``int`` for builtins)."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def first_difference(saved: Any, recomputed: Any, *, tolerance: float = 0.0, root: str = "value") -> str | None:
    """Compare two values; describe the first difference.

    Parameters
    ----------
    saved, recomputed : object
        The value the artifact holds and the value the slice computed.
    tolerance : float
        Relative tolerance for floating-point numbers; ``0`` means exact.
    root : str
        Name of the value in descriptions (the variable name).

    Returns
    -------
    str or None
        ``None`` if equal, else ``"<where>: <saved> != <recomputed>"``-style text.

    Raises
    ------
    NotComparable
        When equality cannot be decided (no ``__eq__`` returning a bool, no
        inspectable state, pickled forms that differ).
    """
    return _diff(saved, recomputed, root, _Ctx(tolerance=float(tolerance)))


def _diff(a, b, path: str, ctx: _Ctx) -> str | None:
    ta, tb = type(a), type(b)
    if ta is not tb and type_name(ta) != type_name(tb):
        return f"{path}: type {type_name(ta)} != {type_name(tb)}"
    if ctx.depth >= MAX_DEPTH:
        raise NotComparable(f"{path}: nested deeper than {MAX_DEPTH} levels")
    ctx.depth += 1
    try:
        return _comparator(ta)(a, b, path, ctx)
    finally:
        ctx.depth -= 1


def _comparator(cls: type) -> Callable:
    for base in cls.__mro__:
        found = COMPARATORS.get(f"{base.__module__}.{base.__qualname__}")
        if found is not None:
            return found
    return _cmp_default


def _short(value) -> str:
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # 9.0, not np.float64(9.0)
    try:
        return _repr.repr(value)
    except Exception:
        return f"<{type_name(type(value))}>"


# -- scalars and containers ---------------------------------------------------


def _cmp_float(a, b, path, ctx):
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return None
    if ctx.tolerance and math.isclose(a, b, rel_tol=ctx.tolerance):
        return None
    return f"{path}: {a!r} != {b!r}"


def _quick_equal(a, b) -> bool:
    # ``==`` of builtin containers answers fast for the common case; only a
    # True is trusted (False may be NaN or an object without __eq__).
    try:
        return (a == b) is True
    except Exception:
        return False


def _cmp_sequence(a, b, path, ctx):
    if _quick_equal(a, b):
        return None
    if len(a) != len(b):
        return f"{path}: length {len(a)} != {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        found = _diff(x, y, f"{path}[{i}]", ctx)
        if found:
            return found
    return None


def _cmp_mapping(a, b, path, ctx):
    if _quick_equal(a, b):
        return None
    missing = [k for k in a if k not in b]
    if missing:
        return f"{path}[{_short(missing[0])}]: missing in the recomputed value"
    extra = [k for k in b if k not in a]
    if extra:
        return f"{path}[{_short(extra[0])}]: only in the recomputed value"
    for k in a:
        found = _diff(a[k], b[k], f"{path}[{_short(k)}]", ctx)
        if found:
            return found
    return None


def _cmp_set(a, b, path, ctx):
    if _quick_equal(a, b):
        return None
    only_saved, only_new = a - b, b - a
    if only_saved:
        return f"{path}: {_short(next(iter(only_saved)))} missing in the recomputed value"
    if only_new:
        return f"{path}: {_short(next(iter(only_new)))} only in the recomputed value"
    raise NotComparable(f"{path}: set elements compare neither equal nor different")


def _cmp_function(a, b, path, ctx):
    # Pickles of functions embed file names and line numbers, which differ
    # between the notebook and the slice file; the code itself must not.
    if (a.__qualname__, _code_key(a.__code__), a.__defaults__) == (b.__qualname__, _code_key(b.__code__), b.__defaults__):
        return None
    return f"{path}: function {a.__qualname__} has different code"


def _code_key(code):
    consts = tuple(_code_key(c) if hasattr(c, "co_code") else c for c in code.co_consts)
    return code.co_code, code.co_names, consts


def _cmp_class(a, b, path, ctx):
    return None if type_name(a) == type_name(b) else f"{path}: class {type_name(a)} != {type_name(b)}"


def _cmp_module(a, b, path, ctx):
    return None if a.__name__ == b.__name__ else f"{path}: module {a.__name__} != {b.__name__}"


# -- objects without a table entry --------------------------------------------


def _state(obj):
    """The object's attributes as a dict, or ``None`` if it has none to inspect."""
    try:
        state = obj.__getstate__()
    except Exception:
        state = getattr(obj, "__dict__", None)
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
    return state if isinstance(state, dict) else None


def _cmp_default(a, b, path, ctx):
    # Classes the notebook defined come back as two different class objects
    # (one per unpickling); their __eq__ would compare identities.
    same_class = type(a) is type(b)
    if same_class and type(a).__eq__ is not object.__eq__:
        try:
            equal = a == b
        except Exception:
            equal = None
        if equal is True or equal is False or type(equal).__name__ == "bool_":
            return None if equal else f"{path}: {_short(a)} != {_short(b)}"
    state_a, state_b = _state(a), _state(b)
    if state_a is not None and state_b is not None:
        return _cmp_attributes(state_a, state_b, path, ctx)
    return _cmp_pickled(a, b, path, ctx)


def _cmp_attributes(a: dict, b: dict, path, ctx):
    for k in a:
        if k not in b:
            return f"{path}.{k}: missing in the recomputed value"
    for k in b:
        if k not in a:
            return f"{path}.{k}: only in the recomputed value"
    for k in a:
        found = _diff(a[k], b[k], f"{path}.{k}", ctx)
        if found:
            return found
    return None


def _cmp_pickled(a, b, path, ctx):
    import cloudpickle

    try:
        same = cloudpickle.dumps(a, protocol=5) == cloudpickle.dumps(b, protocol=5)
    except Exception as e:
        raise NotComparable(f"{path}: {type_name(type(a))} has no __eq__ and cannot be pickled ({e})") from e
    if same:
        return None
    raise NotComparable(f"{path}: {type_name(type(a))} has no __eq__ or inspectable state, and its pickled forms differ")


# -- numpy ----------------------------------------------------------------------


def _cmp_ndarray(a, b, path, ctx):
    if a.shape != b.shape:
        return f"{path}: shape {a.shape} != {b.shape}"
    if a.dtype != b.dtype:
        return f"{path}: dtype {a.dtype} != {b.dtype}"
    index = _first_mismatch(a, b, path, ctx)
    if index is None:
        return None
    if isinstance(index, str):
        return index
    where = f"[{', '.join(map(str, index))}]" if index else ""
    return f"{path}{where}: {_short(a[index])} != {_short(b[index])}"


#: Elements compared at a time: bounds the temporary masks of a big array to a few MB.
_CHUNK = 1 << 22


def _first_mismatch(a, b, path, ctx):
    """Index tuple of the first unequal element, a description, or ``None``."""
    import numpy as np

    if a.dtype.kind == "O":
        for index in np.ndindex(a.shape):
            found = _diff(a[index], b[index], f"{path}[{', '.join(map(str, index))}]", ctx)
            if found:
                return found
        return None
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)  # views when contiguous
    for start in range(0, flat_a.size, _CHUNK):
        equal = _equal_mask(flat_a[start:start + _CHUNK], flat_b[start:start + _CHUNK], ctx.tolerance)
        if not equal.all():
            return tuple(int(i) for i in np.unravel_index(start + int(np.argmin(equal)), a.shape))
    return None


def _equal_mask(a, b, tolerance: float):
    """Element-wise equality of two flat arrays, NaN (NaT) equal to NaN (NaT)."""
    import numpy as np

    kind = a.dtype.kind
    if kind in "fc" and tolerance:
        return np.isclose(a, b, rtol=tolerance, atol=0.0, equal_nan=True)
    equal = np.asarray(a == b)
    if kind in "fcmM" and not equal.all():  # NaNs are rare: look for them only when needed
        missing = np.isnat if kind in "mM" else np.isnan
        equal |= missing(a) & missing(b)
    return equal


def _cmp_numpy_scalar(a, b, path, ctx):
    import numpy as np

    return _cmp_ndarray(np.asarray(a), np.asarray(b), path, ctx)


# -- pandas -----------------------------------------------------------------------


def _pandas_assert(a, b, ctx):
    """Run the pandas assertion for ``a``/``b``; return its message or ``None``."""
    import pandas as pd

    kwargs = {"check_exact": True} if not ctx.tolerance else {"check_exact": False, "rtol": ctx.tolerance, "atol": 0.0}
    check = {
        "DataFrame": pd.testing.assert_frame_equal,
        "Series": pd.testing.assert_series_equal,
    }.get(type(a).__name__, pd.testing.assert_index_equal)
    try:
        check(a, b, **kwargs)
    except AssertionError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        return lines[0] if lines else "values are different"
    except Exception as e:  # e.g. unhashable objects inside object columns
        raise NotComparable(f"pandas cannot compare these values ({type(e).__name__}: {e})") from e
    return None


def _cmp_index(a, b, path, ctx):
    message = _pandas_assert(a, b, ctx)
    if message is None:
        return None
    if len(a) != len(b):
        return f"{path}: length {len(a)} != {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if not _quick_equal(x, y) and _diff(x, y, path, ctx):
            return f"{path}[{i}]: {_short(x)} != {_short(y)}"
    return f"{path}: {message}"


def _cmp_series(a, b, path, ctx):
    message = _pandas_assert(a, b, ctx)
    if message is None:
        return None
    return _locate_series(a, b, path, ctx) or f"{path}: {message}"


def _locate_series(a, b, path, ctx):
    if len(a) != len(b):
        return f"{path}: length {len(a)} != {len(b)}"
    if a.dtype != b.dtype:
        return f"{path}: dtype {a.dtype} != {b.dtype}"
    found = _cmp_index(a.index, b.index, f"{path}.index", ctx)
    if found:
        return found
    if a.name != b.name:
        return f"{path}.name: {_short(a.name)} != {_short(b.name)}"
    index = _first_mismatch(a.to_numpy(), b.to_numpy(), path, ctx)
    if isinstance(index, tuple):
        label = a.index[index[0]]
        return f"{path} at row {_short(label)}: {_short(a.iloc[index[0]])} != {_short(b.iloc[index[0]])}"
    return index


def _cmp_frame(a, b, path, ctx):
    message = _pandas_assert(a, b, ctx)
    if message is None:
        return None
    if a.shape != b.shape:
        return f"{path}: shape {a.shape} != {b.shape}"
    found = _cmp_index(a.columns, b.columns, f"{path}.columns", ctx) or _cmp_index(a.index, b.index, f"{path}.index", ctx)
    if found:
        return found
    for i, col in enumerate(a.columns):
        found = _locate_series(a.iloc[:, i], b.iloc[:, i], f"{path}[{_short(col)}]", ctx)
        if found:
            return found
    return f"{path}: {message}"


# -- models -----------------------------------------------------------------------


def _cmp_estimator(a, b, path, ctx):
    """scikit-learn API: constructor parameters, then fitted attributes (``name_``)."""
    found = _diff(a.get_params(deep=False), b.get_params(deep=False), f"{path}.get_params()", ctx)
    if found:
        return found
    fitted_a = {k: v for k, v in vars(a).items() if k.endswith("_") and not k.startswith("_")}
    fitted_b = {k: v for k, v in vars(b).items() if k.endswith("_") and not k.startswith("_")}
    return _cmp_attributes(fitted_a, fitted_b, path, ctx)


def _cmp_xgb_model(a, b, path, ctx):
    found = _cmp_estimator(a, b, path, ctx)
    if found:
        return found
    fitted = [hasattr(m, "_Booster") for m in (a, b)]
    if fitted[0] != fitted[1]:
        return f"{path}: fitted {fitted[0]} != {fitted[1]}"
    return _cmp_booster(a.get_booster(), b.get_booster(), f"{path}.get_booster()", ctx) if fitted[0] else None


def _cmp_booster(a, b, path, ctx):
    if bytes(a.save_raw("ubj")) == bytes(b.save_raw("ubj")):
        return None
    return f"{path}: the learned trees differ"


def _cmp_statsmodels_results(a, b, path, ctx):
    return _diff(a.params, b.params, f"{path}.params", ctx)


#: ``module.QualName`` of a class -> comparison function ``(a, b, path, ctx) ->
#: description or None``, looked up along the value's MRO (first hit wins).
COMPARATORS: dict[str, Callable] = {
    "builtins.float": _cmp_float,
    "builtins.list": _cmp_sequence,
    "builtins.tuple": _cmp_sequence,
    "builtins.dict": _cmp_mapping,
    "builtins.set": _cmp_set,
    "builtins.frozenset": _cmp_set,
    "builtins.function": _cmp_function,
    "builtins.type": _cmp_class,
    "builtins.module": _cmp_module,
    "numpy.ndarray": _cmp_ndarray,
    "numpy.generic": _cmp_numpy_scalar,
    # pandas 3 names its public classes "pandas.X", pandas 2 by their module.
    "pandas.DataFrame": _cmp_frame,
    "pandas.core.frame.DataFrame": _cmp_frame,
    "pandas.Series": _cmp_series,
    "pandas.core.series.Series": _cmp_series,
    "pandas.Index": _cmp_index,
    "pandas.core.indexes.base.Index": _cmp_index,
    "xgboost.sklearn.XGBModel": _cmp_xgb_model,
    "xgboost.core.Booster": _cmp_booster,
    "sklearn.base.BaseEstimator": _cmp_estimator,
    "statsmodels.base.wrapper.ResultsWrapper": _cmp_statsmodels_results,
}
