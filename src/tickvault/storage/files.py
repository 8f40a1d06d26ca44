"""Immutable data files: writing them safely and reading only what a query needs.

A data file is sorted by the table key (ticker, timestamp, ...) and unique by it. Row groups
are cut at ticker boundaries (small tickers share a row group, large ones are split), so a
reader of one ticker decodes little more than that ticker's rows. Files are written under a
temporary name that does not end in ``.parquet``, flushed, fsynced and renamed to a unique
final name: every ``*.parquet`` in a table folder is complete at every instant.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..schema import INTERNAL_PREFIX, Runs, TableSchema, column_runs
from .log import FileInfo

SEQ_COLUMN = f"{INTERNAL_PREFIX}seq"


@dataclass(frozen=True)
class WriteOptions:
    compression: str = "lz4"
    min_row_group_rows: int = 1024
    max_row_group_rows: int = 131_072
    row_group_years: int = 3
    fsync: bool = True


def ticker_runs(table: pa.Table, series: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tickers, starts, ends) of the runs of equal tickers in a table sorted by ticker."""
    runs = column_runs(table, series)
    return runs.values.to_pylist(), runs.starts, runs.ends


@functools.cache
def _period_starts(years: int) -> np.ndarray:
    """ns since 1970 of 1 January of the first year of each row-group period (periods of
    ``years`` years counted from 1970), over the whole range of ns timestamps."""
    first = np.arange(1678, 2263, dtype=np.int64)
    first = first[(first - 1970) % years == 0]
    return (first - 1970).astype("datetime64[Y]").astype("datetime64[ns]").astype(np.int64)


def _row_groups(
    starts: np.ndarray, ends: np.ndarray, ts: np.ndarray, opts: WriteOptions
) -> list[tuple[int, int]]:
    """Row-group boundaries: whole tickers, small tickers grouped until
    ``min_row_group_rows``; a larger ticker gets its own row groups, cut every
    ``row_group_years`` calendar years (0: never) and at ``max_row_group_rows`` — so a
    one-month cross-section decodes one period per ticker, not its whole history
    (decision 002)."""
    groups: list[tuple[int, int]] = []
    cur_start: int | None = None
    changes: list[int] = []  # rows whose period differs from the previous row's
    if opts.row_group_years > 0 and len(ts):
        period = np.searchsorted(_period_starts(opts.row_group_years), ts, side="right")
        changes = (np.flatnonzero(period[1:] != period[:-1]) + 1).tolist()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < opts.min_row_group_rows:
            if cur_start is None:
                cur_start = s
            if e - cur_start >= opts.min_row_group_rows:
                groups.append((cur_start, e))
                cur_start = None
            continue
        if cur_start is not None:
            groups.append((cur_start, s))
            cur_start = None
        cuts = [s, *changes[bisect.bisect_right(changes, s) : bisect.bisect_left(changes, e)], e]
        for a, b in itertools.pairwise(cuts):
            for off in range(a, b, opts.max_row_group_rows):
                groups.append((off, min(b, off + opts.max_row_group_rows)))
    if cur_start is not None:
        groups.append((cur_start, int(ends[-1])))
    return groups


def write_data_file(
    table_dir: Path,
    table: pa.Table,
    schema: TableSchema,
    opts: WriteOptions,
    runs: Runs | None = None,
) -> FileInfo:
    """Write a sorted, unique table as one new immutable file. Returns its FileInfo
    (``seq`` and ``level`` are filled in by the committer). ``runs``: the table's ticker
    runs, if the caller has them."""
    series, time_col = schema.series_column, schema.time_column
    if runs is None:
        runs = column_runs(table, series)
    tickers, starts, ends = runs.values.to_pylist(), runs.starts, runs.ends
    ts = table.column(time_col).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    min_ts = ts[starts].tolist()
    max_ts = ts[ends - 1].tolist()
    name = f"part-{uuid.uuid4().hex}.parquet"
    tmp = table_dir / f".{name}.{os.getpid()}.tmp"
    dict_cols = [f.name for f in table.schema if pa.types.is_string(f.type)]
    # A native Arrow stream, not a Python file object: the Parquet encoder then never
    # takes the GIL to write a page, so files written in parallel threads really encode
    # in parallel (with a Python file, thousands of small row groups serialised on it).
    final = table_dir / name
    try:
        sink = pa.BufferedOutputStream(pa.OSFile(str(tmp), "wb"), buffer_size=1 << 20)
        try:
            with pq.ParquetWriter(
                sink,
                table.schema,
                compression=opts.compression,
                use_dictionary=dict_cols,
                write_statistics=[series, time_col],
            ) as writer:
                for a, b in _row_groups(starts, ends, ts, opts):
                    writer.write_table(table.slice(a, b - a), row_group_size=b - a)
        finally:
            sink.close()
        if opts.fsync:
            fsync_path(tmp)
        os.rename(tmp, final)  # unique name: never replaces another file
    except BaseException:
        remove_quietly(tmp)  # a failed write leaves nothing behind
        raise
    return FileInfo(
        path=name,
        rows=table.num_rows,
        bytes=final.stat().st_size,
        seq=-1,
        seq_col=SEQ_COLUMN in table.column_names,
        level=0,
        tickers=tickers,
        min_ts=min_ts,
        max_ts=max_ts,
        ticker_rows=(ends - starts).tolist(),
    )


@dataclass
class _Footer:
    meta: pq.FileMetaData
    rg_start: np.ndarray  # first row of each row group
    rg_end: np.ndarray  # one past the last row
    rg_min_ts: np.ndarray
    rg_max_ts: np.ndarray
    names: frozenset[str]  # the file's column names


_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


class FooterCache:
    """Parsed Parquet footers of immutable files, shared by the reads of one ParquetDB,
    plus the decoded content of small files (level-0 updates), which single-ticker reads
    then slice without decoding again. Files never change, so nothing here goes stale."""

    def __init__(self, capacity: int = 1024, small_bytes: int = 64 << 20) -> None:
        self.capacity = capacity
        self.small_bytes = small_bytes
        self.small_rows = 262_144
        self._items: OrderedDict[str, _Footer] = OrderedDict()
        self._small: OrderedDict[str, pa.Table] = OrderedDict()
        self._small_used = 0
        self.max_readers = 32
        self._readers: OrderedDict[str, tuple[threading.Lock, pq.ParquetFile]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, schema: TableSchema) -> _Footer:
        key = str(path)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
        md = pq.read_metadata(path)
        ti = md.schema.names.index(schema.time_column)
        n = md.num_row_groups
        rows = np.empty(n, dtype=np.int64)
        tmin = np.full(n, _I64_MIN, dtype=np.int64)
        tmax = np.full(n, _I64_MAX, dtype=np.int64)
        for rg in range(n):
            g = md.row_group(rg)
            rows[rg] = g.num_rows
            st = g.column(ti).statistics
            if st is not None and st.has_min_max:
                tmin[rg] = _ns(st.min_raw)
                tmax[rg] = _ns(st.max_raw)
        end = np.cumsum(rows)
        item = _Footer(md, end - rows, end, tmin, tmax, frozenset(md.schema.names))
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return item

    def small_table(self, path: Path, info: FileInfo, columns: list[str]) -> pa.Table | None:
        """The whole decoded file if it is small enough to keep; None otherwise. Level-0
        files stay below about 5 % of level 1 (compaction), so on a daily-updated
        database this keeps every level-0 file decoded and a single-ticker read slices
        them instead of decoding a row group of each."""
        if info.rows > (self.small_rows if info.level == 0 else 65_536):
            return None
        key = str(path)
        with self._lock:
            t = self._small.get(key)
            if t is not None:
                self._small.move_to_end(key)
        if t is None:
            t = pq.read_table(path)
            with self._lock:
                if key not in self._small:
                    self._small[key] = t
                    self._small_used += t.nbytes
                while self._small_used > self.small_bytes and len(self._small) > 1:
                    _, old = self._small.popitem(last=False)
                    self._small_used -= old.nbytes
        names = t.schema.names
        return t.select([c for c in columns if c in names])

    @contextlib.contextmanager
    def reader(self, path: Path, meta: pq.FileMetaData) -> Iterator[pq.ParquetFile]:
        """An open ParquetFile for ``path``, reused across reads (opening one costs about
        as much as decoding a row group). Each is used by one thread at a time; a thread
        that finds it busy opens its own. Files are read without pre-buffering, which
        coalesces reads for object stores but doubled the cost of reading many small row
        groups from local disk. (No memory mapping: a mapped file truncated behind our
        back would crash the process with SIGBUS instead of raising.)"""
        key = str(path)
        with self._lock:
            entry = self._readers.get(key)
            if entry is not None:
                self._readers.move_to_end(key)
        if entry is None:
            entry = (threading.Lock(), pq.ParquetFile(path, metadata=meta, pre_buffer=False))
            with self._lock:
                entry = self._readers.setdefault(key, entry)
                while len(self._readers) > self.max_readers:
                    _, (old_lock, old_pf) = self._readers.popitem(last=False)
                    if old_lock.acquire(blocking=False):
                        old_pf.close()
                        old_lock.release()
        lock, pf = entry
        if lock.acquire(blocking=False):
            try:
                yield pf
            finally:
                lock.release()
        else:
            own = pq.ParquetFile(path, metadata=meta, pre_buffer=False)
            try:
                yield own
            finally:
                own.close()

    def close(self) -> None:
        """Close every cached reader (those in use close when their reader finishes)."""
        with self._lock:
            readers = list(self._readers.values())
            self._readers.clear()
        for lock, pf in readers:
            if lock.acquire(blocking=False):
                pf.close()
                lock.release()

    def discard(self, path: Path) -> None:
        with self._lock:
            self._items.pop(str(path), None)
            entry = self._readers.pop(str(path), None)
        if entry is not None and entry[0].acquire(blocking=False):
            entry[1].close()
            entry[0].release()
        with self._lock:
            t = self._small.pop(str(path), None)
            if t is not None:
                self._small_used -= t.nbytes


def _ns(value: object) -> int:
    if isinstance(value, int):
        return value
    import pandas as pd

    return int(pd.Timestamp(value).value)  # type: ignore[arg-type]


def _ranges_for(info: FileInfo, tickers: Sequence[str]) -> list[tuple[int, int]]:
    """Row ranges [a, b) of ``tickers`` in the file, from the log's statistics."""
    idx = info.index()
    offsets = info.offsets()
    out = []
    for t in tickers:
        i = idx.get(t)
        if i is not None:
            out.append((int(offsets[i]), int(offsets[i] + info.ticker_rows[i])))
    out.sort()
    return out


def read_file(
    path: Path,
    footers: FooterCache,
    schema: TableSchema,
    info: FileInfo,
    *,
    tickers: Sequence[str] | None,
    start: int | None,
    end: int | None,
    columns: list[str],
) -> pa.Table:
    """Read ``columns`` of the rows of one file matching tickers and [start, end].

    The log says where each ticker's rows are (files are sorted by ticker), so only the
    row groups holding them are decoded and no ticker filter is evaluated."""
    ranges = None if tickers is None else _ranges_for(info, tickers)
    small = footers.small_table(path, info, columns) if tickers is not None else None
    if small is not None:
        assert ranges is not None
        parts = [small.slice(a, b - a) for a, b in ranges]
        t = pa.concat_tables(parts) if len(parts) != 1 else parts[0]
    else:
        ft = footers.get(path, schema)
        keep = np.ones(ft.meta.num_row_groups, dtype=bool)
        if start is not None:
            keep &= ft.rg_max_ts >= start
        if end is not None:
            keep &= ft.rg_min_ts <= end
        if ranges is not None:
            sel = np.zeros_like(keep)
            for a, b in ranges:
                sel |= (ft.rg_start < b) & (ft.rg_end > a)
            keep &= sel
        rgs = np.flatnonzero(keep)
        cols = [c for c in columns if c in ft.names]
        if len(rgs) == 0:
            return pa.table({c: pa.array([], type=_type_of(schema, c)) for c in cols})
        with footers.reader(path, ft.meta) as pf:
            if len(rgs) == len(keep):
                t = pf.read(columns=cols, use_threads=False)
            else:
                t = pf.read_row_groups(rgs.tolist(), columns=cols, use_threads=False)
        if ranges is not None:
            t = _keep_ranges(t, ranges, ft.rg_start[rgs], ft.rg_end[rgs])
    mask_t = None
    if start is not None or end is not None:
        ts = t.column(schema.time_column)
        if start is not None:
            mask_t = pc.greater_equal(ts, pa.scalar(start, pa.timestamp("ns", tz="UTC")))
        if end is not None:
            m = pc.less_equal(ts, pa.scalar(end, pa.timestamp("ns", tz="UTC")))
            mask_t = m if mask_t is None else pc.and_(mask_t, m)
    if mask_t is not None:
        t = t.filter(mask_t)
    return t


def _keep_ranges(
    t: pa.Table, ranges: list[tuple[int, int]], rg_start: np.ndarray, rg_end: np.ndarray
) -> pa.Table:
    """``t`` holds the rows of the row groups [rg_start[i], rg_end[i]) of a file, in order;
    keep only its rows inside the sorted, disjoint file row ranges ``ranges``."""
    contiguous = bool(np.all(rg_start[1:] == rg_end[:-1]))
    if contiguous and len(ranges) == 1:  # one ticker: a slice (often all of ``t``)
        first = int(rg_start[0])
        a = max(ranges[0][0], first)
        b = min(ranges[0][1], int(rg_end[-1]))
        if a == first and b - a == t.num_rows:
            return t
        return t.slice(a - first, b - a)
    # general case: a mask over the rows read, built per row group
    lengths = rg_end - rg_start
    out_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    mask = np.zeros(t.num_rows, dtype=bool)
    for a, b in ranges:
        for i in np.flatnonzero((rg_start < b) & (rg_end > a)).tolist():
            lo, hi = max(a, int(rg_start[i])), min(b, int(rg_end[i]))
            base = int(out_start[i]) - int(rg_start[i])
            mask[base + lo : base + hi] = True
    return t if mask.all() else t.filter(pa.array(mask))


def _type_of(schema: TableSchema, name: str) -> pa.DataType:
    if name == SEQ_COLUMN:
        return pa.int64()
    return schema.arrow_schema.field(name).type


def fsync_path(path: Path) -> None:
    """Flush a closed file's data to disk (fsync applies to the file, whichever
    descriptor asks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
