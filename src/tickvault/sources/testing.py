"""A reusable contract check for sources, for built-ins and plugins alike.

A plugin author calls :func:`check_source_contract` from a test::

    from tickvault.sources.testing import check_source_contract

    def test_my_source_keeps_the_contract():
        check_source_contract(MySource(), known_ticker="AAPL", unknown_ticker="NOPE",
                              start="2024-01-02", end="2024-03-28")

It raises ``AssertionError`` naming the broken promise. Pick a range in which the known
ticker has at least two bars.
"""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

import pandas as pd

from ..errors import TickerNotFound, ValidationError
from ..schema import INTRADAY_GRID, PRICES
from ..times import parse_end
from .base import OPTIONAL_COLUMNS, PRICE_COLUMNS, TimeLike, as_source, bounds, source_interval
from .policy import RetryPolicy


def _text(ts: pd.Timestamp) -> str:
    """``ts`` as naive UTC text with its fraction of a second: ``2024-03-28 23:59:59.999999999``."""
    return ts.tz_convert(None).isoformat(sep=" ")


def _check_stamps(ts: pd.Series, interval: str) -> None:
    """Daily bars at 00:00 UTC of their session date; intraday bars on their interval's
    grid (docs/sources.md): a daily bar at local midnight in UTC (05:00 for New York) would
    be stored beside the 00:00 bar of the same session, never in its place."""
    ns = pd.DatetimeIndex(ts).as_unit("ns").asi8
    step = 86400 if interval == "1d" else INTRADAY_GRID[interval]
    off = ns % (step * 10**9) != 0
    if not off.any():
        return
    first = ts.iloc[int(off.argmax())]
    if interval == "1d":
        raise AssertionError(
            f"daily bars must be stamped 00:00 UTC of their session date; {int(off.sum())} "
            f"bar(s) are not, the first at {first} (a local midnight converted to UTC?): "
            f"stamp it pd.Timestamp({first.date().isoformat()!r}, tz='UTC')"
        )
    raise AssertionError(
        f"{interval} bars must start on the interval's grid (every {step} s from 00:00 UTC); "
        f"{int(off.sum())} bar(s) do not, the first at {first}"
    )


def _check_frame(
    df: Any,
    ticker: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    interval: str = "1d",
) -> None:
    assert isinstance(df, pd.DataFrame), f"fetch must return a DataFrame, got {type(df)}"
    cols = list(df.columns)
    extra = cols[len(PRICE_COLUMNS) :]
    assert cols[: len(PRICE_COLUMNS)] == list(PRICE_COLUMNS) and extra == [
        c for c in OPTIONAL_COLUMNS if c in extra
    ], (
        f"columns must be {list(PRICE_COLUMNS)} (+ optional {list(OPTIONAL_COLUMNS)}), got "
        f"{cols}{'' if cols else '; no bars is an empty frame WITH the columns: empty_prices()'}"
    )
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]", (
        f"timestamp must be datetime64[ns, UTC], got {df['timestamp'].dtype}"
    )
    for col in cols[2:]:
        want = ("int64", "Int64") if col == "trade_count" else ("float64",)
        assert str(df[col].dtype) in want, f"{col} must be {want[0]}, got {df[col].dtype}"
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0, (
        "the index must be a default RangeIndex"
    )
    if len(df) == 0:
        return
    assert (df["ticker"] == ticker).all(), f"every row's ticker must be {ticker!r}"
    ts = df["timestamp"]
    assert ts.is_monotonic_increasing and ts.is_unique, "timestamps must be sorted and unique"
    if lo is not None:
        assert ts.iloc[0] >= lo, f"first bar {ts.iloc[0]} is before start {lo}"
    if hi is not None:
        assert ts.iloc[-1] <= hi, f"last bar {ts.iloc[-1]} is after end {hi}"
    _check_stamps(ts, interval)
    try:
        validated = PRICES.validate(df)  # bad OHLC, NaN, ...
    except ValidationError as exc:
        raise AssertionError(f"the bars must pass the prices schema: {exc}") from exc
    assert validated.num_rows == len(df)


def check_source_contract(
    source: Any,
    known_ticker: str,
    unknown_ticker: str | None,
    start: TimeLike,
    end: TimeLike,
    *,
    deterministic: bool = True,
    check_pickle: bool = True,
) -> pd.DataFrame:
    """Assert that ``source`` keeps the source contract; return ``fetch(known, start, end)``.

    Checks: ``name``/``retry_policy`` attributes; columns, dtypes, sort order and schema
    validity; ``start``/``end`` inclusive and accepted as str, date, datetime and
    ``pd.Timestamp``; a one-day range gives exactly that bar; ``start > end`` gives an empty
    frame with the right columns; daily bars at 00:00 UTC of their session date
    (intraday: on the interval's grid); ``end=None``/``start=None`` widen the range; the unknown
    ticker raises :class:`~tickvault.errors.TickerNotFound` carrying the ticker;
    ``deterministic``: two fetches are equal; ``check_pickle``: a pickled copy fetches the
    same rows.
    """
    src = as_source(source)
    assert isinstance(src.name, str) and src.name, "a source needs a non-empty name"
    assert isinstance(src.retry_policy, RetryPolicy), "retry_policy must be a RetryPolicy"
    lo, hi = bounds(start, end)
    assert lo is not None and hi is not None, "pass a concrete start and end"
    interval = source_interval(src)

    df = src.fetch(known_ticker, start, end)
    _check_frame(df, known_ticker, lo, hi, interval)
    assert len(df) >= 2, (
        f"{known_ticker!r} has {len(df)} bars in [{start}, {end}]; choose a range with >= 2"
    )

    # bounds in every accepted type give the same rows (a bare end date is the end of that
    # day, down to the nanosecond: a datetime, in microseconds, ends at its last microsecond)
    for kind, s, e in (
        ("str", _text(lo), _text(hi)),
        ("datetime", lo.to_pydatetime(), hi.floor("us").to_pydatetime()),
        ("pd.Timestamp", lo, hi),
    ):
        other = src.fetch(known_ticker, s, e)
        _check_frame(other, known_ticker, lo, hi, interval)
        if deterministic:
            pd.testing.assert_frame_equal(other, df, obj=f"fetch with {kind} bounds")
    if lo == lo.normalize() and hi == parse_end(hi.date()):
        other = src.fetch(known_ticker, lo.date(), hi.date())
        if deterministic:
            pd.testing.assert_frame_equal(other, df, obj="fetch with datetime.date bounds")

    # inclusive bounds: a one-bar range returns exactly that bar
    first, last = df["timestamp"].iloc[0], df["timestamp"].iloc[-1]
    for bar in (first, last):
        one = src.fetch(known_ticker, bar, bar)
        _check_frame(one, known_ticker, bar, bar, interval)
        assert len(one) == 1, f"start=end={bar} must return that one bar, got {len(one)} rows"
        if deterministic:
            expected = df[df["timestamp"] == bar].reset_index(drop=True)
            pd.testing.assert_frame_equal(one, expected, obj=f"the bar at {bar}")
    inner = src.fetch(known_ticker, first + dt.timedelta(seconds=1), last)
    _check_frame(inner, known_ticker, first + dt.timedelta(seconds=1), last, interval)
    assert len(inner) == len(df) - 1, "start is inclusive of bars at start only"

    # an empty range is an empty frame, not an error
    empty = src.fetch(known_ticker, hi + dt.timedelta(days=1), lo)
    _check_frame(empty, known_ticker, None, None, interval)
    assert len(empty) == 0, "start > end must give an empty frame"

    # open bounds
    wider = src.fetch(known_ticker, start, None)
    _check_frame(wider, known_ticker, lo, None, interval)
    assert set(df["timestamp"]) <= set(wider["timestamp"]), "end=None must include up to end"
    wider = src.fetch(known_ticker, None, end)
    _check_frame(wider, known_ticker, None, hi, interval)
    assert set(df["timestamp"]) <= set(wider["timestamp"]), "start=None must include from start"

    if deterministic:
        pd.testing.assert_frame_equal(src.fetch(known_ticker, start, end), df, obj="refetch")

    if unknown_ticker is not None:
        try:
            src.fetch(unknown_ticker, start, end)
        except TickerNotFound as exc:
            assert exc.ticker == unknown_ticker, (
                f"TickerNotFound.ticker must name the ticker: it is {exc.ticker!r}, not "
                f"{unknown_ticker!r}. The ticker is a keyword argument after the message: "
                f"raise TickerNotFound(f'unknown ticker {{ticker!r}}', ticker=ticker)"
            )
            copy = pickle.loads(pickle.dumps(exc))
            assert type(copy) is TickerNotFound and copy.ticker == unknown_ticker
        except Exception as exc:
            raise AssertionError(
                f"unknown ticker {unknown_ticker!r} must raise TickerNotFound, got "
                f"{type(exc).__name__}: {exc}; raise TickerNotFound(f'unknown ticker "
                f"{{ticker!r}}', ticker=ticker)"
            ) from exc
        else:
            raise AssertionError(f"fetching unknown ticker {unknown_ticker!r} did not raise")

    if check_pickle:
        clone = pickle.loads(pickle.dumps(src))
        again = clone.fetch(known_ticker, start, end)
        _check_frame(again, known_ticker, lo, hi, interval)
        if deterministic:
            pd.testing.assert_frame_equal(again, df, obj="fetch from a pickled copy")
    return df
