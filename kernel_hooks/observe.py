"""Runtime observations that never run user code: object facts and RNG digests.

Two cheap observers used by :mod:`kernel_hooks.capture`:

- :func:`binding_facts` describes one value bound to a global name (its
  identity, its type's qualified names along the MRO, the objects it holds
  when that can be read without calling user code, the global names a
  function's code reads).  Only ``type(obj)`` and C-level slots of builtin
  types are consulted: no ``isinstance`` (proxies lie about ``__class__``),
  no ``hasattr``/``getattr`` on user objects (properties and ``__getattr__``
  would run).
- :class:`RngObserver` digests the global random generators (``random`` and
  ``numpy.random``'s legacy ``RandomState``) in about a microsecond each, so
  the capture can tell which top-level statement drew from them, whatever
  the called function is named.
"""

from __future__ import annotations

import ctypes
import functools
import random as _random
import sys
import types
from dataclasses import dataclass

#: Value types that can neither be mutated nor hold references to mutable
#: objects; bindings of these never take part in aliasing.
ATOMIC_TYPES = (int, float, complex, bool, str, bytes, type(None), range)

#: How many elements of a container are remembered (by identity) to detect
#: aliasing through containers; bounded so big lists cost nothing extra.
MAX_ELEMENT_IDS = 64

_MAX_STR_VALUE = 500
_MAX_MRO = 12
_MAX_CODE_NAMES = 400
_PATH_TYPES = frozenset({"PosixPath", "WindowsPath", "Path", "PurePosixPath", "PureWindowsPath"})

# Descriptors of ``type`` itself: reading a class's names through them cannot
# be intercepted by a user metaclass.
_TYPE_QUALNAME = type.__dict__["__qualname__"].__get__
_TYPE_MODULE = type.__dict__["__module__"].__get__
_TYPE_MRO = type.__dict__["__mro__"].__get__
_TYPE_DICT = type.__dict__["__dict__"].__get__
_MAX_CLASS_ATTRS = 500


@dataclass(slots=True)
class Binding:
    """Runtime facts about one global name bound or rebound by a cell.

    Attributes
    ----------
    id : int
        ``id()`` of the value.
    type_name, type_module : str
        The value's type (``__qualname__``, ``__module__``).
    atomic : bool
        Immutable and holding no references (int, str, ...).
    str_value : str or None
        The text of a short string or of a ``pathlib`` path.
    element_ids : tuple of int
        Objects the value holds (container elements, closure cells,
        default arguments, a partial's arguments, a view's base).
    base_id : int or None
        ``id()`` of a numpy view's base array.
    mro : tuple of str
        ``module.QualName`` of each class of the type's MRO (bounded).
    code_names : tuple of str
        For functions, lambdas, partials and bound methods: every global
        name their code (nested code included) may read when called.
    callable_kind : str or None
        ``"function"``, ``"partial"`` or ``"method"`` for those callables.
    element_mro : tuple of str
        MRO names of the first element of a list, tuple or object array
        (``axes[0].hist(...)`` on an array of matplotlib Axes).
    code_qualname : str or None
        ``co_qualname`` of a function's code (``tracked.<locals>.wrapper``
        for a decorated function): tells a ``def`` from what replaced it.
    elements_exact : bool
        ``element_ids`` lists every non-atomic object a small builtin
        container holds (nothing else is held).
    element_keys : tuple of str or None
        For a small dict: the key each of ``element_ids`` is held under
        (None for a key that is not a string).
    class_attrs : tuple of str or None
        For a class (of metaclass ``type``): the names in its own
        ``__dict__`` (a dataclass field made with ``default_factory`` is not
        one of them, whatever the class body says).
    """

    id: int
    type_name: str
    type_module: str
    atomic: bool
    str_value: str | None = None
    element_ids: tuple[int, ...] = ()
    base_id: int | None = None
    mro: tuple[str, ...] = ()
    code_names: tuple[str, ...] = ()
    callable_kind: str | None = None
    elements_exact: bool = False
    code_qualname: str | None = None
    element_mro: tuple[str, ...] = ()
    element_keys: tuple[str | None, ...] = ()
    class_attrs: tuple[str, ...] | None = None


def _class_name(cls) -> str:
    try:
        return f"{_TYPE_MODULE(cls)}.{_TYPE_QUALNAME(cls)}"
    except Exception:  # a broken class: keep going without it
        return "?"


def _code_names(code, out: set[str], depth: int = 0) -> None:
    if depth > 8 or len(out) > _MAX_CODE_NAMES:
        return
    out.update(code.co_names)
    for c in code.co_consts:
        if type(c) is types.CodeType:
            _code_names(c, out, depth + 1)


def _function_refs(fn, held: list, names: set[str]) -> None:
    """What a plain function reads when called and which objects it keeps.

    Only a function of the session (its globals are the user namespace,
    ``__main__``) reads session names: a library function's names are its
    module's globals (``cross_validate`` names ``name``, not the user's)."""
    if fn.__globals__.get("__name__") == "__main__":
        _code_names(fn.__code__, names)
    for d in fn.__defaults__ or ():
        held.append(d)
    for d in (fn.__kwdefaults__ or {}).values():
        held.append(d)
    for cell in fn.__closure__ or ():
        try:
            held.append(cell.cell_contents)
        except ValueError:  # an empty cell (name not bound yet)
            pass


def _callable_facts(value, tp) -> tuple[str, list, set[str]] | None:
    held: list = []
    names: set[str] = set()
    if tp is types.FunctionType:
        _function_refs(value, held, names)
        return "function", held, names
    if tp is functools.partial:
        held.extend(value.args)
        held.extend((value.keywords or {}).values())
        inner = value.func
        held.append(inner)
        if type(inner) is types.FunctionType:
            _function_refs(inner, held, names)
        return "partial", held, names
    if tp is types.BuiltinMethodType:
        owner = value.__self__  # a C slot: xs.append -> xs
        if owner is None or type(owner) is types.ModuleType:
            return None  # a builtin function (len, math.sqrt)
        return "method", [owner], names
    if tp is types.MethodType:
        held.append(value.__self__)
        fn = value.__func__
        if type(fn) is types.FunctionType:
            _function_refs(fn, held, names)
        return "method", held, names
    return None


def _first_element(value, tp):
    """The first element of a list/tuple, or of a numpy array of objects
    (read through C-level slots only); dicts: see :func:`_common_value`."""
    if tp in (list, tuple):
        return value[0] if value else None
    np = sys.modules.get("numpy")
    nd = getattr(np, "ndarray", None) if np is not None else None
    if nd is None or nd not in _TYPE_MRO(tp):
        return None
    dtype = nd.__dict__["dtype"].__get__(value)
    if type(dtype).__name__ != "ObjectDType" and getattr(dtype, "char", "") != "O":
        return None
    flat = nd.__dict__["flat"].__get__(value)
    return next(iter(flat), None) if nd.__dict__["size"].__get__(value) else None


def _common_value(values: list):
    """The first of a dict's values when all are of one type (a dict of
    Counters), else None: a config dict's values say nothing of each other."""
    if not values:
        return None
    tp = type(values[0])
    return values[0] if all(type(v) is tp for v in values) else None


def _ndarray_base(value, tp):
    np = sys.modules.get("numpy")
    nd = getattr(np, "ndarray", None) if np is not None else None
    if nd is None or nd not in _TYPE_MRO(tp):
        return None
    # The C slot of ndarray, even if a subclass overrides ``base``.
    return nd.__dict__["base"].__get__(value)


def binding_facts(value) -> Binding:
    """Describe ``value`` without running any of its (user-defined) code.

    Parameters
    ----------
    value : object
        A value bound to a global name.

    Returns
    -------
    Binding
    """
    tp = type(value)
    atomic = issubclass(tp, ATOMIC_TYPES)
    b = Binding(id(value), _TYPE_QUALNAME(tp), _TYPE_MODULE(tp) or "", atomic)
    if atomic:
        if tp is str and len(value) <= _MAX_STR_VALUE:
            b.str_value = value
        return b
    b.mro = tuple(_class_name(c) for c in _TYPE_MRO(tp)[:_MAX_MRO])
    held: list = []
    if tp.__name__ in _PATH_TYPES and b.type_module.startswith("pathlib"):
        b.str_value = str(value)
    elif tp in (list, tuple, set, frozenset):
        if len(value) <= MAX_ELEMENT_IDS:
            held, b.elements_exact = list(value), True
    elif tp is dict:
        if len(value) <= MAX_ELEMENT_IDS:
            held, b.elements_exact = list(value.values()), True
            b.element_keys = tuple(k if type(k) is str else None
                                   for k, v in value.items() if not issubclass(type(v), ATOMIC_TYPES))
    elif tp is type:
        names = _TYPE_DICT(value)
        if len(names) <= _MAX_CLASS_ATTRS:
            b.class_attrs = tuple(k for k in names if type(k) is str)
    else:
        facts = _callable_facts(value, tp)
        if facts is not None:
            b.callable_kind, held, names = facts
            b.code_names = tuple(sorted(names))
            if tp is types.FunctionType:
                code = value.__code__
                b.code_qualname = getattr(code, "co_qualname", code.co_name)
        else:
            base = _ndarray_base(value, tp)
            if base is not None:
                b.base_id = id(base)
    if held:
        b.element_ids = tuple(id(v) for v in held if not issubclass(type(v), ATOMIC_TYPES))
    first = _first_element(value, tp) if tp is not dict else _common_value(held)
    if first is not None and not issubclass(type(first), ATOMIC_TYPES):
        b.element_mro = tuple(_class_name(c) for c in _TYPE_MRO(type(first))[:_MAX_MRO])
    return b


class RngObserver:
    """Digests of the global random generators, each in about a microsecond.

    ``digest()`` returns a tuple with one entry per generator in
    :attr:`NAMES`; two digests differ in an entry exactly when that
    generator's state changed in between (a draw always moves its position;
    a new seed rewrites its key).
    """

    NAMES = ("random", "numpy.random")

    def __init__(self) -> None:
        self._np_bitgen = None
        self._np_addr: int | None = None
        self._py_index_addr: int | None = self._python_random_address()

    @staticmethod
    def _python_random_address() -> int | None:
        # CPython's RandomObject is {PyObject_HEAD; int index; uint32_t state[624]}.
        # Checked against getstate() once; on any other layout we fall back
        # to getstate(), which is exact but ~20x slower.
        inst = _random._inst
        try:
            addr = id(inst) + sys.getsizeof(object())
            state = inst.getstate()[1]
            index = ctypes.c_int.from_address(addr).value
            first = ctypes.c_uint32.from_address(addr + 4).value
            if index == state[-1] and first == state[0]:
                return addr
        except Exception:
            pass
        return None

    def _python_digest(self):
        inst = _random._inst
        addr = self._py_index_addr
        gauss = inst.__dict__.get("gauss_next")
        if addr is None:
            return hash(inst.getstate()), gauss
        return (ctypes.c_int.from_address(addr).value, ctypes.c_uint32.from_address(addr + 4).value,
                ctypes.c_uint32.from_address(addr + 4 * 624).value, gauss)

    def _numpy_digest(self):
        mtrand = sys.modules.get("numpy.random.mtrand")
        if mtrand is None:
            return None
        rs = mtrand.__dict__.get("_rand")
        if rs is None:
            return None
        bitgen = rs._bit_generator
        if bitgen is not self._np_bitgen:
            self._np_bitgen = bitgen
            try:
                self._np_addr = bitgen.ctypes.state_address if type(bitgen).__name__ == "MT19937" else None
            except Exception:
                self._np_addr = None
        addr = self._np_addr
        if addr is None:  # another bit generator: exact but slower
            return hash(repr(bitgen.state))
        # mt19937_state is {uint32_t key[624]; int pos;}
        return (ctypes.c_int.from_address(addr + 4 * 624).value, ctypes.c_uint32.from_address(addr).value,
                ctypes.c_uint32.from_address(addr + 4 * 623).value)

    def digest(self) -> tuple:
        """The current digest of every generator in :attr:`NAMES`."""
        return self._python_digest(), self._numpy_digest()

    @classmethod
    def changed(cls, before: tuple | None, after: tuple | None) -> frozenset[str]:
        """Names of the generators whose digest differs between two digests."""
        if before is None or after is None:
            return frozenset()
        return frozenset(n for n, a, b in zip(cls.NAMES, before, after) if a != b)
