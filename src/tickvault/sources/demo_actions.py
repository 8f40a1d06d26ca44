"""The demo source's corporate actions: fixed splits for a few tickers and quarterly
dividends for others, so the quick start shows adjusted prices.

The demo's bars are as traded: a ticker's prices before each of its splits are its walk
times the split ratios after them (volumes divided by them), so a 10-for-1 split shows as a
90 % drop in raw closes and disappears in ``adjust="splits"``. Dividends are paid on the
first session on or after the 10th of February, May, August and November, 0.5 % of
the previous close (as traded), in cents; they do not change the bars.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .demo_calendar import count, offset, roll_forward

#: ticker -> ((ex-date, new shares per old share), ...)
SPLITS: dict[str, tuple[tuple[str, float], ...]] = {
    "NVDA": (("2021-07-20", 4.0), ("2024-06-10", 10.0)),
    "TSLA": (("2020-08-31", 5.0), ("2022-08-25", 3.0)),
}

#: tickers that pay quarterly dividends
DIVIDENDS: frozenset[str] = frozenset(
    {"AAPL", "MSFT", "NVDA", "JPM", "JNJ", "KO", "PEP", "PG", "XOM", "CVX", "WMT", "HD"}
)

#: the dividend yield per quarter, of the previous close
YIELD = 0.005


def has_actions(ticker: str) -> bool:
    return ticker in SPLITS or ticker in DIVIDENDS


def split_indices(ticker: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bar index of each split's ex-date, ratios)`` of ``ticker`` (empty: none)."""
    splits = SPLITS.get(ticker, ())
    days = np.array([np.datetime64(d, "D") for d, _ in splits], dtype="datetime64[D]")
    idx = np.asarray(count(roll_forward(days)))
    return idx.astype(np.int64), np.array([r for _, r in splits], dtype=np.float64)


def split_factor(ticker: str, i0: int, n: int) -> np.ndarray | None:
    """For bars ``i0 .. i0+n-1``: the product of the ratios of the splits after each bar
    (None: the ticker has no splits)."""
    if ticker not in SPLITS:
        return None
    idx, ratios = split_indices(ticker)
    bars = np.arange(i0, i0 + n)
    factor = np.ones(n)
    for k, r in zip(idx, ratios, strict=True):
        factor[bars < k] *= r
    return factor


def dividend_indices(i0: int, i1: int) -> np.ndarray:
    """Bar indices in ``[max(i0, 1), i1]`` of the quarterly ex-dates."""
    if i1 < max(i0, 1):
        return np.zeros(0, dtype=np.int64)
    first = int(str(offset(max(i0, 1)))[:4])
    last = int(str(offset(i1))[:4])
    dates = [
        np.datetime64(f"{y}-{m:02d}-10", "D") for y in range(first, last + 1) for m in (2, 5, 8, 11)
    ]
    idx = np.asarray(count(roll_forward(np.array(dates, dtype="datetime64[D]")))).astype(np.int64)
    return idx[(idx >= max(i0, 1)) & (idx <= i1)]


def actions_between(
    ticker: str, i0: int, i1: int, walk_close: Callable[[int, int], np.ndarray]
) -> tuple[np.ndarray, list[str], list[float]]:
    """Bar indices, kinds and values of ``ticker``'s actions with ex-dates in bars
    ``i0 .. i1``; ``walk_close(j, n)`` gives the walk's closes of bars ``j .. n-1``."""
    rows: list[tuple[int, str, float]] = []
    idx, ratios = split_indices(ticker)
    rows += [(int(k), "split", float(r)) for k, r in zip(idx, ratios, strict=True)]
    div = dividend_indices(i0, i1) if ticker in DIVIDENDS else np.zeros(0, np.int64)
    if len(div):
        j0 = int(div[0]) - 1
        close = walk_close(j0, int(div[-1]))
        f = split_factor(ticker, j0, len(close))
        traded = np.maximum(np.round(close if f is None else close * f, 2), 0.01)
        paid = np.maximum(np.round(YIELD * traded[div - 1 - j0], 2), 0.01)
        rows += [(int(k), "dividend", float(d)) for k, d in zip(div, paid, strict=True)]
    rows = sorted(r for r in rows if i0 <= r[0] <= i1)
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        [r[1] for r in rows],
        [r[2] for r in rows],
    )
