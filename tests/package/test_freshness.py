"""Freshness in calendar days and in missed trading sessions, against real databases.

Every database is hand-made with ``upsert_prices`` at chosen timestamps and judged at fixed
``now`` values. XNYS closes at 16:00 New York time: 20:00 UTC in summer, 21:00 UTC in winter.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tickvault import ConfigError, DatabaseNotFound, ParquetDB
from tickvault.data_freshness import (
    freshness,
    freshness_summary,
    get_calendar,
    get_price_data_freshness,
)


def bar(ticker: str, timestamp: str | pd.Timestamp) -> pd.DataFrame:
    ts = pd.Timestamp(timestamp)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return pd.DataFrame(
        {
            "ticker": [ticker],
            "timestamp": [ts],
            "open": [10.0],
            "high": [11.0],
            "low": [9.0],
            "close": [10.5],
            "volume": [100.0],
        }
    )


def write(db: ParquetDB, **last: str | pd.Timestamp) -> None:
    """One bar per ticker at the given timestamp (plus an older one, so history exists)."""
    for ticker, ts in last.items():
        older = pd.Timestamp(ts) - pd.Timedelta(days=30)
        db.upsert_prices(pd.concat([bar(ticker, older), bar(ticker, ts)]))


def ages(db: ParquetDB, now: str, calendar: str | None = "XNYS") -> dict[str, int]:
    frame = freshness(db, now, calendar)
    return {r.ticker: int(r.age) for r in frame.itertuples()}


# -- the original, calendar-day behaviour ---------------------------------------------------


@pytest.mark.parametrize(
    ("now", "status", "is_stale", "days_old"),
    [
        ("2024-03-01T18:00Z", "🟢 Fresh", False, 0),
        ("2024-03-02T09:00Z", "🟢 Fresh", False, 1),
        ("2024-03-03T09:00Z", "🟡 2 days old", False, 2),
        ("2024-03-04T09:00Z", "🟡 3 days old", False, 3),  # Friday's bar on Monday
        ("2024-03-08T23:59Z", "🟡 7 days old", False, 7),
        ("2024-03-09T00:00Z", "🔴 STALE (8 days)", True, 8),
        ("2024-06-01T00:00Z", "🔴 STALE (92 days)", True, 92),
    ],
)
def test_original_status_strings(db, now, status, is_stale, days_old):
    write(db, AAPL="2024-03-01")
    got = get_price_data_freshness(db, now=now)
    assert got["status"] == status
    assert got["is_stale"] is is_stale
    assert got["days_old"] == days_old
    assert got["latest"] == "2024-03-01T00:00:00Z"
    assert got["tickers"] == 1
    assert got["age_unit"] == "days"


def test_the_overall_status_is_the_oldest_tickers(db):
    write(db, AAPL="2024-03-01", MSFT="2024-02-01")
    got = get_price_data_freshness(db, now="2024-03-01T18:00Z")
    assert got["status"] == "🔴 STALE (29 days)" and got["is_stale"] is True
    assert got["days_old"] == 29 and got["stale_tickers"] == 1
    assert got["latest"] == "2024-03-01T00:00:00Z"  # the newest bar


def test_thresholds_are_configurable(db):
    write(db, AAPL="2024-03-01")
    got = get_price_data_freshness(db, now="2024-03-02T12:00Z", fresh_days=0, stale_days=0)
    assert got["status"] == "🔴 STALE (1 day)"
    assert got["is_stale"] is True
    frame = freshness(db, "2024-03-03T12:00Z", fresh_days=0, stale_days=2)
    assert frame.loc[0, "status"] == "🟡 2 days old"
    with pytest.raises(ConfigError, match="fresh_days"):
        freshness(db, fresh_days=5, stale_days=2)


def test_path_is_opened_read_only(tmp_path: Path, db, db_path):
    write(db, AAPL="2024-03-01")
    assert get_price_data_freshness(str(db_path), now="2024-03-01")["status"] == "🟢 Fresh"
    with pytest.raises(DatabaseNotFound):
        freshness(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_naive_now_is_utc(db):
    write(db, AAPL="2024-03-01")
    assert ages(db, "2024-03-02 23:00", None) == {"AAPL": 1}
    assert ages(db, pd.Timestamp("2024-03-03T00:30", tz="Europe/Berlin"), None) == {"AAPL": 1}


# -- empty databases and tickers without rows -----------------------------------------------


def test_empty_database(db, db_path):
    got = get_price_data_freshness(db)
    assert got["status"] == "⚪ Empty"
    assert got["is_stale"] is True
    assert got["days_old"] is None and got["latest"] is None
    frame = freshness(db_path, calendar="XNYS")
    assert frame.empty
    assert list(frame.columns) == [
        "ticker",
        "last_timestamp",
        "age",
        "age_unit",
        "status",
        "level",
        "is_stale",
    ]
    summary = freshness_summary(db)
    assert summary["status"] == "⚪ Empty"
    assert summary["level"] == "empty" and summary["is_stale"] is True
    assert summary["tickers"] == 0 and summary["latest"] is None


def test_requested_ticker_without_rows(db):
    write(db, AAPL="2024-07-12")
    frame = freshness(db, "2024-07-13", "XNYS", tickers=["AAPL", "NOPE"])
    assert frame["ticker"].tolist() == ["AAPL", "NOPE"]
    nope = frame.iloc[1]
    assert nope["status"] == "⚪ No data" and nope["level"] == "missing"
    assert nope["is_stale"] and pd.isna(nope["age"]) and pd.isna(nope["last_timestamp"])
    summary = freshness_summary(frame)
    assert summary["counts"] == {"fresh": 1, "aging": 0, "stale": 0, "missing": 1, "future": 0}
    assert summary["is_stale"] is True
    assert summary["status"] == "⚪ No data for 1 ticker"
    assert summary["worst"][0]["ticker"] == "NOPE"


# -- trading sessions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "age"),
    [
        ("2024-07-12T21:00Z", 0),  # Friday after the close: the bar is Friday's
        ("2024-07-13T12:00Z", 0),  # Saturday
        ("2024-07-14T23:00Z", 0),  # Sunday
        ("2024-07-15T13:30Z", 0),  # Monday, the open
        ("2024-07-15T19:59Z", 0),  # Monday, a minute before the close
        ("2024-07-15T20:00Z", 1),  # Monday's close: one completed session missing
        ("2024-07-16T20:00Z", 2),
    ],
)
def test_friday_bar_over_the_weekend(db, now, age):
    write(db, AAPL="2024-07-12")
    assert ages(db, now) == {"AAPL": age}
    frame = freshness(db, now, "XNYS")
    assert frame.loc[0, "age_unit"] == "sessions"
    assert frame.loc[0, "status"] == ("🟢 Fresh" if age <= 1 else "🟡 2 sessions old")


def test_calendar_fixes_the_monday_false_alarm(db):
    write(db, AAPL="2024-07-12")
    assert get_price_data_freshness(db, "2024-07-15T14:00Z")["status"] == "🟡 3 days old"
    got = get_price_data_freshness(db, "2024-07-15T14:00Z", calendar="XNYS")
    assert got["status"] == "🟢 Fresh" and got["days_old"] == 0
    assert got["calendar"] == "XNYS" and got["age_unit"] == "sessions"


def test_independence_day_does_not_count(db):
    write(db, AAPL="2024-07-03")  # Wednesday; Thursday 2024-07-04 is a holiday
    assert ages(db, "2024-07-05T12:00Z") == {"AAPL": 0}
    assert ages(db, "2024-07-05T12:00Z", None) == {"AAPL": 2}
    assert ages(db, "2024-07-05T20:00Z") == {"AAPL": 1}  # Friday's close
    assert ages(db, "2024-07-08T20:00Z") == {"AAPL": 2}  # Monday's close


def test_thanksgiving_and_the_early_close(db):
    write(db, AAPL="2024-11-27")  # Wednesday before Thanksgiving (Thursday 28th closed)
    assert ages(db, "2024-11-29T12:00Z") == {"AAPL": 0}
    # Friday 29th closes early, at 13:00 New York = 18:00 UTC (winter time)
    assert ages(db, "2024-11-29T17:59Z") == {"AAPL": 0}
    assert ages(db, "2024-11-29T18:00Z") == {"AAPL": 1}
    # Monday 2 December closes at 21:00 UTC
    assert ages(db, "2024-12-02T20:59Z") == {"AAPL": 1}
    assert ages(db, "2024-12-02T21:00Z") == {"AAPL": 2}


def test_a_bar_on_a_holiday_covers_the_session_before(db):
    write(db, AAPL="2024-07-04")  # some sources emit every weekday
    assert ages(db, "2024-07-05T12:00Z") == {"AAPL": 0}
    assert ages(db, "2024-07-05T20:00Z") == {"AAPL": 1}


def test_stale_in_sessions(db):
    write(db, OLD="2024-06-03", NEW="2024-07-12")
    frame = freshness(db, "2024-07-16T21:00Z", "XNYS")
    old = frame.set_index("ticker").loc["OLD"]
    # sessions 4 Jun .. 16 Jul, minus Juneteenth (19 Jun) and 4 Jul
    assert old["age"] == 29
    assert old["status"] == "🔴 STALE (29 sessions)"
    assert bool(old["is_stale"]) is True
    summary = freshness_summary(frame)
    assert summary["status"] == "🔴 STALE (29 sessions)"
    assert summary["counts"] == {"fresh": 0, "aging": 1, "stale": 1, "missing": 0, "future": 0}
    assert [w["ticker"] for w in summary["worst"]] == ["OLD", "NEW"]
    assert summary["latest"] == "2024-07-12T00:00:00Z"
    assert summary["oldest"] == "2024-06-03T00:00:00Z"


# -- time zones -----------------------------------------------------------------------------


def test_bars_stamped_in_exchange_time_or_utc(db):
    ny = "America/New_York"
    write(
        db,
        UTC_MIDNIGHT="2024-07-12",  # a date label
        NY_MIDNIGHT=pd.Timestamp("2024-07-12 00:00", tz=ny),  # 04:00 UTC, same session
        NY_CLOSE=pd.Timestamp("2024-07-12 16:00", tz=ny),  # 20:00 UTC, same session
        LATE_THURSDAY=pd.Timestamp("2024-07-12 02:00", tz="UTC"),  # 22:00 NY on the 11th
    )
    got = ages(db, "2024-07-15T20:00Z")
    assert got == {"LATE_THURSDAY": 2, "NY_CLOSE": 1, "NY_MIDNIGHT": 1, "UTC_MIDNIGHT": 1}


def test_tokyo_bar_stamped_in_local_time(db):
    # Friday's Tokyo bar stamped at local midnight (15:00 UTC on Thursday) is Friday's
    # bar: the daily table stores its date (decision 025), not Thursday afternoon
    write(db, T7203=pd.Timestamp("2024-07-12 00:00", tz="Asia/Tokyo"))
    stored = db.read_table(tickers="T7203")["timestamp"].iloc[-1]
    assert stored == pd.Timestamp("2024-07-12", tz="UTC")
    # Tokyo closes 15:30 JST = 06:30 UTC (15:00 before November 2024)
    assert ages(db, "2024-07-12T07:00Z", "XTKS") == {"T7203": 0}
    assert ages(db, "2024-07-12T07:00Z", None) == {"T7203": 0}  # calendar days in UTC
    # 15 July is a Japanese holiday (Marine Day): Tuesday's close is the first one missed
    assert ages(db, "2024-07-15T12:00Z", "XTKS") == {"T7203": 0}
    assert ages(db, "2024-07-16T07:00Z", "XTKS") == {"T7203": 1}


# -- calendars and metadata -----------------------------------------------------------------


def test_unknown_calendar_names_valid_examples(db):
    with pytest.raises(ConfigError, match=r"unknown calendar 'NOPE'.*XNYS"):
        freshness(db, calendar="NOPE")


def test_calendars_are_cached():
    assert get_calendar("xnys") is get_calendar("XNYS")


def test_freshness_never_opens_data_files(db, db_path):
    write(db, AAPL="2024-07-12", MSFT="2024-07-11")
    for f in (db_path / "prices").glob("*.parquet"):
        f.write_bytes(b"not parquet at all")
    frame = freshness(db_path, "2024-07-15T21:00Z", "XNYS")
    assert frame["age"].tolist() == [1, 2]
    assert frame["last_timestamp"].tolist() == [
        pd.Timestamp("2024-07-12", tz="UTC"),
        pd.Timestamp("2024-07-11", tz="UTC"),
    ]
