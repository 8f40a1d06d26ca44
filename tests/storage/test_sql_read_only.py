"""`tickvault sql` is really read-only: every DuckDB statement kind that could write a file,
change a setting or load an extension is refused, alone, behind EXPLAIN and EXPLAIN ANALYZE,
inside a CTE, after a comment and as a second statement, and not one byte of the database
changes; the locked connection itself opens no file but the pinned data files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB
from tickvault.storage.readers.sql import RefusedStatement, locked_connection, run_query


def _tree(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath, n)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlro") / "db"
    d = ParquetDB(path, auto_compact=False)
    d.upsert_prices(make_bars(["AAA", "BBB"], "2024-01-01", 30))
    d.compact()
    d.upsert_prices(make_bars(["AAA"], "2024-02-01", 3, salt=1))
    return path


def _snaps(path: Path):
    d = ParquetDB(path)
    return [d.snapshot(n) for n in d.tables()]


def _writers(db: Path, out: Path) -> list[str]:
    data_file = next((db / "prices").glob("*.parquet"))
    return [
        f"COPY (SELECT 'pwned' AS x) TO '{data_file}' (FORMAT parquet)",
        f"COPY (SELECT 'pwned' AS x) TO '{data_file}' (FORMAT parquet, USE_TMP_FILE false)",
        f"COPY prices TO '{out}/all.csv'",
        f"COPY (SELECT 1) TO '{db}/tickvault.json' (FORMAT csv)",
        f"EXPORT DATABASE '{out}/exp'",
        f"ATTACH '{out}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "RESET threads",
        "PRAGMA threads = 1",
        "CALL pragma_version()",
        "CREATE TABLE t AS SELECT 1 AS a",
        "CREATE VIEW v AS SELECT 1 AS a",
        "CREATE MACRO m(a) AS a",
        "INSERT INTO prices SELECT * FROM prices",
        "UPDATE prices SET close = 0",
        "DELETE FROM prices",
        "CHECKPOINT",
        "DETACH memory",
        "USE memory",
    ]


def _forms(statement: str) -> list[str]:
    return [
        statement,
        f"EXPLAIN {statement}",
        f"EXPLAIN ANALYZE {statement}",
        f"explain  /* a comment */ analyze\n{statement}",
        f"WITH q AS (SELECT 1) {statement}",
        f"-- a comment\n{statement}",
        f"/* a comment */ {statement}",
        f"SELECT 1; {statement}",
        f"SELECT 1;\n-- c\n{statement};",
    ]


@pytest.mark.slow
def test_every_writing_statement_in_every_form_is_refused_and_nothing_changes(db, tmp_path):
    before = _tree(db)
    snaps = _snaps(db)
    tried = 0
    for statement in _writers(db, tmp_path):
        for sql in _forms(statement):
            with pytest.raises((RefusedStatement, duckdb.Error)):
                run_query(snaps, sql)
            tried += 1
    assert tried == len(_writers(db, tmp_path)) * 9
    assert _tree(db) == before
    assert list(tmp_path.iterdir()) == []


def test_explain_analyze_copy_is_refused_by_the_guard_with_a_clear_message(db, tmp_path):
    with pytest.raises(RefusedStatement, match="EXPLAIN ANALYZE runs the statement"):
        run_query(_snaps(db), f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp_path}/x.csv'")
    with pytest.raises(RefusedStatement, match="a COPY statement is refused"):
        run_query(_snaps(db), f"COPY (SELECT 1) TO '{tmp_path}/x.csv'")


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("INSTALL httpfs", "an INSTALL statement is refused"),
        ("-- c\n force  install httpfs", "a FORCE INSTALL statement is refused"),
        ("LOAD httpfs", "a LOAD statement is refused"),
        ("ATTACH 'x.duckdb'", "an ATTACH statement is refused"),
        ("EXPORT DATABASE 'x'", "an EXPORT statement is refused"),
        ("CHECKPOINT", "a CHECKPOINT statement is refused"),
        ("USE memory", "a USE statement is refused"),
        ("UPDATE prices SET close = 0", "an UPDATE statement is refused"),
        ("WITH q AS (SELECT 1) INSERT INTO prices SELECT * FROM prices", "an INSERT statement"),
        ("SELECT 1; /* c */ DETACH memory", "a DETACH statement is refused"),
    ],
)
def test_a_refused_statement_is_named_as_written(db, sql, words):
    """INSTALL is DuckDB's LOAD type and CHECKPOINT its CALL: the message names what the
    user wrote, with "a" or "an" as the word needs."""
    with pytest.raises(RefusedStatement, match=words):
        run_query(_snaps(db), sql)


def test_pivot_with_its_values_runs_and_without_them_is_refused(db, tmp_path):
    """A PIVOT that names its values (IN ...) is a SELECT and runs; without them DuckDB
    runs it as several statements (it first creates a type of the values), which the guard
    cannot prove read-only: refused in every form with a message saying how to write it,
    and nothing changes."""
    snaps = _snaps(db)
    got = run_query(
        snaps, "PIVOT (SELECT ticker FROM prices) ON ticker IN ('AAA', 'BBB') USING count(*)"
    )
    counts = ParquetDB(db).read_table()["ticker"].value_counts()
    assert got.columns.tolist() == ["AAA", "BBB"]
    assert got.iloc[0].tolist() == [counts["AAA"], counts["BBB"]]
    before = _tree(db)
    pivot = "PIVOT prices ON ticker USING avg(close)"
    with pytest.raises(RefusedStatement, match=r"several .* PIVOT without an IN list .* IN \("):
        run_query(snaps, pivot)
    for sql in [*_forms(pivot), f"SELECT * FROM ({pivot})"]:
        with pytest.raises((RefusedStatement, duckdb.Error)):
            run_query(snaps, sql)
    assert _tree(db) == before
    assert list(tmp_path.iterdir()) == []


def test_select_and_explain_of_select_still_run(db):
    snaps = _snaps(db)
    n = ParquetDB(db).read_arrow().num_rows
    assert run_query(snaps, "SELECT count(*) AS n FROM prices")["n"].tolist() == [n]
    assert len(run_query(snaps, "EXPLAIN SELECT * FROM prices WHERE ticker = 'AAA'")) >= 1
    assert len(run_query(snaps, "EXPLAIN ANALYZE SELECT count(*) FROM prices")) >= 1
    got = run_query(snaps, "/* c */ WITH a AS (SELECT * FROM prices) SELECT count(*) AS n FROM a")
    assert got["n"].tolist() == [n]


def test_the_locked_connection_opens_no_other_file_and_cannot_be_unlocked(db, tmp_path):
    """The second line: even a statement that got past the guard cannot read other files,
    write a new file, fetch an extension or change a setting."""
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    con = locked_connection(_snaps(db))
    try:
        for sql in [
            f"SELECT * FROM read_text('{secret}')",
            "SELECT * FROM glob('/home/*')",
            "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')",
            f"COPY (SELECT 1) TO '{tmp_path}/new.csv'",
            f"COPY (SELECT 1) TO '{next((db / 'prices').glob('*.parquet'))}' (FORMAT parquet)",
            f"ATTACH '{tmp_path}/x.duckdb'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "SET lock_configuration = false",
        ]:
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert con.sql("SELECT count(*) FROM prices").fetchall()[0][0] > 0
        assert con.sql("SELECT current_setting('TimeZone')").fetchall()[0][0] == "UTC"
    finally:
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt"]


def test_the_reported_exploit_through_the_command_line(db):
    """The probe's command: exit 2, one line, the data file untouched, verify clean."""
    before = _tree(db)
    data_file = next((db / "prices").glob("*.parquet"))
    sql = f"EXPLAIN ANALYZE COPY (SELECT 'pwned' AS x) TO '{data_file}' (FORMAT parquet)"
    argv = [sys.executable, "-m", "tickvault", "--db", str(db), "sql", sql]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "read-only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _tree(db) == before
    assert ParquetDB(db).verify().ok


@pytest.mark.slow
def test_sql_reads_in_utc_whatever_the_machine_time_zone(db):
    """A date literal means midnight UTC and ::DATE is the UTC date under any TZ, so sql
    gives the same rows as tickvault query."""
    want = ParquetDB(db).read_table(start="2024-01-02", end="2024-01-31")
    sql = (
        "SELECT count(*) AS n, min(timestamp::DATE) AS d FROM prices "
        "WHERE timestamp >= '2024-01-02' AND timestamp < '2024-02-01'"
    )
    for tz in ("America/New_York", "Asia/Tokyo"):
        argv = [sys.executable, "-m", "tickvault", "--db", str(db), "sql", "--format", "csv", sql]
        r = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": tz}
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["n,d", f"{len(want)},2024-01-02T00:00:00Z"], (tz, r.stdout)
    rel = ParquetDB(db).to_duckdb()
    assert rel.filter("timestamp >= '2024-01-02' AND timestamp < '2024-02-01'").count(
        "*"
    ).fetchall()[0][0] == len(want)
