"""Issue 23 items 1 and 3: one table per bar interval, bars on their interval's grid, the
optional vwap and trade_count columns, and databases written before those columns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.files import tree_snapshot
from tickvault import ParquetDB
from tickvault.errors import ConfigError, ValidationError
from tickvault.modes import INTERVAL_CHOICES, parse_interval, prices_table
from tickvault.schema import get_schema

OLD_DB = Path(__file__).resolve().parents[1] / "data" / "db_before_vwap"


def minute_bars(ticker: str, start: str, periods: int, freq: str = "1min") -> pd.DataFrame:
    idx = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    rng = np.random.default_rng(sum(map(ord, ticker)) + periods)
    close = 100 + np.cumsum(rng.normal(0, 0.1, periods))
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": idx,
            "open": close - 0.05,
            "high": close + 0.2,
            "low": close - 0.2,
            "close": close,
            "volume": rng.integers(100, 1000, periods).astype(float),
            "vwap": close - 0.01,
            "trade_count": rng.integers(1, 50, periods),
        }
    )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("1m", "1m"), ("1MIN", "1m"), (" 5m ", "5m"), ("60m", "1h"), ("1H", "1h"), (None, "1d")],
)
def test_interval_words_and_aliases(typed, meant):
    assert parse_interval(typed) == meant


@pytest.mark.parametrize("bad", ["3m", "1w", "", "daily", 60])
def test_an_unknown_interval_names_the_choices(bad):
    with pytest.raises(ConfigError) as info:
        parse_interval(bad)
    assert all(c in str(info.value) for c in INTERVAL_CHOICES)
    assert "interval=" in str(info.value)


def test_each_interval_is_its_own_table(db):
    db.upsert_prices(make_bars("AAPL", "2024-03-01", 3))
    db.upsert_prices(minute_bars("AAPL", "2024-03-01 14:30", 30), interval="1m")
    db.upsert_prices(minute_bars("MSFT", "2024-03-01 14:30", 6, "5min"), interval="5m")
    assert db.tables() == ["prices", "prices_1m", "prices_5m"]
    daily = db.read_table("prices")
    assert len(daily) == 3 and (daily["timestamp"].dt.hour == 0).all()
    one = db.read_table("prices", interval="1m")
    assert len(one) == 30 and set(one["ticker"]) == {"AAPL"}
    assert db.read_table("prices", interval="1min").equals(one)
    five = db.read_table("prices", interval="5m", tickers="MSFT", start="2024-03-01 14:40")
    assert list(five["timestamp"].dt.minute) == [40, 45, 50, 55]
    assert db.read_arrow("prices", interval="5m").num_rows == 6
    marks = db.watermarks(interval="1m")
    assert marks == {"AAPL": pd.Timestamp("2024-03-01 14:59", tz="UTC")}
    info = db.info()["tables"]
    assert info["prices_1m"]["rows"] == 30 and info["prices_1m"]["tickers"] == 1
    assert info["prices_5m"]["first"].startswith("2024-03-01T14:30")
    assert info["prices"]["rows"] == 3


def test_intraday_periods_come_from_the_schema():
    assert get_schema("prices").period == "year"
    assert {iv: get_schema(prices_table(iv)).period for iv in INTERVAL_CHOICES[:-1]} == {
        "1m": "day",
        "2m": "day",
        "5m": "day",
        "15m": "day",
        "30m": "month",
        "1h": "month",
    }


def test_one_minute_files_are_cut_by_day(db):
    two_days = pd.concat(
        [minute_bars("AAPL", "2024-03-04 14:30", 10), minute_bars("AAPL", "2024-03-05 14:30", 10)]
    )
    result = db.upsert_prices(two_days, interval="1m")
    assert len(result.files) == 2  # one level-1 file per day


@pytest.mark.parametrize(
    ("interval", "stamp", "bad"),
    [
        ("1m", "2024-03-01 14:31:30", "14:31:30"),
        ("5m", "2024-03-01 15:03", "15:03"),
        ("15m", "2024-03-01 14:40", "14:40"),
        ("1h", "2024-03-01 14:15", "14:15"),
    ],
)
def test_bars_off_the_interval_grid_are_refused_naming_the_first(db, interval, stamp, bad):
    good = minute_bars("AAPL", "2024-03-01 14:00", 2, "1h")
    frame = pd.concat([good, good.iloc[[0]].assign(timestamp=pd.Timestamp(stamp, tz="UTC"))])
    before = tree_snapshot(db.path)
    with pytest.raises(ValidationError) as info:
        db.upsert_prices(frame, interval=interval)
    msg = str(info.value)
    assert "timestamp" in msg and f"off-grid {interval}" in msg and bad in msg
    assert "e.g." in msg
    assert tree_snapshot(db.path) == before


def test_hourly_bars_may_start_on_the_half_hour(db):
    # 09:30 New York: hourly bars aligned to the session open, as vendors give them
    db.upsert_prices(minute_bars("AAPL", "2024-03-01 14:30", 7, "1h"), interval="1h")
    assert db.read_table("prices", interval="1h")["timestamp"].dt.minute.eq(30).all()


def test_daily_table_keeps_accepting_what_it_did(db):
    bars = make_bars("AAPL", "2024-03-01", 2)
    bars["timestamp"] = bars["timestamp"] + pd.Timedelta(hours=21)  # a close-time stamp
    db.upsert_prices(bars)
    assert len(db.read_table()) == 2


def test_vwap_and_trade_count_are_optional_and_read_as_null(db):
    with_extras = minute_bars("AAPL", "2024-03-01 14:30", 5)
    without = minute_bars("MSFT", "2024-03-01 14:30", 5).drop(columns=["vwap", "trade_count"])
    db.upsert_prices(with_extras, interval="1m")
    db.upsert_prices(without, interval="1m")
    df = db.read_table("prices", interval="1m")
    a, m = df[df.ticker == "AAPL"], df[df.ticker == "MSFT"]
    assert np.allclose(a["vwap"], with_extras["vwap"])
    assert list(a["trade_count"]) == list(with_extras["trade_count"])
    assert m["vwap"].isna().all() and m["trade_count"].isna().all()
    assert str(df["trade_count"].dtype) == "Int64"  # whole numbers, null where none


@pytest.mark.parametrize(
    ("change", "column", "problem"),
    [
        (lambda d: d.assign(vwap=d["high"] + 1), "vwap", "outside-[low, high]"),
        (lambda d: d.assign(vwap=d["low"] - 0.01), "vwap", "outside-[low, high]"),
        (lambda d: d.assign(vwap=np.inf), "vwap", "non-finite"),
        (lambda d: d.assign(trade_count=-1), "trade_count", "negative"),
        (lambda d: d.assign(trade_count=2.5), "trade_count", "not whole numbers"),
    ],
)
def test_bad_vwap_or_trade_count_is_refused(db, change, column, problem):
    before = tree_snapshot(db.path)
    with pytest.raises(ValidationError) as info:
        db.upsert_prices(change(minute_bars("AAPL", "2024-03-01 14:30", 3)), interval="1m")
    msg = str(info.value)
    assert f"column {column!r}" in msg and problem in msg and "row 0" in msg and "e.g." in msg
    assert tree_snapshot(db.path) == before


def test_a_database_from_before_vwap_reads_and_grows_without_a_rewrite(tmp_path):
    path = tmp_path / "db"
    shutil.copytree(OLD_DB, path)
    old_files = {p.name: p.read_bytes() for p in (path / "prices").glob("*.parquet")}
    db = ParquetDB(path, create=False)
    df = db.read_table()
    assert len(df) == 20 and df["vwap"].isna().all() and df["trade_count"].isna().all()
    assert db.verify().ok
    # new bars carry vwap; old ones still read null; compaction merges both kinds
    new = make_bars("AAPL", "2024-03-15", 2)
    new["vwap"] = new["close"]
    new["trade_count"] = [7, 8]
    db.upsert_prices(new)
    df = db.read_table(tickers="AAPL")
    assert df["vwap"].notna().sum() == 2 and list(df["trade_count"].dropna()) == [7, 8]
    for name, data in old_files.items():  # nothing rewritten by opening or appending
        assert (path / "prices" / name).read_bytes() == data
    db.compact()
    assert db.read_table(tickers="AAPL").equals(df)
    assert db.verify().ok
    db.close()


def test_interval_with_a_table_that_holds_no_bars_is_an_error(db):
    db.upsert_prices(make_bars("AAPL", "2024-03-01", 2))
    with pytest.raises(ConfigError, match="interval= applies to the prices tables"):
        db.read_table("actions", interval="1m")


def test_a_table_and_an_interval_that_disagree_are_an_error(db):
    db.upsert_prices(minute_bars("AAPL", "2024-03-01 14:30", 5), interval="1m")
    assert len(db.read_table("prices_1m", interval="1m")) == 5
    with pytest.raises(ConfigError, match="holds 5m bars, not interval='1m'"):
        db.read_table("prices_5m", interval="1m")


def test_reads_across_day_files_come_back_sorted_and_newest_wins(db):
    """Day files that each hold every ticker share no key: a read interleaves them by
    ticker (read_merge.keys_apart); a correction overlapping them still wins."""
    days = [
        minute_bars(t, f"2024-03-0{d} 14:30", 30)
        for d in (4, 5, 6)
        for t in ("MSFT", "AAPL", "IBM")
    ]
    data = pd.concat(days, ignore_index=True)
    db.upsert_prices(data, interval="1m")
    assert len(db.snapshot("prices_1m").files) == 3
    got = db.read_table("prices", interval="1m").drop(columns=["adj_close"])
    want = data.sort_values(["ticker", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    some = db.read_table("prices", interval="1m", tickers=["IBM", "AAPL"], start="2024-03-05")
    assert list(some["ticker"].unique()) == ["AAPL", "IBM"] and len(some) == 2 * 60
    assert some["timestamp"].is_monotonic_increasing is False  # two tickers, each sorted
    assert all(g["timestamp"].is_monotonic_increasing for _, g in some.groupby("ticker"))
    fix = data[(data.ticker == "AAPL") & (data.timestamp.dt.day == 5)].assign(volume=1.0)
    db.upsert_prices(fix, interval="1m")
    again = db.read_table("prices", interval="1m")
    assert len(again) == len(data)
    aapl5 = again[(again.ticker == "AAPL") & (again.timestamp.dt.day == 5)]
    assert (aapl5["volume"] == 1.0).all()
    assert again.equals(again.sort_values(["ticker", "timestamp"]).reset_index(drop=True))


def test_a_ticker_asked_of_the_wrong_interval_is_pointed_to_its_table(db):
    """A database holding only minute bars answered a daily read of AAPL with "AAPL not
    in the database (0 tickers)" (new-user trial): the error says where AAPL is."""
    from tickvault.errors import UnknownTicker

    db.upsert_prices(minute_bars("AAPL", "2024-03-01 14:30", 5), interval="1m")
    with pytest.raises(UnknownTicker, match=r"AAPL is in prices_1m: read it with interval='1m'"):
        db.read_table(tickers="AAPL", strict=True)
    with pytest.raises(UnknownTicker, match=r"MSFT not in the database") as info:
        db.read_table(tickers="MSFT", strict=True)
    assert "prices_1m" not in str(info.value)  # only where a ticker really is
    assert len(db.read_table(tickers="AAPL", interval="1m")) == 5


def test_delete_and_restore_take_interval_like_reads(db):
    """``db.delete(..., interval="1m")`` was a TypeError while reads and writes took it."""
    db.upsert_prices(minute_bars("AAPL", "2024-03-01 14:30", 5), interval="1m")
    before = db.snapshot("prices_1m").version
    plan = db.delete(tickers="AAPL", interval="1m")
    assert plan.dry_run and plan.rows == 5
    db.delete(tickers="AAPL", start="2024-03-01T14:33Z", interval="1m", dry_run=False)
    assert len(db.read_table(tickers="AAPL", interval="1m")) == 3
    db.restore(version=before, interval="1m", dry_run=False)
    assert len(db.read_table(tickers="AAPL", interval="1m")) == 5
    with pytest.raises(ConfigError, match="interval= applies to the prices tables"):
        db.delete("actions", tickers="AAPL", interval="1m")
