"""The ``mlflow`` backend: ML models saved as MLflow models, loadable with plain MLflow.

This module owns

- flavor detection (:func:`flavor_of`): which MLflow flavor stores a value,
  read from the names in ``type(value).__mro__`` so that no ML library the
  user has not imported is imported here (and MLflow itself is not);
- :class:`MLflowBackend`: ``save`` wraps ``mlflow.<flavor>.log_model(model,
  name=..., **user_kwargs)`` against the configured tracking and registry
  URIs, ``load`` goes through ``mlflow.<flavor>.load_model`` against the URIs
  recorded at save time, ``delete`` forgets our row and says what it left in
  MLflow;
- the fallbacks: values MLflow has no flavor for, and non-scikit-learn models
  that reference classes or functions defined in the notebook, are handed to
  the ``lineapy`` backend (cloudpickle) with a note; scikit-learn models that
  reference notebook code are logged in MLflow's ``cloudpickle``
  serialization format instead of ``skops``.

Flavors, in detection order (xgboost's scikit-learn API classes are also
scikit-learn estimators, so xgboost is checked first):

===============  ============================================================================
flavor           recognised by a class in the MRO
===============  ============================================================================
``xgboost``      ``xgboost.*.XGBModel`` (scikit-learn API), ``xgboost.*.Booster``
``sklearn``      ``sklearn.base.BaseEstimator`` (estimators, pipelines)
``statsmodels``  ``statsmodels.base.wrapper.ResultsWrapper``, ``statsmodels.base.model.Results``
``prophet``      ``prophet.forecaster.Prophet``
===============  ============================================================================

``log_model`` infers pip requirements by loading the model in a subprocess,
which takes seconds; unless the user passes ``pip_requirements``,
``extra_pip_requirements`` or ``conda_env``, the requirements are taken from
the installed versions of the distributions the model's classes come from.

MLflow keeps its tracking and registry URIs in process-wide state.  Every
MLflow call here runs inside :func:`_mlflow_uris`, which points MLflow at our
URIs and puts the user's previous URIs (and ``MLFLOW_TRACKING_URI`` /
``MLFLOW_REGISTRY_URI``) back afterwards.  A run the user has started with
``mlflow.start_run()`` against the same tracking URI gets the model as an
output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import pickle
import re
import sys
import threading
import time
import warnings
from typing import Any, Iterator

from lineapy_ext.backends.base import StorageBackend
from lineapy_ext.config import MASK, mask_url
from lineapy_ext.environment import distribution_version
from lineapy_ext.exceptions import BackendError, LineaPyWarning, ValueGoneError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'lineapy-ext[mlflow]'"

#: Flavor name -> the distribution-level top module the flavor is about.
FLAVOR_MODULES = {
    "xgboost": "xgboost",
    "sklearn": "sklearn",
    "statsmodels": "statsmodels",
    "prophet": "prophet",
}

#: Module prefixes that are never pip requirements.
_NOT_REQUIREMENTS = {"__main__", "builtins", "copyreg", "lineapy_ext", "kernel_hooks"}

# MLflow's URIs are process-wide: one scoped use at a time.
_URI_LOCK = threading.RLock()


# -- flavor detection ----------------------------------------------------------


def _mro_names(value: Any) -> list[tuple[str, str]]:
    return [
        (getattr(c, "__module__", "") or "", getattr(c, "__qualname__", "") or "")
        for c in type(value).__mro__
    ]


def flavor_of(value: Any) -> str | None:
    """Return the MLflow flavor that stores ``value``, or None.

    Only the module and class names in ``type(value).__mro__`` are read:
    nothing is imported, so asking about any value is cheap and safe.

    Parameters
    ----------
    value : object
        Any value.

    Returns
    -------
    str or None
        ``"xgboost"``, ``"sklearn"``, ``"statsmodels"``, ``"prophet"``, or
        None when MLflow has no flavor for it here.
    """
    names = _mro_names(value)
    top = [(m.split(".", 1)[0], q) for m, q in names]
    # xgboost first: XGBClassifier & co. are also sklearn BaseEstimators.
    if any(t == "xgboost" and q in ("XGBModel", "Booster") for t, q in top):
        return "xgboost"
    if ("sklearn.base", "BaseEstimator") in names:
        return "sklearn"
    if any(
        (m, q) in (("statsmodels.base.wrapper", "ResultsWrapper"), ("statsmodels.base.model", "Results"))
        for m, q in names
    ):
        return "statsmodels"
    if any(t in ("prophet", "fbprophet") and q == "Prophet" for t, q in top):
        return "prophet"
    return None


# -- what a model references -----------------------------------------------------


class _NullWriter:
    def write(self, data) -> int:
        return len(memoryview(data))


class _ReferenceWalker(pickle.Pickler):
    """Pickles into nothing, noting the modules of every class and function met.

    Out-of-band buffers (numpy arrays...) are dropped unread, so the walk
    costs one pass over the object graph and no copy of the data.
    """

    def __init__(self) -> None:
        super().__init__(_NullWriter(), protocol=5, buffer_callback=lambda buf: None)
        self.modules: set[str] = set()
        self.session_code: set[str] = set()

    def reducer_override(self, obj):
        target = obj if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")) else type(obj)
        module = getattr(target, "__module__", None) or ""
        qualname = getattr(target, "__qualname__", "") or ""
        if module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
            self.session_code.add(f"{module}.{qualname}" if module else qualname)
        elif module:
            self.modules.add(module)
        return NotImplemented


def _references(model: Any) -> tuple[set[str], set[str], bool]:
    """Return (modules referenced, session-defined names, whether the walk finished).

    Lambdas and functions or classes defined inside functions are noted
    before pickle fails on them; a walk that stops for another reason (an
    object pickle cannot handle but the flavor's own format can) says so
    with the third item and reports what it saw until then.
    """
    walker = _ReferenceWalker()
    try:
        walker.dump(model)
    except Exception as e:
        log.debug("reference walk of %s stopped: %s", type(model).__name__, e)
        return walker.modules, walker.session_code, False
    return walker.modules, walker.session_code, True


def pip_requirements_for(flavor: str, modules: set[str], extra: tuple[str, ...] = ()) -> list[str]:
    """Pin the installed distributions of ``flavor`` and of ``modules``.

    Parameters
    ----------
    flavor : str
        The MLflow flavor; its library is always required.
    modules : set of str
        Modules the model's classes and functions come from.
    extra : tuple of str
        Further top-level modules to require (``cloudpickle``, ``skops``).

    Returns
    -------
    list of str
        ``["scikit-learn==1.5.0", "numpy==2.0.1", ...]`` (MLflow adds itself).
    """
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    tops = [FLAVOR_MODULES[flavor], *extra]
    for module in sorted(modules):
        top = module.split(".", 1)[0]
        if top and not top.startswith("_") and top not in stdlib and top not in _NOT_REQUIREMENTS:
            tops.append(top)
    pins: dict[str, str] = {}
    for top in dict.fromkeys(tops):
        found = distribution_version(top)
        if found and found[0].lower() not in pins:
            pins[found[0].lower()] = f"{found[0]}=={found[1]}"
    return list(pins.values())


# -- MLflow access -----------------------------------------------------------------


def import_mlflow():
    """Import and return ``mlflow``, or raise :class:`BackendError` with the install hint."""
    try:
        import mlflow
    except ImportError as e:
        raise BackendError(f"MLflow is not installed ({e}): {INSTALL_HINT}") from e
    return mlflow


def flavor_module(flavor: str):
    """Import and return ``mlflow.<flavor>``.

    Raises
    ------
    BackendError
        MLflow or the flavor's library is not installed.
    """
    import_mlflow()
    try:
        return importlib.import_module(f"mlflow.{flavor}")
    except ImportError as e:
        raise BackendError(
            f"MLflow's {flavor} flavor cannot be imported ({e}): install {FLAVOR_MODULES[flavor]!r} "
            f"next to MLflow ({INSTALL_HINT})"
        ) from e


#: MLflow's HTTP defaults (7 retries with exponential backoff, 120 s per
#: request) make an unreachable tracking server hang a save or get for
#: minutes; ours fail in seconds.  Variables the user set win.
BOUNDED_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@contextlib.contextmanager
def bounded_requests() -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeout (:data:`BOUNDED_HTTP`) for the block."""
    with _URI_LOCK:
        added = {k: v for k, v in BOUNDED_HTTP.items() if k not in os.environ}
        os.environ.update(added)
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


#: Seconds the pre-flight probe of an HTTP tracking server may wait to connect, and again for an answer.
PROBE_TIMEOUT = 5.0


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Fail in seconds, with one line, when the HTTP(S) tracking server at ``uri`` does not answer.

    :data:`BOUNDED_HTTP` still lets MLflow wait two 15 s read time-outs on a
    host that accepts connections and never answers; one ``GET /health``
    with a short time-out tells first.  Other schemes (``sqlite:``, files,
    ``databricks``) are not probed, nor hosts MLflow would reach through a
    proxy (the probe would not take MLflow's way).

    Raises
    ------
    BackendError
        No connection, or no HTTP answer, within ``timeout`` seconds.
    """
    import http.client
    import ssl
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(uri or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if parts.scheme in getproxies() and not proxy_bypass(parts.hostname):
        return
    try:
        port = parts.port
    except ValueError:
        return  # MLflow reports a malformed URI in its own words
    if parts.scheme == "https":
        # Liveness only: nothing secret is sent, and MLflow checks the certificate itself.
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        conn.request("GET", parts.path.rstrip("/") + "/health")
        conn.getresponse().read(0)
    except (OSError, http.client.HTTPException) as e:
        why = f"no answer within {timeout:g} s" if isinstance(e, TimeoutError) else _first_line(e)
        raise BackendError(
            f"cannot reach the MLflow tracking server at {mask_url(uri)}: {why} "
            "(check that the server is running and LineaPy.mlflow_tracking_uri)"
        ) from e
    finally:
        conn.close()


@contextlib.contextmanager
def _mlflow_uris(tracking_uri: str, registry_uri: str | None) -> Iterator[Any]:
    """Point MLflow at ``tracking_uri``/``registry_uri`` for the block, then restore the user's.

    Yields the ``mlflow`` module.  An unset registry URI means the tracking
    URI's own registry (MLflow's default), never the user's global one.
    """
    mlflow = import_mlflow()
    check_reachable(tracking_uri)
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _URI_LOCK, bounded_requests():
        old_tracking = tracking_utils._tracking_uri
        old_registry = registry_utils._registry_uri
        old_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        try:
            mlflow.set_tracking_uri(tracking_uri)
            if registry_uri or not tracking_uri.startswith("databricks"):
                mlflow.set_registry_uri(registry_uri or tracking_uri)
            yield mlflow
        finally:
            if tracking_utils._tracking_uri != old_tracking:
                mlflow.set_tracking_uri(old_tracking)
            registry_utils._registry_uri = old_registry
            # set_*_uri also export the URIs to the environment (for subprocesses).
            for key, value in old_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _unmask(recorded: str | None, configured: str | None, what: str) -> str | None:
    """Return the real URI for ``recorded`` (stored with its password masked)."""
    if not recorded or f":{MASK}@" not in recorded:
        return recorded
    if configured and mask_url(configured) == recorded:
        return configured
    trait = "mlflow_tracking_uri" if what == "tracking" else "mlflow_registry_uri"
    raise BackendError(
        f"the MLflow {what} URI {recorded!r} was recorded without its password: "
        f"set LineaPy.{trait} to that URI (with the password) to load this model"
    )


def _is_skops_failure(error: Exception) -> bool:
    return "skops" in str(error)


class MLflowBackend(StorageBackend):
    """ML models as MLflow logged models (and registered versions when asked).

    Parameters
    ----------
    tracking_uri : str, optional
        MLflow tracking URI for saves (``mlflow_tracking_uri``).
    registry_uri : str, optional
        MLflow model registry URI (``mlflow_registry_uri``); default: the
        tracking URI's registry.
    options : lineapy_ext.config.LineaPy, optional
        The configuration, for the ``lineapy`` fallback and to unmask
        recorded URIs.
    """

    name = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        options=None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._options = options

    @classmethod
    def from_options(cls, options, **kwargs: Any) -> "MLflowBackend":
        """Build the backend on the configured tracking and registry URIs."""
        kwargs.setdefault("tracking_uri", options.mlflow_tracking_uri)
        kwargs.setdefault("registry_uri", options.mlflow_registry_uri)
        kwargs.setdefault("options", options)
        return cls(**kwargs)

    # -- fallback --------------------------------------------------------------

    def _lineapy(self):
        from lineapy_ext.backends.lineapy import LineaPyBackend

        if self._options is None:
            raise BackendError(
                "the MLflow backend has no configuration to fall back to the lineapy backend: "
                "build it with MLflowBackend.from_options(options)"
            )
        return LineaPyBackend.from_options(self._options)

    def _fallback(self, value: Any, name: str, note: str) -> dict:
        """Store ``value`` with the lineapy backend; the row records ``lineapy``."""
        warnings.warn(f"{name!r}: {note}; saved with the lineapy backend instead", LineaPyWarning, stacklevel=4)
        saved = self._lineapy().save(value, name)
        # "backend" tells the artifact store which backend the row belongs to.
        return {**saved, "backend": "lineapy", "fallback_from": "mlflow", "note": note}

    # -- save ------------------------------------------------------------------

    def save(self, value: Any, name: str, **kwargs: Any) -> dict:
        """Log ``value`` with ``mlflow.<flavor>.log_model(value, name=name, **kwargs)``.

        Parameters
        ----------
        value : object
            The model.  Values without a flavor go to the lineapy backend.
        name : str
            Artifact name; also the logged model's name.
        **kwargs
            ``log_model`` keyword arguments (``registered_model_name``,
            ``signature``, ``input_example``, ``pip_requirements``, ...).

        Returns
        -------
        dict
            ``location``/``model_uri``, ``flavor``, ``tracking_uri``,
            ``registry_uri`` (passwords masked), ``model_id``, ``run_id``,
            ``registered_model_name``, ``registered_model_version``,
            ``pip_requirements_source`` and, for scikit-learn,
            ``serialization_format``.

        Raises
        ------
        BackendError
            No tracking URI, MLflow not installed, or MLflow refused the model.
        """
        if not self.tracking_uri:
            raise BackendError(
                "the mlflow backend needs an MLflow tracking URI: run "
                "lineapy_ext.options.set('mlflow_tracking_uri', URI) or %config LineaPy.mlflow_tracking_uri = URI"
            )
        flavor = flavor_of(value)
        if flavor is None:
            return self._fallback(value, name, f"MLflow has no flavor for {type(value).__qualname__}")
        kwargs = dict(kwargs)
        aliases = _aliases_to_set(kwargs.pop("alias", None), kwargs.get("registered_model_name"))
        module = flavor_module(flavor)
        if "artifact_path" in kwargs:
            # MLflow 3 names the logged model with ``name``; artifact_path is deprecated.
            kwargs.setdefault("name", kwargs.pop("artifact_path"))
        kwargs.setdefault("name", name)

        modules, session_code, _ = _references(value)
        note = None
        extra: tuple[str, ...] = ()
        if flavor == "sklearn":
            if session_code and "serialization_format" not in kwargs:
                kwargs["serialization_format"] = "cloudpickle"
                note = (
                    "references code defined in the session (" + ", ".join(sorted(session_code)[:3])
                    + "): logged in MLflow's cloudpickle format, loadable where the same packages are installed"
                )
            fmt = kwargs.get("serialization_format", "skops")
            extra = ("cloudpickle",) if fmt in ("cloudpickle", None) else ("skops",) if fmt == "skops" else ()
        elif flavor == "xgboost" and any(m.startswith("sklearn.") for m, _ in _mro_names(value)):
            # The scikit-learn API classes import sklearn when loaded.
            extra = ("sklearn",)
        if flavor != "sklearn" and session_code:
            return self._fallback(
                value, name,
                f"the {flavor} model references code defined in the session ("
                + ", ".join(sorted(session_code)[:3]) + "), which MLflow's format cannot hold",
            )
        requirements_given = any(k in kwargs for k in ("pip_requirements", "extra_pip_requirements", "conda_env"))
        if not requirements_given:
            kwargs["pip_requirements"] = pip_requirements_for(flavor, modules, extra)

        info, note = self._log(module, flavor, value, name, kwargs, modules, requirements_given, note)
        if note:
            warnings.warn(f"{name!r}: {note}", LineaPyWarning, stacklevel=3)
        registered_version = getattr(info, "registered_model_version", None)
        if aliases:
            self._set_aliases(kwargs.get("registered_model_name"), registered_version, aliases)
        meta = self._metadata(info, flavor, kwargs, requirements_given)
        if aliases:
            meta["aliases_at_save"] = aliases
        if note:
            meta["note"] = note
        return meta

    def _log(self, module, flavor, value, name, kwargs, modules, requirements_given, note):
        """``module.log_model(value, **kwargs)``; sklearn models skops refuses go again as cloudpickle.

        Returns ``(ModelInfo, note)``; ``kwargs`` is updated with what was used.
        """
        with _mlflow_uris(self.tracking_uri, self.registry_uri):
            try:
                return module.log_model(value, **kwargs), note
            except Exception as e:
                if not (flavor == "sklearn" and "serialization_format" not in kwargs and _is_skops_failure(e)):
                    raise self._log_error(flavor, name, e) from e
            kwargs["serialization_format"] = "cloudpickle"
            if not requirements_given:
                kwargs["pip_requirements"] = pip_requirements_for(flavor, modules, ("cloudpickle",))
            try:
                info = module.log_model(value, **kwargs)
            except Exception as e2:
                raise self._log_error(flavor, name, e2) from e2
        return info, "skops could not hold the model: logged in MLflow's cloudpickle format"

    def _metadata(self, info, flavor: str, kwargs: dict, requirements_given: bool) -> dict:
        """What a save records: where the model is in MLflow (passwords masked) and how it was logged."""
        registered_version = getattr(info, "registered_model_version", None)
        registered_name = kwargs.get("registered_model_name")
        meta = {
            "location": info.model_uri,
            "model_uri": info.model_uri,
            "flavor": flavor,
            "tracking_uri": mask_url(self.tracking_uri),
            "registry_uri": mask_url(self.registry_uri),
            "model_id": getattr(info, "model_id", None),
            "run_id": getattr(info, "run_id", None),
            "registered_model_name": registered_name,
            "registered_model_version": int(registered_version) if registered_version is not None else None,
            "pip_requirements_source": "given" if requirements_given else "installed versions",
        }
        if registered_name and registered_version is not None:
            meta["registered_model_uri"] = f"models:/{registered_name}/{registered_version}"
        if flavor == "sklearn":
            meta["serialization_format"] = kwargs.get("serialization_format") or "skops"
        return meta

    def _set_aliases(self, registered_name: str, version, aliases: list[str]) -> None:
        """Point ``aliases`` of ``registered_name`` at the version just registered."""
        if version is None:
            raise BackendError(
                f"MLflow did not register a version of {registered_name!r}, so alias {aliases[0]!r} was not set: "
                f"check the registry at {mask_url(self.registry_uri or self.tracking_uri)}"
            )
        client = registry_client(self.tracking_uri, self.registry_uri)
        with bounded_requests():
            try:
                for alias in aliases:
                    client.set_registered_model_alias(registered_name, alias, str(version))
            except Exception as e:
                raise BackendError(
                    f"MLflow registered {registered_name!r} version {version} but could not set alias {alias!r}: "
                    f"{_first_line(e)} (set it with MlflowClient().set_registered_model_alias)"
                ) from e
        forget_registry_state(registered_name)

    def _log_error(self, flavor: str, name: str, error: Exception) -> BackendError:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return BackendError(
            f"MLflow could not log {name!r} with mlflow.{flavor}.log_model at {mask_url(self.tracking_uri)}: "
            f"{first} (check the tracking URI and the log_model arguments, or save with storage_backend='lineapy')"
        )

    # -- load, delete, exists ------------------------------------------------------

    def recorded_uris(self, metadata: dict) -> tuple[str, str | None]:
        """The tracking and registry URIs a model was saved with (passwords restored from the config)."""
        configured = self._options
        tracking = _unmask(metadata.get("tracking_uri"), getattr(configured, "mlflow_tracking_uri", None), "tracking")
        registry = _unmask(metadata.get("registry_uri"), getattr(configured, "mlflow_registry_uri", None), "registry")
        if not tracking:
            raise BackendError("this MLflow artifact has no recorded tracking URI: save it again")
        return tracking, registry

    def load(self, metadata: dict) -> Any:
        """Load the model with ``mlflow.<flavor>.load_model`` from the URIs recorded at save time."""
        if metadata.get("backend") == "lineapy":
            return self._lineapy().load(metadata)
        flavor = metadata.get("flavor")
        if flavor not in FLAVOR_MODULES:
            raise BackendError(f"unknown MLflow flavor {flavor!r} recorded for {metadata.get('model_uri')!r}: save it again")
        module = flavor_module(flavor)
        tracking, registry = self.recorded_uris(metadata)
        uri = metadata.get("model_uri") or metadata.get("location")
        with _mlflow_uris(tracking, registry):
            try:
                return module.load_model(uri)
            except Exception as e:
                error = e
        gone = why_gone(metadata, tracking, registry)
        if gone:
            raise ValueGoneError(f"the value is gone from MLflow: {gone}") from error
        raise BackendError(
            f"MLflow could not load {uri} from {mask_url(tracking)}: {_first_line(error)} "
            "(check that the tracking server is reachable and the model was not deleted there)"
        ) from error

    def delete(self, metadata: dict) -> None:
        """Forget the value: MLflow's model (and registered version) is left where it is.

        MLflow models may be used by other people and deployments, so they
        are never deleted from here; one line says what is left and how to
        remove it.
        """
        if metadata.get("backend") == "lineapy":
            self._lineapy().delete(metadata)
            return
        print(left_in_mlflow(metadata))

    def exists(self, metadata: dict) -> bool:
        """Say whether MLflow still has the logged model."""
        if metadata.get("backend") == "lineapy":
            return self._lineapy().exists(metadata)
        client = registry_client(*self.recorded_uris(metadata))
        model_id = metadata.get("model_id")
        with bounded_requests():
            try:
                if model_id:
                    client.get_logged_model(model_id)
                    return True
                client.get_model_version(metadata["registered_model_name"], str(metadata["registered_model_version"]))
                return True
            except Exception as e:
                log.debug("MLflow model %s not found: %s", metadata.get("model_uri"), e)
                return False


def left_in_mlflow(metadata: dict) -> str:
    """The one line saying what an MLflow-backed artifact left in MLflow when deleted."""
    uri = metadata.get("model_uri") or metadata.get("location")
    where = metadata.get("tracking_uri")
    name, version = metadata.get("registered_model_name"), metadata.get("registered_model_version")
    registered = f" (registered model {name!r} version {version})" if name and version is not None else ""
    how = f"MlflowClient().delete_model_version({name!r}, '{version}') and " if registered else ""
    model_id = metadata.get("model_id")
    how += f"MlflowClient().delete_logged_model({model_id!r})" if model_id else "the MLflow UI"
    return f"lineapy_ext: MLflow model {uri}{registered} is kept in MLflow at {where}; to remove it there use {how}"


# -- the model registry ------------------------------------------------------------

#: Seconds a registry answer is reused by :func:`registered_model_state` for
#: listings and metadata (``get`` always asks afresh: aliases move).
REGISTRY_TTL = 30.0

#: Legacy registry stages (deprecated by MLflow since 2.9).
STAGES = ("None", "Staging", "Production", "Archived")

_ALIAS = re.compile(r"^[\w\-]{1,255}$")
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<ref>[^/@]+))?/?$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")

# One client per (tracking, registry) pair, reused for the session.
_CLIENTS: dict[tuple[str, str | None], Any] = {}
# (tracking, registry, name) -> (monotonic time, RegisteredModelState or the BackendError met).
_STATES: dict[tuple[str, str | None, str], tuple[float, Any]] = {}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _aliases_to_set(alias: Any, registered_name: str | None) -> list[str]:
    """Check the ``alias`` save option before anything is logged."""
    if alias is None:
        return []
    aliases = [alias] if isinstance(alias, str) else list(alias) if isinstance(alias, (list, tuple)) else None
    if not registered_name:
        raise BackendError(
            f"alias {alias!r} needs a registered model: add --registered_model_name NAME "
            "(registered_model_name=NAME) to the save"
        )
    for a in aliases or [alias]:
        if not isinstance(a, str) or not _ALIAS.match(a) or a == "latest" or re.fullmatch(r"v\d+", a):
            raise BackendError(
                f"alias {a!r} is not valid in MLflow: use letters, digits, '_' or '-' (not 'latest' or 'v<N>')"
            )
    return aliases


def _default_registry(tracking_uri: str, registry_uri: str | None) -> str | None:
    # As in _mlflow_uris: no registry URI means the tracking URI's registry.
    return registry_uri or (None if tracking_uri.startswith("databricks") else tracking_uri)


def registry_client(tracking_uri: str, registry_uri: str | None = None):
    """Return the session's ``MlflowClient`` for this tracking/registry URI pair.

    Parameters
    ----------
    tracking_uri : str
    registry_uri : str, optional
        Default: the tracking URI's own registry.
    """
    key = (tracking_uri, _default_registry(tracking_uri, registry_uri))
    client = _CLIENTS.get(key)
    if client is None:
        mlflow = import_mlflow()
        client = _CLIENTS[key] = mlflow.MlflowClient(tracking_uri=key[0], registry_uri=key[1])
    return client


@dataclasses.dataclass(frozen=True)
class RegistryVersion:
    """One version of a registered model, as the registry describes it now."""

    name: str
    version: int
    source: str
    run_id: str | None
    model_id: str | None
    stage: str
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def describe(self) -> str:
        """``registered model 'churn' version 3 @champion``."""
        tags = "".join(f" @{a}" for a in self.aliases)
        return f"registered model {self.name!r} version {self.version}{tags}"


@dataclasses.dataclass(frozen=True)
class RegisteredModelState:
    """A registered model's versions and aliases at one moment."""

    name: str
    registry: str
    aliases: dict[str, int]
    versions: dict[int, RegistryVersion]


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _unreachable(registry: str, error: Exception) -> BackendError:
    return BackendError(
        f"cannot reach the MLflow registry at {mask_url(registry)}: {_first_line(error)} "
        "(check that the server is running and LineaPy.mlflow_tracking_uri/mlflow_registry_uri)"
    )


def _missing_model(client, registry: str, name: str) -> BackendError:
    try:
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
    except Exception:
        names = []
    listed = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    have = f"registered models are {listed}" if names else "it has no registered models"
    return BackendError(
        f"no registered model {name!r} in the MLflow registry at {mask_url(registry)}: {have} "
        "(register one with --registered_model_name NAME on a save)"
    )


def _fetch_state(tracking_uri: str, registry_uri: str | None, name: str) -> RegisteredModelState:
    client = registry_client(tracking_uri, registry_uri)
    registry = _default_registry(tracking_uri, registry_uri) or tracking_uri
    with bounded_requests():
        try:
            model = client.get_registered_model(name)
            found = client.search_model_versions(f"name = '{name}'")
        except Exception as e:
            if _is_missing(e):
                raise _missing_model(client, registry, name) from e
            raise _unreachable(registry, e) from e
    aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
    by_version: dict[int, list[str]] = {}
    for alias, v in sorted(aliases.items()):
        by_version.setdefault(v, []).append(alias)
    versions = {
        int(mv.version): RegistryVersion(
            name=name, version=int(mv.version), source=mv.source or "", run_id=mv.run_id or None,
            model_id=getattr(mv, "model_id", None) or None, stage=mv.current_stage or "None",
            aliases=tuple(by_version.get(int(mv.version), ())),
        )
        for mv in found
    }
    return RegisteredModelState(name, registry, aliases, versions)


def registered_model_state(
    tracking_uri: str, registry_uri: str | None, name: str, *, max_age: float | None = None
) -> RegisteredModelState:
    """Return registered model ``name``'s versions and aliases, at most ``max_age`` seconds old.

    Parameters
    ----------
    tracking_uri, registry_uri : str
        Where the registry is (``registry_uri`` None: the tracking URI's).
    name : str
        Registered model name.
    max_age : float, optional
        Reuse an answer (or an error) this recent; 0 asks the registry now.
        Default: :data:`REGISTRY_TTL`.

    Raises
    ------
    BackendError
        The model does not exist (listing the registered ones) or the
        registry cannot be reached (in bounded time).
    """
    max_age = REGISTRY_TTL if max_age is None else max_age
    key = (tracking_uri, _default_registry(tracking_uri, registry_uri), name)
    cached = _STATES.get(key)
    if cached is not None and time.monotonic() - cached[0] <= max_age:
        if isinstance(cached[1], Exception):
            raise cached[1]
        return cached[1]
    try:
        state = _fetch_state(tracking_uri, registry_uri, name)
    except BackendError as e:
        _STATES[key] = (time.monotonic(), e)
        raise
    _STATES[key] = (time.monotonic(), state)
    return state


def forget_registry_state(name: str | None = None) -> None:
    """Drop cached registry answers (for ``name``, or all)."""
    for key in [k for k in _STATES if name is None or k[2] == name]:
        _STATES.pop(key, None)


def resolve_version(
    state: RegisteredModelState, *, alias: str | None = None, version: int | None = None, stage: str | None = None
) -> RegistryVersion:
    """Return the version of ``state`` that ``alias``, ``version`` or ``stage`` selects.

    A stage selects the latest version in that stage, with a warning that
    stages are deprecated.

    Raises
    ------
    BackendError
        The alias, version or stage does not exist; the message lists the
        existing ones.
    """
    name = state.name
    if alias is not None:
        if alias not in state.aliases:
            have = ", ".join(f"{a!r} (-> version {v})" for a, v in sorted(state.aliases.items())) or "none"
            raise BackendError(
                f"registered model {name!r} has no alias {alias!r}: its aliases are {have} "
                f"(set one with MlflowClient().set_registered_model_alias({name!r}, {alias!r}, VERSION))"
            )
        version = state.aliases[alias]
        if version not in state.versions:  # the registry moves aliases with deletions; be safe
            raise BackendError(f"alias {alias!r} of {name!r} points at version {version}, which MLflow no longer has")
    elif stage is not None:
        return _latest_in_stage(state, stage)
    if version not in state.versions:
        have = ", ".join(map(str, sorted(state.versions))) or "none"
        raise BackendError(
            f"registered model {name!r} has no version {version} (deleted in MLflow?): existing versions are {have}"
        )
    return state.versions[version]


def _latest_in_stage(state: RegisteredModelState, stage: str) -> RegistryVersion:
    canonical = next((s for s in STAGES if s.lower() == str(stage).lower()), None)
    if canonical is None:
        raise BackendError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)} (or an alias: --alias NAME)")
    warnings.warn(
        f"stages are deprecated in MLflow 3: {stage!r} resolves to the latest version of {state.name!r} in "
        "that stage; move to aliases (MlflowClient().set_registered_model_alias, --alias NAME)",
        LineaPyWarning, stacklevel=4,
    )
    in_stage = [v for v in state.versions.values() if v.stage == canonical]
    if not in_stage:
        stages = ", ".join(f"{v.version}: {v.stage}" for v in sorted(state.versions.values(), key=lambda v: v.version))
        raise BackendError(f"no version of registered model {state.name!r} is in stage {canonical!r}: stages are {stages}")
    return max(in_stage, key=lambda v: v.version)


def parse_models_uri(uri: str) -> dict:
    """Split a ``models:/`` URI into what it selects.

    Returns
    -------
    dict
        ``{"name", "alias"}``, ``{"name", "version"}``, ``{"name", "stage"}``,
        ``{"name", "latest": True}`` or ``{"model_id"}`` (a logged model).

    Raises
    ------
    BackendError
        Not one of ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
        ``models:/NAME/STAGE``, ``models:/NAME/latest``, ``models:/m-<id>``.
    """
    m = _MODELS_URI.match(uri.strip())
    if m is None:
        raise BackendError(
            f"{uri!r} is not a registry model URI: use models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/STAGE"
        )
    name, alias, ref = m.group("name"), m.group("alias"), m.group("ref")
    if alias:
        return {"name": name, "alias": alias}
    if ref is None:
        if _LOGGED_MODEL_ID.match(name):
            return {"model_id": name}
        raise BackendError(f"{uri!r} does not say which version: use models:/{name}@ALIAS or models:/{name}/VERSION")
    if ref.isdigit():
        return {"name": name, "version": int(ref)}
    if ref == "latest":
        return {"name": name, "latest": True}
    return {"name": name, "stage": ref}


def load_model_uri(uri: str, tracking_uri: str, registry_uri: str | None = None) -> tuple[Any, str]:
    """Load any model URI through its own flavor (``pyfunc`` when none of ours fits).

    Returns
    -------
    (object, str)
        The model and the flavor it was loaded with.
    """
    with _mlflow_uris(tracking_uri, registry_uri) as mlflow:
        try:
            flavors = mlflow.models.get_model_info(uri).flavors
        except Exception as e:
            raise BackendError(f"MLflow could not read the model {uri} at {mask_url(tracking_uri)}: {_first_line(e)}") from e
        flavor = next((f for f in FLAVOR_MODULES if f in flavors), None)
        if flavor is None and "python_function" not in flavors:
            raise BackendError(f"model {uri} has no flavor lineapy_ext can load ({', '.join(flavors)}): load it with mlflow")
        module = flavor_module(flavor) if flavor else importlib.import_module("mlflow.pyfunc")
        try:
            return module.load_model(uri), flavor or "python_function"
        except Exception as e:
            raise BackendError(f"MLflow could not load {uri} from {mask_url(tracking_uri)}: {_first_line(e)}") from e


def why_gone(metadata: dict, tracking_uri: str, registry_uri: str | None) -> str | None:
    """Say why MLflow no longer has the model of ``metadata`` (None: it seems to be there).

    Checked after a failed load: the logged model deleted, its run deleted,
    or its files gone from the artifact store.
    """
    client = registry_client(tracking_uri, registry_uri)
    model_id, run_id = metadata.get("model_id"), metadata.get("run_id")
    with bounded_requests():
        try:
            location = None
            if model_id:
                try:
                    logged = client.get_logged_model(model_id)
                except Exception as e:
                    if _is_missing(e):
                        return f"its logged model {model_id} was deleted in MLflow"
                    raise
                run_id = run_id or logged.source_run_id
                location = logged.artifact_location
            if run_id and client.get_run(run_id).info.lifecycle_stage == "deleted":
                return f"its run {run_id} was deleted in MLflow"
            if location:
                import mlflow.artifacts

                if not mlflow.artifacts.list_artifacts(artifact_uri=location):
                    return f"its files are gone from {mask_url(location)}"
        except Exception as e:  # cannot tell (unreachable...): the load error says enough
            log.debug("could not tell why %s failed to load: %s", metadata.get("model_uri"), e)
    return None
