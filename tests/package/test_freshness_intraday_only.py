"""A database whose only bars are intraday: freshness without an interval judges the table
that holds bars (the finest), labelled with its interval and a note, instead of calling the
database empty; a database without any bars stays empty."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.bars import flat_bars
from tickvault import ParquetDB
from tickvault.data_freshness import (
    default_interval,
    freshness,
    freshness_summary,
    get_price_data_freshness,
    intervals_with_bars,
)


def bars(ticker: str, first: str, last: str, freq: str) -> pd.DataFrame:
    return flat_bars(ticker, first, last, freq)


NOW = "2024-06-05T15:00:00Z"


@pytest.fixture
def minute_only(tmp_path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        pd.concat(
            [
                bars("AAPL", "2024-06-05 14:00", "2024-06-05 14:58", "1min"),  # 1 min behind
                bars("MSFT", "2024-06-05 13:00", "2024-06-05 14:00", "1min"),  # 59 behind
            ]
        ),
        interval="1m",
    )
    yield db
    db.close()


def test_a_minute_only_database_is_judged_on_its_minute_bars(minute_only) -> None:
    db = minute_only
    assert intervals_with_bars(db) == {"1m": ["AAPL", "MSFT"]}
    assert default_interval(db) == "1m"
    got = get_price_data_freshness(db, now=NOW)
    explicit = get_price_data_freshness(db, now=NOW, interval="1m")
    assert got["status"] == explicit["status"] == "🔴 STALE (59 minutes)"
    assert got["tickers"] == 2 and got["stale_tickers"] == 1 and got["is_stale"] is True
    assert got["interval"] == "1m" and got["age_unit"] == "minutes"
    assert got["note"].startswith("no daily bars: judged the 1m bars (prices_1m, 2 tickers)")
    assert "--interval 1m" in got["note"] and explicit["note"] is None
    frame = freshness(db, now=NOW)
    assert list(frame["ticker"]) == ["AAPL", "MSFT"] and list(frame["age"]) == [1, 59]
    assert freshness_summary(frame)["interval"] == "1m"
    # a named ticker is looked up in the judged table too
    one = freshness(db, now=NOW, tickers=["aapl"])
    assert one.iloc[0]["level"] == "fresh"


def test_daily_bars_are_judged_whenever_there_are_any(minute_only) -> None:
    db = minute_only
    db.upsert_prices(bars("AAPL", "2024-06-03", "2024-06-04", "1D"))
    got = get_price_data_freshness(db, now=NOW)
    assert got["interval"] == "1d" and got["age_unit"] == "days" and got["note"] is None
    assert got["tickers"] == 1 and default_interval(db) == "1d"


def test_of_several_intraday_tables_the_finest_is_judged_and_the_others_named(tmp_path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(bars("AAPL", "2024-06-05 13:00", "2024-06-05 14:00", "1h"), interval="1h")
    db.upsert_prices(bars("MSFT", "2024-06-05 14:00", "2024-06-05 14:55", "5min"), interval="5m")
    got = get_price_data_freshness(db, now=NOW)
    assert got["interval"] == "5m" and got["tickers"] == 1
    assert "prices_5m, 1 ticker)" in got["note"] and "prices_1h (1 ticker)" in got["note"]
    db.close()


def test_a_database_without_bars_stays_empty(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    assert default_interval(db) == "1d" and intervals_with_bars(db) == {}
    got = get_price_data_freshness(db, now=NOW)
    assert got["status"] == "⚪ Empty" and got["is_stale"] is True
    assert got["interval"] == "1d" and got["note"] is None
    db.close()
