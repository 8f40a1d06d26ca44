"""Split- and dividend-adjusted prices, computed from as-traded bars and corporate actions.

Pure functions over Arrow tables: ``adjust_prices(prices, actions, "splits" | "all")``
returns the prices back-adjusted by the actions. Nothing is read or written here; the
storage engine calls this on the bars and actions of one snapshot
(:mod:`tickvault.storage.adjusted`), and any other reader can do the same.

The formulas (docs/storage.md, "Adjusted prices"):

* **splits** — a split with timestamp ``t`` and value ``r`` (new shares per old share, 4.0
  for 4-for-1) divides ``open``, ``high``, ``low`` and ``close`` of every bar before ``t``
  (``timestamp < t``) by ``r`` and multiplies its ``volume`` by ``r``. Several splits
  multiply.
* **all** — splits as above, and each dividend ``D`` (cash per share, as paid) with ex-date
  ``t`` multiplies the prices of every bar before ``t`` by ``1 - D / C``, where ``C`` is the
  as-traded close of the last bar before ``t`` (the CRSP / Yahoo ``adjclose`` method).
  Volume is adjusted for splits only. A dividend with no bar before it adjusts nothing.

``adj_close`` (a source's own adjusted close, where it gives one) is passed through as is.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError
from .keys import column_runs

Adjust = Literal["splits", "all"]

#: The values ``adjust=`` takes (None: as traded).
ADJUST_CHOICES: tuple[str, ...] = ("splits", "all")

PRICE_COLUMNS = ("open", "high", "low", "close")


def check_adjust(adjust: object) -> Adjust | None:
    """``adjust`` if it is None, ``"splits"`` or ``"all"``; ConfigError otherwise."""
    if adjust is None or adjust in ADJUST_CHOICES:
        return adjust  # type: ignore[return-value]
    raise ConfigError(
        f"adjust must be None (prices as traded), 'splits' or 'all' (splits and dividends), "
        f"got {adjust!r}; e.g. read_table('prices', tickers='AAPL', adjust='all')"
    )


def _ns(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _floats(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _suffix_products(values: np.ndarray) -> np.ndarray:
    """``out[j]`` = product of ``values[j:]`` (``out[len] = 1``)."""
    out = np.ones(len(values) + 1)
    if len(values):
        out[:-1] = np.cumprod(values[::-1])[::-1]
    return out


def _by_ticker(actions: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per ticker: action timestamps (ns), kinds (True = split) and values, by time."""
    if actions.num_rows == 0:
        return {}
    actions = actions.sort_by([("ticker", "ascending"), ("timestamp", "ascending")])
    runs = column_runs(actions, "ticker")
    ts = _ns(actions.column("timestamp"))
    split = np.asarray(
        pc.equal(actions.column("kind"), "split").to_numpy(zero_copy_only=False), dtype=bool
    )
    value = _floats(actions.column("value"))
    out = {}
    for name, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True):
        out[str(name)] = (ts[a:b], split[a:b], value[a:b])
    return out


def dividend_closes_needed(prices: pa.Table, actions: pa.Table) -> dict[str, tuple[int, int]]:
    """Per ticker, the span ``(after, upto)`` of timestamps whose bars ``prices`` lacks but
    the dividend factors need: dividends later than the ticker's last bar in ``prices``
    need the close of the last bar before them. A reader of a date range reads the closes
    of ``after < timestamp < upto`` and passes them as ``closes`` to :func:`adjust_prices`.
    """
    if prices.num_rows == 0 or actions.num_rows == 0:
        return {}
    divs = actions.filter(pc.equal(actions.column("kind"), "dividend"))
    if divs.num_rows == 0:
        return {}
    runs = column_runs(prices, "ticker")
    ts = _ns(prices.column("timestamp"))
    last = {str(t): int(ts[b - 1]) for t, b in zip(runs.values.to_pylist(), runs.ends, strict=True)}
    need: dict[str, tuple[int, int]] = {}
    for t, (stamps, _, _) in _by_ticker(divs).items():
        lo = last.get(t)
        if lo is not None and stamps[-1] > lo:
            need[t] = (lo, int(stamps[-1]))
    return need


def adjust_prices(
    prices: pa.Table,
    actions: pa.Table,
    adjust: Adjust | None,
    *,
    closes: pa.Table | None = None,
) -> pa.Table:
    """``prices`` back-adjusted by ``actions`` (see the module docstring).

    ``prices`` holds as-traded bars sorted by ``(ticker, timestamp)`` with at least
    ``ticker`` and ``timestamp`` (price columns and ``volume`` are adjusted where present);
    ``actions`` has ``ticker, timestamp, kind, value``. ``closes`` (``ticker, timestamp,
    close``, as traded) supplies the closes of bars that ``prices`` does not hold — a range
    read lacks the bars after its end that dividends after it are measured against
    (:func:`dividend_closes_needed`). The result has the same rows, columns and types.
    """
    adjust = check_adjust(adjust)
    if adjust is None or prices.num_rows == 0 or actions.num_rows == 0:
        return prices
    if adjust == "splits":
        actions = actions.filter(pc.equal(actions.column("kind"), "split"))
    per_ticker = _by_ticker(actions)
    if not per_ticker:
        return prices
    extra = _by_ticker_closes(closes) if adjust == "all" and closes is not None else {}
    runs = column_runs(prices, "ticker")
    n = prices.num_rows
    ts = _ns(prices.column("timestamp"))
    has_close = "close" in prices.column_names
    close = _floats(prices.column("close")) if has_close else None
    price_factor = np.ones(n)
    volume_factor = np.ones(n)
    touched = False
    for name, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True):
        acts = per_ticker.get(str(name))
        if acts is None:
            continue
        a_ts, a_split, a_value = acts
        bar_ts = ts[a:b]
        # index of the first action strictly after each bar: actions[j:] apply to the bar
        j = np.searchsorted(a_ts, bar_ts, side="right")
        splits = np.where(a_split, a_value, 1.0)
        split_after = _suffix_products(splits)[j]
        factor = 1.0 / split_after
        volume_factor[a:b] = split_after
        if adjust == "all":
            ref_ts, ref_close = bar_ts, close[a:b] if close is not None else None
            more = extra.get(str(name))
            if more is not None and ref_close is not None:
                ref_ts = np.concatenate([bar_ts, more[0]])
                ref_close = np.concatenate([ref_close, more[1]])
                order = np.argsort(ref_ts, kind="stable")
                ref_ts, ref_close = ref_ts[order], ref_close[order]
            mult = np.ones(len(a_ts))
            if ref_close is not None and len(ref_ts):
                is_div = ~a_split
                # the last bar strictly before each dividend's ex-date
                k = np.searchsorted(ref_ts, a_ts[is_div], side="left") - 1
                ok = k >= 0
                m = np.ones(int(is_div.sum()))
                m[ok] = 1.0 - a_value[is_div][ok] / ref_close[k[ok]]
                mult[is_div] = m
            factor = factor * _suffix_products(mult)[j]
        price_factor[a:b] = factor
        touched = True
    if not touched:
        return prices
    out = prices
    for col in (*PRICE_COLUMNS, "volume"):
        if col not in out.column_names:
            continue
        i = out.column_names.index(col)
        f = volume_factor if col == "volume" else price_factor
        values = pa.array(_floats(out.column(i)) * f, type=pa.float64())
        arr = out.column(i).combine_chunks()
        if arr.null_count:
            values = pc.if_else(pc.is_null(arr), pa.nulls(n, pa.float64()), values)
        out = out.set_column(i, out.schema.field(i), values)
    return out


def _by_ticker_closes(closes: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if closes.num_rows == 0:
        return {}
    closes = closes.sort_by([("ticker", "ascending"), ("timestamp", "ascending")])
    runs = column_runs(closes, "ticker")
    ts = _ns(closes.column("timestamp"))
    close = _floats(closes.column("close"))
    return {
        str(t): (ts[a:b], close[a:b])
        for t, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True)
    }
