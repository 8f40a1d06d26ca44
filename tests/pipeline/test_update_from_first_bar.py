"""update() never fetches before a ticker's first stored bar: its lookback window (a few
business days before the last stored bar, to catch revisions) starts at
max(last - lookback, first stored bar). It used to reach before the backfilled range and
bring back the oldest bars a user had deleted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tickvault import ParquetDB, fetch_and_write, update
from tickvault.pipeline import update_start
from tickvault.sources import DemoSource

AS_OF = "2024-06-28"  # a Friday


def first(db: ParquetDB, interval: str = "1d") -> pd.Timestamp:
    return db.read_table("prices", interval=interval)["timestamp"].min()


def test_update_start_is_never_before_the_first_stored_bar() -> None:
    last = pd.Timestamp("2024-06-28", tz="UTC")
    assert update_start(last, 5, pd.Timestamp("2024-06-03", tz="UTC")) == pd.Timestamp(
        "2024-06-21", tz="UTC"
    )  # a long history: the window as before
    begin = pd.Timestamp("2024-06-26 13:30", tz="UTC")  # stored span shorter than the window
    assert update_start(last, 5, begin) == begin
    assert update_start(last, dt.timedelta(days=7), begin) == begin
    assert update_start(last, 0, last) == last


def test_a_daily_update_does_not_write_before_the_backfilled_range(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAA", "BBB"], DemoSource(as_of="2024-06-26"), db, start="2024-06-25")
    fetch_and_write(["CCC"], DemoSource(as_of="2024-06-26"), db, start="2024-01-02")
    report = update(None, DemoSource(as_of=AS_OF), db)
    assert report["failed"] == 0
    firsts = db.snapshot("prices").first_timestamps()
    assert firsts == {
        "AAA": pd.Timestamp("2024-06-25", tz="UTC"),
        "BBB": pd.Timestamp("2024-06-25", tz="UTC"),
        "CCC": pd.Timestamp("2024-01-02", tz="UTC"),
    }
    # the short tickers: their two stored bars and the two new ones; CCC: the full window
    assert report["tickers"]["AAA"]["fetched"] == 4
    assert report["tickers"]["CCC"]["fetched"] == 7  # 20 .. 28 June (the 19th a holiday)
    assert db.watermarks()["AAA"] == pd.Timestamp(AS_OF, tz="UTC")


def test_an_update_does_not_bring_back_deleted_oldest_bars(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    src = DemoSource(interval="1m")
    fetch_and_write(["AAPL"], src, db, start="2024-06-03", end="2024-06-05", interval="1m")
    db.delete(tickers="AAPL", end="2024-06-03", dry_run=False, interval="1m")
    kept = first(db, "1m")
    assert kept == pd.Timestamp("2024-06-04 13:30", tz="UTC")
    report = update(None, src, db, interval="1m", end="2024-06-06")
    assert report["failed"] == 0
    assert first(db, "1m") == kept
    assert report["tickers"]["AAPL"]["fetched"] == 3 * 390  # 4th .. 6th June, not the 3rd
    days = db.read_table("prices", interval="1m")["timestamp"].dt.date.astype(str)
    assert sorted(set(days)) == ["2024-06-04", "2024-06-05", "2024-06-06"]
