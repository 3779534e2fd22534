"""Artifact names: what is allowed, so that no name can escape the storage dir."""

from __future__ import annotations

import re

from lineapy_ext.exceptions import InvalidNameError

MAX_NAME_LENGTH = 200
# fullmatch, not match with "$": "$" also matches before a trailing newline.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def validate_name(name) -> str:
    """Return ``name`` if it is a valid artifact name, else raise.

    Valid names use letters, digits, ``_``, ``-`` and ``.``, start with a
    letter, digit or ``_``, contain no ``..`` and are at most 200 characters:
    they are used as a directory name under the storage dir.

    Raises
    ------
    InvalidNameError
        With the offending name and the rule.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or ".." in name or not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid artifact name {name!r}: use 1-{MAX_NAME_LENGTH} letters, digits, '_', '-' or '.' "
            "(no path separators, no '..', not starting with '.' or '-')"
        )
    return name
