"""Resampling bars on read: finer bars of one table as coarser OHLCV bars.

``read_table("prices", interval="1m", resample="5m")``: per ticker, bars are grouped in
buckets of the target interval on the UTC clock, left-closed and labelled by their start
(as pandas ``resample(rule, closed="left", label="left")``); empty buckets are dropped.
Per bucket: ``open`` the first bar's, ``high`` the max, ``low`` the min, ``close`` and
``adj_close`` the last bar's, ``volume`` and ``trade_count`` the sums (``trade_count`` is
null when no bar of the bucket has one), ``vwap`` the volume-weighted mean of the bars'
vwaps (over the bars that have one; null when they have none or no volume).

``resample="1d"`` with ``calendar="XNYS"`` groups by exchange session instead of by UTC
day: each bar goes to the session of its local date (the last session before it for a
bar on a closed day), labelled like a daily bar, 00:00 UTC of the session date.

Storage reads come sorted by (ticker, timestamp), so a bucket is a run of rows: the work
is one pass of numpy ``reduceat`` over the run starts, no hashing, no Python per group.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError
from .keys import column_runs
from .modes import INTERVAL_SECONDS, parse_interval

#: the intervals ``resample=`` takes
RESAMPLE_CHOICES = ("2m", "5m", "15m", "30m", "1h", "1d")

DAY_NS = 86_400 * 10**9


def check_resample(rule: object, interval: str, calendar: str | None = None) -> str:
    """``resample=`` parsed against the table's ``interval``: a coarser interval that is a
    whole multiple of it; ConfigError naming the choices otherwise."""
    target = parse_interval(rule, name="resample")
    src, dst = INTERVAL_SECONDS[interval], INTERVAL_SECONDS[target]
    if dst <= src or dst % src:
        fits = [c for c in RESAMPLE_CHOICES if (s := INTERVAL_SECONDS[c]) > src and s % src == 0]
        if not fits:
            raise ConfigError(
                f"resample={rule!r} does not fit bars of interval {interval!r}: resampling "
                f"makes coarser bars, and {interval} bars are the coarsest there are; "
                f"resample an intraday table, e.g. read_table('prices', interval='1m', "
                f"resample='5m') (tickvault query --interval 1m --resample 5m)"
            )
        raise ConfigError(
            f"resample={rule!r} does not fit bars of interval {interval!r}: resampling "
            f"makes coarser bars whose length is a whole multiple of the table's; for "
            f"{interval} bars choose one of {', '.join(fits)}, e.g. "
            f"read_table('prices', interval='1m', resample='5m')"
        )
    if calendar is not None and target != "1d":
        raise ConfigError(
            f"calendar= groups bars by exchange session, which applies to resample='1d', "
            f"not resample={target!r}; drop calendar= or resample to '1d'"
        )
    return target


def bucket_starts(ns: np.ndarray, rule: str) -> np.ndarray:
    """The start of each timestamp's bucket on the UTC clock (int64 ns)."""
    step = INTERVAL_SECONDS[rule] * 10**9
    return np.floor_divide(ns, step) * step


def resample(table: pa.Table, rule: str, *, session_of: object = None) -> pa.Table:
    """``table`` (bars sorted by ticker and timestamp) as bars of ``rule``; see the module
    docstring. ``session_of``: a :class:`tickvault.sessions.Sessions` to group ``1d`` by
    session. The columns are those of ``table``, in its order."""
    n = table.num_rows
    if n == 0:
        return table
    ts = np.asarray(
        table.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False), dtype="int64"
    )
    if session_of is not None:
        from .sessions import Sessions

        assert isinstance(session_of, Sessions)
        idx = session_of.session_of(ts)
        before = idx < 0
        labels = session_of.labels.view("int64")
        bucket = np.where(before, np.floor_divide(ts, DAY_NS) * DAY_NS, labels[np.maximum(idx, 0)])
    else:
        bucket = bucket_starts(ts, rule)
    return aggregate(table, bucket)


def aggregate(table: pa.Table, bucket: np.ndarray) -> pa.Table:
    """Bars of ``table`` (sorted by ticker and timestamp) merged per run of equal
    ``bucket`` (int64 ns, one per row, the new bars' timestamps) within each ticker, by
    the rules of the module docstring."""
    n = table.num_rows
    if n == 0:
        return table
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=change[1:])
    runs = column_runs(table, "ticker")
    change[runs.starts] = True
    starts = np.flatnonzero(change)
    lasts = np.empty_like(starts)
    lasts[:-1] = starts[1:] - 1
    lasts[-1] = n - 1
    out: list[pa.Array] = []
    fields = []
    volume = _floats(table, "volume") if "volume" in table.column_names else None
    for fld in table.schema:
        name = fld.name
        col = table.column(name)
        if name == "timestamp":
            arr = pa.array(bucket[starts], type=pa.int64()).cast(fld.type)
        elif name in ("ticker", "open"):
            arr = col.take(pa.array(starts))
        elif name in ("close", "adj_close"):
            arr = col.take(pa.array(lasts))
        elif name == "high":
            arr = pa.array(np.maximum.reduceat(_floats(table, name), starts), type=fld.type)
        elif name == "low":
            arr = pa.array(np.minimum.reduceat(_floats(table, name), starts), type=fld.type)
        elif name == "volume":
            assert volume is not None
            arr = pa.array(np.add.reduceat(volume, starts), type=fld.type)
        elif name == "vwap":
            arr = _vwap(col, volume, starts, fld.type, _bounds(table, starts))
        elif name == "trade_count":
            arr = _sum_or_null(col, starts, fld.type)
        else:  # a column resampling has no rule for: the bucket's last value
            arr = col.take(pa.array(lasts))
        out.append(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        fields.append(fld)
    return pa.Table.from_arrays(out, schema=pa.schema(fields))


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype="float64")


def _valid(col: pa.ChunkedArray) -> np.ndarray:
    if col.null_count == 0:
        return np.ones(len(col), dtype=bool)
    return np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)


def _bounds(table: pa.Table, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each bucket's low and high, if the table has them."""
    if "low" not in table.column_names or "high" not in table.column_names:
        return None
    low = np.minimum.reduceat(_floats(table, "low"), starts)
    return low, np.maximum.reduceat(_floats(table, "high"), starts)


def _vwap(
    col: pa.ChunkedArray,
    volume: np.ndarray | None,
    starts: np.ndarray,
    typ: pa.DataType,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> pa.Array:
    valid = _valid(col)
    vwap = np.asarray(col.fill_null(0.0).to_numpy(zero_copy_only=False), dtype="float64")
    vol = np.ones(len(vwap)) if volume is None else volume
    w = np.where(valid, vol, 0.0)
    num = np.add.reduceat(vwap * w, starts)
    den = np.add.reduceat(w, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    if bounds is not None:
        # a weighted mean of values within [low, high] is within them; the sum of products
        # may round one ulp past a bound, which validation would refuse
        out = np.clip(out, bounds[0], bounds[1])
    return pa.array(out, type=typ, mask=~(den > 0))


def _sum_or_null(col: pa.ChunkedArray, starts: np.ndarray, typ: pa.DataType) -> pa.Array:
    valid = _valid(col)
    values = np.asarray(col.fill_null(0).to_numpy(zero_copy_only=False))
    sums = np.add.reduceat(values, starts)
    any_valid = np.add.reduceat(valid.astype("int64"), starts) > 0
    return pa.array(sums, type=typ, mask=~any_valid)
