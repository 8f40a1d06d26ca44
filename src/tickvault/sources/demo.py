"""``demo``: deterministic synthetic daily bars, offline and instant.

Every ticker gets its own random walk, seeded from a SHA-256 of the ticker (never Python's
salted ``hash()``) and computed from a fixed epoch (:data:`EPOCH`, Monday 2000-01-03) with
only integer arithmetic, multiplications and rounding, so the bar for a (ticker, date) is the
same whatever range is asked for, in every process and on every machine. Business days only
(Mon–Fri), OHLC consistent (``low <= open, close <= high``), prices rounded to cents and at
least 0.01, positive volume.

Knobs for tests and benchmarks of the pipeline: ``latency`` (seconds slept per fetch),
``fail_rate`` (a deterministic fraction of tickers are unknown), ``transient_failures``
(each ticker fails that many times with SourceUnavailable before succeeding), an explicit
``unknown_tickers`` list, and ``revision`` (revises the last ``revised_bars`` bars so upsert
corrections can be demonstrated).

``fetch_arrow`` returns the same bars as a ``pyarrow.Table`` in the prices schema, built
straight from numpy buffers (about 0.5 ms for ten years of bars, against about 2 ms for the
pandas frame of ``fetch`` and 1 ms more to convert it to Arrow); the pipeline uses it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import BadSourceData, ConfigError, SourceUnavailable, TickerNotFound, ValidationError
from ..modes import INTERVAL_SECONDS, parse_interval
from ..resample import aggregate
from ..schema import PRICES, TIMESTAMP_TYPE, prices_schema
from ..sessions import exchange_sessions
from . import demo_calendar
from .actions import Fetched, actions_frame
from .base import PRICE_COLUMNS, TimeLike, bounds, empty_prices, validate_prices
from .checks import reject_future_stamps
from .demo_actions import actions_between, has_actions, split_factor
from .policy import RetryOption, RetryPolicy

log = logging.getLogger(__name__)

#: The first bar of every demo series (a Monday). Earlier dates have no bars.
EPOCH = demo_calendar.EPOCH

_U53 = 2.0**-53
DAY_NS = 86_400 * 10**9
MINUTE_NS = 60 * 10**9

# attempts per (source instance id, ticker) in this process, for ``transient_failures``
_ATTEMPTS: dict[tuple[str, str], int] = {}
_ATTEMPTS_LOCK = threading.Lock()


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    return int.from_bytes(_digest(*parts)[:8], "big") / 2.0**64


def _uniforms(seed_parts: tuple[str, ...], rows: int, cols: int) -> np.ndarray:
    """``rows x cols`` uniforms in [0, 1); row ``i`` depends only on the seed and ``i``.

    Uses the raw PCG64 stream (whose output is fixed by the algorithm, unlike the
    distribution methods of ``Generator``), converted with exact integer arithmetic.
    """
    return _to_unit(_raw(seed_parts, rows * cols)).reshape(rows, cols)


def _raw(seed_parts: tuple[str, ...], size: int) -> np.ndarray:
    """``size`` raw 64-bit outputs of the PCG64 stream seeded from ``seed_parts``."""
    seed = int.from_bytes(_digest(*seed_parts)[:16], "big")
    return np.random.PCG64(seed).random_raw(size)


def _to_unit(raw: np.ndarray) -> np.ndarray:
    """Raw 64-bit outputs to uniforms in [0, 1): the top 53 bits, times 2**-53 (exact)."""
    return (raw >> np.uint64(11)).astype(np.float64) * _U53


_DAYS: np.ndarray = np.empty(0, dtype="datetime64[ns]")
_DAYS_LOCK = threading.Lock()
_TICKER_DTYPE = empty_prices()["ticker"].dtype


def _business_days(n: int) -> np.ndarray:
    """The first ``n`` business days from :data:`EPOCH` as ``datetime64[ns]`` (cached)."""
    global _DAYS
    days = _DAYS
    if len(days) < n:
        with _DAYS_LOCK:
            size = max(n, 2 * len(_DAYS), 8192)
            days = demo_calendar.offset(np.arange(size)).astype("datetime64[ns]")
            days.flags.writeable = False
            _DAYS = days
    return days[:n]


def _cents(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(x, 2), 0.01)


def _day(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(ts.date(), "D")


def _count(day: np.datetime64) -> int:
    """Sessions from :data:`EPOCH` up to ``day`` (excluded)."""
    return int(demo_calendar.count(day))


@functools.lru_cache(maxsize=64)
def _last_index(as_of: dt.date) -> int:
    """Index of the last session on or before ``as_of``."""
    return _count(np.datetime64(last_business_day(as_of), "D") + 1) - 1


@functools.lru_cache(maxsize=1024)
def _history_start(i1: int, years: int) -> int:
    """Index of the first bar of a ``years`` history window ending at bar ``i1``."""
    end_day = demo_calendar.offset(i1)
    first = pd.Timestamp(end_day) - pd.DateOffset(years=years)
    return _count(_day(first))


_ARROW_SCHEMA = pa.schema([PRICES.arrow_schema.field(c) for c in PRICE_COLUMNS])
#: intraday demo bars also carry vwap and trade_count
_INTRADAY_COLUMNS = (*PRICE_COLUMNS, "vwap", "trade_count")
_INTRADAY_SCHEMA = pa.schema([PRICES.arrow_schema.field(c) for c in _INTRADAY_COLUMNS])
_EMPTY_ARROW = _ARROW_SCHEMA.empty_table()


def _ticker_array(ticker: str, n: int) -> pa.Array:
    """``n`` copies of ``ticker`` as an Arrow string array, built from two buffers."""
    data = ticker.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)]
    )


#: the demo close is its price level times the product of the last this many daily moves
_WINDOW = 250

#: demo price levels: log-uniform between these (most US stocks trade in this range)
LEVELS = (10.0, 600.0)


def price_level(ticker: str) -> float:
    """The ticker's demo price level, deterministic per ticker and spread log-uniformly over
    :data:`LEVELS` (about $10 to $600; median about $77): its closes stay within a factor
    of about two of it."""
    lo, hi = LEVELS
    return float(round(lo * (hi / lo) ** _unit("level", ticker), 2))


def last_business_day(as_of: dt.date | None = None) -> dt.date:
    """The last NYSE session on or before ``as_of``; without ``as_of``, the last session
    that has closed (16:00 New York): the demo has no bar for a session still trading."""
    return demo_calendar.last_session(as_of)


class DemoSource:
    """Synthetic daily bars; see the module docstring. Options are keyword-only.

    ``end=None`` means the last business day on or before ``as_of`` (default: today, UTC);
    bars after that day do not exist yet. ``start=None`` means ``history_years`` before the
    end. ``transient_failures`` counts attempts per ticker in this process: copies of the
    source pickled to other processes count separately (each process fails each ticker that
    many times). ``validate=True`` also runs the full schema validation (about 5 ms per
    ticker; the bars are built to satisfy it and the contract tests check that).
    """

    #: generated prices, not market data: the command line says so after every run
    synthetic = True

    def __init__(
        self,
        *,
        latency: float = 0.0,
        fail_rate: float = 0.0,
        transient_failures: int = 0,
        unknown_tickers: Iterable[str] = (),
        revision: int = 0,
        revised_bars: int = 5,
        history_years: int = 10,
        as_of: TimeLike = None,
        retry_policy: RetryOption = None,
        validate: bool = False,
        name: str = "demo",
        interval: str = "1d",
        history_days: int = 30,
    ) -> None:
        if latency < 0:
            raise ConfigError(f"demo: latency must be >= 0 seconds, got {latency!r}")
        if not 0.0 <= fail_rate <= 1.0:
            raise ConfigError(f"demo: fail_rate must be between 0 and 1, got {fail_rate!r}")
        if transient_failures < 0 or revision < 0 or revised_bars < 0 or history_years < 0:
            raise ConfigError(
                "demo: transient_failures, revision, revised_bars and history_years must be >= 0"
            )
        if history_days < 1:
            raise ConfigError(f"demo: history_days must be >= 1, got {history_days!r}")
        #: the bars this source makes (``"1d"``, ``"1m"``, ...): one interval per instance
        self.interval = parse_interval(interval)
        #: intraday bars: the default history (``start=None``) in calendar days
        self.history_days = int(history_days)
        if isinstance(unknown_tickers, str):
            unknown_tickers = [unknown_tickers]
        self.name = name
        self.latency = float(latency)
        self.fail_rate = float(fail_rate)
        self.transient_failures = int(transient_failures)
        self.unknown_tickers = frozenset(unknown_tickers)
        self.revision = int(revision)
        self.revised_bars = int(revised_bars)
        self.history_years = int(history_years)
        as_of_ts = bounds(as_of, None)[0]
        self.as_of: dt.date | None = None if as_of_ts is None else as_of_ts.date()
        self.retry_policy = RetryPolicy.coerce(retry_policy, "retry_policy") or RetryPolicy()
        self.validate = bool(validate)
        self._id = uuid.uuid4().hex

    def __repr__(self) -> str:
        opts = {
            k: v
            for k, v in {
                "latency": self.latency,
                "fail_rate": self.fail_rate,
                "transient_failures": self.transient_failures,
                "revision": self.revision,
                "interval": "" if self.interval == "1d" else self.interval,
            }.items()
            if v
        }
        return f"DemoSource({', '.join(f'{k}={v!r}' for k, v in opts.items())})"

    # -- failures --------------------------------------------------------------------------

    def is_known(self, ticker: str) -> bool:
        """Whether ``fetch(ticker)`` returns bars (rather than raising TickerNotFound)."""
        if not ticker or not ticker.strip() or ticker in self.unknown_tickers:
            return False
        return not (self.fail_rate > 0 and _unit("fail", ticker) < self.fail_rate)

    def attempts(self, ticker: str) -> int:
        """How many times this source (and its copies in this process) fetched ``ticker``."""
        with _ATTEMPTS_LOCK:
            return _ATTEMPTS.get((self._id, ticker), 0)

    def reset_attempts(self) -> None:
        """Forget the attempt counts, so ``transient_failures`` starts over."""
        with _ATTEMPTS_LOCK:
            for key in [k for k in _ATTEMPTS if k[0] == self._id]:
                del _ATTEMPTS[key]

    # -- fetch -----------------------------------------------------------------------------

    def _request(self, ticker: str) -> None:
        """What every request costs and how it may fail: latency, unknown, transient."""
        if self.latency:
            time.sleep(self.latency)
        if not self.is_known(ticker):
            raise TickerNotFound(
                f"demo source does not know ticker {ticker!r}", ticker=ticker, source=self.name
            )
        if self.transient_failures:
            with _ATTEMPTS_LOCK:
                n = _ATTEMPTS[(self._id, ticker)] = _ATTEMPTS.get((self._id, ticker), 0) + 1
            if n <= self.transient_failures:
                raise SourceUnavailable(
                    f"demo source: simulated transient failure {n} of "
                    f"{self.transient_failures} for {ticker!r}",
                    ticker=ticker,
                    source=self.name,
                )

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        lo, hi = bounds(start, end)
        self._request(ticker)
        if self.interval != "1d":
            return self._checked(self.intraday_arrow(ticker, lo, hi), ticker).to_pandas()
        df = self.bars(ticker, lo, hi)
        if self.validate:
            df = validate_prices(df, ticker=ticker, source=self.name)
        return df

    def fetch_arrow(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pa.Table:
        """:meth:`fetch` as a ``pyarrow.Table`` in the prices schema (same rows, same
        latency and failures), built without pandas: about ten times cheaper per request.
        The pipeline prefers this method when a source has it."""
        lo, hi = bounds(start, end)
        self._request(ticker)
        if self.interval != "1d":
            return self._checked(self.intraday_arrow(ticker, lo, hi), ticker)
        return self._checked(self.bars_arrow(ticker, lo, hi), ticker)

    def _checked(self, table: pa.Table, ticker: str) -> pa.Table:
        """``table``, run through the schema validation if ``validate=True``."""
        if not self.validate:
            return table
        try:
            schema = prices_schema(self.interval)
            return schema.validate(table).select(table.column_names)
        except ValidationError as exc:
            raise BadSourceData(
                f"source {self.name!r} returned bad data for {ticker!r}: {exc}",
                ticker=ticker,
                source=self.name,
            ) from exc

    # -- intraday ----------------------------------------------------------------------------

    def intraday_arrow(
        self, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> pa.Table:
        """Bars of ``self.interval`` in ``[start, end]``, inside New York Stock Exchange
        sessions only (09:30-16:00 New York; early closes end at 13:00; none on holidays):
        each session's one-minute path runs from that day's demo open to its close, seeded
        by (ticker, session), so a bar is the same whatever range is asked for. Coarser
        bars aggregate the minutes from the session's open (an hourly bar starts at 09:30;
        an early close's last one is shorter). Only finished bars exist: a bar is there once
        its end (or the session's close) has passed ``now`` (``as_of``: the end of that
        day). ``start=None``: ``history_days`` before the end."""
        step = INTERVAL_SECONDS[self.interval] * 10**9
        now = self._intraday_now()
        hi = now if end is None else min(now, int(end.value))
        lo = hi - self.history_days * DAY_NS if start is None else int(start.value)
        if hi < lo:
            return _INTRADAY_SCHEMA.empty_table()
        cal = exchange_sessions("XNYS")
        cal.check_covers(hi, "the demo source's end")
        first = np.datetime64(lo // DAY_NS - 1, "D")
        last = np.datetime64(hi // DAY_NS + 1, "D")
        span = cal.between(first, last)
        labels = cal.labels[span].astype("datetime64[D]")
        labels = labels[labels >= EPOCH]
        opens, closes = cal.opens[span][-len(labels) :], cal.closes[span][-len(labels) :]
        if not len(labels):
            return _INTRADAY_SCHEMA.empty_table()
        minutes = self._minutes(ticker, labels, opens, closes)
        ts = minutes.column("timestamp").cast(pa.int64()).to_numpy()
        session_open = np.repeat(opens, ((closes - opens) // MINUTE_NS).astype("int64"))
        session_close = np.repeat(closes, ((closes - opens) // MINUTE_NS).astype("int64"))
        if self.interval == "1m":
            bars = minutes
            ends = ts + step
        else:
            bucket = session_open + (ts - session_open) // step * step
            bars = aggregate(minutes, bucket)
            starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            ends = np.minimum(bucket[starts] + step, session_close[starts])
        stamps = bars.column("timestamp").cast(pa.int64()).to_numpy()
        keep = (stamps >= lo) & (stamps <= hi) & (ends <= now)
        return bars if keep.all() else bars.filter(pa.array(keep))

    def _intraday_now(self) -> int:
        """The instant (ns) up to which intraday bars exist."""
        if self.as_of is None:
            return time.time_ns()
        end_of_day = pd.Timestamp(self.as_of, tz=demo_calendar.NEW_YORK) + pd.Timedelta(days=1)
        return int(end_of_day.tz_convert("UTC").value)

    def _minutes(
        self, ticker: str, labels: np.ndarray, opens: np.ndarray, closes: np.ndarray
    ) -> pa.Table:
        """The one-minute bars of the sessions ``labels`` (with their opens and closes)."""
        index = demo_calendar.count(labels).astype("int64")
        o_day, _, _, c_day, v_day = self._walk(ticker, int(index[0]), int(index[-1]) + 1)
        f = split_factor(ticker, int(index[0]), len(c_day))
        if f is not None:
            o_day, c_day, v_day = _cents(o_day * f), _cents(c_day * f), np.round(v_day / f)
        rel = index - index[0]
        cols: list[list[np.ndarray]] = [[] for _ in range(8)]
        for k in range(len(labels)):
            n = int((closes[k] - opens[k]) // MINUTE_NS)
            o0, c0 = float(o_day[rel[k]]), float(c_day[rel[k]])
            u = _to_unit(_raw(("minute", ticker, str(int(index[k]))), n * 4)).reshape(n, 4)
            walk = np.concatenate([[0.0], np.cumsum(2.0 * u[:, 0] - 1.0)])
            frac = np.arange(n + 1) / n
            path = o0 + (c0 - o0) * frac + 0.0008 * o0 * (walk - frac * walk[-1])
            path = _cents(np.maximum(path, 0.01))
            path[0], path[-1] = o0, c0
            op, cl = path[:-1], path[1:]
            hi_ = np.maximum(
                _cents(np.maximum(op, cl) * (1.0 + 0.0005 * u[:, 1])), np.maximum(op, cl)
            )
            lo_ = np.minimum(
                _cents(np.minimum(op, cl) * (1.0 - 0.0005 * u[:, 2])), np.minimum(op, cl)
            )
            vol = np.round(float(v_day[rel[k]]) / n * (0.3 + 1.4 * u[:, 3]))
            vwap = np.clip(np.round((hi_ + lo_ + cl) / 3.0, 4), lo_, hi_)
            stamps = opens[k] + np.arange(n, dtype="int64") * MINUTE_NS
            for out, v in zip(cols, (stamps, op, hi_, lo_, cl, vol, vwap, vol), strict=True):
                out.append(v)
        stamps, op, hi_, lo_, cl, vol, vwap, _ = (np.concatenate(c) for c in cols)
        trades = np.maximum(vol // 100, 1).astype("int64")
        arrays = [
            _ticker_array(ticker, len(stamps)),
            pa.array(stamps, type=pa.int64()).cast(TIMESTAMP_TYPE),
            *(pa.array(v, type=pa.float64()) for v in (op, hi_, lo_, cl, vol, vwap)),
            pa.array(trades, type=pa.int64()),
        ]
        return pa.Table.from_arrays(arrays, schema=_INTRADAY_SCHEMA)

    def bars(
        self, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> pd.DataFrame:
        """The bars of ``ticker`` in ``[start, end]`` (UTC timestamps or None)."""
        cols = self._columns(ticker, start, end)
        if cols is None:
            return empty_prices()
        n = len(cols[0])
        frame = pd.DataFrame(
            {
                "ticker": pd.array(_ticker_array(ticker, n), dtype=_TICKER_DTYPE),
                "timestamp": pd.DatetimeIndex(cols[0]).tz_localize("UTC"),
                "open": cols[1],
                "high": cols[2],
                "low": cols[3],
                "close": cols[4],
                "volume": cols[5],
            },
            columns=list(PRICE_COLUMNS),
        )
        return frame

    def bars_arrow(
        self, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> pa.Table:
        """:meth:`bars` as a ``pyarrow.Table`` with the prices columns and types."""
        cols = self._columns(ticker, start, end)
        if cols is None:
            return _EMPTY_ARROW
        stamps, *values = cols
        arrays = [
            _ticker_array(ticker, len(stamps)),
            pa.array(stamps.view("int64"), type=TIMESTAMP_TYPE),
            *(pa.array(v, type=pa.float64()) for v in values),
        ]
        return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)

    def _columns(
        self, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> tuple[np.ndarray, ...] | None:
        """``(timestamps, open, high, low, close, volume)`` as numpy arrays, or None if the
        range holds no bars."""
        i0, i1, last = self._span(start, end)
        if i1 < i0:
            return None
        o, h, lo, c, v = self._walk(ticker, i0, i1 + 1)
        f = split_factor(ticker, i0, len(c))
        if f is not None:  # as traded: prices before a split are higher (demo_actions)
            o, h, lo, c = (_cents(x * f) for x in (o, h, lo, c))
            v = np.round(v / f)
        if self.revision and self.revised_bars:
            self._revise(ticker, last, i0, o, h, lo, c, v)
        stamps = _business_days(i1 + 1)[i0:]
        reject_future_stamps(
            stamps, ticker, self.name, f" (the demo source's as_of={self.as_of} is in the future)"
        )
        return stamps, o, h, lo, c, v

    def _span(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> tuple[int, int, int]:
        """Bar indices ``(first, last)`` of ``[start, end]`` and of the last bar as of now."""
        last = _last_index(self.as_of or last_business_day())
        i1 = last if end is None else min(last, _count(_day(end.floor("D")) + 1) - 1)
        if start is None:
            i0 = _history_start(max(i1, 0), self.history_years)
        else:
            i0 = _count(_day(start.ceil("D")))
        return max(i0, 0), i1, last

    def fetch_with_actions(
        self, ticker: str, start: TimeLike = None, end: TimeLike = None
    ) -> Fetched:
        """:meth:`fetch_arrow` and the ticker's splits and dividends in the same range
        (:mod:`~tickvault.sources.demo_actions`); the pipeline prefers this method."""
        table = self.fetch_arrow(ticker, start, end)
        if not has_actions(ticker):
            return Fetched(table)
        lo, hi = bounds(start, end)
        return Fetched(table, self.actions(ticker, lo, hi))

    def actions(
        self, ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """The splits and dividends of ``ticker`` with ex-dates in ``[start, end]``."""
        i0, i1, _ = self._span(start, end)
        k, kinds, values = actions_between(ticker, i0, i1, lambda j, n: self._walk(ticker, j, n)[3])
        stamps = _business_days(i1 + 1)[k] if len(k) else []
        return actions_frame(ticker, stamps, kinds, values)

    @staticmethod
    def _walk(ticker: str, i0: int, n: int) -> tuple[np.ndarray, ...]:
        """Bars ``i0 .. n-1`` of the ticker's walk. The close is a cumulative product from
        :data:`EPOCH`, so it is computed from bar 0; the other columns only for the range
        (element-wise, so each value is the same whatever range is asked for)."""
        p0 = price_level(ticker)
        base_volume = 1e5 * (1.0 + 99.0 * _unit("volume", ticker))
        # row i of the stream is bar i: (return, open, high, low, volume) uniforms; only
        # the returns are needed before i0 (converting less keeps the temporaries small)
        raw = _raw(("walk", ticker), n * 5).reshape(n, 5)
        ret = 1.0 + 0.02 * (2.0 * _to_unit(raw[:, 0]) - 1.0)
        # the close is the level times the product of the last _WINDOW daily moves: a walk
        # day to day that stays around the ticker's level over the years (a plain cumulative
        # product wanders off to cents or tens of thousands over two decades)
        grown = np.cumprod(ret)
        close = p0 * grown
        close[_WINDOW:] /= grown[: n - _WINDOW] if n > _WINDOW else 1.0
        u = _to_unit(raw[i0:, 1:])  # open, high, low, volume
        prev = np.empty(n - i0)
        if i0 == 0:
            prev[0] = p0
            prev[1:] = close[:-1]
        else:
            prev[:] = close[i0 - 1 : n - 1]
        o = _cents(prev * (1.0 + 0.01 * (2.0 * u[:, 0] - 1.0)))
        c = _cents(close[i0:])
        h = _cents(np.maximum(o, c) * (1.0 + 0.015 * u[:, 1]))
        lo = _cents(np.minimum(o, c) * (1.0 - 0.015 * u[:, 2]))
        v = np.round(base_volume * (0.3 + 1.4 * u[:, 3]))
        return o, h, lo, c, v

    def _revise(
        self,
        ticker: str,
        last: int,
        i0: int,
        o: np.ndarray,
        h: np.ndarray,
        lo: np.ndarray,
        c: np.ndarray,
        v: np.ndarray,
    ) -> None:
        """Scale the last ``revised_bars`` bars (up to ``last``) by a factor per revision;
        the arrays hold bars ``i0 ..``."""
        first = max(0, last - self.revised_bars + 1)
        stop = min(last + 1, i0 + len(c))
        if stop <= first:
            return
        k = stop - first
        f = 1.002 + 0.02 * _uniforms(("revision", ticker, str(self.revision)), k, 1)[:, 0]
        lo_i = max(first, i0)
        if stop <= lo_i:
            return
        f = f[lo_i - first :]
        a, b = lo_i - i0, stop - i0
        for arr in (o, h, lo, c):
            arr[a:b] = _cents(arr[a:b] * f)
        v[a:b] = np.round(v[a:b] * f)
