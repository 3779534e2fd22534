"""Reading tables out of SQL text, and what the databases' state remembers."""

from __future__ import annotations

import sqlite3

import pytest

from lineapy_ext.analysis.sql import Databases, SqlAccess, sql_access, table_path


def acc(reads=(), writes=()):
    return SqlAccess(frozenset(reads), frozenset(writes))


@pytest.mark.parametrize("sql, expected", [
    ("select * from sales", acc({"sales"})),
    ("""
        select c.id, sum(s.units) as u -- from nowhere
        from sales s join customers c using (id)
        group by c.id order by u desc limit 5
     """, acc({"sales", "customers"})),
    ("select * from a, b as bb, main.\"C\" where x in (select y from d)", acc({"a", "b", "c", "d"})),
    ("select 'from x' from y", acc({"y"})),
    ("select * from (select * from q) sub", acc({"q"})),
    ("SELECT * FROM t1 LEFT JOIN t2 ON t1.a = t2.a;", acc({"t1", "t2"})),
    ("insert into notes values (?, ?)", acc(writes={"notes"})),
    ("insert or replace into t (a) select a from u join w on 1", acc({"u", "w"}, {"t"})),
    ("update customers set segment = 'vip' where id = 'C4'", acc({"customers"}, {"customers"})),
    ("delete from t where a in (select a from z)", acc({"t", "z"}, {"t"})),
    ("create table if not exists notes (id text, note text)", acc(writes={"notes"})),
    ("create table t2 as select * from t1", acc({"t1"}, {"t2"})),
    ("drop table if exists t", acc(writes={"t"})),
    ("create unique index ix on t (a)", acc(writes={"t"})),
    ("alter table t rename to u", acc(writes={"t", "u"})),
])
def test_plain_statements_are_read_table_by_table(sql, expected):
    got = sql_access(sql)
    assert got.writes == expected.writes
    # every name of the statement counts as read: a column or an alias costs precision only
    assert expected.reads <= got.reads


@pytest.mark.parametrize("sql, tables", [
    ("select * from t where x = 'a--' union select * from u", {"t", "u"}),  # -- in a string is no comment
    ("select * from t -- it's a comment\nwhere y in (select z from w)", {"t", "w"}),
    ("select * from (select * from a) x, b", {"a", "b"}),  # a list after a subquery
    ("select * from a join c on a.k = c.k, d", {"a", "c", "d"}),  # a comma join after ON
    ("select * from t where s = 'it''s; from q'", {"t"}),
    ("select * from temp", {"temp"}),  # SQLite takes many keywords as table names
    ('select * from "sales.2024"', {"sales.2024"}),  # to_sql("sales.2024") makes this one
])
def test_names_hidden_in_strings_or_comments_do_not_count(sql, tables):
    got = sql_access(sql)
    assert tables <= got.reads
    assert "q" not in got.reads and "comment" not in got.reads


@pytest.mark.parametrize("sql", [
    "create view v as select * from t",
    "create trigger tr after insert on t begin delete from u; end",
    "create table c (p int references parent(id) on delete cascade)",
    "with x as (select 1) select * from x",
    "select 1; select 2",
    "select * from json_each(?)",
    "select a, my_udf(b) from t",
    "pragma foreign_keys = on",
    "attach database 'x.db' as other",
    "begin",
    "vacuum",
    "",
])
def test_anything_else_is_unknown(sql):
    assert sql_access(sql) is None


def test_pending_tables_are_settled_once(tmp_path):
    dbs = Databases()
    db = str(tmp_path / "a.db")
    dbs.written(db, {"t"})
    dbs.written(db, {"u"})
    copy = dbs.copy()
    assert dbs.end_transaction(db) == {"t", "u"}
    assert dbs.end_transaction(db) == frozenset()
    assert copy.end_transaction(db) == {"t", "u"}  # the copy is independent


def test_a_file_with_a_trigger_or_view_is_taken_whole(tmp_path):
    plain, tied = tmp_path / "plain.db", tmp_path / "tied.db"
    for path, extra in ((plain, ""), (tied, "create view v as select * from t;")):
        con = sqlite3.connect(path)
        con.executescript("create table t (a int);" + extra)
        con.close()
    dbs = Databases()
    assert dbs.by_table(str(plain))
    assert not dbs.by_table(str(tied))
    assert dbs.by_table(str(tmp_path / "new.db"))  # not created yet: nothing in it
    assert table_path(str(plain), "t").endswith("plain.db/t")
