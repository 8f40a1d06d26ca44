"""Daily bars given at midnight of their exchange's time zone are the bars of that date
(decision 025): yfinance and pandas-datareader index daily bars by local midnight
(``2026-12-03 00:00-05:00``), which is 05:00 UTC; stored as that instant, a correction
from such a source became a second bar next to the 00:00 UTC bar of the same date."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from tickvault import ParquetDB
from tickvault.errors import ValidationError

NY = "America/New_York"


def frame(ticker: str, stamps, close: float) -> pd.DataFrame:
    n = len(stamps)
    return pd.DataFrame(
        {
            "ticker": [ticker] * n,
            "timestamp": stamps,
            "open": [close] * n,
            "high": [close + 1] * n,
            "low": [close - 1] * n,
            "close": [close] * n,
            "volume": [1e6] * n,
        }
    )


@pytest.fixture
def db(tmp_path) -> ParquetDB:
    return ParquetDB(tmp_path / "db", auto_compact=False)


def utc_dates(*days: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(days), tz="UTC", name="timestamp")


def test_a_yfinance_frame_replaces_the_bars_of_its_dates(db):
    db.upsert_prices(frame("AAPL", utc_dates("2026-06-02", "2026-12-03", "2026-12-04"), 10.0))
    # yfinance: a tz-aware index of local midnights, named Date; summer and winter time
    idx = pd.DatetimeIndex(["2026-06-02", "2026-12-03", "2026-12-04"], tz=NY, name="timestamp")
    yf = frame("AAPL", idx, 20.0).drop(columns="timestamp").set_index(idx)
    before = yf.copy()
    db.upsert_prices(yf)
    df = db.read_table(tickers="AAPL")
    assert list(df["timestamp"]) == list(utc_dates("2026-06-02", "2026-12-03", "2026-12-04"))
    assert list(df["close"]) == [20.0, 20.0, 20.0]  # replaced, not added next to them
    pd.testing.assert_frame_equal(yf, before)  # the caller's frame is as it was


def test_arrow_input_in_a_local_zone_is_read_the_same_way(db):
    db.upsert_prices(frame("AAPL", utc_dates("2026-12-03"), 10.0))
    for unit in ("s", "us", "ns"):
        t = pa.Table.from_pandas(
            frame("AAPL", pd.DatetimeIndex(["2026-12-03"], tz=NY), 30.0), preserve_index=False
        )
        i = t.schema.get_field_index("timestamp")
        t = t.set_column(i, "timestamp", t.column(i).cast(pa.timestamp(unit, NY)))
        db.upsert_prices(t)
        df = db.read_table(tickers="AAPL")
        assert list(df["timestamp"]) == list(utc_dates("2026-12-03")) and df["close"][0] == 30


def test_other_times_of_day_stay_the_instants_they_are(db):
    # a close-time stamp is kept (the daily table accepts it, decision 018): only a
    # midnight of the value's own zone is a date
    stamps = pd.DatetimeIndex(["2026-12-03 00:00", "2026-12-04 16:00"], tz=NY)
    db.upsert_prices(frame("MSFT", stamps, 10.0))
    got = list(db.read_table(tickers="MSFT")["timestamp"])
    assert got == [pd.Timestamp("2026-12-03", tz="UTC"), pd.Timestamp("2026-12-04 21:00", tz="UTC")]
    # UTC and naive values are never moved
    db.upsert_prices(frame("IBM", pd.to_datetime(["2026-12-03 05:00"]), 10.0))
    db.upsert_prices(frame("IBM", pd.DatetimeIndex(["2026-12-04 05:00"], tz="UTC"), 10.0))
    got = list(db.read_table(tickers="IBM")["timestamp"])
    assert got == [
        pd.Timestamp("2026-12-03 05:00", tz="UTC"),
        pd.Timestamp("2026-12-04 05:00", tz="UTC"),
    ]


def test_intraday_tables_keep_instants(db):
    # a 1-minute bar at New York midnight is that instant (05:00 UTC), not a date
    db.upsert_prices(
        frame("AAPL", pd.DatetimeIndex(["2026-12-03 00:00"], tz=NY), 10.0), interval="1m"
    )
    got = db.read_table(tickers="AAPL", interval="1m")["timestamp"]
    assert list(got) == [pd.Timestamp("2026-12-03 05:00", tz="UTC")]


def test_bars_stored_at_local_midnight_before_are_not_doubled(db):
    """A database filled from yfinance before decision 025 holds 05:00 UTC stamps; its
    next yfinance frame, now stored as dates, would add a second bar to each overlapping
    date. It is refused with the way to restamp, and nothing is written; after the
    restamp the same frame replaces the bars."""
    old = pd.DatetimeIndex(["2026-12-02 05:00", "2026-12-03 05:00"], tz="UTC")
    db.upsert_prices(frame("AAPL", old, 10.0))  # as such a frame was stored before
    db.upsert_prices(frame("MSFT", utc_dates("2026-12-03"), 10.0))
    version = db.version
    new = pd.DatetimeIndex(["2026-12-03", "2026-12-04"], tz=NY)
    with pytest.raises(ValidationError, match=r"AAPL's stored daily bars are stamped at 05:00"):
        db.upsert_prices(pd.concat([frame("MSFT", new, 20.0), frame("AAPL", new, 20.0)]))
    assert db.version == version
    # new dates only (after the last stored bar) cannot collide: accepted
    db.upsert_prices(frame("AAPL", pd.DatetimeIndex(["2026-12-07"], tz=NY), 30.0))
    # ... and the older stamps are still seen once the last bar is a date
    with pytest.raises(ValidationError, match=r"stamped at 05:00 UTC \(e.g. 2026-12-02"):
        db.upsert_prices(frame("AAPL", new, 20.0))
    # the restamp the message gives
    df = db.read_table(tickers="AAPL")
    db.delete(tickers="AAPL", dry_run=False)
    db.upsert_prices(df.assign(timestamp=df.timestamp.dt.tz_convert(NY)))
    db.upsert_prices(frame("AAPL", new, 20.0))
    got = db.read_table(tickers="AAPL")
    assert list(got["timestamp"]) == list(
        utc_dates("2026-12-02", "2026-12-03", "2026-12-04", "2026-12-07")
    )
    assert list(got["close"]) == [10.0, 20.0, 20.0, 30.0]


@pytest.mark.parametrize("parallel_write", [False, True])
def test_a_pipeline_run_fails_only_the_tickers_it_would_double(db, parallel_write):
    """Sources validate (and date) their frames before the run sees them, so the guard
    cannot hang on the conversion: it looks at the stored stamps of every daily batch,
    and a run fails the ticker whose bars would double, not the run."""
    from tickvault import fetch_and_write

    db.upsert_prices(frame("AAPL", pd.DatetimeIndex(["2026-12-02 05:00"], tz="UTC"), 10.0))
    db.upsert_prices(frame("MSFT", utc_dates("2026-12-02"), 10.0))

    def yfinance_like(ticker, start, end):
        return frame(ticker, pd.DatetimeIndex(["2026-12-02", "2026-12-03"], tz=NY), 20.0)

    report = fetch_and_write(
        ["AAPL", "MSFT"], yfinance_like, db, start="2026-12-01", end="2026-12-04",
        scheduler="synchronous", parallel_write=parallel_write,
    )  # fmt: skip
    assert (report["written"], report["failed"]) == (1, 1)
    assert "AAPL's stored daily bars are stamped at 05:00 UTC" in report["errors"]["AAPL"]
    got = db.read_table()
    assert got[got.ticker == "AAPL"]["close"].tolist() == [10.0]  # not doubled
    assert got[got.ticker == "MSFT"]["close"].tolist() == [20.0, 20.0]


def test_utc_batches_are_written_as_given_and_an_index_is_judged_like_a_column(db):
    # the daily table accepts any instant (decision 018): UTC midnights over 05:00 stamps
    # are written as given; only local midnights made dates are checked, indexed or not
    db.upsert_prices(frame("AAPL", pd.DatetimeIndex(["2026-12-02 05:00"], tz="UTC"), 10.0))
    db.upsert_prices(frame("AAPL", utc_dates("2026-12-01"), 20.0).set_index("timestamp"))
    ny = pd.DatetimeIndex(["2026-12-02"], tz=NY, name="timestamp")
    with pytest.raises(ValidationError, match="would be a second bar for 2026-12-02"):
        db.upsert_prices(frame("AAPL", ny, 30.0).set_index("timestamp"))
    # older history before the stored span cannot collide: written
    db.upsert_prices(frame("AAPL", pd.DatetimeIndex(["2026-11-27"], tz=NY), 40.0))
    assert db.read_table(tickers="AAPL")["close"].tolist() == [40.0, 20.0, 10.0]


def test_a_duplicated_timestamp_column_is_a_validation_error(db):
    f = frame("AAPL", pd.DatetimeIndex(["2026-12-02"], tz=NY), 10.0)
    f = pd.concat([f, f[["timestamp"]]], axis=1)
    with pytest.raises(ValidationError, match="duplicate column names"):
        db.upsert_prices(f)
