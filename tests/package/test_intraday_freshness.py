"""Issue 23 item 5: minute-level freshness of intraday tables, the same in the library and
`tickvault freshness --interval 1m`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.bars import flat_bars
from helpers.cli import tv
from tickvault import ParquetDB
from tickvault.data_freshness import freshness, get_price_data_freshness
from tickvault.errors import ConfigError


def ny(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="America/New_York").tz_convert("UTC")


def minutes_until(ticker: str, first: str, last: str) -> pd.DataFrame:
    """One-minute bars of ``ticker`` from ``first`` to ``last`` (New York times)."""
    return flat_bars(ticker, ny(first), ny(last))


@pytest.fixture
def db(tmp_path):
    d = ParquetDB(tmp_path / "db")
    d.upsert_prices(
        pd.concat(
            [
                minutes_until("LIVE", "2024-06-05 09:30", "2024-06-05 14:57"),  # 2 min ago
                minutes_until("LAGS", "2024-06-05 09:30", "2024-06-05 13:59"),  # 60 behind
                minutes_until("FULL", "2024-06-04 09:30", "2024-06-04 15:59"),  # yesterday
            ]
        ),
        interval="1m",
    )
    yield d
    d.close()


def levels(frame: pd.DataFrame) -> dict[str, tuple[str, int]]:
    return {r.ticker: (r.level, int(r.age)) for r in frame.itertuples()}


def test_while_the_session_is_open_age_is_minutes_behind(db):
    now = ny("2024-06-05 14:59")
    frame = freshness(db, now=now, calendar="XNYS", interval="1m")
    got = levels(frame)
    assert got["LIVE"] == ("fresh", 1)  # its 14:57 bar ended at 14:58
    assert got["LAGS"] == ("stale", 59)
    # yesterday's feed reached the close: behind by today's session so far (329 minutes)
    assert got["FULL"] == ("stale", 329)
    assert frame.attrs["age_unit"] == "minutes" and frame.attrs["session_open"] is True
    assert frame.loc[frame.ticker == "LAGS", "status"].item() == "🔴 STALE (59 minutes)"


def test_after_the_close_a_complete_session_is_fresh_until_the_next_open(tmp_path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        pd.concat(
            [
                minutes_until("DONE", "2024-06-05 09:30", "2024-06-05 15:59"),
                minutes_until("HALF", "2024-06-05 09:30", "2024-06-05 11:59"),
            ]
        ),
        interval="1m",
    )
    evening = levels(freshness(db, now=ny("2024-06-05 20:00"), calendar="XNYS", interval="1m"))
    assert evening["DONE"] == ("fresh", 0)
    assert evening["HALF"] == ("stale", 240)  # 12:00 to 16:00 missing
    morning = levels(freshness(db, now=ny("2024-06-06 09:00"), calendar="XNYS", interval="1m"))
    assert morning["DONE"] == ("fresh", 0)  # the next session has not opened
    later = levels(freshness(db, now=ny("2024-06-06 09:50"), calendar="XNYS", interval="1m"))
    assert later["DONE"] == ("aging", 20)


def test_an_early_close_is_complete_at_13_00(tmp_path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(minutes_until("EARLY", "2024-11-29 09:30", "2024-11-29 12:59"), interval="1m")
    got = levels(freshness(db, now=ny("2024-11-29 15:00"), calendar="XNYS", interval="1m"))
    assert got["EARLY"] == ("fresh", 0)


def test_thresholds_are_options(db):
    now = ny("2024-06-05 14:59")
    frame = freshness(
        db, now=now, calendar="XNYS", interval="1m", fresh_minutes=60, stale_minutes=400
    )
    assert levels(frame)["LAGS"] == ("fresh", 59)
    assert levels(frame)["FULL"] == ("aging", 329)
    with pytest.raises(ConfigError, match="fresh_minutes"):
        freshness(db, now=now, interval="1m", fresh_minutes=10, stale_minutes=5)


def test_without_a_calendar_wall_clock_minutes_count(db):
    got = levels(freshness(db, now=ny("2024-06-05 14:59"), interval="1m"))
    assert got["LIVE"] == ("fresh", 1)
    assert got["FULL"][1] == 22 * 60 + 59  # 16:00 yesterday to 14:59 today, nights too


@pytest.mark.slow
def test_library_and_command_line_agree(db):
    now = "2024-06-05T18:59:00Z"  # 14:59 New York
    lib = get_price_data_freshness(db, now=now, calendar="XNYS", interval="1m")
    assert lib["level"] == "stale" and lib["days_old"] == 329 and lib["age_unit"] == "minutes"
    r = tv(
        "freshness",
        "--interval",
        "1m",
        "--calendar",
        "XNYS",
        "--now",
        now,
        "--json",
        db=db.path,
    )
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)["summary"]
    assert summary["status"] == lib["status"] == "🔴 STALE (329 minutes)"
    assert summary["stale_tickers"] == lib["stale_tickers"] == 2
    fresh = tv(
        "freshness", "LIVE", "--interval", "1m", "--calendar", "XNYS", "--now", now, db=db.path
    )
    assert fresh.returncode == 0 and "Fresh" in fresh.stdout
    # no interval: the daily table holds no bars, so the minute table is judged (wall-clock
    # minutes without a calendar), labelled with its interval and a note
    plain = get_price_data_freshness(db, now=now)
    wall = get_price_data_freshness(db, now=now, interval="1m")
    assert plain["interval"] == "1m" and plain["status"] == wall["status"] != "⚪ Empty"
    assert "no daily bars" in plain["note"] and wall["note"] is None
