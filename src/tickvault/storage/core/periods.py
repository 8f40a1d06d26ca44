"""Time periods of the level-1 layout (decision 015).

Level-1 files are keyed by (period, ticker range): every row of a level-1 file lies in one
calendar period of its table (a year for daily bars), and inside a period the files hold
disjoint ticker ranges, each sorted by (ticker, timestamp). So a time filter opens only its
periods' files, appends never rewrite a closed period, and one ticker's rows stay
contiguous inside each period.

A period is named by the ns timestamp of its first instant (UTC). ``"none"`` is one period
for all time (the ticker-major layout of databases written before periods existed).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pyarrow as pa

from ...errors import ConfigError
from ...keys import Runs

#: period names and the numpy unit each truncates to
UNITS: dict[str, str] = {"none": "", "year": "Y", "quarter": "M", "month": "M", "day": "D"}

#: the single period of ``"none"``
ALL_TIME = -(2**63)


def check_period(value: object, name: str = "period") -> str:
    """A period name (any case); ConfigError naming the choices otherwise."""
    if isinstance(value, str) and value.strip().lower() in UNITS:
        return value.strip().lower()
    raise ConfigError(
        f"{name}={value!r} is not one of {sorted(UNITS)}; e.g. {name}='year' for daily bars, "
        f"{name}='day' for minute bars"
    )


def period_starts(ts: np.ndarray, period: str) -> np.ndarray:
    """The start (ns) of the period of each ns timestamp in ``ts``: a floor division for
    days, a binary search among the cached period starts for the calendar units (numpy's
    datetime64[Y]/[M] casts cost 10x more on millions of rows)."""
    ts = np.asarray(ts, dtype=np.int64)
    if period == "none":
        return np.full(len(ts), ALL_TIME, dtype=np.int64)
    if period == "day":
        return ts - np.mod(ts, _DAY)
    starts = _starts(period)
    if len(ts) > 1024:
        # only the starts between the smallest and the largest timestamp (ten years of
        # daily bars: 11 of the 585 year starts): fewer steps per row, 47 -> 20 ms on 2.5 M
        lo = int(np.searchsorted(starts, ts.min(), side="right")) - 1
        hi = int(np.searchsorted(starts, ts.max(), side="right"))
        starts = starts[lo:hi]
    return starts[np.searchsorted(starts, ts, side="right") - 1]


_DAY = 86_400 * 10**9


@cache
def _starts(period: str) -> np.ndarray:
    """Every start of a ``period`` (year, quarter, month) that ns timestamps can hold, as
    ns since 1970, ascending; the first is the earliest representable instant."""
    months = np.arange(
        np.datetime64("1677-09", "M").astype(np.int64),
        np.datetime64("2262-05", "M").astype(np.int64),
        dtype=np.int64,
    )
    if period == "year":
        months = months[months % 12 == 0]
    elif period == "quarter":
        months = months[months % 3 == 0]
    out = months.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)
    return np.concatenate([[np.iinfo(np.int64).min], out])


def period_of(ns: int, period: str) -> int:
    """The start (ns) of the period holding ``ns``."""
    return int(period_starts(np.array([ns], dtype=np.int64), period)[0])


@cache
def _next(start: int, period: str) -> int:
    if period == "none":
        return 2**63 - 1
    unit = UNITS[period]
    step = 3 if period == "quarter" else 1
    t = np.array([start], dtype=np.int64).astype("datetime64[ns]").astype(f"datetime64[{unit}]")
    nxt = (t + step).astype("datetime64[ns]").astype(np.int64)
    return int(nxt[0])


def period_end(start: int, period: str) -> int:
    """The first ns after the period that starts at ``start``."""
    return _next(start, period)


def span(min_ns: int, max_ns: int, period: str) -> tuple[int, int]:
    """The first and last period (starts) that the time range [min_ns, max_ns] touches."""
    return period_of(min_ns, period), period_of(max_ns, period)


#: Runs of one period shorter than this on average (rows): gathered instead of sliced.
GATHER_BELOW_ROWS = 64


def split_by_period(
    table: pa.Table, time_column: str, period: str, runs: Runs | None = None
) -> list[tuple[int, pa.Table, Runs | None]]:
    """``table`` cut into one table per period, each keeping the input's row order (a table
    sorted by (ticker, timestamp) gives pieces sorted the same way); periods ascending.
    With ``runs`` (the table's ticker runs, the table sorted by ticker then time) each
    piece comes with its own runs, cut from them instead of found again in the piece's
    column (the ten year pieces of a 1,000-ticker bulk load: 100 ms); else None. Both
    ways below keep the input order within a period, so a ticker's rows of one period
    stay one run.

    A batch sorted by (ticker, timestamp) is a run of rows of one period per (ticker,
    period): each period's table is those runs as zero-copy slices, not a gather of every
    row (the gather was a third of a 24.6 M-row bulk load of minute bars). Input with many
    short runs (unsorted rows) is gathered instead."""
    if period == "none" or table.num_rows == 0:
        return [(ALL_TIME, table, runs)]
    ts = table.column(time_column).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    starts = period_starts(ts, period)
    first, last = starts.min(), starts.max()
    if first == last:
        return [(int(first), table, runs)]
    change = np.flatnonzero(starts[1:] != starts[:-1]) + 1
    if len(change) > max(64, table.num_rows // GATHER_BELOW_ROWS):
        pieces = _gathered(table, starts)
    else:
        bounds = [0, *change.tolist(), len(starts)]
        segments: dict[int, list[pa.Table]] = {}
        for a, b in itertools.pairwise(bounds):
            segments.setdefault(int(starts[a]), []).append(table.slice(a, b - a))
        pieces = [
            (p, parts[0] if len(parts) == 1 else pa.concat_tables(parts))
            for p, parts in sorted(segments.items())
        ]
    if runs is None:
        return [(p, t, None) for p, t in pieces]
    by_period = _runs_by_period(runs, starts, change)
    return [(p, t, by_period[p]) for p, t in pieces]


def _runs_by_period(runs: Runs, starts: np.ndarray, change: np.ndarray) -> dict[int, Runs]:
    """The ticker runs of each period's piece: the rows cut at every ticker start and
    every change of period are intervals of one ticker and one period each (a ticker's
    rows of one period are adjacent, its rows being sorted by time), kept in input order
    within each period."""
    cuts = np.union1d(runs.starts, change)
    ends = np.append(cuts[1:], len(starts))
    ticker = np.searchsorted(runs.starts, cuts, side="right") - 1
    period = starts[cuts]
    order = np.argsort(period, kind="stable")  # the intervals grouped by period, in order
    bounds = np.flatnonzero(np.diff(period[order])) + 1
    out: dict[int, Runs] = {}
    for mine in np.split(order, bounds):
        lengths = ends[mine] - cuts[mine]
        piece_ends = np.cumsum(lengths)
        values = runs.values.take(pa.array(ticker[mine]))
        out[int(period[mine[0]])] = Runs(values, piece_ends - lengths, piece_ends)
    return out


def _gathered(table: pa.Table, starts: np.ndarray) -> list[tuple[int, pa.Table]]:
    order = np.argsort(starts, kind="stable")
    ordered = starts[order]
    cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    taken = table.take(pa.array(order))
    out = []
    bounds = [0, *cuts.tolist(), len(order)]
    for a, b in itertools.pairwise(bounds):
        out.append((int(ordered[a]), taken.slice(a, b - a)))
    return out
