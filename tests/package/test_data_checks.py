"""db.gaps and db.suspicious_moves (issue 24): missing sessions inside each ticker's own
range on an exchange calendar, and moves no stored split explains."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import xnys_sessions
from tickvault import ParquetDB
from tickvault.errors import ConfigError, UnknownTicker


@pytest.fixture(params=["local", "memory"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ParquetDB:
    if request.param == "local":
        return ParquetDB(tmp_path / "db")
    return ParquetDB(f"memory://checks-{uuid.uuid4().hex[:12]}")


def _sessions(start: str, end: str) -> pd.DatetimeIndex:
    """NYSE sessions from start to end inclusive, stamped 00:00 UTC like daily bars."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xc

        s = xc.get_calendar("XNYS").sessions_in_range(start, end)
    return pd.DatetimeIndex(s).tz_localize(None).tz_localize("UTC")


def _bars(ticker: str, stamps: pd.DatetimeIndex, close: list[float] | float = 10.0):
    c = pd.Series(close, index=range(len(stamps)), dtype=float)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": stamps,
            "open": c.values,
            "high": c.values,
            "low": c.values,
            "close": c.values,
            "volume": 1.0,
        }
    )


def test_gaps_inside_each_tickers_own_range(db: ParquetDB) -> None:
    full = _sessions("2024-01-02", "2024-03-28")
    # AAA misses 3 sessions in a row (around MLK day, a holiday that is not a gap) and one
    # lone session; BBB starts late and ends early but has no hole inside its own range
    drop = {"2024-01-11", "2024-01-12", "2024-01-16", "2024-02-20"}
    aaa = full[~full.strftime("%Y-%m-%d").isin(drop)]
    bbb = full[(full >= "2024-02-01") & (full <= "2024-03-01")]
    db.upsert_prices(pd.concat([_bars("AAA", aaa), _bars("BBB", bbb)]))

    found = db.gaps(calendar="XNYS")

    assert found == [
        {"ticker": "AAA", "first": "2024-01-11", "last": "2024-01-16", "sessions": 3},
        {"ticker": "AAA", "first": "2024-02-20", "last": "2024-02-20", "sessions": 1},
    ]
    # the session counts agree with an independent count of the calendar
    assert found[0]["sessions"] == xnys_sessions("2024-01-11", "2024-01-17")
    assert db.gaps(calendar="xnys", tickers=["bbb"]) == []
    assert db.gaps(calendar="XNYS", start="2024-02-01") == [found[1]]


def test_gaps_bad_input(db: ParquetDB) -> None:
    db.upsert_prices(_bars("AAA", _sessions("2024-01-02", "2024-01-31")))
    with pytest.raises(ConfigError, match="unknown calendar 'NOPE'"):
        db.gaps(calendar="NOPE")
    with pytest.raises(UnknownTicker, match="ZZZ"):
        db.gaps(calendar="XNYS", tickers=["ZZZ"])


def test_moves_flag_unexplained_jumps_and_not_stored_splits(db: ParquetDB) -> None:
    s = _sessions("2024-01-02", "2024-01-31")
    n = len(s)
    # SPL: a 4-for-1 split on day 5 that IS stored; MISS: the same split NOT stored;
    # UNIT: one bar quoted in cents (100x); CALM: small moves only
    spl = [100.0] * 5 + [25.0] * (n - 5)
    unit = [50.0] * n
    unit[10] = 5000.0
    calm = [10.0 * (1.01**i) for i in range(n)]
    db.upsert_prices(
        pd.concat(
            [
                _bars("SPL", s, spl),
                _bars("MISS", s, spl),
                _bars("UNIT", s, unit),
                _bars("CALM", s, calm),
            ]
        )
    )
    db.upsert_actions(
        pd.DataFrame({"ticker": ["SPL"], "timestamp": [s[5]], "kind": ["split"], "value": [4.0]})
    )

    moves = db.suspicious_moves(threshold=0.5)

    got = [(m["ticker"], m["timestamp"][:10], m["move"]) for m in moves]
    day = [str(x.date()) for x in s]
    assert got == [
        ("MISS", day[5], -0.75),
        ("UNIT", day[10], 99.0),
        ("UNIT", day[11], -0.99),
    ]
    assert all(m["split"] is None for m in moves)
    # the threshold is a factor either way: a fall to 1/4 is a move by 4x, so a threshold
    # of 3 (4x > 1+3 is false) no longer flags it, while the 100x unit error stays
    assert [m["ticker"] for m in db.suspicious_moves(threshold=3)] == ["UNIT", "UNIT"]


def test_a_missing_two_for_one_split_is_caught_by_half(db: ParquetDB) -> None:
    """A fall to half is a move by a factor 2: threshold 0.5 (factor 1.5) flags it, even
    though the fall is "only" 50 %."""
    s = _sessions("2024-01-02", "2024-01-12")
    db.upsert_prices(_bars("HALF", s, [20.0] * 3 + [10.0] * (len(s) - 3)))
    (m,) = db.suspicious_moves(threshold=0.5)
    assert (m["ticker"], m["close_before"], m["close"], m["move"]) == ("HALF", 20.0, 10.0, -0.5)
    assert db.suspicious_moves(threshold=1.0) == []


def test_moves_threshold_must_be_positive(db: ParquetDB) -> None:
    db.upsert_prices(_bars("AAA", _sessions("2024-01-02", "2024-01-10")))
    for bad in (0, -1, "x", float("nan")):
        with pytest.raises(ConfigError, match="threshold="):
            db.suspicious_moves(threshold=bad)  # type: ignore[arg-type]
