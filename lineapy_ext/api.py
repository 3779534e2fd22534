"""The Python API: ``save``, ``get``, ``delete``, ``artifact_store`` and ``Artifact``.

Everything goes through the process-wide context
(:func:`lineapy_ext.context.get_context`): its options choose the store and
backends, its tracker (when the extension is loaded) supplies the slice and
the session's executed cells.  Without IPython the tracker is ``None`` and
artifacts are saved with empty code.
"""

from __future__ import annotations

import difflib
from typing import Any

from lineapy_ext.exceptions import ArtifactNotFoundError, InvalidVersionError
from lineapy_ext.store.records import ArtifactRecord

__all__ = ["Artifact", "artifact_store", "cleanup", "delete", "get", "save", "save_value"]


class Artifact:
    """One saved version of a value, with the code that produced it.

    Attributes
    ----------
    name : str
    version : int
    created_at : datetime
        When it was saved (UTC, time-zone aware).
    storage_backend : str
        ``lineapy``, ``mlflow`` or the dotted path of a custom backend.
    value_type : str
        ``module.QualName`` of the value's type.
    size : int or None
        Bytes stored, when the backend knows.
    session_id : str
        The kernel session that saved it.
    """

    def __init__(self, record: ArtifactRecord, version_count: int | None = None) -> None:
        self._record = record
        self._version_count = version_count

    name = property(lambda self: self._record.name)
    version = property(lambda self: self._record.version)
    created_at = property(lambda self: self._record.created_at)
    storage_backend = property(lambda self: self._record.backend)
    value_type = property(lambda self: self._record.value_type)
    size = property(lambda self: self._record.size)
    session_id = property(lambda self: self._record.session_id)

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} version {self.version} ({self.value_type}, {self.storage_backend})>"

    def get_value(self) -> Any:
        """Load and return the saved value (from the current store).

        Raises
        ------
        ValueGoneError
            The row is kept but the value is gone (e.g. deleted in MLflow);
            its ``slice_code`` is the slice that recomputes it.
        """
        from lineapy_ext.context import get_context
        from lineapy_ext.exceptions import ValueGoneError

        try:
            return get_context().store.load(self._record)
        except ValueGoneError as e:
            raise ValueGoneError(
                f"{self.name!r} version {self.version}: {e}; its slice recomputes it "
                f"(%lineapy code {self.name} --version {self.version}, or Artifact.get_code())",
                slice_code=self.get_code(),
            ) from e

    def get_code(self) -> str:
        """Return the slice: plain Python that recomputes the value."""
        return self._record.slice_code

    def get_session_code(self) -> str:
        """Return everything that ran in the saving session, up to the save, as one script."""
        from lineapy_ext.context import get_context

        cells = get_context().store.db.cells(self.session_id)
        return "\n\n".join(c.source.rstrip("\n") for c in cells if c.source.strip()) + ("\n" if cells else "")

    def lineage(self):
        """Return where this version came from: cells, artifacts loaded (recursively) and files read.

        Returns
        -------
        lineapy_ext.lineage.Lineage
            Plain ``nodes``/``edges`` data; draws itself as SVG in Jupyter and
            as an indented text tree in a terminal.
        """
        from lineapy_ext.context import get_context
        from lineapy_ext.lineage import build_lineage

        return build_lineage(self._record, get_context().store.db)

    def verify(self, *, repair: bool = False, timeout: float | None = None, max_runs: int | None = None):
        """Re-run the slice in a fresh interpreter, compare with the saved value, record the verdict.

        The slice runs in a child ``python`` in a scratch directory holding
        copies of the files it reads from the current working directory; the
        user's session, files and namespace are not touched.

        Parameters
        ----------
        repair : bool
            When the verdict is ``differs``, ``failed`` or ``nondeterministic``,
            search the session's statements for the smallest addition that
            makes the slice verify, and store that slice.
        timeout : float, optional
            Seconds per run (default: the ``verify_timeout`` option).
        max_runs : int, optional
            Bound on the slice runs of a repair (default 12).

        Returns
        -------
        lineapy_ext.store.verifications.Verdict
            ``status`` (``verified``, ``differs``, ``failed``,
            ``nondeterministic``, ``timeout``, ``not run``), one-line
            ``detail``, ``seconds``; after a repair ``added_statements``.
        """
        verdict, repaired = _verify(self._record, repair=repair, timeout=timeout, max_runs=max_runs)
        self.last_repair = repaired
        if repaired is not None and repaired.found:
            self._record = _context().store.db.get_artifact(self.name, self.version) or self._record
        return verdict

    @property
    def verdict(self):
        """The latest verdict of this version (status ``pending`` while a background run is on), or ``None``."""
        from lineapy_ext.verify import current_verdict

        return current_verdict(_context().store.db, self._record)

    def get_metadata(self) -> dict:
        """Return a dict describing this version (for MLflow also the model URI...).

        Keys: ``name, version, created_at, storage_backend, value_type, size,
        checksum, session_id, location, var_names, slice_cells``, ``version_count`` when
        known, ``environment`` (``{"python": "3.11.7", "packages":
        {distribution: version}, "modules": {import name: distribution}}``:
        the Python version and the distributions of the modules the slice
        imports, at save; None for versions saved before it was recorded),
        ``verification``, and everything the backend recorded.
        """
        r = self._record
        meta = dict(r.backend_metadata)
        meta.update(
            name=r.name,
            version=r.version,
            created_at=r.created_at.isoformat(),
            storage_backend=r.backend,
            value_type=r.value_type,
            size=r.size,
            checksum=r.checksum,
            session_id=r.session_id,
            location=r.location,
            var_names=list(r.var_names),
            slice_cells=[tuple(c) for c in r.slice_cells],
            environment=_copy_environment(r.environment),
        )
        if self._version_count is not None:
            meta["version_count"] = self._version_count
        verdict = self.verdict
        meta["verification"] = verdict.as_dict() if verdict is not None else None
        if r.backend == "mlflow" and meta.get("registered_model_name"):
            # The registry as it is now (aliases move); MLflow is imported only here.
            from lineapy_ext.registry import live_registry_metadata

            meta.update(live_registry_metadata(r, _context().options))
        return meta


def _copy_environment(environment: dict | None) -> dict | None:
    # The record is shared: callers get their own dicts to change.
    if environment is None:
        return None
    return {k: dict(v) if isinstance(v, dict) else v for k, v in environment.items()}


def _context():
    from lineapy_ext.context import get_context

    return get_context()


def save(value: Any, name: str, *, storage_backend: str | None = None, **backend_kwargs: Any) -> Artifact:
    """Save ``value`` as the next version of artifact ``name``, with its slice.

    Called from a notebook cell, the slice is cut for the variable(s) that
    hold ``value`` in the user namespace.

    Parameters
    ----------
    value : object
        What to save.
    name : str
        Artifact name: letters, digits, ``_ - .``.
    storage_backend : str, optional
        ``"lineapy"``, ``"mlflow"`` or ``"pkg.module.Class"``; default chosen
        from the configuration (ML models go to MLflow once a tracking URI is set).
    **backend_kwargs
        Passed to the backend's ``save`` (for MLflow: ``log_model`` arguments).

    Returns
    -------
    Artifact

    Raises
    ------
    InvalidNameError, SerializationError, BackendError, StorageError, SliceError
    """
    tracker = _context().tracker
    with _collector_paused():
        var_names = tracker.names_for_value(value) if tracker is not None else []

    if tracker is not None and not var_names:
        import warnings

        from lineapy_ext.exceptions import LineaPyWarning

        warnings.warn(f"{name!r}: no variable holds this value, so it is saved without a slice; "
                      "assign it to a variable first (x = ...; save(x, ...))", LineaPyWarning, stacklevel=2)
    return save_value(value, name, var_names=var_names, storage_backend=storage_backend, backend_kwargs=backend_kwargs)


def _pickle_session_modules_by_value() -> None:
    """Modules the session wrote and imported are pickled by value, so a
    value whose class lives in one loads where that file does not exist."""
    tracker = _context().tracker
    if tracker is None:
        return
    import cloudpickle

    for module in tracker.session_modules():
        cloudpickle.register_pickle_by_value(module)


def save_value(
    value: Any,
    name: str,
    *,
    var_names: list[str] | None = None,
    storage_backend: str | None = None,
    backend_kwargs: dict | None = None,
    verify: bool | None = None,
) -> Artifact:
    """Save ``value`` whose slice is cut for ``var_names`` (used by ``%lineapy save``).

    Same as :func:`save`, but the caller says which variables hold the value.
    The slice is built before anything is written, so a slice that cannot be
    built leaves the store untouched.  ``verify``: ``True`` verifies the
    slice now, ``False`` not at all, ``None`` as the ``verify_slices``
    option says.
    """
    _pickle_session_modules_by_value()
    from lineapy_ext.backends import choose_backend
    from lineapy_ext.store.names import validate_name

    ctx = _context()
    validate_name(name)
    backend = choose_backend(value, storage_backend, ctx.options)
    slice_code, slice_cells = "", []
    tracker = ctx.tracker
    with _collector_paused():
        if tracker is not None and var_names:
            cut = tracker.slice(list(var_names))
            slice_code, slice_cells = cut.code, list(cut.cells)
        environment = _capture_environment(slice_code, [code for _, code in slice_cells])
        store = ctx.store
        session_id = ctx.session_id
        store.ensure_session(session_id)
        if tracker is not None:
            _persist_cells(ctx, store, session_id, tracker)
        record = store.save(
            value,
            name,
            backend=backend,
            session_id=session_id,
            backend_kwargs=backend_kwargs,
            slice_code=slice_code,
            slice_cells=slice_cells,
            var_names=var_names,
            environment=environment,
        )
    art = Artifact(record)
    _verify_after_save(ctx, art, verify)
    return art


def _collector_paused():
    """The cyclic garbage collector paused while a save runs.

    A save in a long session makes tens of thousands of short-lived lists
    and strings (the slice, its cells, the rows): with the collector on they
    trigger collections while alive, get promoted, and every save from
    ~12,000 cells on ended in a full collection of the session's heap
    (130-310 ms); freed before the collector runs again, they are never
    counted.  Left off if the user turned it off.
    """
    from kernel_hooks.capture import collector_paused

    return collector_paused()


def _capture_environment(slice_code: str, parts: list[str] | None = None) -> dict | None:
    """Python and the distributions the slice imports; a failure to read them never fails a save."""
    import logging

    from lineapy_ext.environment import capture

    try:
        return capture(slice_code, parts)
    except Exception as e:  # broken distribution metadata, say
        logging.getLogger(__name__).warning("the environment of this save could not be recorded: %s", e)
        return None


def _warn_environment(record: ArtifactRecord) -> None:
    """Warn in one line when the running environment differs from the saved one in a way that matters."""
    from lineapy_ext.environment import differences

    found = differences(record.environment)
    if not found:
        return
    import warnings

    from lineapy_ext.context import _user_line
    from lineapy_ext.exceptions import LineaPyWarning

    saved = record.environment.get("packages") or {}
    fix = " ".join(f"{d}=={v}" for d, v in sorted(saved.items()) if any(x.startswith(f"{d} ") for x in found))
    filename, lineno, module = _user_line()  # the user's get line, through the magic or the API
    warnings.warn_explicit(
        f"{record.name!r} version {record.version} was saved with " + ", ".join(found)
        + "; the value may load or behave differently here" + (f" (pip install {fix} to match)" if fix else ""),
        LineaPyWarning, filename, lineno, module=module,
    )


def _verify(record, **kwargs):
    import os

    from lineapy_ext.verify import session_start, verify_and_record

    ctx = _context()
    store = ctx.store
    if record.session_id == ctx.session_id and ctx.tracker is not None:
        _persist_cells(ctx, store, ctx.session_id, ctx.tracker)  # a repair searches them
    since = session_start(store, record, ctx.session_id)
    return verify_and_record(store, record, ctx.options, cwd=os.getcwd(), since=since, **kwargs)


def _verify_after_save(ctx, art: Artifact, verify: bool | None) -> None:
    import logging
    import os

    mode = "on" if verify else "off" if verify is False else ctx.options.verify_slices
    try:
        if mode == "on":
            art.verify()
        elif mode == "background":
            from lineapy_ext.verify import schedule, session_start

            since = session_start(ctx.store, art._record, ctx.session_id)
            schedule(ctx.store, art._record, ctx.options, cwd=os.getcwd(), since=since)
    except Exception as e:  # the value is saved; a verification problem must not hide that
        logging.getLogger(__name__).warning("%r version %s was saved but not verified: %s", art.name, art.version, e)


def _persist_cells(ctx, store, session_id: str, tracker) -> None:
    # Only the cells since the last save: capture stays free, saves pay for
    # what is new.
    start = ctx.cells_persisted  # read once: other threads of the kernel may save too
    cells = tracker.executed_cells(start)
    if cells:
        from types import SimpleNamespace

        from lineapy_ext.secrets import Scrubber

        # A cell may set a secret (%config LineaPy.storage_options = {...}).
        scrub = Scrubber(ctx.options)
        new = [
            SimpleNamespace(execution_count=c.execution_count, source=scrub.text(c.source), success=c.success)
            for c in cells
        ]
        ctx.cells_persisted = max(ctx.cells_persisted, store.db.add_cells(session_id, start, new))


def _not_found(name: str, version: int | None, store) -> ArtifactNotFoundError:
    versions = store.db.versions(name)
    # Deleted versions leave tombstones: say so rather than "never existed".
    deleted = " (it was deleted)" if version is not None and store.db.artifact_state(name, version) == "deleted" else ""
    if versions and version is None:
        listed = ", ".join(map(str, versions))
        return ArtifactNotFoundError(f"the latest version of artifact {name!r} was deleted meanwhile: "
                                     f"existing versions are {listed}; try again")
    if versions:
        listed = ", ".join(map(str, versions))
        return ArtifactNotFoundError(
            f"artifact {name!r} has no version {version}{deleted}: existing versions are {listed}"
        )
    if deleted:
        return ArtifactNotFoundError(f"artifact {name!r} has no version {version}{deleted}: no versions are left")
    names = store.db.names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(n) for n in close) + "?"
    elif names:
        hint = "saved artifacts: " + ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    else:
        hint = "no artifacts are saved in this store yet"
    return ArtifactNotFoundError(f"no artifact named {name!r}: {hint}")


def _check_version(version) -> None:
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidVersionError(f"version {version!r} is not valid: use a positive integer or None for the latest")


def get(
    name: str,
    version: int | None = None,
    *,
    alias: str | None = None,
    registered_version: int | None = None,
    stage: str | None = None,
):
    """Return version ``version`` (default: the latest) of artifact ``name``.

    Parameters
    ----------
    name : str
        Artifact name, or a ``models:/`` URI of the MLflow registry
        (``models:/churn@champion``, ``models:/churn/7``): then a
        :class:`~lineapy_ext.registry.RegistryModel` is returned, also for
        models lineapy did not log (its ``artifact`` says which one did).
    version : int, optional
        lineapy's version.
    alias, registered_version, stage : optional
        Instead of ``version``, select through the MLflow registry: the
        version of ``name`` that logged the model version the alias (or
        registered version number, or legacy stage) points at now.

    Raises
    ------
    ArtifactNotFoundError
        Listing close names, or the existing versions of ``name``.
    BackendError
        The registry does not know the alias/version/stage (listing the
        existing ones), or no version of ``name`` logged it.

    Warns
    -----
    LineaPyWarning
        One line, when the running Python or an installed distribution the
        slice imports differs in major or minor version from the one
        recorded at save, or that distribution is not installed.
    """
    art = find(name, version, alias=alias, registered_version=registered_version, stage=stage)
    if isinstance(art, Artifact):
        _warn_environment(art._record)
    return art


def find(name: str, version: int | None = None, *, alias: str | None = None,
         registered_version: int | None = None, stage: str | None = None):
    """:func:`get` without the environment check (for code generation, which pins the saved versions)."""
    from lineapy_ext.store.names import validate_name

    chosen = [k for k, v in (("version", version), ("alias", alias), ("registered_version", registered_version),
                             ("stage", stage)) if v is not None]
    if len(chosen) > 1:
        raise InvalidVersionError(f"give only one of {' / '.join(chosen)}: each selects a version on its own")
    if isinstance(name, str) and name.startswith("models:/"):
        if chosen:
            raise InvalidVersionError(f"{name!r} already selects a version: drop {chosen[0]}")
        from lineapy_ext.registry import get_model

        return get_model(_context().store, _context().options, name)
    validate_name(name)
    _check_version(version if version is not None else registered_version)
    store = _context().store
    if chosen and chosen[0] != "version":
        from lineapy_ext.registry import artifact_for

        if not store.db.versions(name):
            raise _not_found(name, None, store)
        return Artifact(artifact_for(store, _context().options, name, alias=alias,
                                     registered_version=registered_version, stage=stage)[0])
    record = store.db.get_artifact(name, version)
    for _ in range(3 if version is None else 0):
        if record is not None or not store.db.versions(name):
            break
        # The latest version was deleted while a newer one was being saved:
        # ask again for what is the latest now.
        record = store.db.get_artifact(name, None)
    if record is None:
        raise _not_found(name, version, store)
    return Artifact(record)


def delete(name: str, version: int | str | None = None) -> list[int]:
    """Delete versions of artifact ``name``, values included.

    Parameters
    ----------
    name : str
    version : int, "latest", "all" or None
        Which versions; ``None`` means ``"latest"``.

    Returns
    -------
    list of int
        The deleted versions.

    Raises
    ------
    ArtifactNotFoundError
        ``name`` or that version does not exist.
    """
    from lineapy_ext.store.names import validate_name

    validate_name(name)
    store = _context().store
    versions = store.db.versions(name)
    if version is None or version == "latest":
        wanted = versions[-1:]
    elif version == "all":
        wanted = versions
    elif isinstance(version, int) and not isinstance(version, bool):
        wanted = [version] if version in versions else []
    else:
        raise InvalidVersionError(f"version {version!r} is not valid: use an int, 'latest' or 'all'")
    if not wanted:
        raise _not_found(name, version if isinstance(version, int) else None, store)
    records = [store.db.get_artifact(name, v) for v in wanted]
    return store.delete([r for r in records if r is not None])


def artifact_store() -> list[Artifact]:
    """Return the latest version of every artifact, sorted by name."""
    return [Artifact(record, count) for record, count in _context().store.db.latest_artifacts()]


def cleanup(*, dry_run: bool = False, older_than: float | None = None) -> list[str]:
    """Finish what interrupted saves and deletes left: roll saves back, complete deletes.

    A kernel killed while saving leaves a row in state ``writing`` and maybe
    a value file (temporary or final; never visible); one killed while
    deleting leaves hidden ``deleting`` rows.  Only files this store's
    database names, and temporary files of dead writers, are touched.

    Parameters
    ----------
    dry_run : bool
        Only list what would be done.
    older_than : float, optional
        Minimum age in seconds of work started on another machine (default
        one hour); work of this machine is cleaned once its process is gone.

    Returns
    -------
    list of str
        Temporary files removed (or, with ``dry_run``, to remove), relative
        to the storage dir, then one ``NAME version N: ...`` line per
        interrupted save rolled back or delete completed.
    """
    from lineapy_ext.store.cleanup import DEFAULT_OLDER_THAN, cleanup_store

    return cleanup_store(
        _context().store,
        older_than=DEFAULT_OLDER_THAN if older_than is None else older_than,
        dry_run=dry_run,
    )
