"""The source of a generated module: one function per artifact, shared helpers, ``run_all``.

:func:`render_module` turns saved slices into a plain Python module that needs
nothing from lineapy_ext: imports at the top, one private helper per run of
statements shared by several artifacts of a session, one public function
``get_<name>`` per artifact, and ``run_all`` computing every artifact at once
(shared code run once) and returning ``{name: value}``.  Parameters are
keyword-only; each replaces the binding :func:`~lineapy_ext.codegen.plan.resolve_parameter`
found, and its default is the session's value (the literal, or the original
line run as in the session, spelled ``SESSION_VALUE``).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from lineapy_ext.codegen.plan import (
    Binding,
    CodegenError,
    Target,
    combinable,
    is_pure_binding,
    merge_slices,
    parameter_candidates,
    resolve_parameter,
    split_blocks,
)

SENTINEL = "SESSION_VALUE"
_SENTINEL_CODE = f'''

class _SessionValue:
    """Default of a parameter: compute the value as the session did."""

    def __repr__(self):
        return "{SENTINEL}"


{SENTINEL} = _SessionValue()
'''


@dataclass
class Piece:
    """Code run in place of one program statement (the statement itself, or its replacement)."""

    text: str
    reads: set
    binds: set


@dataclass
class Group:
    """The artifacts of one session, analysed together."""

    targets: list
    program: list = field(default_factory=list)
    bindings: dict = field(default_factory=dict)
    renamed: dict = field(default_factory=dict)
    pieces: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)
    helpers: dict = field(default_factory=dict)


@dataclass
class Module:
    """A rendered module and what callers need to know about it."""

    source: str
    functions: dict  # artifact name -> function name
    parameters: dict  # parameter -> default (Python source text)
    imports: list  # import statements (source)
    groups: list
    #: Shared helpers whose artifacts all run them the same way (safe to
    #: compute once and pass on through a file): helper name -> artifact names.
    passable: dict = field(default_factory=dict)


def _groups(targets: list[Target]) -> list[Group]:
    by_session: dict = {}
    for target in targets:
        by_session.setdefault(target.session_id, []).append(target)
    return [Group(list(ts)) for ts in by_session.values()]


def analyse(targets: list[Target], parameters: list[str]) -> list[Group]:
    """Merge each session's slices and resolve ``parameters`` in them.

    Raises
    ------
    CodegenError
        If a parameter is read by none of the slices (listing the candidates).
    """
    groups = _groups(targets)
    for group in groups:
        group.program = merge_slices(group.targets)
    for name in parameters:
        if not name.isidentifier():
            raise CodegenError(f"parameter {name!r} is not a valid Python variable name")
        usable = [g for g in groups if name in parameter_candidates(g.program)]
        if not usable:
            resolve_parameter(groups[0].program, name) if len(groups) == 1 else _no_such(name, groups)
        for group in usable:
            group.bindings[name] = resolve_parameter(group.program, name)
    for group in groups:
        _prepare(group)
    return groups


def _no_such(name: str, groups: list[Group]):
    candidates = sorted(set().union(*(parameter_candidates(g.program) for g in groups)))
    raise CodegenError(f"{name!r} cannot be a parameter: the slices do not read it; "
                       f"variables they read: {', '.join(candidates) or '(none)'}")


def _prepare(group: Group) -> None:
    """Decide renames and build the piece that runs for each program statement."""
    by_index: dict = {}
    for binding in group.bindings.values():
        by_index.setdefault(binding.index, []).append(binding)
    for index, item in enumerate(group.program):
        stmt = item.stmt
        bindings = by_index.get(index)
        if not bindings:
            group.pieces[index] = Piece(stmt.source, set(stmt.reads), set(stmt.binds))
            continue
        earlier = set().union(set(), *(it.stmt.mentions for it in group.program[:index] if not it.stmt.is_import))
        pure = len(bindings) == 1 and is_pure_binding(stmt.node, bindings[0].name)
        for b in bindings:
            group.renamed[b.name] = f"_{b.name}_param" if (b.name in earlier or not pure) else b.name
        group.pieces[index] = _replacement(stmt, bindings, pure, group.renamed)
    group.blocks = split_blocks(group.program)


def _replacement(stmt, bindings: list[Binding], pure: bool, renamed: dict) -> Piece | None:
    """The code run instead of ``stmt``, whose bindings the parameters replace."""
    if pure:
        binding = bindings[0]
        name, param = binding.name, renamed[binding.name]
        if binding.has_literal:
            if param == name:
                return None  # the parameter binds the name already
            return Piece(f"{name} = {param}", {param}, {name})
        text = f"if {param} is {SENTINEL}:\n{textwrap.indent(stmt.source, '    ')}\nelse:\n    {name} = {param}"
        return Piece(text, set(stmt.reads) | {param}, set(stmt.binds) | {name})
    # The statement does more than bind the name: it runs, then the
    # parameter's value takes the name over.
    lines = [stmt.source]
    for b in bindings:
        param = renamed[b.name]
        lines.append(f"if {param} is not {SENTINEL}:\n    {b.name} = {param}")
    params = {renamed[b.name] for b in bindings}
    return Piece("\n".join(lines), set(stmt.reads) | params, set(stmt.binds))


def _fresh(name: str, taken: set) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if ident[:1].isalpha() or ident[:1] == "_" else "_" + ident


def default_source(binding: Binding) -> str:
    """The default of a parameter as Python source."""
    return repr(binding.literal) if binding.has_literal else SENTINEL


def param_doc(binding: Binding, artifact: str | None = None) -> str:
    """Numpydoc lines describing parameter ``binding.name`` (lines counted in ``artifact``'s slice)."""
    line = binding.item.stmt.first_line()
    if binding.has_literal:
        head = f"{binding.name} : default {binding.literal!r}"
        body = f"Replaces `{line}` ({binding.where(artifact)})."
    else:
        head = f"{binding.name} : default {SENTINEL}"
        body = (f"Replaces the value bound by `{line}` ({binding.where(artifact)}); "
                f"with {SENTINEL} that line runs as in the session.")
    return head + "\n" + textwrap.indent(textwrap.fill(body, 84), "    ")


def _block_io(group: Group, position: int, artifact_vars: set) -> tuple[list, list]:
    """Names block ``position`` of ``group`` takes from its caller and gives back."""
    block = group.blocks[position]
    available = set(group.renamed.values()) | set(group.renamed)
    for earlier in group.blocks[:position]:
        available |= set().union(set(), *(p.binds for p in _pieces(group, earlier)))
    inputs: list = []
    local: set = set()
    for piece in _pieces(group, block):
        inputs += [n for n in sorted(piece.reads - local) if n in available and n not in inputs]
        local |= piece.binds
    later = set().union(set(), *(p.reads for b in group.blocks[position + 1:] for p in _pieces(group, b)))
    outputs = [n for n in sorted(local) if n in later or n in artifact_vars]
    shared_globals = _globals(group)
    return [n for n in inputs if n not in shared_globals], [n for n in outputs if n not in shared_globals]


def _pieces(group: Group, block) -> list[Piece]:
    return [group.pieces[i] for i in block.indices if group.pieces[i] is not None]


def _globals(group: Group) -> set:
    return set().union(set(), *(item.stmt.globals_declared for item in group.program))


def _owner_names(block) -> str:
    names = sorted(block.owners)
    return ", ".join(map(repr, names[:-1])) + f" and {names[-1]!r}"


def _helper(group: Group, position: int, name: str, artifact_vars: set) -> tuple[str, str, str]:
    """Source of a shared helper, the line that calls it, and its name."""
    block = group.blocks[position]
    inputs, outputs = _block_io(group, position, artifact_vars)
    body = _global_line(group) + [p.text for p in _pieces(group, block)]
    if outputs:
        body.append("return " + ", ".join(outputs))
    doc = f'"""Statements shared by {_owner_names(block)}, run once by run_all."""'
    source = f"def {name}({', '.join(inputs)}):\n" + textwrap.indent("\n".join([doc, *body]), "    ")
    call = f"{name}({', '.join(inputs)})"
    if outputs:
        call = f"{', '.join(outputs)} = {call}"
    return source, call, name


def _global_line(group: Group) -> list[str]:
    names = sorted(_globals(group))
    return [f"global {', '.join(names)}"] if names else []


def _run_blocks(group: Group, owners: set) -> list[str]:
    lines = []
    for position, block in enumerate(group.blocks):
        if not block.owners & owners:
            continue
        if position in group.helpers:
            lines.append(group.helpers[position][1])
        else:
            lines += [p.text for p in _pieces(group, block)]
    return lines


def _signature(bindings: list[Binding], defaults: dict | None = None) -> str:
    if not bindings:
        return ""
    defaults = defaults or {}
    return "*, " + ", ".join(f"{b.name}={defaults.get(b.name, default_source(b))}" for b in bindings)


def _renames(group: Group, bindings: list[Binding]) -> list[str]:
    return [f"{group.renamed[b.name]} = {b.name}" for b in bindings if group.renamed[b.name] != b.name]


def _docstring(summary: str, bindings: list[Binding], returns: str, artifact: str | None = None) -> str:
    parts = [summary, ""]
    if bindings:
        parts += ["Parameters", "----------", *(param_doc(b, artifact) for b in bindings), ""]
    parts += ["Returns", "-------", returns]
    return '"""' + "\n".join(parts) + '\n"""'


def _artifact_bindings(group: Group, target: Target) -> list[Binding]:
    return [b for b in group.bindings.values() if target.name in b.item.owners]


def _artifact_function(group: Group, target: Target, name: str) -> str:
    bindings = _artifact_bindings(group, target)
    saved = f", saved {target.created_at:%Y-%m-%d %H:%M:%S}" if hasattr(target.created_at, "strftime") else ""
    doc = _docstring(f"Recompute artifact {target.name!r} (version {target.version}{saved}).",
                     bindings, f"object\n    The value of `{target.var}`.", target.name)
    body = [doc, *_global_line(group), *_renames(group, bindings), *_run_blocks(group, {target.name}),
            f"return {target.var}"]
    return f"def {name}({_signature(bindings)}):\n" + textwrap.indent("\n".join(body), "    ")


def _run_body(group: Group, functions: dict, result: str) -> list[str]:
    """Lines computing every artifact of ``group`` into dict ``result``."""
    together = [t for t in group.targets if combinable(group.program, t)]
    alone = [t for t in group.targets if t not in together]
    # Keys in the order the artifacts were named, whichever is computed first.
    lines = [*_global_line(group), f"{result} = dict.fromkeys({[t.name for t in group.targets]!r})"]
    # Artifacts that cannot share the run are computed first, while the
    # parameter names still hold what the caller passed.
    for t in alone:
        args = ", ".join(f"{b.name}={b.name}" for b in _artifact_bindings(group, t))
        lines.append(f"{result}[{t.name!r}] = {functions[t.name]}({args})")
    lines += _renames(group, list(group.bindings.values()))
    lines += _run_blocks(group, {t.name for t in together})
    lines += [f"{result}[{t.name!r}] = {t.var}" for t in together]
    return lines


def _saved_with(targets: list[Target]) -> str:
    """The docstring line naming the versions the artifacts were computed with ("" if none recorded)."""
    from lineapy_ext.environment import describe, merge

    ordered = sorted(targets, key=lambda t: (t.created_at is None, str(t.created_at)))
    line = describe(merge(t.environment for t in ordered))
    return f"{line[:-1]} (the versions the values were computed with).\n" if line else ""


def render_module(targets: list[Target], parameters: list[str], title: str = "",
                  reserved: frozenset = frozenset()) -> Module:
    """Render the module recomputing ``targets`` with keyword ``parameters``.

    Parameters
    ----------
    targets : list of Target
        The artifacts, in the order the caller named them.
    parameters : list of str
        Variables of the slices that become keyword parameters.
    title : str
        First line of the module docstring.
    reserved : set of str
        Module-level names the caller adds later; generated names avoid them.

    Returns
    -------
    Module

    Raises
    ------
    CodegenError
        If a parameter is not read by the slices, or a slice cannot be parsed.
    """
    groups = analyse(targets, parameters)
    taken = {SENTINEL, "_SessionValue", "run_all", "ARTIFACTS", "PARAMETERS", "_given", *reserved}
    for group in groups:
        for item in group.program:
            taken |= item.stmt.mentions
    artifact_vars = {t.var for t in targets}
    functions = {t.name: _fresh("get_" + _identifier(t.name), taken) for t in targets}
    imports = _imports(groups)
    parts = []
    for group in groups:
        for position, block in enumerate(group.blocks):
            if len(block.owners) > 1 and _pieces(group, block):
                name = _fresh(f"_shared_{len(parts) + 1}", taken)
                group.helpers[position] = _helper(group, position, name, artifact_vars)
                parts.append(group.helpers[position][0])
    for group in groups:
        parts += [_artifact_function(group, t, functions[t.name]) for t in group.targets]
    run_all, defaults = _run_all(groups, functions, taken)
    parts.append(run_all)
    passable = {}
    for group in groups:
        together = {t.name for t in group.targets if combinable(group.program, t)}
        for position, (_, _, name) in group.helpers.items():
            owners = group.blocks[position].owners
            if owners <= together:
                passable[name] = [t.name for t in group.targets if t.name in owners]
    names = ", ".join(f"{t.name!r} (version {t.version})" for t in targets)
    doc = (f'"""{title or "Recompute saved artifacts."}\n\nGenerated by lineapy_ext from {names}; '
           "needs nothing from lineapy_ext.\nrun_all(**params) returns {name: value}; "
           f'get_<name>(**params) computes one artifact.\n{_saved_with(targets)}"""')
    uses_sentinel = any(SENTINEL in p for p in parts)
    table = ", ".join(f"{t.name!r}: {functions[t.name]}" for t in targets)
    params = ", ".join(f"{k!r}: {v}" for k, v in defaults.items())
    source = "\n".join(
        [doc, "", *imports, _SENTINEL_CODE if uses_sentinel else "", "", *(p + "\n\n" for p in parts),
         f"#: Artifact name -> function computing it.\nARTIFACTS = {{{table}}}\n",
         f"#: Parameter -> default.\nPARAMETERS = {{{params}}}\n"]
    )
    source = re.sub(r"\n{4,}", "\n\n\n", source)
    return Module(source, functions, defaults, imports, groups, passable)


def _imports(groups: list[Group]) -> list[str]:
    seen, out = set(), []
    for group in groups:
        for item in group.program:
            if item.stmt.is_import and item.stmt.key not in seen:
                seen.add(item.stmt.key)
                out.append(item.stmt.source)
    return out


def _run_all(groups: list[Group], functions: dict, taken: set) -> tuple[str, dict]:
    """Source of ``run_all`` and its parameters' defaults (Python source)."""
    result = _fresh("_values", taken)
    returns = "dict\n    Artifact name -> value."
    if len(groups) == 1:
        group = groups[0]
        bindings = list(group.bindings.values())
        doc = _docstring("Recompute every artifact, running shared code once.", bindings, returns)
        body = [doc, *_run_body(group, functions, result), f"return {result}"]
        defaults = {b.name: default_source(b) for b in bindings}
        return f"def run_all({_signature(bindings)}):\n" + textwrap.indent("\n".join(body), "    "), defaults
    return _run_all_sessions(groups, functions, taken, result)


def _run_all_sessions(groups, functions, taken, result) -> tuple[str, dict]:
    """``run_all`` for artifacts of several sessions: one private function per session."""
    defaults: dict = {}
    for group in groups:
        for b in group.bindings.values():
            seen = defaults.setdefault(b.name, default_source(b))
            if seen != default_source(b):
                defaults[b.name] = SENTINEL  # sessions disagree: each keeps its own
    parts, calls = [], []
    for n, group in enumerate(groups, 1):
        name = _fresh(f"_run_session_{n}", taken)
        bindings = list(group.bindings.values())
        body = ['"""Artifacts of one saving session."""', *_run_body(group, functions, result), f"return {result}"]
        parts.append(f"def {name}({_signature(bindings)}):\n" + textwrap.indent("\n".join(body), "    "))
        args = ", ".join(f"{b.name}={b.name}" for b in bindings)
        calls.append(f"{result}.update({name}(**_given({args})))")
    given = ("def _given(**kwargs):\n    \"\"\"The keyword arguments not left at SESSION_VALUE.\"\"\"\n"
             f"    return {{k: v for k, v in kwargs.items() if v is not {SENTINEL}}}")
    sig = ("*, " + ", ".join(f"{k}={v}" for k, v in defaults.items())) if defaults else ""
    doc = _sessions_docstring(groups, defaults)
    body = [doc, f"{result} = {{}}", *calls, f"return {result}"]
    run_all = f"def run_all({sig}):\n" + textwrap.indent("\n".join(body), "    ")
    return "\n\n\n".join([given, *parts, run_all]), defaults


def _sessions_docstring(groups: list[Group], defaults: dict) -> str:
    """Docstring of a ``run_all`` over several sessions: each parameter and what it replaces in each."""
    parts = ["Recompute every artifact (those of each saving session run together).", ""]
    if defaults:
        parts += ["Parameters", "----------"]
        for name, default in defaults.items():
            where = [f"`{b.item.stmt.first_line()}` ({b.where()})"
                     for g in groups for b in g.bindings.values() if b.name == name]
            body = "Replaces " + "; ".join(where) + "."
            if default == SENTINEL:
                body += f" With {SENTINEL} each session keeps its own value."
            parts += [f"{name} : default {default}", textwrap.indent(textwrap.fill(body, 84), "    ")]
        parts.append("")
    parts += ["Returns", "-------", "dict", "    Artifact name -> value."]
    return '"""' + "\n".join(parts) + '\n"""'
