"""Issue 23 items 1 and 2: sources take an interval; the demo makes bars inside exchange
sessions only; a source that cannot give the interval is refused before any fetch."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write, get_source, update
from tickvault.errors import BadSourceData, ConfigError
from tickvault.sources.demo import DemoSource

NY = "America/New_York"


def xnys_minutes(start: str, end: str) -> dict[str, int]:
    """Minutes per session of XNYS between two dates, from exchange_calendars itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xc

        cal = xc.get_calendar("XNYS")
        sched = cal.schedule.loc[start:end]
    return {
        str(day.date()): int((row["close"] - row["open"]).total_seconds() // 60)
        for day, row in sched.iterrows()
    }


def test_demo_minutes_fill_each_session_and_nothing_else():
    bars = DemoSource(interval="1m", validate=True).fetch("AAPL", "2024-11-18", "2024-12-31")
    local = bars["timestamp"].dt.tz_convert(NY)
    per_day = local.dt.date.astype(str).value_counts().to_dict()
    want = xnys_minutes("2024-11-18", "2024-12-31")  # a bare end date: its whole day
    assert per_day == want
    assert per_day["2024-11-29"] == 210  # the day after Thanksgiving closes at 13:00
    assert per_day["2024-12-24"] == 210
    assert "2024-11-28" not in per_day and "2024-12-25" not in per_day  # holidays
    minutes = local.dt.hour * 60 + local.dt.minute
    assert minutes.min() == 9 * 60 + 30 and minutes.max() == 15 * 60 + 59
    assert (bars["timestamp"].dt.second == 0).all()
    assert bars["vwap"].between(bars["low"], bars["high"]).all()


def test_demo_bars_do_not_depend_on_the_range_asked_for():
    src = DemoSource(interval="1m")
    wide = src.fetch("MSFT", "2024-06-03", "2024-06-07")
    narrow = src.fetch("MSFT", "2024-06-05 15:00", "2024-06-05 15:10")
    part = wide[wide["timestamp"].between(narrow["timestamp"].min(), narrow["timestamp"].max())]
    assert len(narrow) == 11
    pd.testing.assert_frame_equal(part.reset_index(drop=True), narrow)
    again = DemoSource(interval="1m").fetch("MSFT", "2024-06-03", "2024-06-07")
    pd.testing.assert_frame_equal(wide, again)


def test_demo_minutes_open_and_close_where_the_daily_bar_does():
    day = DemoSource().fetch("AAPL", "2024-06-05", "2024-06-05")
    minutes = DemoSource(interval="1m").fetch("AAPL", "2024-06-05", "2024-06-05")  # whole day
    assert len(minutes) == 390
    assert minutes["open"].iloc[0] == day["open"].iloc[0]
    assert minutes["close"].iloc[-1] == day["close"].iloc[-1]


@pytest.mark.parametrize(("interval", "minutes"), [("5m", 5), ("15m", 15), ("30m", 30)])
def test_coarser_demo_bars_aggregate_the_minutes(interval, minutes):
    ones = DemoSource(interval="1m").fetch("IBM", "2024-11-29", "2024-11-30")
    coarse = DemoSource(interval=interval, validate=True).fetch("IBM", "2024-11-29", "2024-11-30")
    g = ones.set_index("timestamp").resample(f"{minutes}min", closed="left", label="left")
    want = pd.DataFrame(
        {
            "open": g["open"].first(),
            "high": g["high"].max(),
            "low": g["low"].min(),
            "close": g["close"].last(),
            "volume": g["volume"].sum(),
        }
    ).dropna()
    got = coarse.set_index("timestamp")[list(want.columns)]
    assert len(coarse) == 210 // minutes
    pd.testing.assert_frame_equal(got, want, check_freq=False, check_names=False)


def test_demo_hourly_bars_start_at_the_open_and_the_early_close_cuts_the_last():
    bars = DemoSource(interval="1h").fetch("IBM", "2024-11-29", "2024-11-30")
    local = bars["timestamp"].dt.tz_convert(NY).dt.strftime("%H:%M").tolist()
    assert local == ["09:30", "10:30", "11:30", "12:30"]


def test_demo_has_only_finished_bars_as_of_a_day():
    src = DemoSource(interval="1m", as_of="2024-06-05")
    bars = src.fetch("AAPL")
    assert bars["timestamp"].max() == pd.Timestamp("2024-06-05 19:59", tz="UTC")
    assert bars["timestamp"].min() >= pd.Timestamp("2024-05-06", tz="UTC")  # 30 days


def test_stooq_is_daily_only_and_says_so():
    with pytest.raises(ConfigError, match=r"stooq gives daily bars only.*interval='1m'"):
        get_source("stooq", interval="1m")


def test_a_source_without_the_interval_is_refused_before_any_fetch(tmp_path):
    calls = []

    def daily(ticker, start, end):
        calls.append(ticker)
        return DemoSource().fetch(ticker, start, end)

    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, interval="1m", start="2024-06-03", end="2024-06-05")
    before = db.read_table("prices", interval="1m")
    with pytest.raises(ConfigError, match=r"gives 1d bars, but this run writes 1m bars"):
        update(["AAPL"], daily, db, interval="1m")
    with pytest.raises(ConfigError, match=r"gives 1d bars.*prices_1m"):
        update(["AAPL"], DemoSource(), db, interval="1m")
    with pytest.raises(ConfigError, match="stooq gives daily bars only"):
        update(["AAPL"], "stooq", db, interval="1m")
    assert calls == []
    assert db.read_table("prices", interval="1m").equals(before)
    assert db.tables() == ["prices_1m"]  # no daily bars written anywhere


def test_update_of_an_interval_uses_its_own_watermarks_and_recorded_source(tmp_path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-05")
    fetch_and_write(["AAPL"], "demo", db, start="2024-01-02", end="2024-06-10")
    report = update(["AAPL"], None, db, interval="5m", end="2024-06-07")
    assert report.results["AAPL"].status == "written"
    # a bare end date includes that day's bars
    assert db.watermarks(interval="5m")["AAPL"] == pd.Timestamp("2024-06-07 19:55", tz="UTC")
    assert db.watermarks()["AAPL"] == pd.Timestamp("2024-06-10", tz="UTC")  # daily untouched
    five = db.read_table("prices", interval="5m")
    assert set(five["timestamp"].dt.minute % 5) == {0}
    assert five["vwap"].notna().all() and five["trade_count"].notna().all()


def write_csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_intraday_timestamps_with_an_offset_or_tz(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(
        folder / "AAPL.csv",
        [
            "Datetime,Open,High,Low,Close,Volume,VWAP,Trades",
            "2024-03-01 09:30:00-05:00,10,11,9,10.5,100,10.2,7",
            "2024-03-01T14:31:00Z,10,11,9,10.5,100,,",
        ],
    )
    write_csv(
        folder / "MSFT.csv",
        ["Datetime,Open,High,Low,Close,Volume", "2024-03-01 09:30:00,10,11,9,10.5,100"],
    )
    src = get_source("csv", path=folder, interval="1m")
    aapl = src.fetch("AAPL", "2024-03-01", "2024-03-02")
    assert list(aapl["timestamp"]) == [
        pd.Timestamp("2024-03-01 14:30", tz="UTC"),
        pd.Timestamp("2024-03-01 14:31", tz="UTC"),
    ]
    assert aapl["vwap"].iloc[0] == 10.2 and np.isnan(aapl["vwap"].iloc[1])
    with pytest.raises(BadSourceData) as info:
        src.fetch("MSFT", "2024-03-01", "2024-03-02")
    msg = str(info.value)
    assert "MSFT.csv line 2" in msg and "no UTC offset" in msg and "tz=" in msg
    ny = get_source("csv", path=folder, interval="1m", tz=NY)
    msft = ny.fetch("MSFT", "2024-03-01", "2024-03-02")
    assert msft["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 14:30", tz="UTC")
    with pytest.raises(ConfigError, match="tz='Mars/Olympus' is not a time zone"):
        get_source("csv", path=folder, interval="1m", tz="Mars/Olympus")


def test_csv_bars_off_the_grid_fail_naming_the_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(
        folder / "AAPL.csv",
        [
            "Datetime,Open,High,Low,Close,Volume",
            "2024-03-01T14:30:00Z,10,11,9,10.5,100",
            "2024-03-01T14:33:00Z,10,11,9,10.5,100",
        ],
    )
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        ["AAPL"], get_source("csv", path=folder, interval="5m"), db, interval="5m"
    )
    r = report.results["AAPL"]
    assert r.status == "failed" and "off-grid 5m" in (r.error or "")
    assert db.tables() == []


def test_parquet_intraday_naive_column_needs_tz(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    naive = pd.date_range("2024-03-01 09:30", periods=3, freq="1min")
    frame = pd.DataFrame(
        {"timestamp": naive, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1.0}
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "IBM.parquet")
    with pytest.raises(BadSourceData, match=r"IBM.parquet row 1.*naive timestamps.*tz="):
        get_source("parquet", path=folder, interval="1m").fetch("IBM", "2024-03-01", "2024-03-02")
    got = get_source("parquet", path=folder, interval="1m", tz=NY).fetch(
        "IBM", "2024-03-01", "2024-03-02"
    )
    assert list(got["timestamp"].dt.strftime("%H:%M")) == ["14:30", "14:31", "14:32"]


def test_a_naive_time_the_clock_change_skips_is_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(
        folder / "AAPL.csv",
        [
            "Datetime,Open,High,Low,Close,Volume",
            "2024-03-10T01:59:00Z,10,11,9,10.5,100",
            "2024-03-10 02:30:00,10,11,9,10.5,100",
        ],
    )
    src = get_source("csv", path=folder, interval="1m", tz=NY)
    with pytest.raises(
        BadSourceData, match=r"AAPL.csv line 3.*not one instant in America/New_York"
    ):
        src.fetch("AAPL", "2024-03-09", "2024-03-11")
