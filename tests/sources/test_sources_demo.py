"""The demo source: deterministic, business days only, consistent OHLC, failure knobs."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from helpers.bars import xnys_sessions
from tickvault.errors import ConfigError, SourceUnavailable, TickerNotFound
from tickvault.schema import PRICES
from tickvault.sources import DemoSource, RetryPolicy, get_source
from tickvault.sources.base import PRICE_COLUMNS
from tickvault.sources.demo import EPOCH, last_business_day
from tickvault.sources.testing import check_source_contract

AS_OF = "2024-06-28"  # a Friday


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy()).hexdigest()


def test_demo_keeps_the_source_contract() -> None:
    source = get_source("demo", as_of=AS_OF, unknown_tickers=["NOPE"])
    df = check_source_contract(source, "AAPL", "NOPE", "2024-01-02", "2024-03-28")
    assert len(df) == xnys_sessions("2024-01-02", "2024-03-29")


def test_bars_are_business_days_with_consistent_ohlc() -> None:
    df = DemoSource(as_of=AS_OF).fetch("MSFT", "2000-01-01", AS_OF)
    assert df["timestamp"].iloc[0] == pd.Timestamp(str(EPOCH), tz="UTC")
    assert (df["timestamp"].dt.day_of_week < 5).all()
    assert (df["timestamp"] == df["timestamp"].dt.normalize()).all()
    assert len(df) == xnys_sessions(EPOCH, np.datetime64("2024-06-29"))
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df[["open", "high", "low", "close"]] >= 0.01).all().all()
    assert (df["volume"] > 0).all()
    assert PRICES.validate(df).num_rows == len(df)


def test_a_bar_is_the_same_whatever_range_is_asked() -> None:
    source = DemoSource(as_of=AS_OF)
    full = source.fetch("IBM", "2010-01-01", "2024-06-28")
    part = source.fetch("IBM", "2015-03-02", "2015-03-31")
    expected = full[full["timestamp"].between("2015-03-02", "2015-03-31")].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)
    assert not source.fetch("IBM", "2015-03-02", "2015-03-31")["close"].equals(
        source.fetch("IBMX", "2015-03-02", "2015-03-31")["close"]
    )


_CHILD = """
import hashlib, pandas as pd
from tickvault.sources import DemoSource
s = DemoSource(as_of="2024-06-28", revision=2)
for t in ["AAPL", "MSFT", "BRK.B", "7203.T"]:
    df = s.fetch(t, "2019-01-01", None)
    print(t, hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy()).hexdigest())
"""


def test_demo_is_deterministic_across_processes() -> None:
    source = DemoSource(as_of=AS_OF, revision=2)
    here = {
        t: _digest(source.fetch(t, "2019-01-01", None)) for t in ["AAPL", "MSFT", "BRK.B", "7203.T"]
    }
    outputs = []
    for seed in ("1", "12345"):  # different str-hash salts: hash() is not used
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True
        ).stdout
        outputs.append(dict(line.split() for line in out.strip().splitlines()))
    assert outputs[0] == outputs[1] == here


def test_end_none_is_the_last_business_day_and_start_none_the_history_window() -> None:
    source = DemoSource(as_of="2024-06-30", history_years=2)  # a Sunday
    df = source.fetch("AAPL")
    assert df["timestamp"].iloc[-1] == pd.Timestamp("2024-06-28", tz="UTC")
    assert df["timestamp"].iloc[0] == pd.Timestamp("2022-06-28", tz="UTC")
    future = source.fetch("AAPL", "2024-06-01", "2030-01-01")
    assert future["timestamp"].iloc[-1] == pd.Timestamp("2024-06-28", tz="UTC")
    assert last_business_day(pd.Timestamp("2024-07-01").date()).isoformat() == "2024-07-01"
    today = DemoSource().fetch("AAPL", start=pd.Timestamp.now("UTC") - pd.Timedelta(days=10))
    assert today["timestamp"].iloc[-1].date() == last_business_day()


def test_weekend_and_pre_epoch_ranges_are_empty_frames() -> None:
    source = DemoSource(as_of=AS_OF)
    weekend = source.fetch("AAPL", "2024-06-22", "2024-06-23")
    assert len(weekend) == 0 and list(weekend.columns) == list(PRICES.column_names[:7])
    assert len(source.fetch("AAPL", "1990-01-01", "1999-12-31")) == 0


def test_fail_rate_fails_a_deterministic_fraction_of_tickers() -> None:
    source = DemoSource(as_of=AS_OF, fail_rate=0.2)
    tickers = [f"T{i:04d}" for i in range(1000)]
    failed = []
    for t in tickers:
        try:
            source.fetch(t, "2024-06-03", "2024-06-07")
        except TickerNotFound as exc:
            assert exc.ticker == t and exc.source == "demo"
            failed.append(t)
    assert 150 <= len(failed) <= 250
    again = DemoSource(fail_rate=0.2)
    assert [t for t in tickers if not again.is_known(t)] == failed


def test_unknown_tickers_raise_ticker_not_found() -> None:
    source = get_source("demo", unknown_tickers=["DELISTED"])
    with pytest.raises(TickerNotFound, match="DELISTED"):
        source.fetch("DELISTED")
    with pytest.raises(TickerNotFound):
        source.fetch("")


def test_transient_failures_then_success_counted_per_ticker() -> None:
    source = DemoSource(as_of=AS_OF, transient_failures=2, retry_policy=RetryPolicy(attempts=3))
    for _ in range(2):
        with pytest.raises(SourceUnavailable) as info:
            source.fetch("AAPL", "2024-06-03", "2024-06-07")
        assert info.value.retryable and info.value.ticker == "AAPL"
    assert len(source.fetch("AAPL", "2024-06-03", "2024-06-07")) == 5
    assert len(source.fetch("AAPL", "2024-06-03", "2024-06-07")) == 5
    assert source.attempts("AAPL") == 4
    # a pickled copy in the same process shares the count; another ticker has its own
    copy = pickle.loads(pickle.dumps(source))
    assert len(copy.fetch("AAPL", "2024-06-03", "2024-06-07")) == 5
    with pytest.raises(SourceUnavailable):
        copy.fetch("MSFT", "2024-06-03", "2024-06-07")
    # the retry policy the pipeline uses gets through
    sleeps: list[float] = []
    fresh = DemoSource(as_of=AS_OF, transient_failures=2)
    df = fresh.retry_policy.call(
        fresh.fetch, "AAPL", "2024-06-03", "2024-06-07", sleep=sleeps.append
    )
    assert len(df) == 5 and len(sleeps) == 2
    fresh.reset_attempts()
    assert fresh.attempts("AAPL") == 0


def test_revision_changes_only_the_last_bars_deterministically() -> None:
    base = DemoSource(as_of=AS_OF).fetch("AAPL", "2024-01-02", AS_OF)
    r1 = DemoSource(as_of=AS_OF, revision=1).fetch("AAPL", "2024-01-02", AS_OF)
    r1b = DemoSource(as_of=AS_OF, revision=1).fetch("AAPL", "2024-01-02", AS_OF)
    r2 = DemoSource(as_of=AS_OF, revision=2, revised_bars=3).fetch("AAPL", "2024-01-02", AS_OF)
    pd.testing.assert_frame_equal(r1, r1b)
    changed = (r1["close"] != base["close"]).to_numpy()
    assert changed[-5:].all() and not changed[:-5].any()
    changed2 = (r2["close"] != base["close"]).to_numpy()
    assert changed2[-3:].all() and not changed2[:-3].any()
    assert (r2["close"].iloc[-3:] != r1["close"].iloc[-3:]).all()
    assert PRICES.validate(r1).num_rows == len(r1)
    assert list(r1["timestamp"]) == list(base["timestamp"])


def test_latency_is_slept_per_fetch() -> None:
    source = DemoSource(latency=0.05)
    t0 = time.perf_counter()
    for _ in range(4):
        source.fetch("AAPL", "2024-06-03", "2024-06-07")
    assert time.perf_counter() - t0 >= 0.2


def test_thousand_tickers_ten_years_is_fast() -> None:
    source = DemoSource(as_of=AS_OF)
    t0 = time.perf_counter()
    rows = sum(len(source.fetch(f"T{i}", "2014-07-01", AS_OF)) for i in range(1000))
    elapsed = time.perf_counter() - t0
    assert rows == 1000 * xnys_sessions("2014-07-01", "2024-06-29")
    assert elapsed < 6.0, f"1000 tickers x 10 years took {elapsed:.2f}s"


def test_validate_option_and_bad_options() -> None:
    df = DemoSource(as_of=AS_OF, validate=True).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert len(df) == 5
    for bad in ({"latency": -1}, {"fail_rate": 2}, {"transient_failures": -1}):
        with pytest.raises(ConfigError):
            DemoSource(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="options are"):
        get_source("demo", latncy=1)


@pytest.mark.parametrize(
    "options",
    [{}, {"revision": 2}, {"revision": 1, "revised_bars": 30, "history_years": 3}],
    ids=["plain", "revised", "revised-window"],
)
def test_fetch_arrow_is_fetch_as_an_arrow_table(options: dict[str, int]) -> None:
    source = DemoSource(as_of=AS_OF, **options)
    ranges = [
        (None, None),
        ("2019-01-01", None),
        ("2015-03-02", "2015-03-31"),
        ("1999-01-01", "2000-01-10"),
        ("2024-06-29", "2024-06-30"),  # a weekend: empty
        ("2024-06-20", "2030-01-01"),  # revised bars inside the range
        (None, "2010-05-05"),
    ]
    for ticker in ["AAPL", "BRK.B", "7203.T"]:
        for start, end in ranges:
            table = source.fetch_arrow(ticker, start, end)
            expected = PRICES.validate(source.fetch(ticker, start, end))
            expected = expected.select(list(PRICE_COLUMNS))
            assert table.schema.equals(expected.schema)
            assert table.equals(expected), (ticker, start, end)
            table.validate(full=True)


def test_fetch_arrow_has_the_same_latency_and_failures() -> None:
    source = DemoSource(
        as_of=AS_OF, unknown_tickers=["NOPE"], transient_failures=1, validate=True, latency=0.02
    )
    with pytest.raises(TickerNotFound):
        source.fetch_arrow("NOPE")
    with pytest.raises(SourceUnavailable):
        source.fetch_arrow("AAPL", "2024-06-03", "2024-06-07")
    t0 = time.perf_counter()
    assert source.fetch_arrow("AAPL", "2024-06-03", "2024-06-07").num_rows == 5
    assert time.perf_counter() - t0 >= 0.02
    assert source.attempts("AAPL") == 2


def test_later_bars_do_not_change_earlier_ones() -> None:
    # the walk is computed from the epoch; a bar depends only on bars before it
    source = DemoSource(as_of=AS_OF)
    short = source.fetch("MSFT", "2001-01-01", "2003-12-31")
    long = source.fetch("MSFT", "2001-01-01", AS_OF).iloc[: len(short)]
    pd.testing.assert_frame_equal(short, long.reset_index(drop=True), check_exact=True)


def test_demo_bars_fall_on_nyse_sessions_only() -> None:
    """The quick start looks like real data: no bars on exchange holidays."""
    from tickvault.sources import demo_calendar

    df = get_source("demo", as_of="2026-12-31").fetch("AAPL", "2024-12-20", "2026-11-30")
    days = {d.date().isoformat() for d in df["timestamp"]}
    for holiday in ("2024-12-25", "2025-01-01", "2025-01-09", "2025-04-18", "2026-11-26"):
        assert holiday not in days
    assert "2024-12-24" in days and "2026-11-27" in days  # early closes still trade
    assert len(df) == xnys_sessions("2024-12-20", "2026-12-01")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xc

        cal = xc.get_calendar("XNYS", start="2000-01-03", end="2035-12-31")
    weekdays = pd.bdate_range("2000-01-03", "2035-12-31")
    expected = weekdays.difference(cal.sessions)
    got = pd.DatetimeIndex(demo_calendar.HOLIDAYS.astype("datetime64[ns]"))
    assert got.equals(expected)  # the written-out list is exchange_calendars' list


def test_no_demo_bar_for_a_session_that_has_not_closed() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from tickvault.sources.demo_calendar import last_session

    ny = ZoneInfo("America/New_York")
    # Monday 2026-11-30, after Thanksgiving (Thursday 26th, closed)
    assert last_session(now=dt.datetime(2026, 11, 30, 15, 59, tzinfo=ny)).isoformat() == (
        "2026-11-27"
    )
    assert last_session(now=dt.datetime(2026, 11, 30, 16, 0, tzinfo=ny)).isoformat() == (
        "2026-11-30"
    )
    assert last_session(dt.date(2026, 11, 26)).isoformat() == "2026-11-25"
