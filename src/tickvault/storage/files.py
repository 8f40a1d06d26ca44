"""Immutable data files: writing them safely and reading only what a query needs.

A data file is sorted by the table key (ticker, timestamp, ...) and unique by it. Row groups
are cut at ticker boundaries (small tickers share a row group, large ones are split), so a
reader of one ticker decodes little more than that ticker's rows. Files are written under a
temporary name that does not end in ``.parquet``, flushed, fsynced and renamed to a unique
final name: every ``*.parquet`` in a table folder is complete at every instant.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..schema import INTERNAL_PREFIX, TableSchema
from .log import FileInfo

SEQ_COLUMN = f"{INTERNAL_PREFIX}seq"


@dataclass(frozen=True)
class WriteOptions:
    compression: str = "lz4"
    min_row_group_rows: int = 1024
    max_row_group_rows: int = 131_072
    fsync: bool = True


def ticker_runs(table: pa.Table, series: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tickers, starts, ends) of the runs of equal tickers in a table sorted by ticker."""
    if table.num_rows == 0:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    col = table.column(series).combine_chunks()
    ree = pc.run_end_encode(col)
    ends = np.asarray(ree.run_ends.to_numpy(zero_copy_only=False), dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    return ree.values.to_pylist(), starts, ends


def _row_groups(starts: np.ndarray, ends: np.ndarray, opts: WriteOptions) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    cur_start: int | None = None
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        n = e - s
        if n > opts.max_row_group_rows:
            if cur_start is not None:
                groups.append((cur_start, s))
                cur_start = None
            for off in range(s, e, opts.max_row_group_rows):
                groups.append((off, min(e, off + opts.max_row_group_rows)))
            continue
        if cur_start is None:
            cur_start = s
        if e - cur_start >= opts.min_row_group_rows:
            groups.append((cur_start, e))
            cur_start = None
    if cur_start is not None:
        groups.append((cur_start, int(ends[-1])))
    return groups


def write_data_file(
    table_dir: Path,
    table: pa.Table,
    schema: TableSchema,
    opts: WriteOptions,
) -> FileInfo:
    """Write a sorted, unique table as one new immutable file. Returns its FileInfo
    (``seq`` and ``level`` are filled in by the committer)."""
    series, time_col = schema.series_column, schema.time_column
    tickers, starts, ends = ticker_runs(table, series)
    ts = table.column(time_col).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    min_ts = ts[starts].tolist()
    max_ts = ts[ends - 1].tolist()
    name = f"part-{uuid.uuid4().hex}.parquet"
    tmp = table_dir / f".{name}.{os.getpid()}.tmp"
    dict_cols = [f.name for f in table.schema if pa.types.is_string(f.type)]
    with open(tmp, "wb") as fh:
        with pq.ParquetWriter(
            fh,
            table.schema,
            compression=opts.compression,
            use_dictionary=dict_cols,
            write_statistics=[series, time_col],
        ) as writer:
            for a, b in _row_groups(starts, ends, opts):
                writer.write_table(table.slice(a, b - a), row_group_size=b - a)
        fh.flush()
        if opts.fsync:
            os.fsync(fh.fileno())
    final = table_dir / name
    os.rename(tmp, final)  # unique name: never replaces another file
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
    rg_min_ticker: list[str]
    rg_max_ticker: list[str]
    rg_min_ts: np.ndarray
    rg_max_ts: np.ndarray


def _stat(md: pq.FileMetaData, rg: int, col: int) -> tuple[object, object]:
    st = md.row_group(rg).column(col).statistics
    if st is None or not st.has_min_max:
        return None, None
    return st.min, st.max


class FooterCache:
    """Parsed Parquet footers of immutable files, shared by the reads of one ParquetDB."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, _Footer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, schema: TableSchema) -> _Footer:
        key = str(path)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
        md = pq.read_metadata(path)
        names = md.schema.names
        si, ti = names.index(schema.series_column), names.index(schema.time_column)
        mins, maxs, tmin, tmax = [], [], [], []
        for rg in range(md.num_row_groups):
            a, b = _stat(md, rg, si)
            mins.append("" if a is None else str(a))
            maxs.append("\U0010ffff" if b is None else str(b))
            c, d = _stat(md, rg, ti)
            tmin.append(np.iinfo(np.int64).min if c is None else _ns(c))
            tmax.append(np.iinfo(np.int64).max if d is None else _ns(d))
        item = _Footer(md, mins, maxs, np.array(tmin, dtype=np.int64), np.array(tmax, np.int64))
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return item

    def discard(self, path: Path) -> None:
        with self._lock:
            self._items.pop(str(path), None)


def _ns(value: object) -> int:
    if isinstance(value, int):
        return value
    import pandas as pd

    return int(pd.Timestamp(value).value)  # type: ignore[arg-type]


def read_file(
    path: Path,
    footers: FooterCache,
    schema: TableSchema,
    *,
    tickers: Sequence[str] | None,
    start: int | None,
    end: int | None,
    columns: list[str],
) -> pa.Table:
    """Read ``columns`` of the rows of one file matching tickers and [start, end]."""
    ft = footers.get(path, schema)
    n = ft.meta.num_row_groups
    keep = np.ones(n, dtype=bool)
    if start is not None:
        keep &= ft.rg_max_ts >= start
    if end is not None:
        keep &= ft.rg_min_ts <= end
    if tickers is not None:
        tk = sorted(tickers)
        mins, maxs = ft.rg_min_ticker, ft.rg_max_ticker
        sel = np.zeros(n, dtype=bool)
        import bisect

        for rg in range(n):
            if not keep[rg]:
                continue
            i = bisect.bisect_left(tk, mins[rg])
            sel[rg] = i < len(tk) and tk[i] <= maxs[rg]
        keep &= sel
    rgs = np.flatnonzero(keep).tolist()
    file_cols = set(ft.meta.schema.names)
    cols = [c for c in columns if c in file_cols]
    if not rgs:
        return pa.table({c: pa.array([], type=_type_of(schema, c)) for c in cols})
    pf = pq.ParquetFile(path, metadata=ft.meta)
    t = pf.read(columns=cols) if len(rgs) == n else pf.read_row_groups(rgs, columns=cols)
    mask = None
    if tickers is not None and not (len(tickers) == 1 and mins_eq(ft, rgs, tickers[0])):
        mask = pc.is_in(t.column(schema.series_column), value_set=pa.array(list(tickers)))
    ts = t.column(schema.time_column)
    if start is not None:
        m = pc.greater_equal(ts, pa.scalar(start, pa.timestamp("ns", tz="UTC")))
        mask = m if mask is None else pc.and_(mask, m)
    if end is not None:
        m = pc.less_equal(ts, pa.scalar(end, pa.timestamp("ns", tz="UTC")))
        mask = m if mask is None else pc.and_(mask, m)
    if mask is not None:
        t = t.filter(mask)
    return t


def mins_eq(ft: _Footer, rgs: list[int], ticker: str) -> bool:
    """True when every selected row group holds only ``ticker`` (no filter needed)."""
    return all(ft.rg_min_ticker[r] == ticker == ft.rg_max_ticker[r] for r in rgs)


def _type_of(schema: TableSchema, name: str) -> pa.DataType:
    if name == SEQ_COLUMN:
        return pa.int64()
    return schema.arrow_schema.field(name).type


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
