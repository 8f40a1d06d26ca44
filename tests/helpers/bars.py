"""Deterministic bars for tests: daily pandas bars, Arrow bars by day number, chunked
copies of a table, and an independent count of NYSE sessions."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa


def make_bars(
    tickers: list[str] | str,
    start: str = "2024-01-01",
    periods: int = 10,
    *,
    salt: int = 0,
) -> pd.DataFrame:
    """Valid daily bars; ``salt`` changes the prices so later writes are recognisable."""
    if isinstance(tickers, str):
        tickers = [tickers]
    dates = pd.bdate_range(start, periods=periods, tz="UTC")
    frames = []
    for t in tickers:
        seed = int.from_bytes(hashlib.sha256(f"{t}:{salt}".encode()).digest()[:4], "little")
        rng = np.random.default_rng(seed)
        close = 100 + rng.random(periods) * 10 + salt
        frames.append(
            pd.DataFrame(
                {
                    "ticker": t,
                    "timestamp": dates,
                    "open": close - 0.5,
                    "high": close + 1.0,
                    "low": close - 1.0,
                    "close": close,
                    "volume": rng.integers(1, 10_000, periods).astype("float64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def arrow_bars(tickers: list[str], days: list[int], close: float | list[float] = 10.0) -> pa.Table:
    """Valid daily bars as an Arrow table: ``tickers[i]`` on day ``days[i]`` (days since
    1970, UTC) with close ``close`` (one value or one per row)."""
    n = len(tickers)
    c = np.broadcast_to(np.asarray(close, dtype="float64"), (n,)).copy()
    return pa.table(
        {
            "ticker": pa.array(tickers, pa.string()),
            "timestamp": pa.array(np.asarray(days, dtype=np.int64) * 86_400 * 10**9).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "open": c,
            "high": c + 1,
            "low": c / 2,
            "close": c,
            "volume": np.full(n, 100.0),
            "adj_close": c,
        }
    )


def chunked(t: pa.Table, cuts: list[int]) -> pa.Table:
    bounds = [0, *cuts, t.num_rows]
    return pa.concat_tables([t.slice(a, b - a) for a, b in itertools.pairwise(bounds)])


def xnys_sessions(start: str | np.datetime64, end: str | np.datetime64) -> int:
    """NYSE sessions in ``[start, end)`` according to exchange_calendars: an independent
    count of the demo source's trading days (``np.busday_count`` semantics)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xc

        cal = xc.get_calendar("XNYS", start="2000-01-03", end="2035-12-31")
        last = pd.Timestamp(np.datetime64(end, "D")) - pd.Timedelta(days=1)
        return len(cal.sessions_in_range(pd.Timestamp(np.datetime64(start, "D")), last))


def ramp_bars(tickers: list[str], days: pd.DatetimeIndex, salt: float = 0.0) -> pd.DataFrame:
    """Valid daily bars of ``tickers`` on ``days``: ticker i closes at 100 + i, rising a
    cent a day, plus ``salt`` (so later writes are recognisable)."""
    n = len(days)
    frames = []
    for i, t in enumerate(tickers):
        close = 100.0 + i + np.arange(n) * 0.01 + salt
        frames.append(
            pd.DataFrame(
                {
                    "ticker": t,
                    "timestamp": days,
                    "open": close,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": 1000.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def flat_bars(
    ticker: str, first: str | pd.Timestamp, last: str | pd.Timestamp, freq: str = "1min"
) -> pd.DataFrame:
    """Bars of ``ticker`` every ``freq`` from ``first`` to ``last`` (inclusive; naive times
    are UTC), all alike (open 10, high 11, low 9, close 10.5, volume 100): for tests about
    which times a table holds, not about prices."""

    def utc(t: str | pd.Timestamp) -> pd.Timestamp:
        t = pd.Timestamp(t)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

    idx = pd.date_range(utc(first), utc(last), freq=freq)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": idx,
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 100.0,
        }
    )
