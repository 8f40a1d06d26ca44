"""One table of a database: its folder, its log, the commit loop and snapshot reads."""

from __future__ import annotations

import bisect
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CommitConflict, CorruptDatabaseError, StorageError
from ..schema import Runs, TableSchema, column_runs, keep_highest
from .files import SEQ_COLUMN, FooterCache, WriteOptions, read_file, remove_quietly
from .log import FileInfo, LogStore, TableState, fsync_dir, now_iso

log = logging.getLogger(__name__)

MAX_COMMIT_SECONDS = 600.0


@dataclass(frozen=True)
class StorageOptions:
    """Tuning knobs of the storage engine (see docs/decisions/002-storage-layout.md)."""

    fsync: bool = True
    compression: str = "lz4"
    target_file_rows: int = 262_144
    min_row_group_rows: int = 1024
    max_row_group_rows: int = 131_072
    row_group_years: int = 3
    checkpoint_interval: int = 25
    auto_compact: bool = True
    l0_max_files: int = 4
    l1_merge_ratio: float = 0.05

    def __post_init__(self) -> None:
        import operator

        from ..errors import ConfigError

        def bad(name: str, value: Any, want: str, example: Any) -> ConfigError:
            return ConfigError(f"ParquetDB option {name}={value!r} {want}, e.g. {name}={example!r}")

        for name in ("fsync", "auto_compact"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise bad(name, getattr(self, name), "must be True or False", True)
            object.__setattr__(self, name, bool(getattr(self, name)))
        minimum = {
            "target_file_rows": 1,
            "min_row_group_rows": 1,
            "max_row_group_rows": 1,
            "row_group_years": 0,
            "checkpoint_interval": 1,
            "l0_max_files": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            try:
                number = operator.index(value)  # any integer type, numpy's too
            except TypeError:
                number = None
            if isinstance(value, bool) or number is None or number < low:
                default = getattr(StorageOptions, name)
                raise bad(name, value, f"must be an integer >= {low}", default)
            object.__setattr__(self, name, int(number))
        ratio = self.l1_merge_ratio
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float | np.number)
            or not (ratio >= 0)
        ):
            raise bad("l1_merge_ratio", ratio, "must be a number >= 0", 0.05)
        codec = "none" if self.compression is None else self.compression
        if not isinstance(codec, str):
            raise bad("compression", codec, "must be a codec name", "lz4")
        name = codec.lower()
        known = ("none", "uncompressed", "snappy", "gzip", "brotli", "lz4", "lz4_raw", "zstd")
        if name not in known:
            raise bad("compression", codec, f"is not one of {list(known)}", "lz4")
        if name not in ("none", "uncompressed") and not pa.Codec.is_available(
            "lz4" if name == "lz4_raw" else name
        ):
            raise bad("compression", codec, "is not available in this pyarrow build", "lz4")
        object.__setattr__(self, "compression", name)

    @property
    def write(self) -> WriteOptions:
        return WriteOptions(
            compression=self.compression,
            min_row_group_rows=self.min_row_group_rows,
            max_row_group_rows=self.max_row_group_rows,
            row_group_years=self.row_group_years,
            fsync=self.fsync,
        )


@dataclass(frozen=True)
class CommitResult:
    """What one commit published."""

    table: str
    version: int
    rows: int
    files: tuple[str, ...] = ()
    operation: str = "upsert"

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "version": self.version,
            "rows": self.rows,
            "files": list(self.files),
            "operation": self.operation,
        }


def split_by_rows(
    table: pa.Table, series: str, target: int, runs: Runs | None = None
) -> list[tuple[pa.Table, Runs]]:
    """Split a table sorted by ``series`` into pieces of about ``target`` rows, cutting
    only at ticker boundaries; each piece with its ticker runs.

    The pieces are balanced: ``round(rows / target)`` of them (at least one), cut at the
    ticker boundary nearest to each even share. So 1.02 x target rows stay one file
    instead of a full file plus a sliver, and 19.2 x target make 19 files."""
    if runs is None:
        runs = column_runs(table, series)
    n = table.num_rows
    count = max(1, round(n / target)) if target > 0 else 1
    if count == 1 or len(runs) < 2:
        return [(table, runs)]
    ends = runs.ends
    cut_runs: list[int] = []  # index of the last run of each piece but the last
    for k in range(1, count):
        want = k * n / count
        i = int(np.searchsorted(ends, want))  # first run ending at or after ``want``
        if i > 0 and want - ends[i - 1] < ends[min(i, len(ends) - 1)] - want:
            i -= 1  # the boundary before is nearer
        i = min(i, len(ends) - 2)
        if (not cut_runs or i > cut_runs[-1]) and i >= 0:
            cut_runs.append(i)
    pieces = []
    first = 0
    for i in [*cut_runs, len(ends) - 1]:
        a, b = int(runs.starts[first]), int(ends[i])
        pieces.append((table.slice(a, b - a), runs.slice(first, i + 1)))
        first = i + 1
    return pieces


def merge_newest(tables: Sequence[pa.Table], key: Sequence[str]) -> pa.Table:
    """Concatenate tables carrying a _tv_seq column, keep the highest seq per key, sort."""
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if t.num_rows < 2:
        return t
    lo, hi = pc.min_max(t.column(key[0])).values()
    if lo == hi and len(key) == 2:  # one series: resolve in numpy
        return _take_newest(t, _int64(t.column(key[1])), _int64(t.column(SEQ_COLUMN)))
    return keep_highest(t, key, SEQ_COLUMN)


def _take_newest(t: pa.Table, ts: np.ndarray, seq: np.ndarray) -> pa.Table:
    """Rows of one series sorted by time, keeping the highest seq per timestamp."""
    order = np.lexsort((-seq, ts))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ts[order[1:]] != ts[order[:-1]]
    idx = order[first]
    if len(idx) == len(ts) and bool(np.all(idx[1:] > idx[:-1])):
        return t  # nothing superseded and already in time order
    return t.take(pa.array(idx))


def with_seq(t: pa.Table, info: FileInfo) -> pa.Table:
    if SEQ_COLUMN in t.column_names:
        return t
    return t.append_column(SEQ_COLUMN, pa.array(np.full(t.num_rows, info.seq, dtype=np.int64)))


class Table:
    """A table folder: pinned states, the commit loop and reads. Thread-safe."""

    def __init__(self, root: Path, schema: TableSchema, opts: StorageOptions) -> None:
        self.schema = schema
        self.name = schema.name
        self.dir = root / schema.name
        self.opts = opts
        self.log = LogStore(self.dir, fsync=opts.fsync)
        self.footers = FooterCache()
        self._state = TableState()
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None

    # -- state -----------------------------------------------------------------------------

    def refresh(self) -> TableState:
        """Bring the cached state up to the newest version; return a private copy."""
        with self._lock:
            self._state = self.log.load(base=self._state)
            return self._state.copy()

    def state_at(self, version: int | None) -> TableState:
        if version is None:
            return self.refresh()
        with self._lock:
            current = self._state
        if version == current.version:
            return current.copy()
        if version > current.version:
            st = self.refresh()
            if version == st.version:
                return st
            return self.log.load(upto=version, base=st if version > st.version else None)
        return self.log.load(upto=version)

    # -- commits ---------------------------------------------------------------------------

    def ensure_created(self) -> None:
        if self.log.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        entry = {
            "operation": "create",
            "timestamp": now_iso(),
            "meta": {
                "table": self.name,
                "key": list(self.schema.key),
                "columns": [[c.name, str(c.type)] for c in self.schema.columns],
                "format": 1,
            },
        }
        self.log.publish(0, entry)

    def commit(
        self,
        *,
        operation: str,
        add: list[FileInfo],
        remove: Sequence[str] = (),
        info: dict[str, Any] | None = None,
        prepare: Callable[[TableState, int], None] | None = None,
    ) -> int:
        """Publish one log entry adding/removing files. ``prepare(state, version)`` may
        adjust levels or raise CommitConflict to abandon the commit (compaction)."""
        self.ensure_created()
        if add and self.opts.fsync:
            # the new files' names (renamed into the table folder) must be durable
            # before a log entry refers to them
            fsync_dir(self.dir)
        deadline = time.monotonic() + MAX_COMMIT_SECONDS
        attempt = 0
        while True:
            state = self.refresh()
            version = state.version + 1
            missing = [f.path for f in add if not (self.dir / f.path).exists()]
            if missing:  # never publish a reference to a file that is gone
                raise StorageError(
                    f"{self.name}: data file(s) {missing[:3]} disappeared before they were "
                    f"committed (was `vacuum` run with a retention shorter than a commit?)"
                )
            if prepare is not None:
                prepare(state, version)
            for f in add:
                if f.seq < 0 or operation == "upsert":
                    f.seq = version
            entry = {
                "operation": operation,
                "timestamp": now_iso(),
                "add": [f.to_json() for f in add],
                "remove": list(remove),
                "info": {
                    **(info or {}),
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "attempts": attempt + 1,
                },
            }
            if self.log.publish(version, entry):
                try:
                    with self._lock:
                        if self._state.version == version - 1:
                            self._state.apply(version, entry)
                    if version % self.opts.checkpoint_interval == 0:
                        self._checkpoint(version)
                except BaseException as exc:  # e.g. Ctrl-C during the checkpoint
                    # the entry is published: its files belong to the table now, and a
                    # caller cleaning up after a failed commit must not delete them
                    exc.tickvault_committed = version  # type: ignore[attr-defined]
                    raise
                return version
            attempt += 1
            if time.monotonic() > deadline:
                raise CommitConflict(
                    f"{self.name}: could not publish a commit after {attempt} attempts "
                    f"(other writers kept winning)"
                )
            time.sleep(random.uniform(0, min(0.05, 0.0005 * 2 ** min(attempt, 7))))

    def _checkpoint(self, version: int) -> None:
        try:
            state = self.state_at(version)
            self.log.write_checkpoint(state)
        except (OSError, StorageError) as exc:  # a checkpoint is an optimisation only
            log.warning("%s: could not write checkpoint %d: %s", self.name, version, exc)

    def write_files(self, table: pa.Table, runs: Runs | None = None) -> list[FileInfo]:
        """Write a validated batch as level-sized files, in parallel threads (the Parquet
        encoder releases the GIL). ``runs``: the batch's ticker runs, if known."""
        pieces = split_by_rows(table, self.schema.series_column, self.opts.target_file_rows, runs)
        self.dir.mkdir(parents=True, exist_ok=True)
        from .files import write_data_file

        def write(piece: tuple[pa.Table, Runs]) -> list[FileInfo]:
            return [write_data_file(self.dir, piece[0], self.schema, self.opts.write, piece[1])]

        return self.map_writing(write, pieces)

    def map_writing(
        self, fn: Callable[[Any], list[FileInfo]], items: Sequence[Any]
    ) -> list[FileInfo]:
        """``fn(item)`` writes data files and returns them; run it for every item, in
        parallel threads when there are several, and return all files in item order. If any
        call fails, or the caller is interrupted while waiting (Ctrl-C), every file already
        written is deleted before the error propagates: none would ever be committed."""
        if len(items) == 1:
            return fn(items[0])
        # more threads than cores: while one thread waits in fsync, the others encode
        workers = (os.cpu_count() or 2) * (2 if self.opts.fsync else 1)
        futures: list[Future[list[FileInfo]]] = []
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(len(items), workers))) as ex:
                futures = [ex.submit(fn, item) for item in items]
            for f in futures:
                exc = f.exception()
                if exc is not None:
                    raise exc
            return [info for f in futures for info in f.result()]
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            self.discard_files([i for f in futures if _finished(f) for i in f.result()])
            raise

    def discard_files(self, files: Sequence[FileInfo]) -> None:
        for f in files:
            remove_quietly(self.dir / f.path)

    # -- reads -----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2))
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
        self.footers.close()

    def read_part(
        self,
        f: FileInfo,
        version: int,
        *,
        tickers: list[str] | None,
        start: int | None,
        end: int | None,
        cols: list[str],
    ) -> pa.Table:
        """One data file's rows for a read (see :func:`read_file`); a file that cannot be
        read raises CorruptDatabaseError naming it and what to run."""
        try:
            return read_file(
                self.dir / f.path,
                self.footers,
                self.schema,
                f,
                tickers=tickers,
                start=start,
                end=end,
                columns=cols,
            )
        except (OSError, pa.ArrowException, ValueError, IndexError) as exc:
            self.footers.discard(self.dir / f.path)
            raise CorruptDatabaseError(
                f"{self.name}: data file {f.path} of version {version} cannot be "
                f"read ({type(exc).__name__}: {exc}); run `tickvault verify` and "
                f"`tickvault verify --repair`"
            ) from exc

    def read(
        self,
        state: TableState,
        *,
        tickers: Sequence[str] | None,
        start: int | None,
        end: int | None,
        columns: Sequence[str] | None,
    ) -> pa.Table:
        schema = self.schema
        out_cols = _output_columns(schema, columns)
        candidates: list[tuple[FileInfo, list[str] | None]] = []
        if tickers is not None:
            wanted = sorted(set(tickers))
            by_ticker = state.by_ticker()
            paths: dict[str, list[str]] = {}
            for t in wanted:
                for p in by_ticker.get(t, ()):
                    f = state.files[p]
                    i = f.index()[t]
                    if (start is None or f.max_ts[i] >= start) and (
                        end is None or f.min_ts[i] <= end
                    ):
                        paths.setdefault(p, []).append(t)
            for p in sorted(paths, key=lambda p: (state.files[p].min_ticker, p)):
                candidates.append((state.files[p], paths[p]))
        else:
            for f in sorted(state.files.values(), key=lambda f: (f.min_ticker, f.path)):
                if (start is None or f.end >= start) and (end is None or f.start <= end):
                    candidates.append((f, None))
        if not candidates:
            return _empty(schema, out_cols)
        # order by the first ticker this read takes from each file: when the files are
        # disjoint for this read, concatenating in this order is already sorted
        candidates.sort(key=lambda c: (c[1][0] if c[1] else c[0].min_ticker, c[0].path))
        disjoint = _disjoint(candidates)
        # one ticker from several files (the common backtest read after daily updates):
        # resolve keys in numpy instead of tagging and sorting Arrow tables
        single = (
            not disjoint and tickers is not None and len(set(tickers)) == 1 and len(schema.key) == 2
        )
        read_cols = list(out_cols) if disjoint else [*out_cols, SEQ_COLUMN]

        def one(item: tuple[FileInfo, list[str] | None]) -> pa.Table:
            f, tk = item
            t = self.read_part(f, state.version, tickers=tk, start=start, end=end, cols=read_cols)
            if not disjoint and not single:
                t = with_seq(t, f)
            names = t.schema.names
            want = [c for c in read_cols if c != SEQ_COLUMN or c in names]
            return t if names == want else t.select(want)

        est = 0
        for f, tk in candidates:
            if tk is None:
                est += f.rows
            else:
                idx = f.index()
                est += sum(f.ticker_rows[idx[t]] for t in tk)
        if len(candidates) >= 2 and est > 100_000:
            parts = list(self._executor().map(one, candidates))
        else:
            parts = [one(c) for c in candidates]
        if disjoint:
            result = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        elif single:
            return _merge_one_series(parts, [c[0] for c in candidates], schema.time_column).select(
                out_cols
            )
        else:
            result = merge_newest(parts, schema.key).drop_columns([SEQ_COLUMN])
        return result.select(out_cols)


def committed(exc: BaseException) -> bool:
    """Did ``exc`` interrupt a commit after its log entry was published?"""
    return getattr(exc, "tickvault_committed", None) is not None


def _finished(f: Future[Any]) -> bool:
    return f.done() and not f.cancelled() and f.exception() is None


def _merge_one_series(parts: list[pa.Table], files: list[FileInfo], time_col: str) -> pa.Table:
    """Newest-wins merge of one ticker's rows from several files: per row, the commit order
    is the file's (or the row's own ``_tv_seq`` in compacted files).

    Each part is sorted by time. After daily updates one part (the level-1 history) is
    large and the others are a few recent rows, so the large part's rows older than every
    other part's first row are final as they are; only the overlapping tail is resolved."""
    ts_parts, seq_parts, tables = [], [], []
    for t, f in zip(parts, files, strict=True):
        ts_parts.append(_int64(t.column(time_col)))
        if SEQ_COLUMN in t.schema.names:
            seq_parts.append(_int64(t.column(SEQ_COLUMN)))
            t = t.drop_columns([SEQ_COLUMN])
        else:
            seq_parts.append(np.full(t.num_rows, f.seq, dtype=np.int64))
        tables.append(t)
    big = max(range(len(tables)), key=lambda i: tables[i].num_rows)
    others = [ts_parts[i][0] for i in range(len(tables)) if i != big and len(ts_parts[i])]
    head = None
    if others:
        k = int(np.searchsorted(ts_parts[big], min(others), side="left"))
        if k:
            head = tables[big].slice(0, k)
            tables[big] = tables[big].slice(k)
            ts_parts[big] = ts_parts[big][k:]
            seq_parts[big] = seq_parts[big][k:]
    ts = np.concatenate(ts_parts)
    if head is not None and len(ts) == 0:
        return head
    tail = _take_newest(pa.concat_tables(tables), ts, np.concatenate(seq_parts))
    return tail if head is None else pa.concat_tables([head, tail])


def _int64(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp or integer column's values as an int64 numpy array (no copy when it
    is one chunk)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.view(pa.int64()).to_numpy(zero_copy_only=False)


def _output_columns(schema: TableSchema, columns: Sequence[str] | None) -> list[str]:
    names = schema.column_names
    if columns is None:
        return names
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in names]
    if unknown:
        from ..errors import ValidationError

        raise ValidationError(
            f"{schema.name}: unknown column(s) {unknown} in columns=; the columns are {names}",
            column=unknown[0],
        )
    want = set(columns) | set(schema.key)
    return [c for c in names if c in want]


def _empty(schema: TableSchema, cols: list[str]) -> pa.Table:
    return schema.arrow_schema.empty_table().select(cols)


def _disjoint(candidates: list[tuple[FileInfo, list[str] | None]]) -> bool:
    """True when no two candidate files can hold the same key for this read."""
    if len(candidates) == 1:
        return True
    ranges = []
    for f, tk in candidates:
        if tk is not None:
            ranges.append((tk[0], tk[-1]))
        else:
            ranges.append((f.min_ticker, f.max_ticker))
    ranges.sort()
    return all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))


def overlaps_any(lo: str, hi: str, ranges: list[tuple[str, str]]) -> bool:
    """Does [lo, hi] intersect any of the sorted, disjoint ``ranges``?"""
    i = bisect.bisect_left(ranges, (lo, lo))
    for j in (i - 1, i):
        if 0 <= j < len(ranges):
            a, b = ranges[j]
            if a <= hi and lo <= b:
                return True
    return False


@dataclass
class Plan:
    """A compaction: which files to merge and how to lay out the result."""

    kind: str  # "l0" (merge level-0 files) or "l1" (merge level 0 into level 1)
    inputs: list[FileInfo]
    groups: list[list[FileInfo]] = field(default_factory=list)
