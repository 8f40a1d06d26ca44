"""One ticker's bars, read so that no request holds more than a bounded number of them.

Every bar response of the dashboard reads through :func:`windows`: consecutive time windows
of one pinned version, each sized from the bars per second of the window before so that it
holds about :data:`ROWS_PER_READ` bars, whatever the table holds. On top of it:

* :class:`Candles` — the chart's candles: the bars themselves while a range holds at most
  :data:`MAX_CANDLES`, else coarser candles of a fixed time span (open = first, high = max,
  low = min, close = last, volume = sum), at most :data:`MAX_CANDLES` of them;
* :func:`page` — a page of at most ``limit`` bars (:data:`MAX_PAGE`) and where the next
  page starts;
* :func:`csv_chunks` — CSV text in pieces of at most :data:`CSV_ROWS` rows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..csv_export import to_csv
from ..formats import iso_utc
from ..storage import ParquetDB, Snapshot

__all__ = [
    "CSV_ROWS",
    "MAX_CANDLES",
    "MAX_PAGE",
    "ROWS_PER_READ",
    "BarRange",
    "Candles",
    "csv_chunks",
    "page",
    "windows",
]

TABLE = "prices"
BAR_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
#: the most candles a chart gets; longer ranges are aggregated into coarser candles
MAX_CANDLES = 2000
#: the most bars one page of ``bars.json`` holds (``limit``); the default is DEFAULT_PAGE
MAX_PAGE = 10_000
DEFAULT_PAGE = 1000
#: bars per piece of a CSV download
CSV_ROWS = 5000
#: bars one read aims at
ROWS_PER_READ = 10_000

_NS = 1_000_000_000
_DAY = 86_400 * _NS
#: candle spans below a day: the first that is long enough is used; above, whole days
_SPANS = [s * _NS for s in (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14_400, 21_600)]
_SPANS += [43_200 * _NS, _DAY]


@dataclass(frozen=True)
class BarRange:
    """What to read: one ticker's bars from ``start`` to ``end`` (ns since the epoch,
    inclusive) of one pinned version, adjusted as ``adjust`` says (None: as traded)."""

    db: ParquetDB
    snap: Snapshot
    ticker: str
    start: int
    end: int
    adjust: str | None = None
    columns: tuple[str, ...] | None = tuple(BAR_COLUMNS)
    #: the prices table of the bars' interval (``prices``, ``prices_1m``, ...)
    table: str = TABLE
    #: no version was asked for: adjusted bars are read like ``read_table(adjust=...)``,
    #: the newest prices with the newest actions (a split stored after the last prices
    #: commit counts at once); a version asked for pairs with the actions of its time
    newest: bool = True

    def read(self, lo: int, hi: int) -> pa.Table:
        s, e = pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")
        cols = list(self.columns) if self.columns is not None else None
        if self.adjust is None:
            return self.snap.read_arrow(tickers=self.ticker, start=s, end=e, columns=cols)
        return self.db.read_arrow(
            self.table,
            tickers=self.ticker,
            start=s,
            end=e,
            columns=cols,
            version=None if self.newest else self.snap.version,
            adjust=self.adjust,
        )


def windows(bars: BarRange, target: int = ROWS_PER_READ) -> Iterator[pa.Table]:
    """The bars of ``bars``, oldest first, as tables of about ``target`` rows: each window's
    span comes from the bar density of the one before (growing at most 8x after a window
    with bars, 4x after an empty one, and never beyond 64x the last dense span, so a gap
    is crossed in a few reads without jumping far into dense bars beyond it)."""
    lo, width, dense = bars.start, _DAY, 0
    while lo <= bars.end:
        hi = min(bars.end, lo + width - 1)
        table = bars.read(lo, hi)
        if table.num_rows:
            yield table
            dense = max(1, (hi - lo + 1) * target // table.num_rows)
            width = min(dense, width * 8)
        else:
            width = width * 4 if not dense else min(width * 4, dense * 64)
        lo = hi + 1


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype="float64")


def _stamps(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("timestamp").cast(pa.int64()).to_numpy(), dtype="int64")


def candle_span(start: int, end: int, most: int = MAX_CANDLES) -> int:
    """The span (ns) of candles that split ``start..end`` into at most ``most`` candles
    aligned on multiples of the span since the epoch: 1s, 5s, ... 12h, then whole days."""
    least = math.ceil((end - start + 1) / max(1, most - 1))
    for span in _SPANS:
        if span >= least:
            return span
    return math.ceil(least / _DAY) * _DAY


class Candles:
    """The chart's candles of a range, fed window by window (:meth:`add`): the bars as
    they are while there are at most ``most``, else candles of :func:`candle_span`."""

    def __init__(self, start: int, end: int, most: int = MAX_CANDLES) -> None:
        self.most = most
        self.span = candle_span(start, end, most)
        self.count = 0
        self._raw: list[pa.Table] = []  # while count <= most
        self._parts: list[dict[str, np.ndarray]] = []

    def add(self, table: pa.Table) -> None:
        self.count += table.num_rows
        self._raw = [*self._raw, table] if self.count <= self.most else []
        self._parts.append(self._aggregate(table))

    def _aggregate(self, table: pa.Table) -> dict[str, np.ndarray]:
        ts = _stamps(table)
        ids = ts // self.span
        first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        last = np.r_[first[1:] - 1, len(ids) - 1]
        vol = np.nan_to_num(_floats(table, "volume"))
        return {
            "id": ids[first],
            "t0": ts[first],
            "t1": ts[last],
            "open": _floats(table, "open")[first],
            "high": np.fmax.reduceat(_floats(table, "high"), first),
            "low": np.fmin.reduceat(_floats(table, "low"), first),
            "close": _floats(table, "close")[last],
            "volume": np.add.reduceat(vol, first),
            "bars": np.diff(np.r_[first, len(ids)]),
        }

    @property
    def aggregated(self) -> bool:
        return self.count > self.most

    def columnar(self) -> dict[str, list[Any]]:
        """``{"timestamp": [ISO...], "open": [...], ...}``; aggregated candles also carry
        ``timestamp_end`` (their last bar) and ``bars`` (how many bars each holds)."""
        if not self.aggregated:
            table = pa.concat_tables(self._raw) if self._raw else None
            return _columnar_raw(table)
        m = self._merged()
        out: dict[str, list[Any]] = {"timestamp": _iso(m["t0"]), "timestamp_end": _iso(m["t1"])}
        for name in BAR_COLUMNS[1:]:
            out[name] = _json_floats(m[name])
        out["bars"] = [int(n) for n in m["bars"]]
        return out

    def _merged(self) -> dict[str, np.ndarray]:
        """The windows' candles, where a candle spans two windows merged into one."""
        c = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        first = np.flatnonzero(np.r_[True, c["id"][1:] != c["id"][:-1]])
        last = np.r_[first[1:] - 1, len(c["id"]) - 1]
        return {
            "t0": c["t0"][first],
            "t1": c["t1"][last],
            "open": c["open"][first],
            "high": np.fmax.reduceat(c["high"], first),
            "low": np.fmin.reduceat(c["low"], first),
            "close": c["close"][last],
            "volume": np.add.reduceat(c["volume"], first),
            "bars": np.add.reduceat(c["bars"], first),
        }


def _iso(ns: np.ndarray) -> list[str]:
    return [iso_utc(t) for t in pd.DatetimeIndex(ns.astype("M8[ns]"), tz="UTC")]


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [float(x) if math.isfinite(x) else None for x in values.tolist()]


def _columnar_raw(table: pa.Table | None) -> dict[str, list[Any]]:
    if table is None:
        return {name: [] for name in BAR_COLUMNS}
    out: dict[str, list[Any]] = {"timestamp": _iso(_stamps(table))}
    for name in BAR_COLUMNS[1:]:
        out[name] = _json_floats(_floats(table, name))
    return out


class Tail:
    """The newest ``n`` bars seen (fed window by window), newest first."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._tables: deque[pa.Table] = deque()
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        self._tables.append(table)
        self._rows += table.num_rows
        while self._rows - self._tables[0].num_rows >= self.n:
            self._rows -= self._tables.popleft().num_rows

    def rows(self) -> list[dict[str, Any]]:
        if not self._tables:
            return []
        table = pa.concat_tables(list(self._tables))
        cols = _columnar_raw(table.slice(max(0, table.num_rows - self.n)))
        names = list(cols)
        rows = zip(*cols.values(), strict=True)
        return [dict(zip(names, values, strict=True)) for values in rows][::-1]


def page(bars: BarRange, limit: int) -> tuple[dict[str, list[Any]], int | None]:
    """(the first ``limit`` bars of the range, columnar; the timestamp in ns where the next
    page starts, None on the last page)."""
    taken: list[pa.Table] = []
    rows = 0
    for table in windows(bars, target=min(ROWS_PER_READ, max(limit, 100))):
        taken.append(table)
        rows += table.num_rows
        if rows > limit:
            break
    whole = pa.concat_tables(taken) if taken else None
    if whole is None or whole.num_rows <= limit:
        return _columnar_raw(whole), None
    return _columnar_raw(whole.slice(0, limit)), int(_stamps(whole.slice(limit, 1))[0])


def csv_chunks(bars: BarRange) -> Iterator[str]:
    """The range as CSV (``tickvault.csv_export``: formula cells neutralised) in pieces of
    :data:`CSV_ROWS` rows (the last may be shorter), the header in the first."""
    pending: list[pa.Table] = []
    rows, header = 0, True
    for table in windows(bars):
        pending.append(table)
        rows += table.num_rows
        while rows >= CSV_ROWS:
            whole = pa.concat_tables(pending)
            yield to_csv(whole.slice(0, CSV_ROWS).to_pandas(split_blocks=True), header=header)
            pending, rows, header = [whole.slice(CSV_ROWS)], rows - CSV_ROWS, False
    if rows or header:  # the rest; with no bars at all, the header alone
        rest = pa.concat_tables(pending) if pending else bars.read(bars.start, bars.start)
        yield to_csv(rest.slice(0, rows).to_pandas(split_blocks=True), header=header)
