"""Reading immutable data files: only the row groups a query needs, through cached footers
and open readers.

On an object store every read is a request (``Store.remote``), so files are read by exact
byte ranges: a footer is one ranged GET of the file's end (the log knows each file's size),
and the column chunks of the row groups a read needs are fetched as coalesced ranges (one
GET per run of nearby row groups, at most :data:`MAX_RANGES` per file, several at once)
and decoded from memory; nothing is read ahead. A small file is
one GET. On a local disk files are opened and read in place.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...schema import TableSchema
from .file_writer import FILE_NAME_KEY, SEQ_COLUMN
from .state import FileInfo
from .store import Store

#: the guess of a footer's size (its tail GET) for files of few rows; larger files' footers
#: are guessed from the largest footer bytes per row seen for the table in this process
#: (footers grow with the row groups, which follow the rows), so a footer is one GET that
#: reads little more than the footer
FIRST_TAIL_GUESS = 64 << 10
#: footer bytes per row before a table's first footer was read: tickvault's files have
#: 0.62-0.64 (1,024-row groups of 10 columns: daily year files and minute day files).
#: A new handle reads its files' footers all at once, so a low guess would cost each file
#: a second round trip, which is dearer than the few KB a high one fetches too many
FIRST_BYTES_PER_ROW = 0.8
#: files of fewer rows do not teach the footer bytes per row (a few row groups' fixed cost)
_LEARN_ROWS = 10_000
#: gaps up to this many bytes between wanted column chunks are fetched, not skipped (one
#: GET instead of two)
HOLE_BYTES = 32 << 10
#: at most this many GETs for the row groups of one file in one read: past it the nearest
#: ranges are merged (a read of many tickers fetches some bytes it does not need instead of
#: hundreds of small ranges)
MAX_RANGES = 16
#: the ranges of one file are fetched by up to this many threads at once
FETCH_THREADS = 8
#: a read of named tickers takes a small level-1 file whole (decoded once and kept) when
#: it needs at least 1 / WHOLE_SHARE of the file's rows, or reads the file a second time
#: and it fits in what is kept; else the row groups it needs
WHOLE_SHARE = 8
#: decoded bytes per row assumed when deciding whether a file fits in what is kept
#: (prices: ten 8-byte columns and a dictionary-encoded ticker)
KEPT_BYTES_PER_ROW = 96
#: on an object store, a file up to this size (level-0 updates) is one GET of all of it,
#: whatever the read, and is kept decoded; larger ones are read by footer and row groups
SMALL_FETCH_BYTES = 1 << 20

_footer_per_row: dict[tuple[object, ...], float] = {}  # per table: largest footer bytes/row
_tail_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _drop_pool() -> None:  # a forked child has none of the parent's threads
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_drop_pool)


def fetch_ranges(store: Store, key: str, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The bytes of each [start, end) range of ``key``: one GET each, several at once."""
    if len(ranges) <= 1:
        return [store.get_range(key, a, b - a) for a, b in ranges]
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="tickvault-fetch")
        pool = _pool
    return list(pool.map(lambda r: store.get_range(key, r[0], r[1] - r[0]), ranges))


@dataclass
class _Footer:
    meta: pq.FileMetaData
    rg_start: np.ndarray  # first row of each row group
    rg_end: np.ndarray  # one past the last row
    rg_min_ts: np.ndarray
    rg_max_ts: np.ndarray
    names: frozenset[str]  # the file's column names
    size: int | None = None  # the file's size, when the log says
    #: the bytes before the footer that came with it (the end of the last row group; all
    #: of a small file), from this offset on
    tail: bytes = b""
    tail_start: int = 0
    _chunks: np.ndarray | None = None
    #: checked against the log's record of the file (:func:`check_identity`)
    checked: bool = False

    def chunks(self) -> np.ndarray:
        """[start, end) byte offsets of every column chunk, shape (row groups, columns, 2)
        (the dictionary page first when there is one, as pyarrow reads it)."""
        if self._chunks is None:
            md = self.meta
            out = np.empty((md.num_row_groups, md.num_columns, 2), dtype=np.int64)
            for r in range(md.num_row_groups):
                g = md.row_group(r)
                for c in range(md.num_columns):
                    col = g.column(c)
                    start = col.data_page_offset
                    dictionary = col.dictionary_page_offset or 0
                    if col.has_dictionary_page and 0 < dictionary < start:
                        start = dictionary
                    out[r, c] = (start, start + col.total_compressed_size)
            self._chunks = out
        return self._chunks


class FileMismatch(ValueError):
    """A data file is not the file the log names: its footer names another file, or its
    rows or time range differ from the log's (another file's bytes copied over it). A
    read raises CorruptDatabaseError for it (:meth:`Table.read_part`), never the other
    file's rows."""


def check_identity(meta: pq.FileMetaData, key: str, info: FileInfo | None) -> None:
    """Raise :class:`FileMismatch` unless the file ``key`` whose footer is ``meta`` is the
    one the log names. A file written since its name is recorded in its footer
    (:data:`FILE_NAME_KEY`) must carry its own name; any file, when the log's record
    ``info`` is given, its row count and (files without the name) the time range of its
    row groups' statistics. Costs a few comparisons of a parsed footer."""
    name = key.rsplit("/", 1)[-1]
    own = (meta.metadata or {}).get(FILE_NAME_KEY)
    if own is not None and own != name.encode():
        raise FileMismatch(
            f"{name} holds the content of another data file "
            f"({own.decode(errors='replace')}, its footer says), not its own"
        )
    if info is None:
        return
    if meta.num_rows != info.rows:
        raise FileMismatch(f"{name} has {meta.num_rows} rows, the log says {info.rows}")
    if own is not None or info.rows == 0:
        return
    span = _time_span(meta)
    if span is not None and span != (info.start, info.end):
        raise FileMismatch(f"{name}: the times of its rows differ from the log's")


#: nanoseconds per unit of a Parquet timestamp's statistics
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _time_span(meta: pq.FileMetaData) -> tuple[int, int] | None:
    """The first and last time (ns) of a data file by its row groups' statistics: its
    time column is the first timestamp column (tables are keyed by a series and a time,
    in any column order). None when there is nothing to compare — no timestamp column, a
    row group without statistics, or statistics of an unexpected shape: never a refusal."""
    try:
        arrow = meta.schema.to_arrow_schema()
        ti = next(i for i, f in enumerate(arrow) if pa.types.is_timestamp(f.type))
        scale = _UNIT_NS[arrow.field(ti).type.unit]
        lo, hi = _I64_MAX, _I64_MIN
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(ti).statistics
            if st is None or not st.has_min_max:
                return None
            lo, hi = min(lo, _ns(st.min_raw) * scale), max(hi, _ns(st.max_raw) * scale)
    except Exception:  # a footer of another shape: nothing to compare
        return None
    return lo, hi


def read_whole(
    store: Store, key: str, info: FileInfo | None = None, *, checksums: bool = False
) -> pa.Table:
    """Every row and column of one data file. ``ParquetFile.read`` on one thread with
    pre-buffering: 3-4x faster than ``pq.read_table`` (the dataset API) on files of many
    small row groups, and it leaves the other cores to the caller. On an object store:
    one GET of the whole file. ``info``: the log's record of the file, which it must
    match (:func:`check_identity`); ``checksums``: verify each page's CRC where the file
    has them (``verify``; files written before page checksums have none)."""
    if store.remote:
        data = pa.py_buffer(store.get(key))
        pf = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=checksums)
        check_identity(pf.metadata, key, info)
        return pf.read(use_threads=False)
    with store.open_input(key) as src:
        pf = pq.ParquetFile(src, pre_buffer=True, page_checksum_verification=checksums)
        check_identity(pf.metadata, key, info)
        return pf.read(use_threads=False)


class _Pieces(io.RawIOBase):
    """A read-only file of ``size`` bytes of which some byte ranges were fetched: reads
    inside them are served from memory, any other read fetches exactly what it asks."""

    def __init__(
        self, size: int, pieces: list[tuple[int, bytes]], fetch: Callable[[int, int], bytes]
    ) -> None:
        super().__init__()
        self._size = size
        self._starts = [a for a, _ in pieces]
        self._data = [memoryview(d) for _, d in pieces]
        self._fetch = fetch
        self.pos = 0
        self.misses = 0

    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self._size}[whence]
        self.pos = base + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes | memoryview:
        if n is None or n < 0:
            n = self._size - self.pos
        n = max(0, min(n, self._size - self.pos))
        out = self._held(self.pos, n)
        if out is None:
            self.misses += 1
            out = self._fetch(self.pos, n)
        self.pos += len(out)
        return out

    def _held(self, pos: int, n: int) -> bytes | memoryview | None:
        """[pos, pos + n) from the pieces in hand (across adjacent ones), or None."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        off = pos - self._starts[i]
        if off + n <= len(self._data[i]):
            return self._data[i][off : off + n]
        parts, end = [], pos + n
        while i < len(self._starts) and pos < end:
            start, data = self._starts[i], self._data[i]
            if start > pos or start + len(data) <= pos:
                return None  # a gap
            parts.append(data[pos - start : min(len(data), end - start)])
            pos = start + len(data)
            i += 1
        return b"".join(parts) if pos >= end else None

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def coalesce(
    spans: np.ndarray, hole: int | None = None, most: int | None = None
) -> list[tuple[int, int]]:
    """The [start, end) byte ranges ``spans`` (shape (n, 2)) as few ranges: sorted, merged
    where they overlap or are at most ``hole`` (:data:`HOLE_BYTES`) bytes apart, and then,
    while there are more than ``most``, merged across the smallest gaps."""
    hole = HOLE_BYTES if hole is None else hole
    out: list[tuple[int, int]] = []
    for a, b in sorted(map(tuple, spans.reshape(-1, 2).tolist())):
        if out and a - out[-1][1] <= hole:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    if most is None or len(out) <= most:
        return out
    gaps = np.array([out[i + 1][0] - out[i][1] for i in range(len(out) - 1)])
    joined = set(np.argsort(gaps, kind="stable")[: len(out) - max(1, most)].tolist())
    merged = [out[0]]
    for i in range(1, len(out)):
        if i - 1 in joined:
            merged[-1] = (merged[-1][0], out[i][1])
        else:
            merged.append(out[i])
    return merged


class _Reader:
    """An open ParquetFile over a store's input stream (closing it closes both)."""

    def __init__(self, store: Store, key: str, meta: pq.FileMetaData) -> None:
        self.src = store.open_input(key)
        try:
            self.pf = pq.ParquetFile(self.src, metadata=meta, pre_buffer=False)
        except BaseException:
            self.src.close()
            raise

    def close(self) -> None:
        self.pf.close()
        self.src.close()


_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


def _reader_budget() -> int:
    """How many open readers a cache keeps: 256, or a quarter of the soft limit on open
    files where that is lower."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):  # not on POSIX
        return 64
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(16, min(256, soft // 4))


#: files of at most this many rows are decoded whole and kept (level 0 / level 1): reads
#: of a few tickers then slice them instead of decoding row groups
SMALL_ROWS_LEVEL0 = 262_144
SMALL_ROWS_LEVEL1 = 65_536


class FooterCache:
    """Parsed Parquet footers of immutable files, shared by the reads of one ParquetDB,
    plus the decoded content of small files (level-0 updates), which single-ticker reads
    then slice without decoding again. Files never change, so nothing here goes stale."""

    def __init__(self, store: Store, capacity: int = 1024, small_bytes: int = 64 << 20) -> None:
        self.store = store
        self.capacity = capacity
        self.small_bytes = small_bytes
        self.small_rows = SMALL_ROWS_LEVEL0
        self._items: OrderedDict[str, _Footer] = OrderedDict()
        self._small: OrderedDict[str, pa.Table] = OrderedDict()
        self._small_used = 0
        self._seen: set[str] = set()  # small level-1 files read once (see again())
        #: open readers kept: more than the files one read of a ticker's history touches
        #: (a quarter of day files of minute bars: 63), within the process's file limit
        self.max_readers = _reader_budget()
        self._readers: OrderedDict[str, tuple[threading.Lock, _Reader]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, schema: TableSchema, info: FileInfo | None = None) -> _Footer:
        """The parsed footer of ``key``; ``info``: what the log knows of the file (its
        size and rows), which makes the footer one ranged GET on an object store."""
        size = info.bytes if info is not None else None
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
        if item is not None:
            if info is not None and not item.checked:  # cached by a read without info
                check_identity(item.meta, key, info)
                item.checked = True
            return item
        tail, tail_start = b"", 0
        if size and self.store.remote:
            assert info is not None
            md, tail, tail_start = self._fetch_footer(key, size, info.rows)
        else:
            with self.store.open_input(key) as src:
                md = pq.read_metadata(src)
        check_identity(md, key, info)
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
        names = frozenset(md.schema.names)
        item = _Footer(md, end - rows, end, tmin, tmax, names, size or None, tail, tail_start)
        item.checked = info is not None
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return item

    def _fetch_footer(self, key: str, size: int, rows: int) -> tuple[pq.FileMetaData, bytes, int]:
        """The footer of the ``size``-byte object ``key`` (``rows`` rows) by ranged GETs
        of its end: one, unless its footer is larger than guessed; and the data bytes that
        GET brought before the footer, with their offset (all of a small file)."""
        table = (*self.store.identity(), key.rsplit("/", 1)[0])
        with _tail_lock:
            per_row = _footer_per_row.get(table)
        guess = FIRST_TAIL_GUESS
        if rows >= _LEARN_ROWS:
            guess = max(guess, int(rows * FIRST_BYTES_PER_ROW))
            if per_row is not None:
                guess = int(per_row * rows * 1.02) + 1024
        tail = self.store.get_range(key, max(0, size - guess), min(size, guess))
        if len(tail) < 12 or tail[-4:] != b"PAR1":
            raise ValueError(f"{key} is not a Parquet file: its last bytes are not PAR1")
        need = int.from_bytes(tail[-8:-4], "little") + 8  # footer, its length, PAR1
        if need + 4 > size:
            raise ValueError(f"{key}: its footer says {need} bytes, the file has {size}")
        if need > len(tail):
            tail = self.store.get_range(key, size - need, need - len(tail)) + tail
            if len(tail) != need:
                raise ValueError(f"{key} is shorter than its footer says")
        if rows >= _LEARN_ROWS:
            with _tail_lock:
                if need / rows > _footer_per_row.get(table, 0.0):
                    _footer_per_row[table] = need / rows
        md = pq.read_metadata(pa.BufferReader(b"PAR1" + tail[len(tail) - need :]))
        return md, tail[: len(tail) - need], size - len(tail)

    def read_row_groups(
        self, key: str, footer: _Footer, rgs: list[int], columns: list[str]
    ) -> pa.Table:
        """``columns`` of the row groups ``rgs`` of a file on an object store: the byte
        ranges of their column chunks, coalesced (at most :data:`MAX_RANGES`), one GET
        each, fetched in parallel, decoded from memory."""
        assert footer.size is not None
        names = footer.meta.schema.names
        col_idx = [names.index(c) for c in columns]
        spans = footer.chunks()[np.asarray(rgs)][:, col_idx]
        ranges = coalesce(spans, most=MAX_RANGES)
        cut = footer.tail_start if footer.tail else footer.size  # from here on: in hand
        wanted = [(a, min(b, cut)) for a, b in ranges if a < cut]
        fetched = fetch_ranges(self.store, key, wanted)
        pieces = list(zip([a for a, _ in wanted], fetched, strict=True))
        if footer.tail:
            pieces.append((cut, footer.tail))
        src = _Pieces(footer.size, pieces, lambda a, n: self.store.get_range(key, a, n))
        with pa.PythonFile(src, mode="r") as f:
            pf = pq.ParquetFile(f, metadata=footer.meta, pre_buffer=False)
            return pf.read_row_groups(rgs, columns=columns, use_threads=False)

    def small_table(self, key: str, info: FileInfo, columns: list[str]) -> pa.Table | None:
        """The whole decoded file if it is small enough to keep; None otherwise. Level-0
        files stay below about 5 % of level 1 (compaction), so on a daily-updated
        database this keeps every level-0 file decoded and a single-ticker read slices
        them instead of decoding a row group of each."""
        if info.rows > (self.small_rows if info.level == 0 else SMALL_ROWS_LEVEL1):
            return None
        if self.store.remote and not 0 < info.bytes <= SMALL_FETCH_BYTES:
            return None  # fetching all of a large file for one ticker costs too much
        kept = self.kept(key, columns)
        if kept is not None:
            return kept
        t = read_whole(self.store, key, info)
        with self._lock:
            if key not in self._small:
                self._small[key] = t
                self._small_used += t.nbytes
            while self._small_used > self.small_bytes and len(self._small) > 1:
                _, old = self._small.popitem(last=False)
                self._small_used -= old.nbytes
        names = t.schema.names
        return t.select([c for c in columns if c in names])

    def again(self, key: str, info: FileInfo) -> bool:
        """Is this small file read a second time, with room to keep it decoded (estimated
        from its rows) without evicting another? Its first read takes its row groups; from
        the second on, reads slice the kept table."""
        with self._lock:
            if key not in self._seen:
                if len(self._seen) > 4 * self.capacity:
                    self._seen.clear()
                self._seen.add(key)
                return False
            return self._small_used + info.rows * KEPT_BYTES_PER_ROW <= self.small_bytes

    def kept(self, key: str, columns: list[str]) -> pa.Table | None:
        """The decoded file if an earlier read kept it (:meth:`small_table`), else None:
        nothing is read."""
        with self._lock:
            t = self._small.get(key)
            if t is None:
                return None
            self._small.move_to_end(key)
        names = t.schema.names
        return t.select([c for c in columns if c in names])

    @contextlib.contextmanager
    def reader(self, key: str, meta: pq.FileMetaData) -> Iterator[pq.ParquetFile]:
        """An open ParquetFile for ``key``, reused across reads (opening one costs about
        as much as decoding a row group). Each is used by one thread at a time; a thread
        that finds it busy opens its own. Files are read without pre-buffering, which
        coalesces reads for object stores but doubled the cost of reading many small row
        groups from local disk. (No memory mapping: a mapped file truncated behind our
        back would crash the process with SIGBUS instead of raising.)"""
        with self._lock:
            entry = self._readers.get(key)
            if entry is not None:
                self._readers.move_to_end(key)
        if entry is None:
            entry = (threading.Lock(), _Reader(self.store, key, meta))
            with self._lock:
                entry = self._readers.setdefault(key, entry)
                while len(self._readers) > self.max_readers:
                    _, (old_lock, old) = self._readers.popitem(last=False)
                    if old_lock.acquire(blocking=False):
                        old.close()
                        old_lock.release()
        lock, reader = entry
        if lock.acquire(blocking=False):
            try:
                yield reader.pf
            finally:
                lock.release()
        else:
            own = _Reader(self.store, key, meta)
            try:
                yield own.pf
            finally:
                own.close()

    def close(self) -> None:
        """Close every cached reader (those in use close when their reader finishes)."""
        with self._lock:
            readers = list(self._readers.values())
            self._readers.clear()
        for lock, reader in readers:
            if lock.acquire(blocking=False):
                reader.close()
                lock.release()

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)
            entry = self._readers.pop(key, None)
        if entry is not None and entry[0].acquire(blocking=False):
            entry[1].close()
            entry[0].release()
        with self._lock:
            t = self._small.pop(key, None)
            if t is not None:
                self._small_used -= t.nbytes


def _ns(value: object) -> int:
    if isinstance(value, int):
        return value
    import pandas as pd

    return int(pd.Timestamp(value).value)  # type: ignore[arg-type]


def _ranges_for(info: FileInfo, tickers: Sequence[str]) -> list[tuple[int, int, str]]:
    """Row ranges [a, b) of ``tickers`` in the file, each with its ticker, in file order,
    from the log's statistics."""
    idx = info.index()
    offsets = info.offsets()
    out = []
    for t in dict.fromkeys(tickers):  # a name asked twice is one range
        i = idx.get(t)
        if i is not None:
            out.append((int(offsets[i]), int(offsets[i] + info.ticker_rows[i]), t))
    out.sort()
    return out


def _names(named: list[tuple[int, int, str]], counts: list[int], typ: pa.DataType) -> pa.Array:
    """The ticker column of rows kept range by range: ``named[i]``'s ticker ``counts[i]``
    times each, in order."""
    if len(named) == 1:
        return pa.repeat(pa.scalar(named[0][2], typ), counts[0])
    which = np.repeat(np.arange(len(named), dtype=np.int32), counts)
    return pa.array([r[2] for r in named], typ).take(pa.array(which))


#: A read of one file decoding at least this many rows, with no other file read meanwhile,
#: decodes its column chunks on Arrow's CPU pool (:func:`read_file`).
THREADED_DECODE_ROWS = 65_536


def read_file(
    footers: FooterCache,
    key: str,
    schema: TableSchema,
    info: FileInfo,
    *,
    tickers: Sequence[str] | None,
    start: int | None,
    end: int | None,
    columns: list[str],
    threads: bool = False,
) -> pa.Table:
    """Read ``columns`` of the rows of one file matching tickers and [start, end].

    The log says where each ticker's rows are (files are sorted by ticker), so only the
    row groups holding them are decoded and no ticker filter is evaluated. On an object
    store a file of at most :data:`SMALL_FETCH_BYTES` is one GET of all of it (kept
    decoded), whatever the read. ``threads``: the caller reads no other file meanwhile,
    so a decode of at least :data:`THREADED_DECODE_ROWS` rows from local disk may use
    Arrow's CPU pool (its column chunks decode in parallel: one day file of minute bars,
    117 k rows in 100 row groups, 9.4 -> 5.5 ms on 2 cores)."""
    # bounds the whole file lies within filter nothing (the log's times are exact): a
    # day file read for its session skips a 117 k-row mask
    if start is not None and start <= info.start:
        start = None
    if end is not None and end >= info.end:
        end = None
    named = None if tickers is None else _ranges_for(info, tickers)
    ranges = None if named is None else [(a, b) for a, b, _ in named]
    whole = tickers is not None or (footers.store.remote and 0 < info.bytes <= SMALL_FETCH_BYTES)
    if whole and ranges is not None and info.level > 0:
        # a small level-1 file (a fine period, a small universe) is decoded or fetched
        # whole for a good share of its rows, or once it is read again and fits in what
        # is kept; else its row groups: one ticker of month files of 1,000 tickers decoded
        # every file whole (343 ms a history, the kept files evicting each other) and, on
        # a bucket, fetched the whole table (99 MB), where its row groups cost 8 ms and 5 MB
        whole = sum(b - a for a, b in ranges) * WHOLE_SHARE >= info.rows or footers.again(key, info)
    small = footers.small_table(key, info, columns) if whole else footers.kept(key, columns)
    if small is not None and ranges is None:
        t = small
    elif small is not None:
        assert ranges is not None
        parts = [small.slice(a, b - a) for a, b in ranges]
        t = pa.concat_tables(parts) if len(parts) != 1 else parts[0]
    else:
        ft = footers.get(key, schema, info)
        rgs = _row_groups_for(ft, ranges, start, end)
        cols = [c for c in columns if c in ft.names]
        if len(rgs) == 0:
            empty = pa.table({c: pa.array([], type=_type_of(schema, c)) for c in cols})
            return with_late_columns(empty, schema, columns)
        # a read of named tickers knows each row's ticker from the log: that column is
        # made from the ranges, not decoded (a string column costs 2-3x a number column)
        series = schema.series_column
        at = cols.index(series) if named is not None and series in cols else -1
        if at >= 0:
            del cols[at]
        lo, hi = int(rgs[0]), int(rgs[-1])
        rows = int(ft.rg_end[hi] - ft.rg_start[lo])  # the rows decoded, when consecutive
        if hi - lo + 1 != len(rgs):
            rows = int((ft.rg_end[rgs] - ft.rg_start[rgs]).sum())
        many = threads and rows >= THREADED_DECODE_ROWS
        if ft.size is not None and footers.store.remote:
            t = footers.read_row_groups(key, ft, rgs.tolist(), cols)
        else:
            with footers.reader(key, ft.meta) as pf:
                if len(rgs) == ft.meta.num_row_groups:
                    t = pf.read(columns=cols, use_threads=many)
                else:
                    t = pf.read_row_groups(rgs.tolist(), columns=cols, use_threads=many)
        if ranges is not None:
            t, counts = _keep_ranges(t, ranges, ft.rg_start[rgs], ft.rg_end[rgs])
        if at >= 0:
            assert named is not None
            field = schema.arrow_schema.field(series)
            t = t.add_column(at, field, _names(named, counts, field.type))
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
    return with_late_columns(t, schema, columns)


def _row_groups_for(
    ft: _Footer, ranges: list[tuple[int, int]] | None, start: int | None, end: int | None
) -> np.ndarray:
    """The row groups of a file holding rows of the sorted, disjoint row ``ranges`` (every
    row group when None) whose times may lie in [start, end], ascending."""
    if ranges is None:
        rgs = np.arange(ft.meta.num_row_groups)
    elif not ranges:
        return np.arange(0)
    else:  # each range's run of row groups; neighbouring tickers may share a group
        runs = [
            np.arange(np.searchsorted(ft.rg_end, a, "right"), np.searchsorted(ft.rg_start, b))
            for a, b in ranges
        ]
        rgs = runs[0] if len(runs) == 1 else np.unique(np.concatenate(runs))
    if start is not None:
        rgs = rgs[ft.rg_max_ts[rgs] >= start]
    if end is not None:
        rgs = rgs[ft.rg_min_ts[rgs] <= end]
    return rgs


def with_late_columns(t: pa.Table, schema: TableSchema, columns: list[str]) -> pa.Table:
    """``t`` with the columns of ``columns`` that its file was written without (a column
    added to the schema later, ``TableSchema.late_columns``) as nulls of their type."""
    if not schema.late_columns:
        return t
    names = t.schema.names
    missing = [c for c in schema.late_columns if c in columns and c not in names]
    for c in missing:
        typ = _type_of(schema, c)
        t = t.append_column(pa.field(c, typ), pa.nulls(t.num_rows, typ))
    if not missing:
        return t
    return t.select([c for c in columns if c in t.column_names])


def _keep_ranges(
    t: pa.Table, ranges: list[tuple[int, int]], rg_start: np.ndarray, rg_end: np.ndarray
) -> tuple[pa.Table, list[int]]:
    """``t`` holds the rows of the row groups [rg_start[i], rg_end[i]) of a file, in order;
    keep only its rows inside the sorted, disjoint file row ranges ``ranges``, and say how
    many rows of each range were kept (a time bound may have dropped row groups)."""
    first, last = int(rg_start[0]), int(rg_end[-1])
    if len(ranges) == 1 and last - first == t.num_rows:  # one ticker, consecutive groups
        a, b = max(ranges[0][0], first), min(ranges[0][1], last)
        if a == first and b == last:
            return t, [b - a]  # often all of ``t``
        return t.slice(a - first, max(b - a, 0)), [max(b - a, 0)]
    # general case: a mask over the rows read, built per row group
    lengths = rg_end - rg_start
    out_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    mask = np.zeros(t.num_rows, dtype=bool)
    starts, ends, bases = rg_start.tolist(), rg_end.tolist(), (out_start - rg_start).tolist()
    counts = []
    for a, b in ranges:
        kept = 0
        for i in np.flatnonzero((rg_start < b) & (rg_end > a)).tolist():
            lo, hi = max(a, starts[i]), min(b, ends[i])
            mask[bases[i] + lo : bases[i] + hi] = True
            kept += hi - lo
        counts.append(kept)
    return (t if mask.all() else t.filter(pa.array(mask))), counts


def _type_of(schema: TableSchema, name: str) -> pa.DataType:
    if name == SEQ_COLUMN:
        return pa.int64()
    return schema.arrow_schema.field(name).type
