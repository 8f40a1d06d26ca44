"""Open tables: one pinned version of a table for other engines (decision 011).

A table is not "every Parquet file under its folder": it is the live files of one version,
newest commit wins where files overlap (decision 003). :func:`plan` splits a pinned
version into

* **row groups no other file can share a key with** — every row group of a file whose
  (ticker, time range) statistics overlap no other file's (always so after compaction), and
  the other row groups of files that do overlap. These go to the engine as Parquet
  fragments with their statistics, so filters on ``ticker`` and ``timestamp`` skip files
  (by the log's statistics, without opening them) and row groups (by the footers);
* **the overlapping row groups**, read and resolved newest-wins here (``_tv_seq``, the
  commit order, decides) into one small in-memory table.

The union is exactly :meth:`ParquetDB.read_arrow` at that version, as a multiset of rows
(not sorted), with the table's columns and types and no internal column.

Lifetime: the returned object pins its :class:`~tickvault.storage.core.snapshot.Snapshot`
(:func:`keep_alive`), so this process's vacuum and automatic reclamation keep the files it
reads for as long as the object lives; other processes' vacuum keeps them for the retention
period (1 h by default). Keep the returned dataset, relation or frame referenced while you
query it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..core import read_merge
from ..core.arrow_fs import filesystem
from ..core.file_writer import SEQ_COLUMN
from ..core.state import FileInfo

if TYPE_CHECKING:
    from ..core.snapshot import Snapshot
    from ..core.table import Table

_TS = pa.timestamp("ns", tz="UTC")


@dataclass(frozen=True)
class Hot:
    """The part of one file where another file may hold the same keys: rows of
    ``tickers`` (None: every ticker of the file) with ``start <= time < stop`` (ns, both
    whole µs, so engines that read µs timestamps split the file exactly there too)."""

    tickers: frozenset[str] | None
    start: int
    stop: int

    def covers(self, f: FileInfo) -> bool:
        """Is every row of ``f`` in this part?"""
        every = self.tickers is None or len(self.tickers) == len(f.tickers)
        return every and self.start <= f.start and f.end < self.stop


@dataclass
class OpenPlan:
    """One pinned version, split for an engine (see the module docstring)."""

    snapshot: Snapshot
    table: Table
    #: files read as they are: no other file holds a key of theirs
    whole: list[FileInfo] = field(default_factory=list)
    #: files read except their hot part (the rows that :attr:`merged` holds instead)
    partial: list[tuple[FileInfo, Hot]] = field(default_factory=list)
    #: the hot parts of every file, newest-wins resolved, in the table's schema
    merged: pa.Table | None = None

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema.arrow_schema


def keep_alive(obj: Any, snapshot: Snapshot) -> Any:
    """Keep ``snapshot`` (and so its files) pinned while ``obj`` lives; returns ``obj``."""
    weakref.finalize(obj, _release, snapshot)
    return obj


def _release(snapshot: Snapshot) -> None:
    """Nothing to do: dropping the last reference to the snapshot unpins it."""


def plan(snapshot: Snapshot) -> OpenPlan:
    table = snapshot._table
    state = snapshot._state
    table.require_files(state)  # an old version's engines would fail on a reclaimed file
    hot_parts: dict[str, Hot] | None = state._derived.get("open_hot")
    if hot_parts is None:
        hot_parts = state._derived["open_hot"] = hot_regions(list(state.files.values()))
    out = OpenPlan(snapshot=snapshot, table=table)
    hot: list[tuple[FileInfo, Hot]] = []
    for f in sorted(state.files.values(), key=lambda f: (f.min_ticker, f.path)):
        h = hot_parts.get(f.path)
        if h is None:
            out.whole.append(f)
            continue
        hot.append((f, h))
        if not h.covers(f):
            out.partial.append((f, h))
    if hot:
        out.merged = _merge(table, hot, snapshot.version)
    return out


def hot_regions(files: list[FileInfo]) -> dict[str, Hot]:
    """Per file that shares a ticker's time range with another file: the tickers concerned
    and the hull of the times where they overlap another file. Only there can a key be in
    two files. Files absent: they overlap no other file. Vectorised over every (file,
    ticker) span of the log: spans sorted by (ticker, start); a span overlaps an earlier
    one when the earlier ones reach into it, and the later ones that start inside it."""
    n = sum(len(f.tickers) for f in files)
    if n < 2:
        return {}
    names = np.concatenate([np.asarray(f.tickers, dtype=object) for f in files])
    lo = np.concatenate([np.asarray(f.min_ts, dtype=np.int64) for f in files])
    hi = np.concatenate([np.asarray(f.max_ts, dtype=np.int64) for f in files])
    fid = np.repeat(np.arange(len(files)), [len(f.tickers) for f in files])
    _, tid = np.unique(names, return_inverse=True)
    order = np.lexsort((hi, lo, tid))
    tid, lo, hi, fid = tid[order], lo[order], hi[order], fid[order]
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = tid[1:] == tid[:-1]
    # the common case: each ticker's spans follow each other in time
    if not np.any(same_prev[1:] & (lo[1:] <= hi[:-1])):
        return {}
    # earlier spans: the latest end among them (per ticker)
    reach = pd.Series(hi).groupby(tid).cummax().to_numpy()
    prev_reach = np.full(n, np.iinfo(np.int64).min)
    prev_reach[1:] = np.where(same_prev[1:], reach[:-1], prev_reach[1:])
    early = prev_reach >= lo
    # later spans of the same ticker that start inside this one: indexes j+1 .. last[j]
    uniq = np.unique(lo)
    width = len(uniq) + 1
    key = tid * width + np.searchsorted(uniq, lo)
    hi_rank = np.searchsorted(uniq, hi, side="right") - 1
    last_idx = np.searchsorted(key, tid * width + hi_rank, side="right") - 1
    late = last_idx > np.arange(n)
    late_first = np.where(late, np.roll(lo, -1), 0)
    late_last = np.minimum(hi, _range_max(hi, np.arange(n) + 1, last_idx))
    first = np.where(early, lo, late_first)
    last = np.where(early, np.minimum(hi, prev_reach), np.iinfo(np.int64).min)
    last = np.where(late, np.maximum(last, late_last), last)
    hot = early | late
    frame = pd.DataFrame({"fid": fid[hot], "tid": tid[hot], "first": first[hot], "last": last[hot]})
    tickers_of = dict(zip(tid, names[order], strict=True))
    out = {}
    for f_index, g in frame.groupby("fid", sort=False):
        f = files[int(f_index)]  # type: ignore[arg-type]
        start, stop = int(g["first"].min()), int(g["last"].max())
        tk = None if len(g) == len(f.tickers) else frozenset(tickers_of[t] for t in g["tid"])
        # whole µs: engines that read µs timestamps then split the file exactly here too
        out[f.path] = Hot(tk, start - start % 1000, _ceil_us(stop + 1))
    return out


def _range_max(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(values[a[i] .. b[i]]) per i (inclusive; where a[i] > b[i] the result is
    meaningless), through a sparse table: O(n log n)."""
    n = len(values)
    table = [values]
    span = 1
    while span * 2 <= n:
        prev = table[-1]
        nxt = prev.copy()
        nxt[: n - span] = np.maximum(prev[: n - span], prev[span:])
        table.append(nxt)
        span *= 2
    length = np.maximum(b - a + 1, 1)
    level = np.floor(np.log2(length)).astype(np.int64)
    a = np.clip(a, 0, n - 1)
    out = np.empty(len(a), dtype=values.dtype)
    for lv in np.unique(level).tolist():
        sel = level == lv
        right = np.clip(b[sel] - (1 << lv) + 1, 0, n - 1)
        out[sel] = np.maximum(table[lv][a[sel]], table[lv][right])
    return out


def _ceil_us(ns: int) -> int:
    return ns + (-ns % 1000)


def _merge(table: Table, hot: list[tuple[FileInfo, Hot]], version: int) -> pa.Table:
    """Read the hot parts and keep the newest row per key. Every copy of a key held by
    two files is in both files' hot parts (its time is where both overlap), so resolving
    among them is exact."""
    schema = table.schema
    cols = [*schema.column_names, SEQ_COLUMN]

    def one(item: tuple[FileInfo, Hot]) -> pa.Table:
        f, h = item
        tk = sorted(h.tickers) if h.tickers is not None else None
        t = table.read_part(f, version, tickers=tk, start=h.start, end=h.stop - 1, cols=cols)
        return conform(read_merge.with_seq(t, f), schema.arrow_schema, keep=(SEQ_COLUMN,))

    parts = [one(h) for h in hot]
    merged = read_merge.merge_newest(parts, schema.key).drop_columns([SEQ_COLUMN])
    return conform(merged, schema.arrow_schema)


def conform(t: pa.Table, schema: pa.Schema, keep: tuple[str, ...] = ()) -> pa.Table:
    """``t`` with exactly ``schema``'s columns, in order and cast (missing ones null),
    plus the columns in ``keep`` it has."""
    arrays = []
    for fld in schema:
        if fld.name in t.column_names:
            col = t.column(fld.name)
            arrays.append(col if col.type == fld.type else col.cast(fld.type))
        else:
            arrays.append(pa.nulls(t.num_rows, fld.type))
    names = list(schema.names)
    for k in keep:
        if k in t.column_names:
            arrays.append(t.column(k))
            names.append(k)
    return pa.Table.from_arrays(arrays, names=names)


def guarantee(f: FileInfo, series: str, time: str) -> ds.Expression:
    """What the log knows about every row of ``f``: its ticker and time ranges. Given to
    pyarrow as the fragment's partition expression, a filter that contradicts it skips the
    file without opening it (delta-rs does the same with its log's statistics)."""
    t = ds.field(series)
    ts = ds.field(time)
    return (
        (t >= f.min_ticker)
        & (t <= f.max_ticker)
        & (ts >= pa.scalar(f.start, _TS))
        & (ts <= pa.scalar(f.end, _TS))
    )


def cold_filter(h: Hot, series: str, time: str) -> ds.Expression:
    """The rows of a file outside its hot part."""
    ts = ds.field(time)
    hot = (ts >= pa.scalar(h.start, _TS)) & (ts < pa.scalar(h.stop, _TS))
    if h.tickers is not None:
        hot = hot & ds.field(series).isin(sorted(h.tickers))
    return ~hot


def _split_row_groups(p: OpenPlan, f: FileInfo, h: Hot) -> tuple[list[int], pa.Table | None]:
    """A partial file for pyarrow, which cannot filter one fragment of a dataset: the row
    groups without hot rows (read as they are), and the rest's cold rows, read now."""
    table = p.table
    key = table.key(f.path)
    footer = table.footers.get(key, table.schema)
    touched = (footer.rg_max_ts >= h.start) & (footer.rg_min_ts < h.stop)
    if h.tickers is not None:
        offsets = f.offsets()
        mine = np.zeros_like(touched)
        for t in h.tickers:
            i = f.index()[t]
            a, b = int(offsets[i]), int(offsets[i] + f.ticker_rows[i])
            mine |= (footer.rg_start < b) & (footer.rg_end > a)
        touched &= mine
    read = np.flatnonzero(touched).tolist()
    rest = None
    if read:
        with table.footers.reader(key, footer.meta) as pf:
            t = pf.read_row_groups(read, columns=[c for c in p.schema.names if c in footer.names])
        series, time = table.schema.key[0], table.schema.key[1]
        rest = conform(t.filter(cold_filter(h, series, time)), p.schema)
    return np.flatnonzero(~touched).tolist(), rest


def to_dataset(p: OpenPlan, *, native: bool = False, merged: bool = True) -> ds.Dataset:
    """The plan as one pyarrow dataset: Parquet fragments (with the log's statistics as
    guarantees) plus rows in memory (the merged hot parts; the cold rows of row groups that
    also hold hot rows). Pins the snapshot while it lives. ``native``: only what the engine
    cannot read itself — nothing of the whole and partial files. ``merged=False``: without
    the merged rows (the caller passes them to its engine itself)."""
    schema = p.schema
    fs, prefix = filesystem(p.table.store)
    fmt = ds.ParquetFileFormat()
    series, time = p.table.schema.key[0], p.table.schema.key[1]
    memory = [p.merged] if p.merged is not None and merged else []
    fragments = []

    def add(f: FileInfo, rgs: list[int] | None) -> None:
        fragments.append(
            fmt.make_fragment(
                prefix + p.table.key(f.path),
                filesystem=fs,
                partition_expression=guarantee(f, series, time),
                row_groups=rgs,
                file_size=f.bytes or None,
            )
        )

    if not native:
        for f in p.whole:
            add(f, None)
        for f, h in p.partial:
            rgs, rest = _split_row_groups(p, f, h)
            if rgs:
                add(f, rgs)
            if rest is not None:
                memory.append(rest)
    parts: list[ds.Dataset] = [ds.FileSystemDataset(fragments, schema, fmt, fs)]
    rows = [m for m in memory if m.num_rows]
    if rows:
        parts.append(ds.dataset(pa.concat_tables(rows), schema=schema))
    dataset = parts[0] if len(parts) == 1 else ds.dataset(parts)
    return keep_alive(dataset, p.snapshot)
