"""One table of a database: its pinned states, writing its data files and reading them
(the commit protocol that publishes files is :mod:`~tickvault.storage.core.commit`).

Every byte goes through the database's :class:`~tickvault.storage.core.store.Store`; the table
knows its keys (``<table>/<file>.parquet``, ``<table>/_log/...``), not where they live.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import pyarrow as pa

from ...errors import (
    CorruptDatabaseError,
    ObjectStoreError,
    StorageError,
    VersionUnavailable,
)
from ...keys import Runs
from ...schema import TableSchema
from . import read_merge
from .file_reader import FooterCache, read_file
from .file_writer import SEQ_COLUMN, split_by_rows, write_data_file
from .log import LogStore
from .options import StorageOptions
from .periods import period_end, split_by_period
from .state import FileInfo, TableState
from .store import Store

log = logging.getLogger(__name__)

#: files of one read fetched at once from an object store (each is one or two round trips)
REMOTE_READERS = 16


class Table:
    """A table: pinned states, the commit loop, file writes and read_merge. Thread-safe."""

    def __init__(self, store: Store, schema: TableSchema, opts: StorageOptions) -> None:
        self.store = store
        self.schema = schema
        self.name = schema.name
        self.opts = opts
        #: the calendar period of this table's level-1 files (decision 015)
        self.period = opts.period or schema.period
        self.log = LogStore(store, schema.name, opts.checkpoint_interval)
        self.footers = FooterCache(store)
        self._state = TableState()
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None

    def key(self, path: str) -> str:
        """The store key of a file of this table (``path`` as the log names it)."""
        return f"{self.name}/{path}"

    # -- state -----------------------------------------------------------------------------

    def refresh(self) -> TableState:
        """Bring the cached state up to the newest version; return a private copy."""
        with self._lock:
            self._state = self.log.load(base=self._state)
            return self._state.copy()

    def cached_state(self) -> TableState:
        """The newest state this handle knows (no I/O; may be behind other writers)."""
        with self._lock:
            return self._state.copy()

    def files_now(self) -> list[FileInfo]:
        """The files of the newest state this handle knows (no I/O, no copy of the state;
        may be behind other writers)."""
        with self._lock:
            return list(self._state.files.values())

    def state_at(self, version: int | None) -> TableState:
        if version is None:
            return self.refresh()
        with self._lock:
            current = self._state
        if version == current.version:
            return current.copy()
        if version > current.version:
            try:
                st = self.refresh()
            except CorruptDatabaseError:  # a damaged newest entry or a gap in the log:
                return self.log.load(upto=version)  # the versions before it stay readable
            if version == st.version:
                return st
            return self.log.load(upto=version, base=st if version > st.version else None)
        return self.log.load(upto=version)

    def advance(self, version: int, entry: dict[str, Any]) -> None:
        """Apply this handle's own just-published ``entry`` (version ``version``) to the
        cached state if it is the next version (saves re-reading the log)."""
        with self._lock:
            if self._state.version == version - 1:
                self._state.apply(version, entry)

    # -- data files ------------------------------------------------------------------------

    def write_file(
        self,
        table: pa.Table,
        runs: Runs | None = None,
        *,
        period: tuple[int, int] | None = None,
        between: Callable[[], None] | None = None,
    ) -> FileInfo:
        """Write one sorted, unique table as one new, uncommitted data file (``period``:
        the level-1 period all its rows lie in, if any; ``between``: called between row
        groups, see :func:`.file_writer.write_data_file`)."""
        info = write_data_file(
            self.store, self.name, table, self.schema, self.opts.write, runs, between=between
        )
        info.period = period
        return info

    def write_files(self, table: pa.Table, runs: Runs | None = None) -> list[FileInfo]:
        """Write a validated batch as level-sized files, one period at a time (so a bulk
        load can go straight to level 1), in parallel threads (the Parquet encoder releases
        the GIL). ``runs``: the batch's ticker runs, if known."""
        return self.map_writing(
            lambda piece: [self.write_file(piece[1], piece[2], period=piece[0])],
            self.pieces(table, runs),
        )

    def pieces(
        self, table: pa.Table, runs: Runs | None = None
    ) -> list[tuple[tuple[int, int] | None, pa.Table, Runs | None]]:
        """A sorted batch cut into level-1-sized files: by this table's period, then into
        about ``target_file_rows`` rows at ticker boundaries; each with its period."""
        by_period = split_by_period(table, self.schema.time_column, self.period, runs)
        out: list[tuple[tuple[int, int] | None, pa.Table, Runs | None]] = []
        for start, part, known in by_period:
            period = None if self.period == "none" else (start, period_end(start, self.period))
            for piece, piece_runs in split_by_rows(
                part, self.schema.series_column, self.opts.target_file_rows, known
            ):
                out.append((period, piece, piece_runs))
        return out

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
        """Delete written files that no commit references (they would be orphans)."""
        for f in files:
            self.footers.discard(self.key(f.path))
            try:
                self.store.delete(self.key(f.path))
            except OSError as exc:
                log.warning("%s: could not delete uncommitted file %s: %s", self.name, f.path, exc)

    # -- reads -----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        """The threads that read a query's files: as many as cores (up to 4) on a local
        disk, where decoding is the work; ``REMOTE_READERS`` on a bucket, where each file
        is round trips (a footer, its row groups) that wait on the network, not a core."""
        with self._lock:
            if self._pool is None:
                remote = self.store.remote
                n = REMOTE_READERS if remote else min(4, os.cpu_count() or 2)
                self._pool = ThreadPoolExecutor(max_workers=n)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
        self.footers.close()

    def oldest_readable(self) -> int | None:
        """The oldest version whose files all still exist (None: not even the newest).
        Files only disappear once superseded, so readability is monotonic in the version:
        a binary search over the log."""
        newest = self.refresh().version
        versions = self.log.list_versions()
        lo = versions[0] if versions else newest
        if newest < 0 or not _readable(self, newest):
            return None
        hi = newest
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                ok = _readable(self, mid)
            except StorageError:  # entries before a checkpoint may be gone
                ok = False
            if ok:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def require_files(self, state: TableState, doing: str = "read") -> None:
        """Raise VersionUnavailable (naming the oldest readable version) if a file of
        ``state``, a version older than the newest this handle knows, was reclaimed. The
        newest version's files are live: not looked at. One existence check per file."""
        with self._lock:
            newest = self._state.version
        if state.version >= newest:
            return
        missing = next((p for p in state.files if not self.store.exists(self.key(p))), None)
        if missing is None:
            return
        oldest = self.oldest_readable()
        raise VersionUnavailable(
            f"{self.name}: version {state.version} can no longer be {doing}: its file "
            f"{missing} was reclaimed ({_RECLAIMED}); the oldest version still readable is "
            f"{oldest}",
            oldest=oldest,
        )

    def read_part(
        self,
        f: FileInfo,
        version: int,
        *,
        tickers: list[str] | None,
        start: int | None,
        end: int | None,
        cols: list[str],
        threads: bool = False,
    ) -> pa.Table:
        """One data file's rows for a read (see :func:`read_file`; ``threads``: the caller
        reads no other file meanwhile); a file that cannot be read raises
        CorruptDatabaseError naming it and what to run."""
        key = self.key(f.path)
        try:
            return read_file(
                self.footers,
                key,
                self.schema,
                f,
                tickers=tickers,
                start=start,
                end=end,
                columns=cols,
                threads=threads,
            )
        except ObjectStoreError:
            self.footers.discard(key)
            raise  # the store failed to serve it (network, permission): not damage
        except (OSError, pa.ArrowException, ValueError, IndexError) as exc:
            self.footers.discard(key)
            if isinstance(exc, FileNotFoundError) and version < self.refresh().version:
                oldest = self.oldest_readable()
                if oldest is not None and version < oldest:
                    raise VersionUnavailable(
                        f"{self.name}: version {version} can no longer be read: its file "
                        f"{f.path} was reclaimed ({_RECLAIMED}); the oldest version still "
                        f"readable is {oldest}",
                        oldest=oldest,
                    ) from exc
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
        """Rows of the pinned ``state`` (sorted by key, keys unique; bounds in ns, inclusive)."""
        schema = self.schema
        out_cols = read_merge.output_columns(schema, columns)
        cands = read_merge.candidates(state, tickers=tickers, start=start, end=end)
        if not cands:
            return read_merge.empty(schema, out_cols)
        disjoint = read_merge.disjoint(cands)
        if not disjoint and tickers is not None and len(set(tickers)) == 1:
            # one ticker whose files hold disjoint time spans of it (one file per period):
            # the parts, in time order, are the answer
            in_order = read_merge.one_series_in_order(cands, next(iter(tickers)))
            if in_order is not None:
                cands, disjoint = in_order, True
        # one ticker from several files (the common backtest read after daily updates):
        # resolve keys in numpy instead of tagging and sorting Arrow tables
        single = (
            not disjoint and tickers is not None and len(set(tickers)) == 1 and len(schema.key) == 2
        )
        # files of one period layout that each hold every ticker (a day of minute bars
        # each): no shared key, so their parts interleave by ticker instead of merging
        apart = not disjoint and not single and read_merge.keys_apart(cands)
        read_cols = list(out_cols) if disjoint or apart else [*out_cols, SEQ_COLUMN]
        # one ticker: its name column is made once for the result, not per file (read_file
        # makes it per file from the log for reads of several tickers; for one ticker's
        # ten year files that per-file work is 6-9 % of the read)
        series = schema.series_column
        constant = (
            tickers is not None
            and len(set(tickers)) == 1
            and (disjoint or single)
            and series in out_cols
        )
        if constant:
            read_cols.remove(series)
        # on local disk threads pay off only for large reads; on a bucket every file is a
        # round trip, so several files are always fetched at once
        pooled = len(cands) >= 2 and (
            self.store.remote or read_merge.estimated_rows(cands) > 100_000
        )

        def one(item: read_merge.Candidate) -> pa.Table:
            f, tk = item
            t = self.read_part(
                f,
                state.version,
                tickers=tk,
                start=start,
                end=end,
                cols=read_cols,
                threads=not pooled,  # one file at a time: it may decode on every core
            )
            if not disjoint and not single and not apart:
                t = read_merge.with_seq(t, f)
            names = t.schema.names
            want = [c for c in read_cols if c != SEQ_COLUMN or c in names]
            return t if names == want else t.select(want)

        parts = list(self._executor().map(one, cands)) if pooled else [one(c) for c in cands]
        if disjoint:
            result = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        elif apart:
            result = read_merge.interleave(parts, cands, schema.series_column)
        elif single:
            result = read_merge.merge_one_series(parts, [c[0] for c in cands], schema.time_column)
        else:
            result = read_merge.merge_newest(parts, schema.key).drop_columns([SEQ_COLUMN])
        if constant:
            assert tickers is not None
            field = schema.arrow_schema.field(series)
            name = pa.repeat(pa.scalar(next(iter(tickers)), field.type), result.num_rows)
            result = result.append_column(field, name)
        return result.select(out_cols)


#: why an old version's file is gone
_RECLAIMED = (
    "files a compaction, a delete or a restore replaced are kept for the retention period, "
    "then deleted"
)


def _readable(table: Table, version: int) -> bool:
    state = table.log.load(upto=version)
    return all(table.store.exists(table.key(p)) for p in state.files)


def _finished(f: Future[Any]) -> bool:
    return f.done() and not f.cancelled() and f.exception() is None
