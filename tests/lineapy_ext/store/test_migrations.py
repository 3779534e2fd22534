"""Schema evolution: a database made by an older schema opens and is upgraded in place.

An older schema is made the honest way: artifacts are saved with today's
code, then the database is taken back to that version's shape (the columns
later versions added are dropped, the recorded version set back).  Opening
it again upgrades it and every artifact still loads.
"""

from __future__ import annotations

import platform
import warnings

import pytest
from sqlalchemy import create_engine, inspect, text

import lineapy_ext
from lineapy_ext.context import get_context, reset_context
from lineapy_ext.store.migrations import STEPS
from lineapy_ext.store.models import SCHEMA_VERSION

#: Columns each schema version added to ``lineapy_artifacts``.
ADDED = {2: ["state", "writer", "updated_at"], 3: ["environment"]}


def _engine(url: str):
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _downgrade_to(url: str, version: int) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        for v in range(SCHEMA_VERSION, version, -1):
            for column in ADDED[v]:
                conn.execute(text(f"ALTER TABLE lineapy_artifacts DROP COLUMN {column}"))
        conn.execute(text("UPDATE lineapy_schema SET value = :v WHERE key = 'schema_version'"), {"v": version})
    engine.dispose()


def test_every_step_is_listed():
    assert sorted(STEPS) == list(range(2, SCHEMA_VERSION + 1)) and sorted(ADDED) == sorted(STEPS)


@pytest.mark.parametrize("old", range(1, SCHEMA_VERSION))
def test_database_of_an_older_schema_is_upgraded_in_place(db_url, old):
    values = {("a", 1): [1, 2], ("a", 2): {"k": "v"}, ("b", 1): "text"}
    for (name, _), value in values.items():
        lineapy_ext.save(value, name)
    get_context().store.close()
    _downgrade_to(db_url, old)
    engine = _engine(db_url)
    have = {c["name"] for c in inspect(engine).get_columns("lineapy_artifacts")}
    assert not have & set(ADDED[old + 1])
    engine.dispose()

    reset_context()
    assert sorted(a.name for a in lineapy_ext.artifact_store()) == ["a", "b"]
    for (name, version), value in values.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            art = lineapy_ext.get(name, version)
        assert art.get_value() == value
        # Rows from before environments were recorded say so (None) and warn about nothing.
        assert art.get_metadata()["environment"] is None and caught == []
    assert lineapy_ext.delete("a", "latest") == [2]
    new = lineapy_ext.save("next", "a")
    assert new.version == 3 and new.get_metadata()["environment"]["python"] == platform.python_version()
    get_context().store.close()
    engine = _engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM lineapy_schema")).scalar() == SCHEMA_VERSION
        states = conn.execute(text("SELECT name, version, state FROM lineapy_artifacts ORDER BY name, version")).all()
    engine.dispose()
    assert [tuple(r) for r in states] == [("a", 1, "ready"), ("a", 2, "deleted"), ("a", 3, "ready"), ("b", 1, "ready")]


def test_newer_schema_is_refused_with_one_line(db_url):
    lineapy_ext.save(1, "x")
    get_context().store.close()
    engine = _engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE lineapy_schema SET value = :v"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    reset_context()
    with pytest.raises(lineapy_ext.exceptions.StorageError, match="newer than this lineapy_ext supports"):
        lineapy_ext.get("x")
