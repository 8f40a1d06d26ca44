"""A bare ``end`` date includes that whole day in backfills and updates, for minute bars as
for daily ones, from every built-in source (an ``end`` with a time of day stays exact). It
used to be read as midnight, so minute runs dropped the end day and reported success."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write, get_source, update
from tickvault.sources.base import bounds, clip
from tickvault.times import parse_end, to_ns

NY = "America/New_York"


def days(db: ParquetDB, interval: str) -> dict[str, int]:
    """Bars per UTC date of ``interval``'s table."""
    ts = db.read_table("prices", interval=interval)["timestamp"]
    return ts.dt.date.astype(str).value_counts().sort_index().to_dict()


@pytest.mark.parametrize("end", ["2024-06-04", dt.date(2024, 6, 4)])
def test_a_minute_backfill_includes_the_end_day(tmp_path: Path, end: object) -> None:
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["AAPL"], "demo", db, start="2024-06-03", end=end, interval="1m")
    assert report["rows"] == 780
    assert days(db, "1m") == {"2024-06-03": 390, "2024-06-04": 390}


def test_a_daily_backfill_includes_the_end_day(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, start="2024-06-03", end="2024-06-04")
    assert days(db, "1d") == {"2024-06-03": 1, "2024-06-04": 1}


def test_an_end_with_a_time_stays_exact(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    end = "2024-06-04T15:00:00Z"
    fetch_and_write(["AAPL"], "demo", db, start="2024-06-03", end=end, interval="1m")
    assert db.watermarks(interval="1m")["AAPL"] == pd.Timestamp(end)
    midnight = ParquetDB(tmp_path / "midnight")
    end = "2024-06-04T00:00:00Z"
    fetch_and_write(["AAPL"], "demo", midnight, start="2024-06-03", end=end, interval="1m")
    assert days(midnight, "1m") == {"2024-06-03": 390}


def test_a_minute_update_includes_the_end_day(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, start="2024-06-03", end="2024-06-04", interval="1m")
    update(None, None, db, interval="1m", end="2024-06-06")
    last = db.watermarks(interval="1m")["AAPL"]
    assert last == pd.Timestamp("2024-06-06 15:59", tz=NY).tz_convert("UTC")


def test_a_one_day_csv_backfill_writes_that_day(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "OK.csv").write_text(
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-06-04 09:30:00-04:00,10,11,9,10.5,100\n"
        "2024-06-04 09:31:00-04:00,10,11,9,10.5,100\n"
        "2024-06-05 09:30:00-04:00,10,11,9,10.5,100\n"
    )
    db = ParquetDB(tmp_path / "db")
    src = get_source("csv", path=str(folder), interval="1m")
    report = fetch_and_write(["OK"], src, db, start="2024-06-04", end="2024-06-04", interval="1m")
    assert (report["written"], report["unchanged"], report["rows"]) == (1, 0, 2)
    assert days(db, "1m") == {"2024-06-04": 2}


def test_sources_read_a_bare_end_date_as_the_end_of_that_day() -> None:
    lo, hi = bounds("2024-06-03", "2024-06-04")
    assert lo == pd.Timestamp("2024-06-03", tz="UTC")
    assert hi == pd.Timestamp("2024-06-05", tz="UTC") - pd.Timedelta(1, "ns")
    assert bounds(None, dt.date(2024, 6, 4))[1] == hi
    assert bounds(None, "2024-06-04T00:00Z")[1] == pd.Timestamp("2024-06-04", tz="UTC")
    # the one rule, shared with reads
    assert parse_end("2024-06-04") is not None and parse_end("2024-06-04").value == to_ns(
        "2024-06-04", end=True
    )
    assert parse_end("2262-04-11") == pd.Timestamp.max.tz_localize("UTC")  # the last storable
    minutes = get_source("demo", interval="1m").fetch("AAPL", "2024-06-04", "2024-06-04")
    assert len(minutes) == 390
    frame = pd.DataFrame({"timestamp": pd.to_datetime(["2024-06-04 19:59"], utc=True)})
    assert len(clip(frame, None, "2024-06-04")) == 1
