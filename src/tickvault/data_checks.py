"""Checks of the stored bars themselves: missing sessions and suspicious moves.

* :func:`gaps` — per ticker, each run of trading sessions of an exchange calendar (any
  ``exchange_calendars`` code, e.g. ``"XNYS"``) that has no bar, inside that ticker's own
  stored range: a ticker listed in 2019 is not "missing" 2010.
* :func:`suspicious_moves` — bar-to-bar moves of the close by more than a factor of
  ``1 + threshold`` either way (``threshold=0.5``: up more than 50 %, or down below 1/1.5 of
  the previous close) that no stored split explains: the classic sign of a split the
  source did not report, or of a 100x unit error (pence for pounds, cents for dollars).

Both read the key columns (and ``close``) of one pinned version; nothing is written.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .calendars import get_calendar, session_labels
from .errors import ConfigError
from .schema import get_schema
from .times import TimeLike, check_order, iso, to_ns


class Snapshot(Protocol):
    """What the checks read: one pinned version of a table
    (:class:`~tickvault.storage.core.snapshot.Snapshot`, which storage hands in; this
    module sits below storage and imports none of it)."""

    @property
    def table(self) -> str: ...

    def read_arrow(
        self, *, tickers: Any = ..., start: Any = ..., end: Any = ..., columns: Any = ...
    ) -> Any: ...


def _runs(values: np.ndarray, series: np.ndarray) -> list[tuple[str, int, int]]:
    """(ticker, first row, end row) of each ticker's run in ``series`` (sorted)."""
    if len(series) == 0:
        return []
    cuts = np.flatnonzero(series[1:] != series[:-1]) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(series)]
    return [(str(series[a]), a, b) for a, b in zip(starts, ends, strict=True)]


def gaps(
    snap: Snapshot,
    *,
    calendar: str,
    tickers: list[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs of missing sessions: ``{"ticker", "first", "last", "sessions"}`` (the first and
    last missing session as ``YYYY-MM-DD``, and how many), by ticker then date. A ticker's
    range is its first to its last stored bar, narrowed to ``start``..``end``. Where a
    ticker's bars start before the calendar's first session, only the sessions the calendar
    knows are checked, and a line saying so is appended to ``notes``."""
    if not calendar or not str(calendar).strip():
        raise ConfigError("calendar= is empty; pass an exchange calendar code, e.g. 'XNYS'")
    cal = get_calendar(calendar)
    s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
    check_order(start, end, s, e)
    keys = snap.read_arrow(tickers=tickers, start=start, end=end, columns=[])
    if keys.num_rows == 0:
        return []
    ts = pd.DatetimeIndex(keys.column(snap_time(snap)).to_pandas())
    labels = session_labels(ts, cal.tz)
    names = keys.column(snap_series(snap)).to_numpy(zero_copy_only=False)
    lo_cal, hi_cal = cal.sessions[0], cal.sessions[-1]
    out: list[dict[str, Any]] = []
    clipped: list[str] = []
    for ticker, a, b in _runs(labels, names):
        have = np.unique(labels[a:b])
        first, last = have[0], have[-1]
        if first < lo_cal:
            clipped.append(ticker)
            first = lo_cal
        last = min(last, hi_cal)
        i = int(np.searchsorted(cal.sessions, first, side="left"))
        j = int(np.searchsorted(cal.sessions, last, side="right"))
        expected = cal.sessions[i:j]
        missing = ~np.isin(expected, have)
        if not missing.any():
            continue
        idx = np.flatnonzero(missing)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for run in np.split(idx, breaks):
            out.append(
                {
                    "ticker": ticker,
                    "first": str(expected[run[0]])[:10],
                    "last": str(expected[run[-1]])[:10],
                    "sessions": len(run),
                }
            )
    if clipped and notes is not None:
        notes.append(
            f"{len(clipped)} ticker(s) ({', '.join(clipped[:5])}"
            f"{', ...' if len(clipped) > 5 else ''}) have bars before the {cal.name} "
            f"calendar's first session {str(lo_cal)[:10]}; sessions before it were not checked"
        )
    return out


def snap_time(snap: Snapshot) -> str:
    return get_schema(snap.table).time_column


def snap_series(snap: Snapshot) -> str:
    return get_schema(snap.table).series_column


def check_threshold(threshold: object) -> float:
    """``threshold`` as a float > 0; ConfigError naming it and an example otherwise."""
    try:
        value = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(threshold, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"threshold={threshold!r} is not a number > 0; e.g. threshold=0.5 flags closes "
            f"that rise by more than 50 % or fall below 1/1.5 of the previous close"
        )
    return value


def suspicious_moves(
    prices: Snapshot,
    actions: Snapshot | None,
    *,
    threshold: float = 0.5,
    tickers: list[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> list[dict[str, Any]]:
    """Bar-to-bar close moves by more than a factor ``1 + threshold`` either way that the
    splits stored in ``actions`` between the two bars do not explain: ``{"ticker",
    "previous", "timestamp", "close_before", "close", "move", "split"}`` (``move``: the
    relative change, after the splits' adjustment if any; ``split``: the product of the
    split values between the bars, or None). Closes <= 0 are always listed."""
    factor = 1.0 + check_threshold(threshold)
    s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
    check_order(start, end, s, e)
    bars = prices.read_arrow(tickers=tickers, start=start, end=end, columns=["close"])
    if bars.num_rows < 2:
        return []
    splits = _splits(actions, tickers)
    names = bars.column("ticker").to_numpy(zero_copy_only=False)
    ts = bars.column("timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    close = pc.cast(bars.column("close"), pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    out: list[dict[str, Any]] = []
    for ticker, a, b in _runs(ts, names):
        if b - a < 2:
            continue
        prev, cur = close[a : b - 1], close[a + 1 : b]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = cur / prev
        bad = (prev <= 0) | (cur <= 0) | (ratio > factor) | (ratio < 1 / factor)
        bad &= ~(np.isnan(prev) | np.isnan(cur))
        sp_ts, sp_val = splits.get(ticker, (np.empty(0, np.int64), np.empty(0)))
        for k in np.flatnonzero(bad).tolist():
            t0, t1 = int(ts[a + k]), int(ts[a + k + 1])
            inside = (sp_ts > t0) & (sp_ts <= t1)
            split = float(np.prod(sp_val[inside])) if inside.any() else None
            r = float(ratio[k]) * (split or 1.0)
            positive = prev[k] > 0 and cur[k] > 0
            if positive and 1 / factor <= r <= factor:
                continue  # a stored split explains it
            out.append(
                {
                    "ticker": ticker,
                    "previous": iso(t0),
                    "timestamp": iso(t1),
                    "close_before": float(prev[k]),
                    "close": float(cur[k]),
                    "move": round(r - 1.0, 6) if positive else None,
                    "split": split,
                }
            )
    return out


def _splits(
    actions: Snapshot | None, tickers: list[str] | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per ticker: split timestamps (ns) and values (new shares per old share)."""
    if actions is None:
        return {}
    t = actions.read_arrow(tickers=tickers)
    if t.num_rows == 0:
        return {}
    t = t.filter(pc.equal(t.column("kind"), "split"))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names = t.column("ticker").to_numpy(zero_copy_only=False)
    ts = t.column("timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    val = pc.cast(t.column("value"), pa.float64()).to_numpy(zero_copy_only=False)
    for ticker, a, b in _runs(ts, names):
        out[ticker] = (ts[a:b], np.asarray(val[a:b], dtype=float))
    return out
