"""tickvault delete / restore / gaps and --as-of, run as real processes (issue 24)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from helpers.files import tree_snapshot
from tickvault import ParquetDB


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "db"
    db = ParquetDB(p)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2024-01-02", 20))
    db.close()
    return p


@pytest.mark.slow
def test_delete_previews_then_applies_one_commit_and_restore_undoes_it(path: Path) -> None:
    before = tree_snapshot(path)
    r = tv("delete", "aaa", "--start", "2024-01-08", "--end", "2024-01-12", db=path)
    assert r.returncode == 0, r.stderr
    assert "would delete AAA: 5 rows, 2024-01-08 .. 2024-01-12" in r.stdout
    assert "add --apply" in r.stderr
    assert tree_snapshot(path) == before  # a preview writes nothing

    r = tv("delete", "AAA", "--start", "2024-01-08", "--end", "2024-01-12", "--apply", db=path)
    assert r.returncode == 0, r.stderr
    assert "deleted 5 rows of 1 ticker(s) (version 2)" in r.stdout
    assert "tickvault restore --version 1 --apply" in r.stderr
    db = ParquetDB(path, create=False)
    assert db.history()[-1]["operation"] == "delete" and len(db.read_table()) == 35

    r = tv("restore", "--version", "1", "--json", db=path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] and doc["tickers"][0]["come_back"] == 5 and db.version == 2

    r = tv("restore", "--version", "1", "--apply", db=path)
    assert r.returncode == 0, r.stderr
    assert "restored AAA: 15 → 20 rows (5 come back, 0 go, 0 change)" in r.stdout
    pd.testing.assert_frame_equal(db.read_table(), db.read_table(version=1))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["delete"], ["delete needs tickers", "--all-tickers"]),
        (["delete", "--all-tickers"], ["--all-tickers needs --start"]),
        (["delete", "AAA", "--all-tickers", "--start", "2024-01-01"], ["not both"]),
        (["delete", "AAA", "--start", "01/02/2024", "--apply"], ["--start", "YYYY-MM-DD"]),
        (["restore", "--apply"], ["--version", "--as-of", "required"]),
        (["restore", "--version", "1", "--as-of", "2024-01-01"], ["not allowed with"]),
        (["gaps"], ["--calendar", "--moves"]),
        (["gaps", "--moves", "0"], ["--moves", "e.g. 0.5"]),
        (["query", "--as-of", "1999-01-01"], ["before table 'prices' existed"]),
    ],
)
def test_bad_input_is_exit_2_with_one_clear_line_and_changes_nothing(
    path: Path, args: list[str], words: list[str]
) -> None:
    before = tree_snapshot(path)
    r = tv(*args, db=path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = one_clear_line(r)
    for w in words:
        assert w in line, line
    assert tree_snapshot(path) == before


@pytest.mark.parametrize(
    "args",
    [
        ["restore", "--version", "9"],
        ["restore", "--version", "9", "--apply"],
        ["export", "OUT", "--version", "9"],
        ["sql", "--version", "9", "SELECT count(*) FROM prices"],
    ],
)
def test_a_version_that_does_not_exist_is_exit_3_for_every_command(
    path: Path, args: list[str]
) -> None:
    """docs/cli.md's exit table: a --version that does not exist is 3 (not found), for
    restore (a preview or applied) as for export and sql."""
    if args[0] == "sql":
        pytest.importorskip("duckdb")
    args = [str(path.parent / "out") if a == "OUT" else a for a in args]
    before = tree_snapshot(path)
    r = tv(*args, db=path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    line = one_clear_line(r)
    assert "9" in line and "does not exist" in line and "newest" in line, line
    assert tree_snapshot(path) == before


@pytest.mark.parametrize("command", ["delete", "restore"])
def test_delete_and_restore_of_a_table_that_is_not_there_is_exit_3(
    path: Path, command: str
) -> None:
    which = ["AAA", "--start", "2024-01-02"] if command == "delete" else ["--version", "0"]
    before = tree_snapshot(path)
    r = tv(command, *which, "--interval", "5m", "--apply", db=path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    line = one_clear_line(r)
    assert "no table 'prices_5m'" in line and "--interval 1d" in line, line
    assert tree_snapshot(path) == before


def test_delete_of_an_unknown_ticker_is_exit_3(path: Path) -> None:
    r = tv("delete", "AAAA", "--apply", db=path)
    assert r.returncode == 3 and "AAA" in one_clear_line(r)


@pytest.mark.slow
def test_query_and_sql_as_of(path: Path) -> None:
    pytest.importorskip("duckdb")
    time.sleep(0.01)
    moment = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.01)
    db = ParquetDB(path, create=False)
    db.delete(tickers="BBB", dry_run=False)
    r = tv("query", "--as-of", moment, "--format", "csv", db=path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\nBBB,") == 20
    r = tv("sql", "SELECT count(*) AS n FROM prices", "--as-of", moment, "--json", db=path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["n"] == 40
    r = tv("sql", "SELECT count(*) AS n FROM prices", "--json", db=path)
    assert json.loads(r.stdout)[0]["n"] == 20


@pytest.mark.slow
def test_gaps_exit_codes_for_cron(tmp_path: Path) -> None:
    p = tmp_path / "db"
    db = ParquetDB(p)
    bars = make_bars("AAA", "2024-01-02", 30)
    bars = bars[bars["timestamp"] != pd.Timestamp("2024-01-10", tz="UTC")]
    db.upsert_prices(bars)
    db.upsert_prices(make_bars("OK", "2024-01-02", 3))
    r = tv("gaps", "--calendar", "XNYS", "--json", db=p)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["gaps"][0] == {
        "ticker": "AAA",
        "first": "2024-01-10",
        "last": "2024-01-10",
        "sessions": 1,
    }
    r = tv("gaps", "OK", "--calendar", "XNYS", "--moves", "0.5", db=p)
    assert r.returncode == 0, r.stderr
    assert "no missing XNYS sessions; no suspicious moves" in r.stdout
