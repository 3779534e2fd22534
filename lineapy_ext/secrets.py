"""Keeping credentials out of what lineapy_ext stores, without changing what code computes.

Credentials are:

- passwords in URLs (``database_url``, ``artifact_storage_dir``, MLflow
  URIs), as ``user:password@`` or as a query parameter with a
  credential-like name (``?password=...``), in their written and their
  percent-decoded forms;
- values under credential-like keys of ``storage_options`` /
  ``default_storage_backend_options`` (``key``, ``secret``, ``token``,
  ``password``, ``account_key``, ``client_secret``...), whatever their
  length.  Other settings (``region``, ``endpoint_url``, ``anon``) are not
  credentials and are never masked;
- every credential this process has seen configured, even after it was
  replaced;
- string literals that code assigns to credential-like names, dict keys,
  keyword arguments or environment variables
  (``os.environ["AWS_SECRET_ACCESS_KEY"] = "..."``, ``%env TOKEN=...``).

Printed configuration masks them (:meth:`lineapy_ext.config.LineaPy.masked`);
this module scrubs them from text written to the metadata database: cell
sources and backend metadata get ``***``.  A slice must keep computing the
same thing or fail, never compute something else: a credential that is a
whole string literal of a slice becomes a read of an environment variable
(``__import__("os").environ["LINEAPY_SECRET_KEY"]``) that fails loudly when
unset, and the slice's first line names the variables to set.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable
from urllib.parse import unquote

from lineapy_ext.config import MASK

log = logging.getLogger(__name__)

#: Literal secrets shorter than this are only replaced where they stand alone
#: (not inside a longer word), so short credentials cannot mangle other text.
MIN_SECRET_LENGTH = 6

_URL_TRAITS = ("database_url", "artifact_storage_dir", "mlflow_tracking_uri", "mlflow_registry_uri")
_OPTION_TRAITS = ("storage_options", "default_storage_backend_options")

_WORDS = {"password", "passwd", "pwd", "pass", "secret", "secrets", "token", "credential", "credentials",
          "apikey", "passphrase", "sig", "signature"}
_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("account", "key"), ("secret", "key"),
          ("session", "token"), ("sas", "token"), ("auth", "token"), ("client", "secret"), ("connection", "string")}

#: ``scheme://user:password@`` anywhere in a text.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.\-]*://[^\s:/@'\"]*:)(?P<pw>[^\s@/'\"]+)(?=@)")
#: ``?name=value`` / ``&name=value`` query parameters.
_QUERY_PARAM = re.compile(r"(?P<head>[?&](?P<name>[A-Za-z_][\w.\-]*)=)(?P<value>[^&#\s'\"]+)")
_STR = r"(?P<q>'''|\"\"\"|'|\")(?P<v>(?:\\.|(?!(?P=q)).)*?)(?P=q)"
#: String literals in a credential context: ``'name': '...'``, ``name = '...'``,
#: ``environ['NAME'] = '...'``, ``setdefault('NAME', '...')``, ``putenv('NAME', '...')``.
_IN_CONTEXT = re.compile(
    r"(?:['\"](?P<dk>[\w.\-]+)['\"]\s*(?P<sep>:|\]\s*=(?!=)|,)\s*"
    r"|\b(?P<nk>[A-Za-z_]\w*)\s*=(?!=)\s*)"
    r"[rRbBuU]?" + _STR,
    re.S,
)
_LITERAL = re.compile(_STR, re.S)
#: ``%env NAME=value`` / ``%env NAME value`` / ``%set_env NAME value``.
_ENV_MAGIC = re.compile(r"(?m)^(?P<head>\s*%(?:set_)?env\s+(?P<name>\w+)(?:\s*=\s*|\s+))(?P<value>\S.*?)\s*$")

#: Every credential seen configured in this process: replaced ones stay secret.
_SEEN: dict[str, str] = {}


def is_credential_name(name: str, *, option_key: bool = False) -> bool:
    """Whether ``name`` (a key, variable or environment variable) names a credential.

    Parameters
    ----------
    name : str
        ``aws_secret_access_key``, ``AWS_SESSION_TOKEN``, ``clientSecret``...
    option_key : bool
        ``name`` is a ``storage_options`` key: there plain ``key`` is the
        fsspec S3/GCS/Azure access key.
    """
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if w]
    if option_key and words == ["key"]:
        return True
    return any(w in _WORDS for w in words) or any(pair in _PAIRS for pair in zip(words, words[1:]))


def _env_name(hint: str) -> str:
    return "LINEAPY_SECRET_" + (re.sub(r"[^A-Za-z0-9]+", "_", hint).strip("_").upper() or "VALUE")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _strings(v)


def _option_secrets(options: Any, found: dict) -> None:
    if not isinstance(options, dict):
        return
    for key, value in options.items():
        if is_credential_name(str(key), option_key=True):
            for s in _strings(value):
                if s:
                    found.setdefault(s, _env_name(str(key)))
        else:
            _option_secrets(value, found)


def _url_secrets(url: str | None, found: dict) -> None:
    m = _URL_PASSWORD.search(url or "")
    if m:
        for form in (m["pw"], unquote(m["pw"])):
            found.setdefault(form, _env_name("password"))
    for q in _QUERY_PARAM.finditer(url or ""):
        if is_credential_name(q["name"]):
            for form in (q["value"], unquote(q["value"])):
                found.setdefault(form, _env_name(q["name"]))


def configured_secrets(options) -> dict[str, str]:
    """Return ``{credential: environment variable name}`` for ``options`` and every earlier configuration.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        The live configuration; credentials it held before (watched from the
        first call on) stay in the answer.
    """
    _watch(options)
    found: dict[str, str] = {}
    for trait in _OPTION_TRAITS:
        _option_secrets(getattr(options, trait, None) or {}, found)
    for trait in _URL_TRAITS:
        _url_secrets(getattr(options, trait, None), found)
    for secret, name in found.items():
        _SEEN.setdefault(secret, name)
    return dict(_SEEN)


def _watch(options) -> None:
    # Remember the value a credential trait had before each change.
    if getattr(options, "_lineapy_secrets_watched", False) or not hasattr(options, "observe"):
        return

    def remember(change) -> None:
        found: dict[str, str] = {}
        if change["name"] in _OPTION_TRAITS:
            _option_secrets(change["old"] or {}, found)
        else:
            _url_secrets(change["old"], found)
        for secret, name in found.items():
            _SEEN.setdefault(secret, name)

    try:
        options.observe(remember, names=list(_OPTION_TRAITS + _URL_TRAITS))
        options._lineapy_secrets_watched = True
    except Exception as e:  # an options object without these traits
        log.debug("cannot watch %r for secrets: %s", options, e)


def secret_values(options) -> list[str]:
    """Return the literal credentials of ``options`` (and earlier configurations), longest first."""
    return sorted(configured_secrets(options), key=len, reverse=True)


def _replace_literals(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if not secret or secret not in text:
            continue
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])", MASK, text)
    return text


def mask_query_credentials(text: str) -> str:
    """Return ``text`` with the values of credential-like query parameters (``?password=``) as ``***``."""
    return _QUERY_PARAM.sub(lambda m: m["head"] + MASK if is_credential_name(m["name"]) else m[0], text)


def _mask_urls(text: str) -> str:
    return mask_query_credentials(_URL_PASSWORD.sub(lambda m: m["head"] + MASK, text))


def _context_name(m: re.Match) -> str | None:
    name = m["dk"] or m["nk"]
    if not name or not m["v"]:
        return None
    # In storage options (``%config LineaPy.storage_options = {...}``,
    # ``read_csv(..., storage_options={...})``) a plain "key" is a credential.
    line = m.string[m.string.rfind("\n", 0, m.start()) + 1 : m.start()]
    return name if is_credential_name(name, option_key="_options" in line and bool(m["dk"])) else None


#: Every word a credential name must contain (:func:`is_credential_name`:
#: one of ``_WORDS``, or the second word of a pair).
_WORD_HINTS = _WORDS | {second for _, second in _PAIRS}
_HINTS = tuple(sorted(w for w in _WORD_HINTS if not any(h != w and h in w for h in _WORD_HINTS)))
_NAME_CHAR = re.compile(r"[\w.\-]")


def may_hold_credentials(text: str, secrets: Iterable[str] = ()) -> bool:
    """False only when scrubbing ``text`` (:func:`scrub_text`, :func:`scrub_code`) cannot change it.

    Every rule needs one of: a configured secret in the text, a URL with a
    password, or a credential-like name (``password``, ``api_key``,
    ``token``...).  The names are found from the words they must contain,
    searched at C speed in the lowercased text, so a text without any costs
    a few substring searches, whatever its length: a save in a long session
    does not run the rules over every line of its slice again.  Never False
    for a text the rules would change (conservative: a name is judged with
    what surrounds it, ``x.token``).
    """
    secrets = list(secrets)
    if "" in secrets or any(s in text for s in secrets):
        return True
    if "://" in text and _URL_PASSWORD.search(text):
        return True
    low = text.lower()
    hits = [h for h in _HINTS if h in low]
    if not hits:
        return False
    if not text.isascii():  # lower() may move positions: judge the whole text
        return True
    options = "_options" in text  # where a plain "key" is a credential (see _context_name)
    judged: dict[str, bool] = {}
    for hint in hits:
        at = low.find(hint)
        while at >= 0:
            start, end = at, at + len(hint)
            while start and _NAME_CHAR.match(text, start - 1):
                start -= 1
            while end < len(text) and _NAME_CHAR.match(text, end):
                end += 1
            name = text[start:end]
            if name not in judged:
                judged[name] = is_credential_name(name, option_key=options)
            if judged[name]:
                return True
            at = low.find(hint, end)
    return False


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with URL passwords, credentials in code and every literal of ``secrets`` as ``***``."""
    if not text:
        return text
    secrets = list(secrets)
    return _scrub_text(text, secrets) if may_hold_credentials(text, secrets) else text


def _scrub_text(text: str, secrets: list[str]) -> str:
    out = _mask_urls(text)
    out = _IN_CONTEXT.sub(lambda m: m[0][: m.start("v") - m.start()] + MASK + m[0][m.end("v") - m.start():]
                          if _context_name(m) and m["v"] != MASK else m[0], out)
    out = _ENV_MAGIC.sub(lambda m: m["head"] + MASK if is_credential_name(m["name"]) else m[0], out)
    return _replace_literals(out, secrets)


def scrub_code(code: str, secrets: dict[str, str]) -> tuple[str, list[str]]:
    """Return ``code`` without credentials, and the environment variables it now reads.

    A string literal that is a credential (by context or by value) becomes
    ``__import__("os").environ["NAME"]``: the code fails with ``KeyError:
    'NAME'`` until the variable is set, instead of running with a wrong
    value.  Credentials inside longer literals become ``***``.
    """
    if not code or not may_hold_credentials(code, secrets):
        return code, []
    return _scrub_code(code, secrets)


def _scrub_code(code: str, secrets: dict[str, str]) -> tuple[str, list[str]]:
    needed: list[str] = []

    def env_read(name: str) -> str:
        if name not in needed:
            needed.append(name)
        return f'__import__("os").environ[{name!r}]'

    def literal(m: re.Match) -> str:
        prefix = m[0][: m.start("q") - m.start()]
        if prefix[-1:] in ("b", "B"):  # bytes: left to the text rules
            return m[0]
        prefix = prefix.rstrip("rRuU")
        name = _context_name(m)
        if name:
            # os.environ["NAME"] = "..." reads NAME itself: the variable the code meant to set.
            return prefix + env_read(name if m["dk"] and m["sep"] != ":" else _env_name(name))
        if m["v"] in secrets:
            return prefix + env_read(secrets[m["v"]])
        return m[0]

    out = _IN_CONTEXT.sub(literal, code)
    out = _LITERAL.sub(lambda m: env_read(secrets[m["v"]]) if m["v"] in secrets else m[0], out)
    out = _scrub_text(out, list(secrets)) if out else out
    if needed:
        out = f"# lineapy: credentials removed from this slice; set the environment variable(s) {', '.join(needed)}\n" + out
    return out, needed


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Scrub every string inside ``value`` (dicts, lists and tuples are rebuilt;
    lists and tuples of which no string can hold a credential are returned as they are)."""
    secrets = list(secrets)
    if isinstance(value, (list, tuple)):
        texts = _texts(value)
        # One look at all of them (a slice's cells), not one per string.
        if texts is not None and not may_hold_credentials("\n".join(texts), secrets):
            return value
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {k: scrub(v, secrets) if not (isinstance(k, str) and is_credential_name(k) and isinstance(v, str))
                else MASK for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, secrets) for v in value)
    return value


def _texts(value: list | tuple) -> list[str] | None:
    """The strings in nested lists and tuples; None if there is a dict (its keys count too)."""
    out, todo = [], [value]
    while todo:
        for v in todo.pop():
            kind = type(v)
            if kind is str:
                out.append(v)
            elif kind is list or kind is tuple:
                todo.append(v)
            elif isinstance(v, str):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                todo.append(v)
            elif isinstance(v, dict):
                return None
    return out


class Scrubber:
    """Scrubs the credentials of one configuration (and earlier ones) from text about to be stored.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        Read when the scrubber is made: make one per save.
    """

    def __init__(self, options) -> None:
        self.named = configured_secrets(options)
        self.secrets = sorted(self.named, key=len, reverse=True)

    def text(self, text: str, what: str = "") -> str:
        """Scrub ``text`` (cells, messages); log (without the secret) when something was replaced."""
        out = scrub_text(text, self.secrets)
        if out != text and what:
            log.warning("%s contained a credential; it is stored as %s", what, MASK)
        return out

    def code(self, code: str, what: str = "") -> str:
        """Scrub a slice so that it fails loudly instead of computing something else (see :func:`scrub_code`)."""
        out, needed = scrub_code(code, self.named)
        if out != code and what:
            log.warning("%s contained a credential; the stored slice reads %s from the environment instead",
                        what, ", ".join(needed) or MASK)
        return out

    def __call__(self, value: Any) -> Any:
        return scrub(value, self.secrets)
