"""The effect resolver: what one call read and changed.

Given a :class:`~lineapy_ext.analysis.statements.CallSite` and the session
as it is when the statement ran, decide which objects the call changed,
which hidden state it touched, which files it read or wrote.  The evidence,
strongest first:

1. what the capture observed at run time (the receiver's type and MRO, an
   atomic receiver, a method that returned a new object, a function's code
   and closure) -- the RNG digests are applied per statement by the graph;
2. the effect registry (:mod:`lineapy_ext.analysis.registry`), keyed by the
   function's import path or a class of the receiver's MRO;
3. session code: functions and classes defined in the session, applied
   through their summaries, transitively, with a bounded budget;
4. name-only guesses (``MUTATING_METHODS``...), always erring toward
   "it may change its receiver".

The resolver reports through an :class:`Env` of callbacks owned by the graph;
it never touches statement nodes itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from lineapy_ext.analysis.objects import ObjectModel
from lineapy_ext.analysis.program import Program
from lineapy_ext.analysis.registry import Effect, EffectRegistry, arg_value, default_registry
from lineapy_ext.analysis.sql import Databases, SqlAccess, sql_access, table_path

#: The file a call reads or writes when its path is not known: every file.
ANY_FILE = "<any file>"
_ATTACH = re.compile(r"\battach\b", re.I)
_AT_NAME = re.compile(r"@([A-Za-z_]\w*)")
from lineapy_ext.analysis.statements import (
    CLASS_OF,
    DISPLAYED,
    MUTATING_BUILTINS,
    MUTATING_METHODS,
    MUTATING_MODULE_FUNCS,
    OPAQUE_BUILTINS,
    PURE_BUILTINS,
    PURE_METHODS,
    RANDOM_READING_METHODS,
    SHALLOW_METHODS,
    CallSite,
    FunctionSummary,
    _looks_like_path,
)

__all__ = ["Env", "EffectResolver", "TooDeep", "ANY_FILE", "CALL_BUDGET", "MAX_CALL_DEPTH", "NO_CELL", "INDIRECT",
           "module_state_key"]

#: How many session-function applications one statement may take, and how
#: deep calls are followed, before it is treated as "may change anything".
CALL_BUDGET = 300
MAX_CALL_DEPTH = 40


class TooDeep(Exception):
    """Raised inside call resolution when a statement's budget is spent."""


@dataclass(slots=True)
class Env:
    """Callbacks and accumulators of the statement being resolved."""

    resolve: Callable[[str], int | None]
    read: Callable[..., None]
    mark: Callable[..., None]
    touch_state: Callable[..., None]
    extra_defs: list
    generators: list
    budget: list  # [calls left in this statement], shared by nested envs
    depth: int = 0
    returned_from: list = field(default_factory=list)  # (target, key it may be part of)
    files: list = field(default_factory=list)  # (path, writes)
    opened: list = field(default_factory=list)  # (target, path of the file it is tied to, a cursor)
    resets: set = field(default_factory=set)  # hidden states overwritten without reading
    linked: list = field(default_factory=list)  # names of results that hold each other
    code_results: list = field(default_factory=list)  # (target, globals the function it got reads)
    state_results: list = field(default_factory=list)  # (targets, hidden state that now holds them)
    stmt_paths: tuple = ()  # path-like literals of the statement (for name guesses)
    runtime: bool = False  # the cell has runtime facts
    read_key: Callable[[int], None] = lambda key: None  # depend on an object's history
    atomic_name: Callable[[str], bool] = lambda name: False  # the name refers to an int, a str...
    slot_objects: Callable = lambda name, items: None  # what a dict holds under items, if known exactly
    handles: set = field(default_factory=set)  # connections closed: their change is not a write of their file
    write_items: Callable = lambda key, items: False  # df.fillna({"a": 0}, inplace=True): only items changed
    stale: frozenset = frozenset()  # objects of names the statement binds again: their strings are not its values

    def nested(self, resolve) -> "Env":
        """The env of a call one level down (same accumulators)."""
        return Env(resolve, self.read, self.mark, self.touch_state, self.extra_defs, self.generators,
                   self.budget, self.depth + 1, self.returned_from, self.files, self.opened, self.resets,
                   self.linked, self.code_results, self.state_results, self.stmt_paths, self.runtime,
                   self.read_key, self.atomic_name, self.slot_objects, self.handles, self.write_items,
                   self.stale)


@dataclass(slots=True)
class CellContext:
    """The cell a statement belongs to, and the last statement binding each name."""

    cell: object
    last_def: dict


class _NoCell:
    has_runtime_facts = False
    statements = ()
    bound: dict = {}
    result_id = None


NO_CELL = CellContext(_NoCell(), {})

#: A call made somewhere we cannot see (a function passed as a value).
INDIRECT = CallSite(chain=None)
#: Classes of file objects, in-memory ones included, as the capture names them.
_STREAM_BASES = frozenset({"_io._IOBase", "io.IOBase"})
#: File objects with no file behind them: what is written stays in the object.
_IN_MEMORY_FILES = frozenset({"_io.BytesIO", "_io.StringIO"})


def _mark_deep_args(call: CallSite, env: "Env") -> None:
    """The objects inside the arguments passed as ``x[0]``, ``o.a`` or ``[a, b]`` changed (deeply)."""
    for name in call.deep_args:
        env.mark(env.resolve(name), True)


#: ``mark(key, OBJECTS)``: the object and the library objects it holds
#: changed (a Pipeline's fit fits its steps, not the dicts of parameters it
#: was given); builtin containers on the way are looked through.
OBJECTS = "objects"

_STATEFUL_CALLABLES = frozenset({"builtins.function", "functools.partial", "builtins.method"})
_CALLABLE_TYPES = frozenset({"builtins.type", "abc.ABCMeta", "builtins.function", "builtins.builtin_function_or_method",
                             "builtins.module"})


def module_state_key(path: str) -> str | None:
    """Name-only guess of the hidden state a module function keeps:
    ``numpy.random.rand`` -> ``"state:numpy.random"``."""
    parts = path.split(".")
    if "random" in parts:
        return "state:" + ".".join(parts[: parts.index("random") + 1])
    if parts[-1] in ("seed", "manual_seed", "set_seed"):
        return "state:" + (parts[0] + ".random" if parts[0] != "random" else "random")
    return None


def _sqlite_path(value: str) -> str | None:
    if value.startswith("sqlite:///"):
        value = value[len("sqlite:///"):].partition("?")[0]
        return _sqlite_path(value) if value.startswith("file:") else value or None
    if value.startswith("file:"):  # sqlite3.connect("file:w.db?mode=ro", uri=True)
        value = value[len("file:"):].partition("?")[0]
        return value[2:] if value.startswith("///") else value or None
    if value.startswith(("sqlite://", ":memory:")) or "://" in value:
        return None
    return value


#: Method names that values of builtin types carry ("x".replace, d.update).
_BUILTIN_METHOD_NAMES = frozenset(n for t in (str, bytes, list, dict, set) for n in dir(t))


def _redirect_marks(env: Env, key: int, held: set[int]) -> Env:
    """``cfg["model"]["features"].append(x)``: a change of ``cfg`` is a change
    of the object it holds under ``"model"`` (and of what that holds)."""
    mark = env.mark

    def redirected(k, deep=False):
        if k != key:
            mark(k, deep)
            return
        for e in held:
            mark(e, True)
    return dataclasses.replace(env, mark=redirected)


class EffectResolver:
    """Resolve calls against the session's objects and definitions."""

    def __init__(self, objects: ObjectModel, program: Program, registry: EffectRegistry | None = None,
                 databases: Databases | None = None):
        self.objects = objects
        self.program = program
        self._registry = registry
        self.databases = databases if databases is not None else Databases()

    @property
    def registry(self) -> EffectRegistry:
        """The registry given, or the process-wide one as configured now."""
        return self._registry if self._registry is not None else default_registry()

    # -- entry point ----------------------------------------------------------
    def call(self, call: CallSite, env: Env, ctx: CellContext, visited: set, st_index: int) -> None:
        """Apply the effects of ``call`` to ``env``."""
        args = [env.resolve(a) if a else None for a in call.args]
        kwargs = {k: env.resolve(v) for k, v in call.kwargs}
        for name in call.out:
            env.mark(env.resolve(name), False)
        for root, attr in call.method_refs:
            self._passed_method(root, attr, env)
        chain = call.chain
        if chain is None:
            effect = self.registry.method((call.receiver_type,), call.name or "") if call.receiver_type else None
            if effect is not None:
                self._apply_effect(effect, call, None, args, kwargs, env)
            else:
                self._mark_args(call, env, args, kwargs)
                self._files_by_name(call, None, args, kwargs, env)  # (out / "x.txt").write_text(s)
            return
        # with sqlite3.connect(p) as conn: conn.execute(q) is a method of conn, not a function of sqlite3
        on_module = (not call.through_call or len(chain) == 1) and call.with_name is None
        path = self._module_path(chain[0], chain, env) if on_module else None
        if path is not None:
            self._module_call(path, call, args, kwargs, env)
        elif len(chain) == 1:
            self._plain_call(call, env.resolve(chain[0]), args, kwargs, env, ctx, visited)
        else:
            self._method_call(call, env.resolve(chain[0]), args, kwargs, env, ctx, visited, st_index)

    def _passed_method(self, root: str, attr: str, env: Env) -> None:
        """``map(d.update, rows)``: a bound method passed along is probably
        called there; if it changes its object, the object changes."""
        key = env.resolve(root)
        if key is None or key in self.objects.atomic or root in self.program.modules:
            return
        effect = self.registry.method(self.objects.type_of(key), attr)
        if effect is not None:
            if "self" in effect.mutates:
                env.mark(key, True)
        elif attr in MUTATING_METHODS:
            env.mark(key, True)

    # -- registry effects -------------------------------------------------------
    def _apply_effect(self, effect: Effect, call: CallSite, rkey, args, kwargs, env: Env) -> None:
        by_table = effect.sql and self._sql(effect, call, rkey, args, kwargs, env)
        for spec in effect.mutates:
            if not (by_table and spec == effect.database):
                env.mark(rkey if spec == "self" else arg_value(spec, args, kwargs), True)
        for s in effect.state:
            env.touch_state("state:" + s)
        for s in effect.state_reset:
            env.touch_state("state:" + s, read=False)
            env.resets.add(s)
        if effect.reads_at_names:  # df.query("b > @thr") reads thr
            for text in self._paths(effect.reads_at_names, call, rkey, args, kwargs, env, texts=True):
                for name in _AT_NAME.findall(text):
                    env.read(name)
        for spec in (*effect.reads_files, *effect.writes_files):
            stream = self._stream(arg_value(spec, tuple(args), kwargs))
            path = self.objects.file_behind(stream) if stream is not None else None
            if stream is not None and (path is None or spec not in effect.reads_files):
                env.mark(stream, True)  # json.dump(d, buf): its contents (or position) change
            if path or (stream is not None and self.objects.type_of(stream)[0] in _IN_MEMORY_FILES):
                paths = [path] if path else []  # a file object: its file, or none
            else:
                paths = self._paths(spec, call, rkey, args, kwargs, env) or self._unknown_path(spec, call)
            env.files.extend((p, spec not in effect.reads_files) for p in paths)
        if effect.returns in ("part", "tied") and call.assigned_to and rkey is not None:
            path = self.objects.file_behind(rkey) if effect.returns == "tied" else None
            if path:  # a cursor: works on the connection's file, holds no part of it
                env.opened.append((call.assigned_to, path, True))
            else:
                env.returned_from.append((call.assigned_to, rkey))
        if effect.returns == "linked" and len(call.unpacked) > 1:
            env.linked.append(call.unpacked)
        results = call.unpacked or ((call.assigned_to,) if call.assigned_to else ())
        for s in (*effect.state, *effect.state_reset):
            if results and results != (DISPLAYED,):
                # plt.subplots(): the figure and axes are pyplot's current
                # ones: later pyplot calls may draw on them
                env.state_results.append((results, "state:" + s))
        if effect.opens_file and call.assigned_to:
            paths = self._paths(effect.opens_file, call, rkey, args, kwargs, env)
            for p in paths or self._unknown_path(effect.opens_file, call):
                db = _sqlite_path(p)  # a path not known (connect(Path(p)), an f-string): any file
                if db:
                    env.opened.append((call.assigned_to, db, False))
                    env.files.append((db, False))

    # -- databases ------------------------------------------------------------------
    def _sql(self, effect: Effect, call: CallSite, rkey, args, kwargs, env: Env) -> bool:
        """Tables of a SQLite file a call reads and writes; True when taken
        table by table (the database object itself is then not changed),
        False when the whole database counts (``mutates`` applies)."""
        dkey = rkey if effect.database == "self" else arg_value(effect.database, tuple(args), kwargs)
        db = self.objects.file_behind(dkey) if dkey is not None else None
        if db is None and effect.database == "self" and call.with_name:
            db = next((p for t, p, _ in env.opened if t == call.with_name), None)
        if db is None:
            return False
        dbs = self.databases
        texts = self._sql_texts(effect, call, rkey, args, kwargs, env)
        access = self._sql_access(effect, texts) if db != ANY_FILE and dbs.by_table(db) else None
        if access is None:
            norm = os.path.normpath(db)
            dbs.opaque.add(norm)  # a trigger or a view may tie tables together from now on
            env.files.extend(((db, False), (db, True)))
            sql = texts.get("sql", "")
            if effect.runs_sql and (sql is None and effect.mutates or sql and _ATTACH.search(sql)):
                dbs.attached.add(norm)  # ATTACH 'other.db': from now on any file may be read or written
            if norm in dbs.attached:
                env.files.extend(((ANY_FILE, False), (ANY_FILE, True)))
            return False
        env.files.extend((table_path(db, t), False) for t in access.reads)
        env.files.extend((table_path(db, t), True) for t in access.writes)
        if access.writes:
            dbs.written(db, access.writes)
        if effect.settles:
            env.files.extend((table_path(db, t), True) for t in dbs.end_transaction(db))
        if effect.runs_sql and effect.database == "self" and effect.returns != "new" and rkey is not None:
            env.mark(rkey, False)  # cur.execute(q): the cursor holds the rows
        if effect.closes and rkey is not None:
            env.mark(rkey, False)
            env.handles.add(rkey)
        return True

    def _sql_texts(self, effect: Effect, call: CallSite, rkey, args, kwargs, env: Env) -> dict:
        """spec kind -> the SQL text or table name the call passes (None: not known)."""
        out = {}
        for spec, kind in ((effect.runs_sql, "sql"), (effect.reads_table, "read"), (effect.writes_table, "write")):
            if spec:
                found = self._paths(spec, call, rkey, args, kwargs, env, texts=True)
                out[kind] = found[0] if len(found) == 1 else None
        return out

    @staticmethod
    def _sql_access(effect: Effect, texts: dict) -> SqlAccess | None:
        """What the call's SQL or table argument reads and writes; None when unknown."""
        access = SqlAccess(frozenset(), frozenset())
        for kind, text in texts.items():
            if text is None:
                return None
            if kind == "sql":
                got = sql_access(text)
            else:
                t = text.lower()
                got = SqlAccess(frozenset(), frozenset([t])) if kind == "write" else SqlAccess(frozenset([t]), frozenset())
            if got is None:
                return None
            access = SqlAccess(access.reads | got.reads, access.writes | got.writes)
        return access

    def _paths(self, spec: str, call: CallSite, rkey, args, kwargs, env: Env, texts: bool = False) -> list[str]:
        """The path(s) an argument spec names: a literal, or a string variable
        (``texts``: long and wrapped string literals too, for SQL); not the
        value of a name the statement binds again (``for q in qs: run(q)``:
        the string seen is an earlier one, or the last)."""
        if spec == "self":
            s = self.objects.strings.get(rkey) if rkey not in env.stale else None
            return [s] if s else []
        literals = call.literals + call.texts if texts else call.literals
        positional = {int(k): v for k, v in literals if k.isdigit()}
        lit = arg_value(spec, tuple(positional.get(i) for i in range(max(positional, default=-1) + 1)),
                        {k: v for k, v in literals if not k.isdigit()})
        if lit:
            return [lit]
        key = arg_value(spec, tuple(args), kwargs)
        s = self.objects.strings.get(key) if key is not None and key not in env.stale else None
        return [s] if s else []

    def _stream(self, key):
        """``key`` if the capture saw it is a file object (``io.StringIO``, ``open(...)``), else None."""
        mro = self.objects.type_of(key)
        return key if any(c in _STREAM_BASES for c in mro) else None

    @staticmethod
    def _unknown_path(spec: str, call: CallSite) -> list[str]:
        """``df.to_csv(f"out/{name}.csv")``, ``for p in paths: df.to_csv(p)``:
        a path was passed but its value is not known: any file."""
        if spec == "self":
            return [ANY_FILE]  # p.write_text(s) with p a Path built at run time
        name, _, pos = spec.partition("@")
        if name.isdigit():
            name, pos = "", name
        passed = {k for k, _ in call.kwargs}
        if (pos and int(pos) < len(call.args)) or (name and name in passed) or passed & {"*", "**"}:
            return [ANY_FILE]
        return []

    def _guess_files(self, call: CallSite, args, kwargs, env: Env) -> None:
        """Last resort: the name says it writes files (``x.to_csv(p)``,
        ``open(p, "w")``): any path in the statement may be written."""
        if not call.writes_guess:
            return
        paths = [v for _, v in call.literals] + list(env.stmt_paths)
        for k in list(args) + list(kwargs.values()):
            s = self.objects.strings.get(k) if k is not None else None
            if s and _looks_like_path(s):
                paths.append(s)
        env.files.extend((p, True) for p in dict.fromkeys(paths))

    # -- module functions -----------------------------------------------------------
    def _module_path(self, root: str, chain, env: Env) -> str | None:
        modules = self.program.modules
        if root not in modules or env.resolve(root) != self.objects.bindings.get(root):
            return None
        return ".".join((modules[root],) + tuple(chain[1:]))

    def _module_call(self, path: str, call: CallSite, args, kwargs, env: Env) -> None:
        effect = self.registry.function(path)
        if effect is not None:
            self._apply_effect(effect, call, None, args, kwargs, env)
            if call.inplace and args:
                env.mark(args[0], False)
            return
        if not env.runtime:  # draws are observed when the cell has runtime facts
            skey = module_state_key(path)
            if skey:
                env.touch_state(skey)
        pos = MUTATING_MODULE_FUNCS.get(call.chain[-1], -1)
        if pos is not None and 0 <= pos < len(args):
            env.mark(args[pos], True)
        if call.inplace and args:
            env.mark(args[0], False)
        self._guess_files(call, args, kwargs, env)

    # -- f(...) -----------------------------------------------------------------------
    def _plain_call(self, call: CallSite, rkey, args, kwargs, env: Env, ctx, visited) -> None:
        root = call.chain[0]
        program = self.program
        if rkey in program.functions and not call.receiver_deep:
            self.apply(program.functions[rkey], rkey, args, kwargs, call, env, ctx, visited, None)
        elif rkey in program.classes and not call.receiver_deep:
            init, _ = program.method(rkey, "__init__")
            if init is not None:
                self.apply(init, rkey, [None] + args, kwargs, call, env, ctx, visited, rkey)
        elif call.receiver_deep and rkey is not None:
            # fs[0](), handlers["x"](): any session function held there may run.
            env.mark(rkey, True)
            self._mark_args(call, env, args, kwargs)
            for k in self.objects.reachable(rkey):
                self._read_code(k, env)
                if k in program.functions:
                    self.apply(program.functions[k], k, args, kwargs, call, env, ctx, visited, None)
        elif rkey is None and root == "open":
            paths = self._paths("file@0", call, None, args, kwargs, env) or self._unknown_path("file@0", call)
            env.files.extend((p, call.writes_guess) for p in paths)
        elif rkey is None and root in MUTATING_BUILTINS:
            if args:
                env.mark(args[0], True)
        elif rkey is None and (root in PURE_BUILTINS or root in OPAQUE_BUILTINS):
            pass
        else:
            self._callable_object(call, rkey, args, kwargs, env)

    def _callable_object(self, call: CallSite, rkey, args, kwargs, env: Env) -> None:
        """A closure, a partial, a bound method, an instance with ``__call__``:
        it reads what its code reads, now, and may keep state."""
        self._read_code(rkey, env)
        mro = self.objects.type_of(rkey)
        # Python functions keep state in closures and defaults; a builtin or
        # a library's callable object (a ufunc) does not change when called.
        library = bool(mro) and mro[0] not in _STATEFUL_CALLABLES and not mro[0].startswith("__main__.") \
            and not self.objects.contains.get(rkey)  # f = xs.append: holds xs
        if not library:
            env.mark(rkey, True)
            # What its code does to the globals it names is unknown: they
            # may have changed (a decorator's wrapper appending to a log).
            objects = self.objects
            for r in objects.code_reads.get(rkey, ()):
                k = objects.bindings.get(r)
                if k is not None and not env.atomic_name(r) and r not in self.program.modules \
                        and k not in self.program.functions and k not in self.program.classes:
                    env.mark(k, False)
        self._mark_args(call, env, args, kwargs)

    def _read_code(self, key, env: Env) -> None:
        names = self.objects.code_reads.get(key) if key is not None else None
        if names:
            bound = self.objects.bindings
            for r in names:
                if r in bound:
                    env.read(r)

    # -- x.m(...) -----------------------------------------------------------------------
    def _method_call(self, call: CallSite, rkey, args, kwargs, env: Env, ctx, visited, st_index) -> None:
        chain = call.chain
        method = chain[-1]
        deep = len(chain) > 2 or call.receiver_deep or call.through_call
        if self._made_fresh(call, rkey) or self._through_tied(call, rkey, env):
            return
        self._inner_arguments(call, rkey, env)
        if self._session_method(call, rkey, method, deep, args, kwargs, env, ctx, visited):
            return
        if call.with_name is not None and call.chain[0] in self.program.modules:
            rkey = None  # with sqlite3.connect(p) as conn: conn.m() is a method of a new object, not of sqlite3
        if self._with_target_method(call, rkey, args, kwargs, env, ctx):
            return
        if call.with_name is not None and rkey is None and method not in PURE_METHODS:
            # with zipfile.ZipFile(p, "w") as z: z.writestr(...) writes the file z opened
            env.files.extend((p, True) for t, p, _ in env.opened if t == call.with_name)
        objects = self.objects
        rkey, env = self._item_receiver(call, rkey, env)
        mro = objects.type_of(rkey) if not deep else ()
        if self._returned_self(call, rkey):
            deep, mro = False, objects.type_of(rkey)  # cur.execute(q).fetchall(): fetchall on cur
        if deep and call.receiver_deep and len(call.chain) == 2 and not call.through_call:
            mro = objects.element_mro.get(rkey, ())  # axes[0].hist(...): the element's type
        if rkey is not None and mro or rkey is not None and not deep:
            if rkey in objects.atomic or self._registered_method(call, rkey, mro, deep, args, kwargs, env):
                return  # ints, strings, tuples of them cannot change; else what the registry says
        if rkey in self.program.rng_objects:
            env.mark(rkey)
            return
        if method in RANDOM_READING_METHODS and not env.runtime:
            # Estimators without a random_state draw from the global generator.
            for skey in ("state:numpy.random", "state:random"):
                env.touch_state(skey)
        self._guess_files(call, args, kwargs, env)
        self._files_by_name(call, rkey, args, kwargs, env)
        if len(call.chain) == 3 and not call.receiver_deep and not call.through_call and rkey is not None:
            accessor = self.registry.method(objects.type_of(rkey), call.chain[1])
            if accessor is not None and accessor.pure:
                return  # df.plot.scatter(...): a pure accessor of a known type
        if call.through_call and not call.inplace and self._returned_fresh(call, rkey, ctx, st_index):
            return  # Model().fit(X, y) bound to a name: a new object, the root is untouched
        # A library object's method may change what it holds too (a
        # Pipeline's fit fits its steps); a builtin container's does not.
        mro = objects.type_of(rkey)
        if not deep and not (mro and mro[0].startswith("builtins.") or method in SHALLOW_METHODS):
            deep = OBJECTS
        if call.inplace:
            env.mark(rkey, deep)
        elif method in MUTATING_METHODS:
            env.mark(rkey, deep)
            if rkey is not None and not call.through_call and method in SHALLOW_METHODS:
                # lst.append(x): lst holds x from now on (an estimator's fit(X) does not)
                for k in {k for k in args if k is not None and k != rkey}:
                    objects.add_contains(rkey, k, fresh=True)
        elif method in PURE_METHODS:
            pass
        elif not self._returned_fresh(call, rkey, ctx, st_index):
            env.mark(rkey, deep)

    def _with_target_method(self, call: CallSite, rkey, args, kwargs, env: Env, ctx) -> bool:
        """``with engine.begin() as con: con.execute(q)``: the registry's entry
        for the type the capture saw ``con`` have, on ``engine``'s key (``con``
        works on what ``engine`` holds; no key for ``with sqlite3.connect(p)
        as conn``: the file it opened); False when unknown."""
        cell = ctx.cell
        if call.with_name is None or not cell.has_runtime_facts:
            return False
        b = cell.bound.get(call.with_name)
        return bool(b is not None and b.mro) and self._registered_method(call, rkey, b.mro, False, args, kwargs, env)

    def _registered_method(self, call: CallSite, rkey, mro, deep, args, kwargs, env: Env) -> bool:
        """Apply the registry's entry for the method, if it has one."""
        effect = self.registry.method(mro, call.chain[-1])
        if effect is None:
            return False
        if deep and "self" in effect.mutates:
            env.mark(rkey, True)  # the element changed: so did what holds it
        self._apply_effect(effect, call, rkey, args, kwargs, env)
        if call.inplace:
            items = self.dict_items(effect, call)
            if not (items and env.write_items(rkey, items)):
                env.mark(rkey, False)
        return True

    def _session_method(self, call, rkey, method, deep, args, kwargs, env, ctx, visited) -> bool:
        """Methods of classes defined in the session; True when resolved."""
        program = self.program
        if rkey in program.classes and len(call.chain) == 2:
            # C.method(...): a static/class method, or a method given its self;
            # C(...).method(...): a method of the new instance (not one of the arguments)
            summary, kind = program.method(rkey, method)
            if summary is not None:
                first = [rkey] if kind == "class" else [None] if call.through_call and kind != "static" else []
                self.apply(summary, rkey, first + args, kwargs, call, env, ctx, visited, rkey)
                return True
        cls = program.instance_of.get(rkey) if rkey is not None else None
        if cls is not None and len(call.chain) > 2 and program.is_class_attr(cls, call.chain[1]) and (
                method in MUTATING_METHODS or method not in PURE_METHODS):
            env.mark(cls, True)  # c.items.append(1) where items lives on the class
        if cls is not None:
            env.read_key(cls)  # methods live on the class, as it is now (C.m = ... later)
        if cls is not None and not deep:
            summary, kind = program.method(cls, method)
            if summary is not None:
                first = [] if kind == "static" else [cls] if kind == "class" else [rkey]
                self.apply(summary, rkey, first + args, kwargs, call, env, ctx, visited, cls)
                return True
            for r in program.classes[cls].all_reads():
                env.read(r)
        elif (rkey is None or deep) and self._maybe_session_object(rkey):
            # objs[0].add(x), a loop variable: the receiver may be an instance
            # of any session class that has this method.
            for ckey in list(program.method_index.get(method, ())):
                cls_summary = program.classes.get(ckey)
                summary = cls_summary.methods.get(method) if cls_summary is not None else None
                if summary is None:  # the class was redefined since
                    continue
                kind = cls_summary.kinds.get(method)
                first = [] if kind == "static" else [ckey] if kind == "class" else [rkey]
                self.apply(summary, rkey, first + args, kwargs, call, env, ctx, visited, ckey)
        return False

    def _item_receiver(self, call: CallSite, rkey, env: Env) -> tuple:
        """``x["k"].m(...)``: the receiver as far as changes go, and the env to mark through."""
        if self._detached_item(call, rkey):
            return None, env  # df["c"].fillna(0, inplace=True): df["c"] is a new object, df cannot change
        held = env.slot_objects(call.chain[0], (call.first_slot,)) if call.first_slot and rkey is not None else None
        return rkey, (_redirect_marks(env, rkey, held) if held else env)

    @staticmethod
    def dict_items(effect: Effect | None, call: CallSite) -> tuple[str, ...] | None:
        """``df.fillna({"a": 0}, inplace=True)``: the items the call's literal
        dict names, when it stands where the registry's ``dict_items`` says."""
        if effect is None or not effect.dict_items or call.dict_keys is None:
            return None
        spec, keys, nested = call.dict_keys
        if effect.dict_items_nested and not nested:
            return None
        positional = (None,) * int(spec) + (True,) if spec.isdigit() else ()
        keywords = {} if spec.isdigit() else {spec: True}
        return keys if arg_value(effect.dict_items, positional, keywords) else None

    def _files_by_name(self, call: CallSite, rkey, args, kwargs, env: Env) -> None:
        """Unknown receiver: what any registered method of that name does to
        its arguments and files (x.to_sql("t", con) writes con; p.write_text(s)
        writes p, any file when p's path is not known)."""
        name = call.name or ""
        # a name builtin values carry too ("x".replace(a, b)) says nothing about files
        builtin = name in _BUILTIN_METHOD_NAMES
        for effect in self.registry.methods_named(name):
            files = {} if builtin else {"reads_files": effect.reads_files, "writes_files": effect.writes_files}
            self._apply_effect(Effect(mutates=tuple(m for m in effect.mutates if m != "self"), **files),
                               call, rkey, args, kwargs, env)

    def _inner_arguments(self, call: CallSite, rkey, env: Env) -> None:
        """``Pipeline([("s", scaler)]).fit(X, y)``, ``W(data).fill()``,
        ``list(rows)[0].append(1)``: a changing method of an object made from
        arguments may change them (a pipeline fits its steps; a shallow copy
        shares its elements)."""
        if not call.inner_names:
            return
        method, program = call.chain[-1], self.program
        if rkey in program.classes:
            summary, _ = program.method(rkey, method)
            changing = summary is not None and (summary.mutations or summary.calls) or method in MUTATING_METHODS
        else:
            changing = method in MUTATING_METHODS
        if not changing:
            return
        objects, registry = self.objects, self.registry
        for name in call.inner_names:
            key = env.resolve(name)
            if key is None or key in objects.atomic or name in program.modules:
                continue
            mro = objects.type_of(key)
            if mro and (mro[0] in _CALLABLE_TYPES or rkey not in program.classes and any(
                    registry.passive(c) for c in mro)):
                continue  # a class passed, or data a library model only reads (sm.OLS(y, X).fit() leaves X)
            env.mark(key, True if mro and mro[0].startswith("builtins.") else OBJECTS)

    def _through_tied(self, call: CallSite, rkey, env: Env) -> bool:
        """``conn.cursor().execute(q)``: a method of an unnamed object tied to
        the root's file (registry ``returns = "tied"``) may read and write that
        whole file; True when so resolved."""
        if rkey is None or call.first_call is None:
            return False
        effect = self.registry.method(self.objects.type_of(rkey), call.first_call)
        path = self.objects.file_behind(rkey) if effect is not None and effect.returns == "tied" else None
        if path is None:
            return False
        if call.chain[-1] not in PURE_METHODS:
            env.files.extend(((path, False), (path, True)))
            self.databases.written(path, {"*"})  # settled by the next commit
        return True

    def _returned_self(self, call: CallSite, rkey) -> bool:
        """``root.m(...).n(...)`` where ``m`` returns ``root`` itself (registry
        ``returns = "self"``): ``n`` is called on ``root``."""
        if rkey is None or call.first_call is None or len(call.chain) != 3 or call.receiver_deep:
            return False
        effect = self.registry.method(self.objects.type_of(rkey), call.first_call)
        return effect is not None and effect.returns == "self"

    def _made_fresh(self, call: CallSite, rkey) -> bool:
        """``df.groupby("k")["c"].transform(f).dt.to_period("M")``,
        ``conn.execute(q).fetchone()``: the chain starts with a method that
        returns a new object (registry ``returns = "new"``, or a pure method
        of a type whose results share nothing with it: pandas 3's
        copy-on-write), so nothing later in the chain can change the root."""
        if rkey is None or call.first_call is None:
            return False
        mro, registry = self.objects.type_of(rkey), self.registry
        effect = registry.method(mro, call.first_call)
        if effect is None:
            return False
        return effect.returns == "new" or effect.pure and any(registry.independent(c) for c in mro)

    def _detached_item(self, call: CallSite, rkey) -> bool:
        """``x["k"].m(...)`` (or ``x["k"].dt.m(...)``) where ``x`` keeps its items apart and shares
        nothing with values computed from it (a DataFrame under pandas 3's
        copy-on-write): the receiver is a new object, not a part of ``x``."""
        if rkey is None or not call.receiver_deep or call.through_call:
            return False
        if len(call.chain) != 2 and call.first_slot is None:
            return False  # df.loc[...].m(): not an item of df's
        mro = self.objects.type_of(rkey)
        registry = self.registry
        return bool(mro) and registry.keyed(mro[0]) and any(registry.independent(c) for c in mro)

    def _maybe_session_object(self, key) -> bool:
        if not self.program.classes:
            return False
        mro = self.objects.type_of(key)
        return not mro or mro[0].startswith("__main__.") or mro[0] in (
            "builtins.list", "builtins.dict", "builtins.tuple", "builtins.set")

    def _returned_fresh(self, call: CallSite, rkey, ctx: CellContext, st_index: int) -> bool:
        """Runtime rule: a method whose result is a new, non-None object did
        not (we assume) change its receiver."""
        cell = ctx.cell
        if not cell.has_runtime_facts or rkey is None or call.assigned_to is None:
            return False
        recv_id = self.objects.id_of_key.get(rkey)
        if call.assigned_to == DISPLAYED:
            if st_index != len(cell.statements) - 1 or cell.result_id is None:
                return False
            return recv_id is not None and cell.result_id != recv_id
        if ctx.last_def.get(call.assigned_to) != st_index:
            return False
        b = cell.bound.get(call.assigned_to)
        return (b is not None and b.type_name != "NoneType" and recv_id is not None
                and b.id != recv_id)

    @staticmethod
    def _mark_args(call, env: Env, args, kwargs) -> None:
        for k in args:
            env.mark(k, True)
        for k in kwargs.values():
            env.mark(k, True)
        _mark_deep_args(call, env)

    # -- session functions ----------------------------------------------------------
    def apply(self, summary: FunctionSummary, fkey, args, kwargs, call, env: Env, ctx, visited,
              self_class=None) -> None:
        """Apply the call-time effects of a session function.

        ``self_class`` is the class a method runs for: ``type(self).x = ...``
        in ``__init__`` changes it even though the instance is not known yet.
        """
        # One set per statement, shared by the whole call tree: each function
        # is applied once per distinct argument binding.
        marker = (fkey, id(summary), tuple(args), tuple(sorted(kwargs.items())), self_class)
        if marker in visited:
            return
        visited.add(marker)
        env.budget[0] -= 1
        if env.budget[0] < 0 or env.depth > MAX_CALL_DEPTH:
            raise TooDeep
        pmap: dict[str, int | None] = dict(zip(summary.params, args))
        pmap.update(kwargs)
        params = set(summary.params) | set(summary.kwonly)
        for r in summary.reads:
            env.read(r)
        for w in summary.writes:
            env.read(w)
            env.extra_defs.append(w)

        def resolve(name: str):
            if name in pmap:
                return pmap[name]
            return None if name in params else self.objects.bindings.get(name)

        if summary.is_generator and ctx is not NO_CELL and call.assigned_to:
            env.generators.append((call.assigned_to, fkey))
        if summary.makes_functions and ctx is not NO_CELL and call.assigned_to:
            # read = make_reader(): what the returned function reads when
            # called (known before the cell's runtime facts arrive)
            env.code_results.append((call.assigned_to, summary.reads | summary.writes))
        if summary.returns_parts_of and ctx is not NO_CELL and call.assigned_to:
            for name in summary.returns_parts_of:
                holder = resolve(name)
                if holder is not None:
                    env.returned_from.append((call.assigned_to, holder))
        self._apply_mutations(summary, fkey, pmap, params, resolve, call, env, args, kwargs, self_class)
        inner = env.nested(resolve)
        if any(c.chain and len(c.chain) > 1 and pmap.get(c.chain[0], 0) is None and c.chain[0] in params
               and c.chain[-1] not in PURE_METHODS for c in summary.calls):
            _mark_deep_args(call, env)  # l.append(0) in f(l), called as f(x[0]) or f([a, b])
        for c in summary.calls:
            if c.chain and c.chain[0] in params and c.chain[0] not in pmap:
                if (len(c.chain) > 1 and call is not INDIRECT and fkey is not None
                        and c.chain[-1] not in PURE_METHODS):
                    env.mark(fkey, True)  # memo.append(x) on a default argument: state of the function
                continue
            self.call(c, inner, NO_CELL, visited, -1)

    def _apply_mutations(self, summary, fkey, pmap, params, resolve, call, env, args, kwargs, self_class) -> None:
        first = summary.params[0] if summary.params else None
        for name, deep in summary.mutations:
            bare = name[len(CLASS_OF):] if name.startswith(CLASS_OF) else name
            if name.startswith(CLASS_OF) and self_class is not None and resolve(bare) is None and bare == first:
                env.mark(self_class, True)
            elif bare == first and self_class is not None and pmap.get(bare) == self_class:
                env.mark(self_class, deep)  # cls.n += 1 in a classmethod
            elif bare in pmap or bare not in params:
                if pmap.get(bare, 0) is None:  # passed as x[0], o.a or [a, b]: an object inside those
                    _mark_deep_args(call, env)
                self.mark_name(name, deep, resolve, env.mark)
                if bare not in params and bare in self.objects.bindings:
                    env.read(bare)
            elif bare in params and bare not in pmap and fkey is not None and call is not INDIRECT:
                env.mark(fkey, True)  # def f(x, memo=[]): memo.append(x) changes f's default
            elif summary.has_varargs or bare in params:
                self._mark_args(call, env, args, kwargs)

    def mark_name(self, name: str, deep: bool, resolve, mark) -> None:
        """Mark the object ``name`` refers to as changed; ``<class-of>x``
        (``type(x).attr = ...``) changes the class of ``x`` as well."""
        if name.startswith(CLASS_OF):
            key = resolve(name[len(CLASS_OF):])
            mark(self.program.instance_of.get(key) if key is not None else None, True)
            mark(key, True)
        else:
            mark(resolve(name), deep)
