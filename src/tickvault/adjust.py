"""Split- and dividend-adjusted prices, computed from as-traded bars and corporate actions.

Pure functions over Arrow tables: ``adjust_prices(prices, actions, "splits" | "all")``
returns the prices back-adjusted by the actions. Nothing is read or written here; the
storage engine calls this on the bars and actions of one snapshot
(:mod:`tickvault.storage.readers.adjusted`), and any other reader can do the same.

The formulas (docs/storage.md, "Adjusted prices"):

* **splits** — a split with timestamp ``t`` and value ``r`` (new shares per old share, 4.0
  for 4-for-1) divides ``open``, ``high``, ``low``, ``close`` (and ``vwap``) of every
  bar before ``t`` (``timestamp < t``) by ``r`` and multiplies its ``volume`` by ``r``.
  Several splits multiply.
* **all** — splits as above, and each dividend ``D`` (cash per share, as paid) with ex-date
  ``t`` multiplies the prices of every bar before ``t`` by ``1 - D / C``, where ``C`` is the
  as-traded close of the last bar before ``t`` (the CRSP / Yahoo ``adjclose`` method).
  Volume is adjusted for splits only. A dividend with no bar before it adjusts nothing.

``adj_close`` (a source's own adjusted close, where it gives one) is passed through as is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .adjust_index import ActionsIndex, DividendFactors, as_floats, as_ns
from .keys import Runs, column_runs
from .modes import Adjust, parse_adjust

PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")


def _by_ticker(actions: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per ticker: action timestamps (ns), kinds (True = split) and values, by time."""
    if actions.num_rows == 0:
        return {}
    actions = actions.sort_by([("ticker", "ascending"), ("timestamp", "ascending")])
    runs = column_runs(actions, "ticker")
    ts = as_ns(actions.column("timestamp"))
    split = np.asarray(
        pc.equal(actions.column("kind"), "split").to_numpy(zero_copy_only=False), dtype=bool
    )
    value = as_floats(actions.column("value"))
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
    ts = as_ns(prices.column("timestamp"))
    last = {str(t): int(ts[b - 1]) for t, b in zip(runs.values.to_pylist(), runs.ends, strict=True)}
    need: dict[str, tuple[int, int]] = {}
    for t, (stamps, _, _) in _by_ticker(divs).items():
        lo = last.get(t)
        if lo is not None and stamps[-1] > lo:
            need[t] = (lo, int(stamps[-1]))
    return need


def previous_closes(actions: pa.Table, closes: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``actions`` (``ticker, timestamp, ...``), the as-traded close of its
    ticker's last bar strictly before its timestamp in ``closes`` (``ticker, timestamp,
    close``, sorted by ticker and timestamp) and that bar's timestamp (ns): NaN and -1 where
    there is none."""
    n = actions.num_rows
    prev = np.full(n, np.nan)
    when = np.full(n, -1, dtype=np.int64)
    if n == 0 or closes.num_rows == 0:
        return prev, when
    runs = column_runs(closes, "ticker")
    c_ts = as_ns(closes.column("timestamp"))
    c_close = as_floats(closes.column("close"))
    spans = {
        str(t): (a, b)
        for t, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True)
    }
    a_ts = as_ns(actions.column("timestamp"))
    for i, t in enumerate(actions.column("ticker").to_pylist()):
        span = spans.get(str(t))
        if span is None:
            continue
        a, b = span
        k = int(np.searchsorted(c_ts[a:b], a_ts[i], side="left")) - 1
        if k >= 0:
            prev[i], when[i] = c_close[a + k], c_ts[a + k]
    return prev, when


def adjust_prices(
    prices: pa.Table,
    actions: pa.Table | ActionsIndex,
    adjust: Adjust | None,
    *,
    closes: pa.Table | None = None,
    factors: DividendFactors | None = None,
    read_closes: Callable[[dict[str, tuple[int, int]]], pa.Table | None] | None = None,
) -> pa.Table:
    """``prices`` back-adjusted by ``actions`` (see the module docstring).

    ``prices`` holds as-traded bars sorted by ``(ticker, timestamp)`` with at least
    ``ticker`` and ``timestamp`` (price columns and ``volume`` are adjusted where present);
    ``actions`` has ``ticker, timestamp, kind, value``, or is an :class:`ActionsIndex` of
    them. ``closes`` (``ticker, timestamp, close``, as traded) supplies the closes of bars
    that ``prices`` does not hold — a range read lacks the bars after its end that
    dividends after it are measured against (:func:`dividend_closes_needed`). The result
    has the same rows, columns and types.

    A storage reader passes ``factors``, the dividend products of its prices snapshot
    (cached across reads), and instead of ``closes`` a ``read_closes(need)`` that reads
    the closes of ``after < timestamp < upto`` for ``need = {ticker: (after, upto)}``,
    called only when dividends not yet in ``factors`` lie after the bars read.
    """
    adjust = parse_adjust(adjust)
    if adjust is None or prices.num_rows == 0:
        return prices
    index = actions if isinstance(actions, ActionsIndex) else ActionsIndex(actions)
    if index.num_actions == 0:
        return prices
    runs, names = ticker_runs(prices)
    codes = index.code_of(names)
    if max(codes.tolist()) < 0:
        return prices
    ts = as_ns(prices.column("timestamp"))
    pos = index.positions(runs, codes, ts)
    split_after = index.split_suffix[pos]
    # 1 / split_after, times the dividends' product for "all": precomputed per position
    factor = index.split_price[pos]
    schema = prices.schema
    if adjust == "all" and schema.get_field_index("close") >= 0:
        if factors is None or factors.index is not index:
            factors = DividendFactors(index)
        _fill_dividends(prices, runs, names, codes, ts, pos, factors, closes, read_closes)
        factor = factors.price[pos]
    # Arrow's multiply is the IEEE product numpy computed before, and keeps nulls null
    out = prices
    # a ticker without splits has split factors of 1.0 (x * 1.0 is x: nothing to do)
    some_split = bool(index.has_split[codes].any())
    by_volume = pa.array(split_after) if some_split else None
    by_price = pa.array(factor) if some_split or adjust == "all" else None
    for col in (*PRICE_COLUMNS, "volume"):
        i = schema.get_field_index(col)
        if i < 0:
            continue
        f = by_volume if col == "volume" else by_price
        values = prices.column(i)
        if values.type == pa.float64() and f is None:
            continue
        if values.type != pa.float64():
            values = values.cast(pa.float64())
        if f is not None:
            values = pc.multiply(values, f)
        out = out.set_column(i, schema.field(i), values)
    return out


def ticker_runs(prices: pa.Table) -> tuple[Runs, list[str]]:
    """The runs of ``ticker`` in ``prices`` (sorted by it) and their tickers: without a
    scan when the first and last rows have the same ticker (one ticker read)."""
    col = prices.column("ticker")
    n = prices.num_rows
    first, last = col[0].as_py(), col[n - 1].as_py()
    if first == last and first is not None:
        return Runs(col.chunk(0)[:1], np.array([0]), np.array([n])), [str(first)]
    runs = column_runs(prices, "ticker")
    return runs, [str(t) for t in runs.values.to_pylist()]


def _fill_dividends(
    prices: pa.Table,
    runs: Runs,
    names: list[str],
    codes: np.ndarray,
    ts: np.ndarray,
    pos: np.ndarray,
    factors: DividendFactors,
    closes: pa.Table | None,
    read_closes: Callable[[dict[str, tuple[int, int]]], pa.Table | None] | None,
) -> None:
    """Fill ``factors`` for the dividends the bars of ``prices`` need and it lacks: those
    after each ticker's first bar read, measured against the bars read and, for those
    after its last bar read, ``closes`` or the closes ``read_closes`` reads."""
    todo = []
    need: dict[str, tuple[int, int]] = {}
    ix = factors.index
    # the tickers whose first bar read needs actions not known yet (usually none)
    first = pos[runs.starts] - codes
    if len(codes) == 1:
        lacking = [0] if codes[0] >= 0 and first[0] < factors.known[codes[0]] else []
    else:
        lacking = np.flatnonzero((codes >= 0) & (first < factors.known[codes])).tolist()
    for r in lacking:
        code, b = int(codes[r]), int(runs.ends[r])
        span = factors.missing(code, int(first[r]) + code)
        if span is None:
            continue
        todo.append((r, code, span))
        last_div = int(ix.ts[span[1] - 1])
        if last_div > ts[b - 1]:
            need[names[r]] = (int(ts[b - 1]), last_div)
    if not todo:
        return
    read = read_closes is not None and bool(need)
    if read_closes is not None and need:
        closes = read_closes(need)
    # what read_closes reads comes sorted by (ticker, timestamp), as every storage read
    extra = _by_ticker_closes(closes, is_sorted=read) if closes is not None else {}
    close = as_floats(prices.column("close"))
    for r, code, (g0, g1) in todo:
        a, b = int(runs.starts[r]), int(runs.ends[r])
        ref_ts, ref_close = ts[a:b], close[a:b]
        more = extra.get(names[r])
        if more is not None:
            ref_ts = np.concatenate([ref_ts, more[0]])
            ref_close = np.concatenate([ref_close, more[1]])
            order = np.argsort(ref_ts, kind="stable")
            ref_ts, ref_close = ref_ts[order], ref_close[order]
        factors.fill(code, g0, g1, ref_ts, ref_close)


def _by_ticker_closes(
    closes: pa.Table, *, is_sorted: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if closes.num_rows == 0:
        return {}
    if not is_sorted:
        closes = closes.sort_by([("ticker", "ascending"), ("timestamp", "ascending")])
    runs = column_runs(closes, "ticker")
    ts = as_ns(closes.column("timestamp"))
    close = as_floats(closes.column("close"))
    return {
        str(t): (ts[a:b], close[a:b])
        for t, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True)
    }
