"""The corporate actions of one snapshot, indexed once for many adjusted reads.

:class:`ActionsIndex` decodes an actions table into flat arrays sorted by ``(ticker,
timestamp)`` with each ticker's split products precomputed, so adjusting a read is a couple
of vectorised lookups: no Parquet read, sort or per-ticker dictionary per call.
:class:`DividendFactors` holds the dividend products of one (prices snapshot, actions
snapshot) pair, filled lazily for the tickers reads need; a dividend's reference close (the
as-traded close of the last bar before its ex-date) depends on the prices snapshot only.

Both compute exactly what :func:`tickvault.adjust.adjust_prices` computed before they
existed, in the same order of floating-point operations: a suffix product is accumulated
from a ticker's last action backwards, so an action before a read's first bar never
changes the factors of the bars read, and precomputing the products of all of a ticker's
actions gives the bits the products of its later actions alone gave. Pure: no storage.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .keys import Runs, column_runs

#: up to this many tickers, a read's bars are looked up ticker by ticker
FEW_TICKERS = 8


#: plausible split ratios (new shares per old share), 1-for-1000 .. 1000-for-1: input
#: outside it is refused (``tickvault.schema``); adjusted reads ignore any stored before
SPLIT_RANGE = (1 / 1000, 1000.0)


def as_ns(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = one_chunk(col) if isinstance(col, pa.ChunkedArray) else col
    # a timestamp's storage is its int64 count: a view is the cast without the copy
    arr = arr.view(pa.int64()) if pa.types.is_timestamp(arr.type) else arr.cast(pa.int64())
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


def one_chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def as_floats(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def suffix_products(values: np.ndarray, seed: float = 1.0) -> np.ndarray:
    """``out[j]`` = ``seed`` times the product of ``values[j:]``, accumulated from the end
    (``out[len] = seed``): the order of operations every factor here is computed in."""
    out = np.empty(len(values) + 1)
    out[-1] = seed
    if len(values):
        acc = np.cumprod(np.concatenate([[seed], values[::-1]]))
        out[:-1] = acc[1:][::-1]
    return out


class ActionsIndex:
    """The actions of one snapshot by ``(ticker, timestamp)`` (immutable once built).

    Ticker ``c`` (``codes[name]``) owns actions ``bounds[c]:bounds[c+1]`` and suffix
    positions ``bounds[c] + c ... bounds[c+1] + c`` (one more: the product of nothing).
    A bar whose first later action is action ``g`` of ticker ``c`` reads position
    ``g + c``; a bar of a ticker without actions reads position ``none`` (1.0).
    """

    def __init__(self, actions: pa.Table, *, is_sorted: bool = False) -> None:
        """``is_sorted``: ``actions`` is already sorted by ``(ticker, timestamp)``, as a
        storage read is (by its key, ``(ticker, timestamp, kind)``)."""
        if actions.num_rows and not is_sorted:
            # the sort adjust_prices always did (stable: ties keep their stored order)
            actions = actions.sort_by([("ticker", "ascending"), ("timestamp", "ascending")])
        runs = column_runs(actions, "ticker")
        self.codes: dict[str, int] = {str(n): i for i, n in enumerate(runs.values.to_pylist())}
        self.bounds = np.concatenate([[0], runs.ends]).astype(np.int64)
        self.ts = as_ns(actions.column("timestamp"))
        kind = pc.equal(actions.column("kind"), "split").combine_chunks()
        self.split = np.asarray(kind.to_numpy(zero_copy_only=False), dtype=bool)
        self.value = as_floats(actions.column("value"))
        m, n = len(self.ts), len(self.codes)
        #: one key per action, increasing: code * width + rank of its timestamp, so that
        #: searchsorted finds a bar's first later action of its own ticker in one call
        self.stamps = np.unique(self.ts)
        self.width = len(self.stamps) + 1
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.bounds))
        self.keys = owner * self.width + np.searchsorted(self.stamps, self.ts, side="right")
        self.none = m + n
        self.split_suffix = np.ones(m + n + 1)
        lo, hi = SPLIT_RANGE
        with np.errstate(invalid="ignore"):
            plausible = (self.value >= lo) & (self.value <= hi)
        splits = np.where(self.split & plausible, self.value, 1.0)
        # products of 1.0 are 1.0: only tickers with a split need theirs computed
        with_split = np.unique(owner[self.split]) if m else owner
        #: per code: has the ticker any split (else its split factors are all 1.0)
        self.has_split = np.zeros(n + 1, dtype=bool)  # [-1]: tickers without actions
        self.has_split[with_split] = True
        for c in with_split.tolist():
            a, b = int(self.bounds[c]), int(self.bounds[c + 1])
            self.split_suffix[a + c : b + c + 1] = suffix_products(splits[a:b])
        #: the price factor of ``adjust="splits"`` per position (one gather per read)
        self.split_price = 1.0 / self.split_suffix

    @property
    def num_actions(self) -> int:
        return len(self.ts)

    def code_of(self, names: list[str]) -> np.ndarray:
        return np.array([self.codes.get(str(t), -1) for t in names], dtype=np.int64)

    def positions(self, runs: Runs, codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Suffix position of each bar (``runs``: the bars' tickers, ``codes``: their codes
        or -1, ``ts``: the bars' timestamps in ns): the bar's ticker's first action
        strictly later than the bar."""
        if len(codes) == 1:  # one ticker read: one search among its own actions
            c = int(codes[0])
            if c < 0:
                return np.full(len(ts), self.none, dtype=np.int64)
            lo, hi = int(self.bounds[c]), int(self.bounds[c + 1])
            # bars sorted by time: count the actions at or before each bar by placing the
            # few actions among the many bars (searchsorted of bars in actions, cheaper)
            before = np.bincount(np.searchsorted(ts, self.ts[lo:hi]), minlength=len(ts) + 1)
            return np.cumsum(before[: len(ts)]) + (lo + c)
        if len(codes) <= FEW_TICKERS:  # one search per ticker among its own actions
            pos = np.full(len(ts), self.none, dtype=np.int64)
            for c, a, b in zip(codes.tolist(), runs.starts, runs.ends, strict=True):
                if c >= 0:
                    lo, hi = int(self.bounds[c]), int(self.bounds[c + 1])
                    found = np.searchsorted(self.ts[lo:hi], ts[a:b], side="right")
                    pos[a:b] = found + (lo + c)
            return pos
        codes = np.repeat(codes, runs.ends - runs.starts)
        key = codes * self.width + np.searchsorted(self.stamps, ts, side="right")
        pos = np.searchsorted(self.keys, key, side="right") + codes
        pos[codes < 0] = self.none
        return pos


class DividendFactors:
    """Dividend products of one prices snapshot and one :class:`ActionsIndex`.

    ``suffix[g + c]`` is the product of ``1 - D / C`` over ticker ``c``'s dividends from
    action ``g`` on (splits count 1) and ``price[g + c]`` the price factor of
    ``adjust="all"`` there (``1 / splits * dividends``), valid for ``g >= known[c]``.
    Reads fill them backwards from each ticker's end, as far as their first bar needs;
    values never change once known, so concurrent fills write the same bits and readers
    need no lock.
    """

    def __init__(self, index: ActionsIndex) -> None:
        self.index = index
        self.suffix = np.ones(index.none + 1)
        self.price = index.split_price * self.suffix  # right where nothing is after a bar
        self.known = index.bounds[1:].copy()
        self._lock = threading.Lock()

    def missing(self, code: int, first: int) -> tuple[int, int] | None:
        """Actions ``(g0, g1)`` of ``code`` a bar at suffix position ``first`` needs
        filled, or None when they are known (or ``code`` has no actions)."""
        if code < 0:
            return None
        g0, g1 = first - code, int(self.known[code])
        return (g0, g1) if g0 < g1 else None

    def fill(self, code: int, g0: int, g1: int, ref_ts: np.ndarray, ref_close: np.ndarray) -> None:
        """Compute actions ``g0:g1`` of ``code`` from the as-traded bars ``ref_ts,
        ref_close`` (sorted), which must hold the last bar before each of those dividends."""
        ix = self.index
        split, value = ix.split[g0:g1], ix.value[g0:g1]
        mult = np.ones(g1 - g0)
        is_div = ~split
        # the last bar strictly before each dividend's ex-date
        k = np.searchsorted(ref_ts, ix.ts[g0:g1][is_div], side="left") - 1
        ok = k >= 0
        m = np.ones(int(is_div.sum()))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            m[ok] = 1.0 - value[is_div][ok] / ref_close[k[ok]]
        # a dividend not below the close it is measured against (refused on input since;
        # stored before) would zero, flip or overflow every earlier price: ignored
        m[~np.isfinite(m) | (m <= 0.0)] = 1.0
        mult[is_div] = m
        with self._lock:
            g1 = min(g1, int(self.known[code]))  # another thread may have filled some
            if g0 >= g1:
                return
            seed = float(self.suffix[g1 + code])
            out = suffix_products(mult[: g1 - g0], seed)
            lo, hi = g0 + code, g1 + code
            self.suffix[lo:hi] = out[:-1]
            self.price[lo:hi] = self.index.split_price[lo:hi] * out[:-1]
            self.known[code] = g0
