"""Keeping configured secrets out of what lineapy_ext stores.

Passwords in URLs (``database_url``, ``artifact_storage_dir``, MLflow URIs)
and every value of ``storage_options`` / ``default_storage_backend_options``
are secrets.  Printed configuration masks them
(:meth:`lineapy_ext.config.LineaPy.masked`); this module scrubs them from
text that is written to the metadata database: the recorded cell sources
(a cell may run ``%config LineaPy.storage_options = {...}``), slices and
backend metadata.  Each occurrence is replaced by ``***``.

Only string values of at least :data:`MIN_SECRET_LENGTH` characters are
treated as literal secrets, so that flags and short settings (``"s3"``,
``True``) do not mangle unrelated code; passwords in URLs are masked
whatever their length.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable

from lineapy_ext.config import MASK

log = logging.getLogger(__name__)

#: Shorter option values are not searched for in stored text.
MIN_SECRET_LENGTH = 6
#: ``scheme://user:password@`` anywhere in a text.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.\-]*://[^\s:/@'\"]*:)(?P<pw>[^\s@/'\"]+)(?=@)")

_URL_TRAITS = ("database_url", "artifact_storage_dir", "mlflow_tracking_uri", "mlflow_registry_uri")
_OPTION_TRAITS = ("storage_options", "default_storage_backend_options")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _strings(v)


def _url_password(url: str | None) -> str | None:
    m = _URL_PASSWORD.search(url or "")
    return m["pw"] if m else None


def secret_values(options) -> list[str]:
    """Return the literal secrets of the configuration ``options``, longest first.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        The live configuration.
    """
    found = set()
    for trait in _OPTION_TRAITS:
        found.update(s for s in _strings(getattr(options, trait, None) or {}) if len(s) >= MIN_SECRET_LENGTH)
    for trait in _URL_TRAITS:
        pw = _url_password(getattr(options, trait, None))
        if pw:
            found.add(pw)
    return sorted(found, key=len, reverse=True)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with URL passwords and every literal of ``secrets`` replaced by ``***``."""
    if not text:
        return text
    out = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    for secret in secrets:
        if secret and secret in out:
            out = out.replace(secret, MASK)
    return out


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Scrub every string inside ``value`` (dicts, lists and tuples are rebuilt)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, secrets) for v in value)
    return value


class Scrubber:
    """Scrubs the secrets of one configuration from text about to be stored.

    Parameters
    ----------
    options : lineapy_ext.config.LineaPy
        Read when the scrubber is made: make one per save.
    """

    def __init__(self, options) -> None:
        self.secrets = secret_values(options)

    def text(self, text: str, what: str = "") -> str:
        """Scrub ``text``; log (without the secret) when something was replaced."""
        out = scrub_text(text, self.secrets)
        if out != text and what:
            log.warning("%s contained a configured secret; it is stored as %s", what, MASK)
        return out

    def __call__(self, value: Any) -> Any:
        return scrub(value, self.secrets)
