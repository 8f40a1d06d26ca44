"""Sources deliver corporate actions with their bars; the pipeline stores both in one run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write, update
from tickvault.sources import DemoSource, get_source
from tickvault.sources.actions import Fetched


def test_demo_backfill_stores_splits_and_dividends(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    source = DemoSource(as_of="2024-06-28")
    report = fetch_and_write(["NVDA", "IBM"], source, db, start="2024-01-01", end="2024-06-28")
    assert report["failed"] == 0
    acts = db.read_table("actions")
    nvda = acts[acts["ticker"] == "NVDA"]
    assert ("split", 10.0) in set(zip(nvda["kind"], nvda["value"], strict=True))
    assert set(acts["ticker"]) == {"NVDA"}  # IBM has none
    expected = source.actions("NVDA", pd.Timestamp("2024-01-01", tz="UTC"), None)
    assert nvda.reset_index(drop=True).equals(expected)
    raw = db.read_table("prices", tickers="NVDA")
    adj = db.read_table("prices", tickers="NVDA", adjust="splits")
    before = raw["timestamp"] < pd.Timestamp("2024-06-10", tz="UTC")
    assert (raw.loc[before, "close"] > 5 * raw.loc[~before, "close"].max()).all()  # 10-for-1
    assert adj.loc[before, "close"].tolist() == pytest.approx(
        (raw.loc[before, "close"] / 10).tolist(), rel=1e-12
    )


def test_update_after_a_new_split_keeps_every_bar_as_traded(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["NVDA"], DemoSource(as_of="2024-06-05"), db, start="2024-05-01")
    assert "split" not in set(db.read_table("actions")["kind"])
    later = DemoSource(as_of="2024-06-28")
    update(["NVDA"], later, db)
    assert "split" in set(db.read_table("actions")["kind"])
    stored = db.read_table("prices", tickers="NVDA")
    truth = later.fetch("NVDA", "2024-05-01", "2024-06-28")
    assert stored["close"].tolist() == truth["close"].tolist()
    # a second update writes no actions again (nothing new)
    n = db.table_version("actions")
    update(["NVDA"], later, db)
    assert db.table_version("actions") == n


def _with_bad_split(ticker: str, start: object, end: object) -> Fetched:
    bars = DemoSource(as_of="2024-06-28").fetch(ticker, "2024-06-03", "2024-06-07")
    actions = pd.DataFrame({"timestamp": ["2024-06-05"], "kind": ["split"], "value": [0.0]}).assign(
        timestamp=lambda d: pd.to_datetime(d["timestamp"], utc=True)
    )
    return Fetched(bars, actions)


def _with_dividend(ticker: str, start: object, end: object) -> Fetched:
    bars = DemoSource(as_of="2024-06-28").fetch(ticker, "2024-06-03", "2024-06-07")
    actions = pd.DataFrame(
        {"timestamp": pd.to_datetime(["2024-06-05"], utc=True), "kind": "dividend", "value": 0.5}
    )
    return Fetched(bars, actions)


def test_a_plain_callable_may_return_bars_and_actions(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["ABC"], _with_dividend, db)
    assert report["written"] == 1
    assert db.read_table("actions")["value"].tolist() == [0.5]


def test_a_bad_action_fails_its_ticker_naming_the_row(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["ABC"], _with_bad_split, db)
    assert report["failed"] == 1
    error = report.results["ABC"].error
    assert "non-positive" in error and "ABC" in error and "2024-06-05" in error
    assert "actions" not in db.tables() and "prices" not in db.tables()


def test_csv_with_yfinance_dividends_and_stock_splits_columns(tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "XYZ.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2024-03-01,400,401,399,400,1000,0,0\n"
        "2024-03-04,101,102,100,101,4000,0,4\n"
        "2024-03-05,100,101,99,100,4000,0.25,0.0\n"
    )
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["XYZ"], get_source("csv", path=folder), db)
    acts = db.read_table("actions")
    assert list(zip(acts["kind"], acts["value"], strict=True)) == [
        ("split", 4.0),
        ("dividend", 0.25),
    ]
    assert db.read_table("prices", adjust="splits")["close"].tolist() == [100.0, 101.0, 100.0]


def test_separate_actions_file_and_bad_value_names_the_line(tmp_path: Path):
    bars = tmp_path / "XYZ.csv"
    bars.write_text("Date,Open,High,Low,Close,Volume\n2024-03-01,10,10,10,10,1\n")
    actions = tmp_path / "actions.csv"
    actions.write_text("symbol,date,kind,value\nXYZ,2024-03-04,split,2\nOTHER,2024-03-04,split,3\n")
    source = get_source("csv", path=bars, actions=actions)
    got = source.fetch_with_actions("XYZ")  # type: ignore[attr-defined]
    assert got.actions[["kind", "value"]].values.tolist() == [["split", 2.0]]
    actions.write_text("symbol,date,kind,value\nXYZ,2024-03-04,split,two\n")
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["XYZ"], get_source("csv", path=bars, actions=actions), db)
    assert "actions.csv line 2" in report.results["XYZ"].error
