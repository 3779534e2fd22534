"""What a SQL statement reads and writes, table by table, and the databases' state.

A database file written by a session is many objects, not one: the slice of
``pd.read_sql("select * from customers", conn)`` needs the statements that
wrote ``customers``, not those that filled ``notes``.  :func:`sql_access`
reads the tables a statement touches from its text when the statement is
one of the simple forms notebooks use (``SELECT``, ``INSERT``, ``UPDATE``,
``DELETE``, ``CREATE TABLE``/``INDEX``, ``DROP TABLE``, ``ALTER TABLE``);
anything else (views, triggers, pragmas, ``ATTACH``, ``WITH``, several
statements, text it cannot read) is *unknown*, and the caller falls back to
"reads and changes the whole database".

A table ``t`` of database file ``D`` is the pseudo-path ``D/t`` in the
graph's file table, so a whole-file read or write of ``D`` (a new
connection, an unknown statement) still meets every table's writers.

:class:`Databases` keeps what the graph must remember between statements:
the tables written since each database's last commit (a commit, a rollback
or a close makes them visible to other connections, or takes them back),
and the databases on which something unknown ran (from then on every
statement on them is taken whole: a trigger or a view may tie tables
together).
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SqlAccess", "sql_access", "table_path", "Databases"]


@dataclass(frozen=True, slots=True)
class SqlAccess:
    """Tables (lower case) a statement reads and writes."""

    reads: frozenset[str]
    writes: frozenset[str]


_LEXEME = re.compile(r"'(?:[^']|'')*'?|--[^\n]*|/\*.*?(?:\*/|$)|\"[^\"]*\"?|`[^`]*`?|\[[^\]]*\]?", re.S)
_IDENT = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"

#: Statement forms and the group holding the table they write.
_WRITE_FORMS = (
    re.compile(rf"^INSERT\s+(?:OR\s+\w+\s+)?INTO\s+({_NAME})", re.I),
    re.compile(rf"^REPLACE\s+INTO\s+({_NAME})", re.I),
    re.compile(rf"^UPDATE\s+(?:OR\s+\w+\s+)?({_NAME})", re.I),
    re.compile(rf"^DELETE\s+FROM\s+({_NAME})", re.I),
    re.compile(rf"^CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})", re.I),
    re.compile(rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?({_NAME})", re.I),
    re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s+ON\s+({_NAME})", re.I),
    re.compile(rf"^ALTER\s+TABLE\s+({_NAME})", re.I),
)
#: Functions called in select lists (``, count(*)``): not tables.
_SQL_FUNCTIONS = frozenset("""count sum avg min max abs round coalesce ifnull nullif length lower upper
substr substring trim ltrim rtrim replace instr cast date time datetime julianday strftime printf format
total group_concat random hex quote typeof iif char unicode likely unlikely exists not in over
lag lead row_number rank dense_rank ntile first_value last_value nth_value cume_dist percent_rank
json json_extract json_object json_array json_group_array json_group_object sqrt power exp ln log
floor ceil ceiling sign mod pi""".split())



def _unquote(word: str) -> str:
    """``"Sales"`` / ``[Sales]`` / ``Sales`` -> ``sales`` (SQLite's names ignore case)."""
    if word[:1] in ('"', "`", "[") and len(word) > 1:
        word = word[1:-1]
    return word.lower()


def _table(name: str) -> str | None:
    """``main."Sales"`` -> ``sales``; None for another schema (an attached database)."""
    parts = [_unquote(w) for w in _WORD.findall(name)]
    if not parts or len(parts) == 2 and parts[0] not in ("main", "temp"):
        return None
    return parts[-1]


def _plain(sql: str) -> str:
    """``sql`` with string literals emptied and comments blanked, read left
    to right (a ``--`` inside a string is not a comment, nor a quote inside
    a comment a string); quoted identifiers are kept."""
    def one(m: re.Match) -> str:
        t = m.group(0)
        if t[0] == "'":
            return "''"
        return " " if t[0] in "-/" else t
    return _LEXEME.sub(one, sql)


_WORD = re.compile(rf"{_IDENT}")
_TABLE_FUNCTION = re.compile(rf"\b(?:FROM|JOIN)\s+{_NAME}\s*\(|,\s*{_NAME}\s*\(", re.I)


def _reads(text: str) -> set[str] | None:
    """Every name in the statement, as the tables it may read (a name that
    is a column, an alias or a keyword only costs precision, never
    exactness: a ``FROM`` list need not be parsed, and a table may be called
    ``temp`` or ``"sales.2024"``); None when a table function stands
    where a table would (``FROM json_each(?)``, ``pragma_table_info('t')``)."""
    for m in _TABLE_FUNCTION.finditer(text):
        if not re.match(r"(?:FROM|JOIN)\s+\(", m.group(0), re.I):
            name = _table(re.sub(r"^(?:FROM|JOIN|,)\s*|\s*\($", "", m.group(0), flags=re.I))
            if name is not None and name not in _SQL_FUNCTIONS:
                return None
    return {_unquote(w) for w in _WORD.findall(text)}


def sql_access(sql: str) -> SqlAccess | None:
    """The tables one SQL statement reads and writes, or None when unknown.

    Parameters
    ----------
    sql : str
        The text passed to ``execute``/``read_sql``.

    Returns
    -------
    SqlAccess or None
        None for anything but one plain ``SELECT``, ``INSERT``, ``REPLACE``,
        ``UPDATE``, ``DELETE``, ``CREATE TABLE``/``INDEX``, ``DROP TABLE`` or
        ``ALTER TABLE`` statement (a ``CREATE TABLE`` with ``REFERENCES`` is
        unknown too: a foreign key may cascade into other tables).
    """
    text = _plain(sql).strip().rstrip(";").strip()
    if not text or ";" in text or re.search(r"\b(?:REFERENCES|TRIGGER|VIEW|ATTACH|PRAGMA|WITH)\b", text, re.I):
        return None
    reads = _reads(text)
    if reads is None:
        return None
    if re.match(r"^SELECT\b", text, re.I):
        return SqlAccess(frozenset(reads), frozenset())
    for form in _WRITE_FORMS:
        m = form.match(text)
        if m:
            name = _table(m.group(1))
            if name is None:
                return None
            writes = {name}
            rename = re.search(rf"\bRENAME\s+TO\s+({_NAME})", text, re.I)
            if rename:
                new = _table(rename.group(1))
                if new is None:
                    return None
                writes.add(new)
            if form.pattern.startswith("^UPDATE"):
                reads.add(name)  # SET a = a + 1 reads the rows it changes
            return SqlAccess(frozenset(reads), frozenset(writes))
    return None


def table_path(db: str, table: str) -> str:
    """The pseudo-path of table ``table`` of database file ``db``."""
    return os.path.join(os.path.normpath(db), table)


@dataclass
class Databases:
    """What the graph remembers about the databases a session writes."""

    #: database file -> tables written since its last commit, rollback or close
    pending: dict[str, frozenset[str]] = field(default_factory=dict)
    #: database files taken whole: something unknown ran on them, or their
    #: schema holds a trigger or a view (seen when first met)
    opaque: set[str] = field(default_factory=set)
    #: database files whose schema was looked at
    checked: set[str] = field(default_factory=set)
    #: database files that may have others attached (SQL through them may touch any file)
    attached: set[str] = field(default_factory=set)

    def copy(self) -> "Databases":
        """An independent copy."""
        return Databases(dict(self.pending), set(self.opaque), set(self.checked), set(self.attached))

    def by_table(self, db: str) -> bool:
        """Whether statements on ``db`` may be taken table by table."""
        db = os.path.normpath(db)
        if db not in self.checked:
            self.checked.add(db)
            if not _plain_schema(db):
                self.opaque.add(db)
        return db not in self.opaque

    def written(self, db: str, tables) -> None:
        """``tables`` were written through a connection to ``db`` (not committed yet)."""
        db = os.path.normpath(db)
        self.pending[db] = self.pending.get(db, frozenset()) | frozenset(tables)

    def end_transaction(self, db: str) -> frozenset[str]:
        """A commit, rollback or close on ``db``: the tables it settles."""
        return self.pending.pop(os.path.normpath(db), frozenset())


def _plain_schema(db: str) -> bool:
    """Whether the SQLite file ``db`` has no trigger and no view (or does
    not exist yet); False when it cannot be read."""
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        return True
    try:
        con = sqlite3.connect(Path(db).resolve().as_uri() + "?mode=ro", uri=True, timeout=0)
        try:
            n = con.execute("select count(*) from sqlite_master where type in ('trigger', 'view')").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return n == 0
