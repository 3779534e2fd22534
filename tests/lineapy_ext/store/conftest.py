"""Fixtures shared by the store tests: every test here runs on SQLite and PostgreSQL."""

import pytest

from lineapy_ext.context import reset_context


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, lineapy_home, monkeypatch):
    """The store's database URL, on SQLite and on PostgreSQL; the context uses it."""
    if request.param == "sqlite":
        url = f"sqlite:///{lineapy_home / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("LINEAPY_DATABASE_URL", url)
    reset_context()
    return url
