"""The artifact store: metadata database plus value storage.

- :mod:`~lineapy_ext.store.records`: the plain dataclasses the rest of the
  package sees;
- :mod:`~lineapy_ext.store.models`: the SQLAlchemy tables (private to the store);
- :mod:`~lineapy_ext.store.metadata`: the metadata database (SQLite/PostgreSQL);
- :mod:`~lineapy_ext.store.plain_sqlite`: a SQLite file through stdlib sqlite3 (saves, gets);
- :mod:`~lineapy_ext.store.artifact_store`: saves and loads that keep values
  and rows consistent;
- :mod:`~lineapy_ext.store.names`: artifact name validation;
- :mod:`~lineapy_ext.store.migrations`: upgrading older databases in place;
- :mod:`~lineapy_ext.store.cleanup`: finishing interrupted saves and deletes;
- :mod:`~lineapy_ext.store.writers`: which process a piece of unfinished work belongs to.
"""
