"""The MLflow model registry as a way to lineapy artifacts.

This module owns

- :func:`artifact_for`: ``get(NAME, alias=...)`` (or ``registered_version``,
  ``stage``) resolves the alias through the registry *now* to a model
  version, then finds the version of artifact NAME that logged it (by the
  logged model's URI or id, else by the registered name and version
  recorded at save time);
- :func:`get_model` and :class:`RegistryModel`: any ``models:/`` URI, also of
  models registered outside lineapy, loaded through the model's own flavor;
  when a lineapy artifact logged that version, it is attached with its slice;
- :func:`live_registry_metadata`: an MLflow-backed artifact's registered
  name, version and current aliases (cached briefly), for
  ``Artifact.get_metadata()`` and ``%lineapy list``.

The MLflow calls themselves are in :mod:`lineapy_ext.backends.mlflow`;
nothing here imports MLflow until the registry is actually asked.
"""

from __future__ import annotations

from typing import Any

from lineapy_ext.config import mask_url
from lineapy_ext.exceptions import BackendError


def _mlflow():
    from lineapy_ext.backends import mlflow

    return mlflow


def mlflow_records(db, name: str | None = None) -> list:
    """Return the MLflow-backed versions (of ``name``, else of every artifact), newest first."""
    records = []
    for n in [name] if name is not None else db.names():
        for version in reversed(db.versions(n)):
            record = db.get_artifact(n, version)
            if record is not None and record.backend == "mlflow":
                records.append(record)
    return records


def _uris(record, options) -> tuple[str, str | None]:
    return _mlflow().MLflowBackend.from_options(options).recorded_uris(record.backend_view())


def logged(record, version, registry: str) -> bool:
    """Say whether ``record`` logged registry version ``version`` (a ``RegistryVersion``) of ``registry``."""
    meta = record.backend_metadata
    if version.source and meta.get("model_uri") == version.source:
        return True
    if version.model_id and meta.get("model_id") == version.model_id:
        return True
    recorded_registry = meta.get("registry_uri") or meta.get("tracking_uri")
    return (
        meta.get("registered_model_name") == version.name
        and meta.get("registered_model_version") == version.version
        and recorded_registry == mask_url(registry)
    )


def artifact_for(store, options, name: str, *, alias=None, registered_version=None, stage=None):
    """Return ``(record, registry version)``: the version of ``name`` that logged what the registry selects.

    Parameters
    ----------
    store : lineapy_ext.store.artifact_store.ArtifactStore
    options : lineapy_ext.config.LineaPy
    name : str
        Artifact name; its latest registered version says which registered
        model (and registry) to ask.
    alias, registered_version, stage
        Exactly one: an alias, a version number of the registered model, or
        a legacy stage (the latest version in it).

    Raises
    ------
    BackendError
        The artifact was never registered; the registered model, alias,
        version or stage does not exist (listing the existing ones); the
        version was deleted in MLflow; no version of ``name`` logged it.
    """
    records = mlflow_records(store.db, name)
    registered = [r for r in records if r.backend_metadata.get("registered_model_name")]
    if not registered:
        raise BackendError(
            f"artifact {name!r} was never registered in MLflow, so it has no alias or registered version: "
            "save it with --registered_model_name NAME [--alias ALIAS], or get it by lineapy version (--version N)"
        )
    reg_name = registered[0].backend_metadata["registered_model_name"]
    tracking, registry = _uris(registered[0], options)
    mlflow = _mlflow()
    state = mlflow.registered_model_state(tracking, registry, reg_name, max_age=0)
    try:
        version = mlflow.resolve_version(state, alias=alias, version=registered_version, stage=stage)
    except BackendError as e:
        kept = [r for r in registered if r.backend_metadata.get("registered_model_name") == reg_name
                and r.backend_metadata.get("registered_model_version") == registered_version]
        if registered_version is not None and kept:
            v = kept[0].version
            raise BackendError(
                f"version {registered_version} of registered model {reg_name!r} was deleted in MLflow, but lineapy "
                f"still has {name!r} version {v}, which logged it: get it with --version {v} "
                f"(lineapy_ext.get({name!r}, {v})) while MLflow keeps its logged model"
            ) from e
        raise
    match = next((r for r in records if logged(r, version, state.registry)), None)
    if match is None:
        raise BackendError(
            f"{version.describe()} was not logged by any version of {name!r} (its source is {version.source}): "
            f"load it with %lineapy get {version.uri} (lineapy_ext.get({version.uri!r}))"
        )
    return match, version


class RegistryModel:
    """A model version reached through a ``models:/`` URI.

    Attributes
    ----------
    uri : str
        The URI asked for (``models:/churn@champion``).
    registered_name : str or None
    registered_version : int or None
        What the URI resolved to when it was looked up (None for
        ``models:/m-<id>`` logged-model URIs).
    aliases : tuple of str
        The version's aliases at that moment.
    artifact : lineapy_ext.api.Artifact or None
        The lineapy artifact version that logged this model, if any.
    flavor : str or None
        The flavor it was loaded with (after :meth:`get_value`).
    """

    def __init__(self, uri: str, version, tracking_uri: str, registry_uri: str | None, record=None) -> None:
        from lineapy_ext.api import Artifact

        self.uri = uri
        self._version = version
        self._uris = (tracking_uri, registry_uri)
        self._record = record
        self.artifact = Artifact(record) if record is not None else None
        self.flavor: str | None = None

    registered_name = property(lambda self: self._version.name if self._version else None)
    registered_version = property(lambda self: self._version.version if self._version else None)
    aliases = property(lambda self: self._version.aliases if self._version else ())

    def __repr__(self) -> str:
        what = self._version.describe() if self._version else self.uri
        by = f", logged by {self.artifact!r}" if self.artifact is not None else ", not logged by lineapy_ext"
        return f"<RegistryModel {self.uri} ({what}{by})>"

    def describe(self) -> str:
        """``registered model 'churn' version 3 @champion`` (or the URI)."""
        return self._version.describe() if self._version else self.uri

    def get_value(self) -> Any:
        """Load the model through its own flavor (pinned to the version resolved at lookup)."""
        uri = self._version.uri if self._version else self.uri
        value, self.flavor = _mlflow().load_model_uri(uri, *self._uris)
        return value

    def get_code(self) -> str:
        """The slice of the artifact that logged the model.

        Raises
        ------
        SliceError
            lineapy did not log this model, so no slice is known.
        """
        if self.artifact is None:
            from lineapy_ext.exceptions import SliceError

            raise SliceError(f"no slice is known for {self.uri}: it was not logged by lineapy_ext")
        return self.artifact.get_code()

    def get_metadata(self) -> dict:
        """Return what the registry said about this version, and the artifact that logged it."""
        v = self._version
        meta = {
            "uri": self.uri,
            "registered_model_name": self.registered_name,
            "registered_model_version": self.registered_version,
            "registered_model_aliases": list(self.aliases),
            "source": v.source if v else self.uri,
            "run_id": v.run_id if v else None,
            "tracking_uri": mask_url(self._uris[0]),
            "flavor": self.flavor,
        }
        if self.artifact is not None:
            # var_names: the variable the artifact's slice binds (to inline it in later slices).
            meta.update(artifact_name=self.artifact.name, artifact_version=self.artifact.version,
                        var_names=list(self._record.var_names))
        return meta


def get_model(store, options, uri: str) -> RegistryModel:
    """Resolve a ``models:/`` URI against the configured registry now.

    Raises
    ------
    BackendError
        No tracking URI is configured, the URI is malformed, or the
        registered model/alias/version/stage does not exist.
    """
    tracking, registry = options.mlflow_tracking_uri, options.mlflow_registry_uri
    if not tracking:
        raise BackendError(
            f"getting {uri} needs an MLflow tracking URI: %config LineaPy.mlflow_tracking_uri = URI "
            "(or lineapy_ext.options.set('mlflow_tracking_uri', URI))"
        )
    mlflow = _mlflow()
    wanted = mlflow.parse_models_uri(uri)
    version = None
    if "model_id" not in wanted:
        state = mlflow.registered_model_state(tracking, registry, wanted["name"], max_age=0)
        if wanted.get("latest"):
            wanted = {"version": max(state.versions, default=0)}
        version = mlflow.resolve_version(
            state, alias=wanted.get("alias"), version=wanted.get("version"), stage=wanted.get("stage")
        )
    records = mlflow_records(store.db)
    if version is not None:
        match = next((r for r in records if logged(r, version, state.registry)), None)
    else:
        match = next((r for r in records if r.backend_metadata.get("model_id") == wanted["model_id"]), None)
    return RegistryModel(uri, version, tracking, registry, match)


def live_registry_metadata(record, options) -> dict:
    """The registry's view of an MLflow-backed, registered artifact version now.

    Returns
    -------
    dict
        ``{}`` for artifacts that were not registered (MLflow is not
        imported then); else ``registered_model_aliases`` (current aliases
        of the version) and ``registry_status``: ``"registered"``,
        ``"version deleted in MLflow"`` or ``"unknown: <why>"`` (the
        registry is unreachable or the model is gone).  Answers are reused
        for :data:`~lineapy_ext.backends.mlflow.REGISTRY_TTL` seconds.
    """
    meta = record.backend_metadata
    name, version = meta.get("registered_model_name"), meta.get("registered_model_version")
    if record.backend != "mlflow" or not name or version is None:
        return {}
    try:
        state = _mlflow().registered_model_state(*_uris(record, options), name)
    except BackendError as e:
        return {"registered_model_aliases": [], "registry_status": f"unknown: {e}"}
    current = state.versions.get(int(version))
    if current is None:
        return {"registered_model_aliases": [], "registry_status": "version deleted in MLflow"}
    return {"registered_model_aliases": list(current.aliases), "registry_status": "registered"}
