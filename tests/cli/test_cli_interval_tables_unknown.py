"""The one rule for unknown tickers holds for every interval's table: a ticker with daily
bars is not known to the minute table, and a table the database does not have (no
5-minute bars) is exit 3 naming the tables it has — never an empty success."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from helpers.files import tree_snapshot
from tickvault import ParquetDB


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Daily bars of AAA and BBB, minute bars of AAA only."""
    p = tmp_path_factory.mktemp("intervals") / "db"
    db = ParquetDB(p)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2024-06-03", 5))
    stamps = pd.date_range("2024-06-03 13:30", periods=30, freq="1min", tz="UTC")
    bars = pd.DataFrame({"ticker": "AAA", "timestamp": stamps, "open": 1.0, "high": 1.0})
    db.upsert_prices(bars.assign(low=1.0, close=1.0, volume=100), interval="1m")
    db.close()
    return p


@pytest.mark.parametrize(
    "args",
    [
        ["query", "BBB", "--interval", "1m", "--format", "csv"],
        ["query", "BBB", "--interval", "1m"],
        ["freshness", "BBB", "--interval", "1m"],
        ["export", "OUT", "--interval", "1m", "--tickers", "BBB"],
    ],
)
def test_a_ticker_with_daily_bars_only_is_unknown_to_the_minute_table(
    path: Path, args: list[str]
) -> None:
    out = path.parent / "out"
    before = tree_snapshot(path)
    r = tv(*[str(out) if a == "OUT" else a for a in args], db=path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    line = one_clear_line(r)
    # the library's strict=True message: names it and the table that has it
    assert "BBB not in the database" in line and "(1 ticker, e.g. AAA)" in line, line
    assert "BBB is in prices: read it with interval='1d' (--interval 1d)" in line, line
    assert r.stdout == "" and not out.exists()
    assert tree_snapshot(path) == before


def test_a_ticker_nowhere_lists_each_stored_ticker_once(path: Path) -> None:
    r = tv("query", "CCC", "--interval", "1m", db=path)
    assert r.returncode == 3
    line = one_clear_line(r)
    assert "CCC not in the database" in line and "(1 ticker, e.g. AAA)" in line, line


@pytest.mark.parametrize(
    "args",
    [
        ["query", "AAA", "--interval", "5m", "--format", "csv"],
        ["query", "--interval", "5m"],
        ["freshness", "--interval", "5m"],
        ["export", "OUT", "--interval", "5m"],
    ],
)
def test_an_interval_without_a_table_is_exit_3_naming_the_tables(
    path: Path, args: list[str]
) -> None:
    out = path.parent / "out5"
    before = tree_snapshot(path)
    r = tv(*[str(out) if a == "OUT" else a for a in args], db=path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    line = one_clear_line(r)
    assert "no table 'prices_5m'" in line and "prices, prices_1m" in line, line
    assert "--interval 1d or --interval 1m" in line, line
    assert r.stdout == "" and not out.exists()
    assert tree_snapshot(path) == before


@pytest.mark.parametrize("command", ["verify", "history", "compact", "repair", "vacuum"])
def test_maintenance_of_a_table_that_is_not_there_is_exit_3(path: Path, command: str) -> None:
    r = tv(command, "--table", "prices_5m", db=path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "no table 'prices_5m'" in one_clear_line(r)


def test_the_tables_that_are_there_still_read(path: Path) -> None:
    r = tv("query", "AAA", "--interval", "1m", "--format", "csv", db=path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\nAAA,") == 30
    r = tv("query", "BBB", "--format", "csv", db=path)
    assert r.returncode == 0 and r.stdout.count("\nBBB,") == 5
    r = tv("freshness", "AAA", "--interval", "1m", "--now", "2024-06-03T14:00Z", db=path)
    assert r.returncode == 0, r.stderr
    r = tv("actions", "BBB", db=path)  # a ticker with prices but no actions is known
    assert r.returncode == 0, r.stderr
