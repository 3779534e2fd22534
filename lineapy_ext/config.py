"""The ``LineaPy`` configuration object and where each of its values comes from.

One :class:`LineaPy` instance per process (owned by
:class:`lineapy_ext.context.Context`) is registered with the IPython shell,
so ``%config LineaPy.database_url = "..."`` and ``c.LineaPy.database_url`` in
``ipython_config.py`` both reach it; ``lineapy_ext.options`` is the same
object.

Values are resolved from five layers, highest first::

    session (%config, options.set)  >  IPython config  >  env var
        >  lineapy_config.json in home_dir  >  default

and :meth:`LineaPy.describe` reports, for every trait, the effective value
(secrets masked) and the layer it came from.  The defaults of
``database_url`` and ``artifact_storage_dir`` derive from ``home_dir``; when
``home_dir`` changes, every value that came from a lower layer is resolved
again (the config file lives in ``home_dir`` too).

This module imports only the standard library and traitlets so that loading
the extension stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from typing import Any, Callable, Iterator

from traitlets import (
    CaselessStrEnum,
    CFloat,
    Dict,
    List,
    TraitError,
    Unicode,
    observe,
    validate,
)
from traitlets.config import Configurable

from lineapy_ext.exceptions import ConfigError

log = logging.getLogger(__name__)

CONFIG_FILE_NAME = "lineapy_config.json"

# Names of the layers, as shown by ``%lineapy config``.
SESSION = "session"
IPYTHON_CONFIG = "IPython config"
ENV = "env"
FILE = "config file"
DEFAULT = "default"

#: trait name -> environment variable.  Dict traits have none: a dict does
#: not fit in an environment variable without inventing a syntax for it.
ENV_VARS = {
    "home_dir": "LINEAPY_HOME_DIR",
    "database_url": "LINEAPY_DATABASE_URL",
    "artifact_storage_dir": "LINEAPY_ARTIFACT_STORAGE_DIR",
    "mlflow_tracking_uri": "LINEAPY_MLFLOW_TRACKING_URI",
    "mlflow_registry_uri": "LINEAPY_MLFLOW_REGISTRY_URI",
    "default_ml_models_storage_backend": "LINEAPY_DEFAULT_ML_MODELS_STORAGE_BACKEND",
    "logging_level": "LINEAPY_LOGGING_LEVEL",
    "default_storage_backend": "LINEAPY_DEFAULT_STORAGE_BACKEND",
    "verify_slices": "LINEAPY_VERIFY_SLICES",
    "verify_timeout": "LINEAPY_VERIFY_TIMEOUT",
    "verify_tolerance": "LINEAPY_VERIFY_TOLERANCE",
}

#: Traits whose change moves the store; see ``Context`` for the reset.
LOCATION_TRAITS = ("home_dir", "database_url", "artifact_storage_dir")

DATABASE_SCHEMES = ("sqlite", "postgresql")
_BACKEND_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")
_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][\w+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@/]*)@")
MASK = "***"


def mask_url(url: str | None) -> str | None:
    """Return ``url`` with any password replaced by ``***``.

    Parameters
    ----------
    url : str or None
        A URL such as ``postgresql://user:secret@host/db``.

    Returns
    -------
    str or None
        ``postgresql://user:***@host/db`` (also ``...?password=***``); URLs
        without a password unchanged.
    """
    if not url:
        return url
    url = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    # ...?password=...: credentials given as query parameters (lineapy_ext.secrets has the rules).
    from lineapy_ext.secrets import mask_query_credentials

    return mask_query_credentials(url)


def mask_options(options: dict | None) -> dict:
    """Return a copy of a ``storage_options``-like dict with every value masked.

    Keys stay visible (they tell the user *what* is configured); values may be
    keys, secrets or tokens and are replaced by ``***`` at every depth.
    """

    def _mask(value):
        if isinstance(value, dict):
            return {k: _mask(v) for k, v in value.items()}
        return MASK

    return {k: _mask(v) for k, v in (options or {}).items()}


class MaskedDict(dict):
    """A plain dict that IPython displays with every value masked (:func:`mask_options`).

    ``%config LineaPy.storage_options`` returns the trait's value itself for
    IPython to display; holding the options in this subclass makes that show
    ``***`` while code reading the values gets them.  ``repr``/``str`` stay
    the dict's own: fsspec keys its filesystem cache on ``str(kwargs)``, and
    masked text there would hand one credential's filesystem to another.
    """

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(mask_options(self)))


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://`` (Heroku style) as ``postgresql://``."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    return url


def _local_path(path: str) -> str:
    """Expand ``~`` and make local paths absolute; leave URLs untouched."""
    if "://" in path:
        return path.rstrip("/") if not path.endswith(":///") else path
    return os.path.abspath(os.path.expanduser(path))


class LineaPy(Configurable):
    """Configuration of lineapy_ext (``%config LineaPy``).

    Every trait can be set, highest precedence first, in the session
    (``%config LineaPy.trait = value`` or ``lineapy_ext.options.set``), in
    the IPython config (``c.LineaPy.trait = value``), with an environment
    variable, or in ``lineapy_config.json`` in ``home_dir``.
    """

    home_dir = Unicode(
        help="Directory for lineapy_ext's own files; the defaults of database_url and "
        "artifact_storage_dir live here (env LINEAPY_HOME_DIR).",
    ).tag(config=True)
    database_url = Unicode(
        help="SQLAlchemy URL of the metadata database: sqlite:///path or "
        "postgresql://user@host/db (env LINEAPY_DATABASE_URL). "
        "Default: sqlite:///{home_dir}/db.sqlite.",
    ).tag(config=True)
    artifact_storage_dir = Unicode(
        help="Where values are stored: a local path or any fsspec URL such as "
        "s3://bucket/dir (env LINEAPY_ARTIFACT_STORAGE_DIR). "
        "Default: {home_dir}/linea_pickles.",
    ).tag(config=True)
    storage_options = Dict(
        help="Keyword arguments for the fsspec filesystem of artifact_storage_dir "
        "(as in pandas: key, secret, profile, client_kwargs...). Never stored or printed.",
    ).tag(config=True)
    mlflow_tracking_uri = Unicode(
        None, allow_none=True,
        help="MLflow tracking URI; when set, ML models are saved with MLflow by default "
        "(env LINEAPY_MLFLOW_TRACKING_URI).",
    ).tag(config=True)
    mlflow_registry_uri = Unicode(
        None, allow_none=True,
        help="MLflow model registry URI (env LINEAPY_MLFLOW_REGISTRY_URI).",
    ).tag(config=True)
    default_ml_models_storage_backend = CaselessStrEnum(
        ["mlflow", "lineapy"], default_value=None, allow_none=True,
        help="Backend for ML models when save() names none; unset means mlflow once a "
        "tracking URI is set, else lineapy (env LINEAPY_DEFAULT_ML_MODELS_STORAGE_BACKEND).",
    ).tag(config=True)
    default_storage_backend = Unicode(
        "lineapy",
        help="Backend for values that are not ML models: 'lineapy' or a dotted path "
        "'pkg.module.Class' to a StorageBackend subclass (env LINEAPY_DEFAULT_STORAGE_BACKEND).",
    ).tag(config=True)
    default_storage_backend_options = Dict(
        help="Constructor keyword arguments of default_storage_backend. Never printed.",
    ).tag(config=True)
    logging_level = CaselessStrEnum(
        ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], default_value="WARNING",
        help="Level of the 'lineapy_ext' logger (env LINEAPY_LOGGING_LEVEL).",
    ).tag(config=True)
    verify_slices = CaselessStrEnum(
        ["off", "background", "on"], default_value="off",
        help="Re-run each saved slice in a fresh interpreter and record a verdict: 'off' (only "
        "%lineapy save --verify / %lineapy verify), 'background' (a worker process, the notebook "
        "never waits) or 'on' (the save waits for the verdict) (env LINEAPY_VERIFY_SLICES).",
    ).tag(config=True)
    verify_timeout = CFloat(
        300.0,
        help="Seconds one run of a slice may take when it is verified (env LINEAPY_VERIFY_TIMEOUT).",
    ).tag(config=True)
    verify_tolerance = CFloat(
        0.0,
        help="Relative tolerance for floats when a recomputed value is compared with the saved one; "
        "0 compares exactly (env LINEAPY_VERIFY_TOLERANCE).",
    ).tag(config=True)

    effect_registry_files = List(
        Unicode(),
        help="Extra effect registry files (TOML, the format of lineapy_ext/analysis/effects.toml) "
        "describing what your own libraries' functions and methods change; loaded after the shipped "
        "entries, so they can override them.",
    ).tag(config=True)

    @validate("effect_registry_files")
    def _valid_registry_files(self, proposal):
        # Loaded (and checked) now, so a bad file is a one-line TraitError at
        # %config time, not a surprise at the next cell.
        from lineapy_ext.analysis.registry import RegistryError, configure

        paths = [os.path.expanduser(p) for p in proposal["value"]]
        try:
            configure(paths)
        except RegistryError as e:
            raise TraitError(f"effect_registry_files: {e}") from e
        return paths

    def __init__(self, **kwargs):
        self._sources: dict[str, str] = {}
        self._current_source = SESSION
        self._resolving = False
        self._location_listeners: list[Callable[[dict], None]] = []
        # While set_location runs: the location changes it made, announced
        # to the listeners once at its end instead of one by one.
        self._location_batch: list[dict] | None = None
        config = kwargs.pop("config", None)
        super().__init__(**kwargs)
        self._apply_lower_layers()
        if config is not None:
            self.load_ipython_config(config)

    # -- layers --------------------------------------------------------------

    @contextlib.contextmanager
    def _as_source(self, source: str) -> Iterator[None]:
        previous, self._current_source = self._current_source, source
        try:
            yield
        finally:
            self._current_source = previous

    def _file_values(self) -> dict[str, Any]:
        path = os.path.join(self.home_dir, CONFIG_FILE_NAME)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            # A broken config file must not stop the kernel from working.
            log.warning("ignoring %s: %s", path, e)
            return {}
        if not isinstance(data, dict):
            log.warning("ignoring %s: expected a JSON object", path)
            return {}
        unknown = sorted(set(data) - set(self.trait_names(config=True)) - {"home_dir"})
        if unknown:
            log.warning("%s: unknown keys %s ignored", path, unknown)
        return data

    def _default_for(self, name: str) -> Any:
        if name == "home_dir":
            return os.path.join(os.path.expanduser("~"), ".lineapy")
        if name == "database_url":
            return "sqlite:///" + os.path.join(self.home_dir, "db.sqlite")
        if name == "artifact_storage_dir":
            return os.path.join(self.home_dir, "linea_pickles")
        return self.traits()[name].default()

    def _apply_lower_layers(self) -> None:
        """(Re)resolve every trait not set in the session or IPython config."""
        self._resolving = True
        try:
            with self.hold_trait_notifications():
                # home_dir first: the file and the derived defaults depend on it.
                if self._sources.get("home_dir", DEFAULT) in (DEFAULT, ENV):
                    self._set_from_layers("home_dir", {})
                file_values = self._file_values()
                for name in self.trait_names(config=True):
                    if name != "home_dir" and self._sources.get(name, DEFAULT) in (DEFAULT, ENV, FILE):
                        self._set_from_layers(name, file_values)
        finally:
            self._resolving = False

    def _set_from_layers(self, name: str, file_values: dict) -> None:
        env = ENV_VARS.get(name)
        if env and os.environ.get(env):
            source, value = ENV, os.environ[env]
        elif name in file_values and name != "home_dir":
            source, value = FILE, file_values[name]
        else:
            source, value = DEFAULT, self._default_for(name)
        try:
            if source != DEFAULT:
                # Our @validate checks are deferred inside hold_trait_notifications
                # and would raise at its end, past this fallback: run them now.
                trait = self.traits()[name]
                trait._cross_validate(self, trait._validate(self, value))
            with self._as_source(source):
                setattr(self, name, value)
        except TraitError as e:
            if source == DEFAULT:
                raise
            # A bad env var or file entry falls back to the default with a warning
            # instead of making the extension unloadable.
            where = env if source == ENV else f"{CONFIG_FILE_NAME} {name}"
            log.warning("%s=%r ignored: %s; using the default %r", where,
                        mask_url(value) if isinstance(value, str) else value,
                        self._valid_choices(name, e), self._default_for(name))
            source = DEFAULT
            setattr(self, name, self._default_for(name))
        self._sources[name] = source

    def _valid_choices(self, name: str, error: TraitError) -> str:
        """What ``name`` accepts, for the one-line warning about a bad value."""
        trait = self.traits()[name]
        if getattr(trait, "values", None):
            return "valid choices are " + ", ".join(map(str, trait.values))
        if isinstance(trait, CFloat) and "expected" in str(error):
            return "expected a number"
        # Our validators' messages end with the fix ("...: use ...").
        return str(error).rsplit(": ", 1)[-1]

    def load_ipython_config(self, config) -> None:
        """Apply ``config`` (``shell.config``) as the IPython-config layer.

        Traits already set in the session keep their session value.
        """
        section = config.get(self.__class__.__name__, {}) if config is not None else {}
        values = {k: v for k, v in section.items() if self._sources.get(k) != SESSION}
        if not values:
            return
        from traitlets.config import Config

        with self._as_source(IPYTHON_CONFIG):
            self._load_config(Config({self.__class__.__name__: values}))

    def _load_config(self, cfg, section_names=None, traits=None) -> None:
        # Record the layer even when a value equals the current one (no change
        # notification then), so describe() tells the truth.
        mine = self._find_my_config(cfg)
        super()._load_config(cfg, section_names=section_names, traits=traits)
        for name in mine:
            if name in self.traits(config=True):
                self._sources[name] = self._current_source

    @classmethod
    def class_get_trait_help(cls, trait, inst=None, helptext=None):
        """Help of one trait for ``%config LineaPy``, with the current value masked."""
        text = super().class_get_trait_help(trait, None, helptext)
        if inst is not None:
            text += f"\n    Current: {inst.masked(trait.name)!r}"
        return text

    # -- validation ----------------------------------------------------------

    @validate("home_dir")
    def _valid_home_dir(self, proposal):
        value = proposal["value"]
        if not value:
            raise TraitError("LineaPy.home_dir must be a non-empty directory path")
        if "://" in value:
            raise TraitError(f"LineaPy.home_dir must be a local directory, not the URL {mask_url(value)!r}")
        return _local_path(value)

    @validate("database_url")
    def _valid_database_url(self, proposal):
        value = normalize_database_url(str(proposal["value"]).strip())
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme not in DATABASE_SCHEMES:
            raise TraitError(
                f"LineaPy.database_url {mask_url(value)!r} is not supported: use "
                "sqlite:///path/to/db.sqlite or postgresql://user@host:port/dbname"
            )
        return value

    @validate("artifact_storage_dir")
    def _valid_storage_dir(self, proposal):
        value = str(proposal["value"]).strip()
        if not value:
            raise TraitError("LineaPy.artifact_storage_dir must be a local path or an fsspec URL such as s3://bucket/dir")
        return _local_path(value)

    @validate("default_storage_backend")
    def _valid_default_backend(self, proposal):
        value = proposal["value"]
        if value == "mlflow":
            raise TraitError(
                "LineaPy.default_storage_backend cannot be 'mlflow' (MLflow stores only models; "
                "use default_ml_models_storage_backend): use 'lineapy' or 'pkg.module.Class'"
            )
        if value != "lineapy" and not _BACKEND_SPEC.match(value):
            raise TraitError(
                f"LineaPy.default_storage_backend {value!r} is not valid: use 'lineapy' or a "
                "dotted path 'pkg.module.Class'"
            )
        return value

    @validate("verify_timeout", "verify_tolerance")
    def _valid_verify_number(self, proposal):
        value, name = proposal["value"], proposal["trait"].name
        low_ok = value > 0 if name == "verify_timeout" else value >= 0
        if not low_ok or value != value or value == float("inf"):
            raise TraitError(f"LineaPy.{name} {value!r} is not valid: use a finite number "
                             + ("> 0 (seconds)" if name == "verify_timeout" else ">= 0 (0 = exact)"))
        return value

    @validate("storage_options", "default_storage_backend_options")
    def _masked_when_printed(self, proposal):
        return MaskedDict(proposal["value"])

    @validate("mlflow_tracking_uri", "mlflow_registry_uri")
    def _valid_uri(self, proposal):
        # An empty string from an env var or %config means "unset".
        return proposal["value"] or None

    # -- change handling -----------------------------------------------------

    @observe(*[n for n in ENV_VARS] + ["storage_options", "default_storage_backend_options"])
    def _record_source(self, change) -> None:
        if not self._resolving:
            self._sources[change["name"]] = self._current_source

    @observe("logging_level")
    def _apply_logging_level(self, change) -> None:
        logging.getLogger("lineapy_ext").setLevel(change["new"])

    @observe(*LOCATION_TRAITS)
    def _location_changed(self, change) -> None:
        if self._resolving:
            return
        # Recorded here too: observers run in no set order, and re-resolving
        # the lower layers must see home_dir's new source.
        self._sources[change["name"]] = self._current_source
        if change["name"] == "home_dir":
            self._apply_lower_layers()
        if self._location_batch is not None:
            self._location_batch.append(change)
            return
        self._notify_location(change)

    def _notify_location(self, change) -> None:
        for listener in list(self._location_listeners):
            listener(change)

    def set_location(self, artifact_storage_dir: str, database_url: str) -> bool:
        """Move both halves of the store at once, for this session.

        Both values are validated before either is set, and the location
        listeners (the session reset) are called once, so the move is one
        new session and never a half-moved store.

        Parameters
        ----------
        artifact_storage_dir : str
            Where values go: a local path or an fsspec URL (``s3://bucket/dir``).
        database_url : str
            The metadata database: ``sqlite:///path`` or ``postgresql://...``.

        Returns
        -------
        bool
            Whether the location changed.

        Raises
        ------
        ConfigError
            If either value is invalid; nothing is changed then.
        """
        values = {"artifact_storage_dir": artifact_storage_dir, "database_url": database_url}
        validators = {"artifact_storage_dir": self._valid_storage_dir, "database_url": self._valid_database_url}
        for name, value in values.items():
            try:
                self.traits()[name].validate(self, value)  # the type (a string)
                values[name] = validators[name]({"value": value})
            except TraitError as e:
                raise ConfigError(str(e)) from e
        self._location_batch = []
        try:
            for name, value in values.items():
                self.set(name, value)
        finally:
            changes, self._location_batch = self._location_batch, None
        if changes:
            self._notify_location(changes[-1])
        return bool(changes)

    def on_location_change(self, listener: Callable[[dict], None], remove: bool = False) -> None:
        """Call ``listener(change)`` once per user change of a location trait.

        A change of ``home_dir`` also moves the derived defaults; listeners
        are called once, after that, with the ``home_dir`` change.
        """
        if remove:
            if listener in self._location_listeners:
                self._location_listeners.remove(listener)
        elif listener not in self._location_listeners:
            self._location_listeners.append(listener)

    # -- public helpers ------------------------------------------------------

    @property
    def effective_ml_models_storage_backend(self) -> str:
        """``default_ml_models_storage_backend`` with its "unset" case resolved."""
        if self.default_ml_models_storage_backend:
            return self.default_ml_models_storage_backend.lower()
        return "mlflow" if self.mlflow_tracking_uri else "lineapy"

    def _check_key(self, key: str) -> None:
        names = sorted(self.trait_names(config=True))
        if key not in names:
            raise ConfigError(f"unknown option {key!r}: valid options are {', '.join(names)}")

    def get(self, key: str) -> Any:
        """Return the effective value of option ``key``.

        Raises
        ------
        ConfigError
            If ``key`` is not an option; the message lists the valid ones.
        """
        self._check_key(key)
        return getattr(self, key)

    def set(self, key: str, value: Any) -> None:
        """Set option ``key`` for this session (highest precedence).

        Raises
        ------
        ConfigError
            If ``key`` is not an option.
        traitlets.TraitError
            If ``value`` is not valid for it; the message lists valid choices.
        """
        self._check_key(key)
        with self._as_source(SESSION):
            setattr(self, key, value)
        self._sources[key] = SESSION

    def source_of(self, key: str) -> str:
        """Return the layer (``session``, ``IPython config``, ...) ``key`` came from."""
        self._check_key(key)
        return self._sources.get(key, DEFAULT)

    def masked(self, key: str) -> Any:
        """Return the value of ``key`` as it may be shown to the user."""
        value = self.get(key)
        if key in ("storage_options", "default_storage_backend_options"):
            return mask_options(value)
        if key == "default_ml_models_storage_backend" and value is None:
            return self.effective_ml_models_storage_backend
        if isinstance(value, str):
            return mask_url(value)
        return value

    def describe(self) -> list[tuple[str, Any, str]]:
        """List ``(trait, value with secrets masked, source)`` for every option."""
        return [(name, self.masked(name), self.source_of(name)) for name in sorted(self.trait_names(config=True))]
