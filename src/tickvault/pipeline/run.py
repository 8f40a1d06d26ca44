"""fetch_and_write and update: parallel fetch, one streaming writer, run reports."""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..sources import as_source, get_source
from ..sources.base import Source, TimeLike, to_utc
from ..sources.policy import RetryPolicy
from ..storage import FileInfo, ParquetDB, Problem, committed
from ..storage.log import now_iso
from .report import Progress, RunReport, TickerResult
from .schedulers import Runner, open_runner, scheduler_name
from .tasks import (
    ChunkOutcome,
    Job,
    Outcome,
    describe,
    drop_unchanged,
    fetch_one,
    fetch_write_chunk,
    rows_per_ticker,
    validate_batch,
)

log = logging.getLogger("tickvault.pipeline")

DEFAULT_BATCH_ROWS = 250_000
DEFAULT_BATCH_SECONDS = 10.0
PROGRESS_LOG_SECONDS = 5.0

ProgressCallback = Callable[[Progress], None]


# -- inputs ----------------------------------------------------------------------------------


def resolve_source(source: Any) -> Source:
    """A source object for a registered name, a source object or a plain callable."""
    if isinstance(source, str):
        return get_source(source)
    return as_source(source)


def open_db(db: ParquetDB | str | os.PathLike[str]) -> ParquetDB:
    return db if isinstance(db, ParquetDB) else ParquetDB(db)


def unique_tickers(tickers: str | Iterable[str]) -> list[str]:
    if isinstance(tickers, str):
        tickers = [tickers]
    out: list[str] = []
    seen: set[str] = set()
    for t in tickers:
        if not isinstance(t, str):
            raise ConfigError(f"tickers must be strings, got {t!r}")
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


def resume_key(source: Source, start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """What makes two backfills "the same run" for ``resume=True``: the source name and
    the requested range. An open end (``end=None``, "up to now") is pinned to today's UTC
    date, so a resumed open-ended backfill only skips tickers committed the same day."""
    end_part = _iso(end) if end is not None else f"open:{dt.datetime.now(dt.UTC).date()}"
    doc = json.dumps(["backfill", source.name, _iso(start), end_part])
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def completed_tickers(db: ParquetDB, key: str) -> set[str]:
    """Tickers that commits of earlier runs with this resume key published.

    The log is the checkpoint: each pipeline commit records ``run_key`` and the tickers
    it completed in its ``info``, atomically with the data, so what is skipped is exactly
    what was committed."""
    done: set[str] = set()
    if "prices" not in db.tables():
        return done
    for entry in db.history("prices"):
        info = entry.get("info") or {}
        if info.get("run_key") == key:
            done.update(info.get("done") or ())
    return done


# -- the writer ------------------------------------------------------------------------------


@dataclass
class _Batch:
    outcomes: list[Outcome] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)  # parallel-write mode
    written: dict[str, int] = field(default_factory=dict)  # parallel-write mode
    rows: int = 0


class _Writer:
    """The single committer of a run, on its own thread so fetching never waits for it.

    Batches are handed over through a queue of size one: at most one batch is being
    committed, one waits, and one is being filled — memory is bounded by the batch size."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.q: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="tickvault-writer", daemon=True)
        self.thread.start()

    def put(self, batch: _Batch) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self.put_end()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def put_end(self) -> None:
        while self.thread.is_alive():
            try:
                self.q.put(None, timeout=0.2)
                return
            except queue.Full:
                continue

    def _loop(self) -> None:
        while True:
            batch = self.q.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # drain; the run is failing
            try:
                self.run.commit(batch)
            except BaseException as exc:
                self.error = exc
                if not committed(exc):  # never committed: do not leave orphans
                    self.run.db.discard_files("prices", batch.files)


class _Run:
    def __init__(
        self,
        *,
        kind: str,
        jobs: list[Job],
        source: Source,
        db: ParquetDB,
        scheduler: Any,
        n_workers: int | None,
        progress: bool,
        batch_rows: int,
        batch_seconds: float,
        parallel_write: bool,
        retry: RetryPolicy | None,
        on_progress: ProgressCallback | None,
        skip_unchanged: bool,
        run_key: str | None,
        skip: set[str],
        chunk_size: int | None,
        cluster_options: dict[str, Any] | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
    ) -> None:
        if batch_rows < 1:
            raise ConfigError(f"batch_rows must be >= 1, got {batch_rows!r}")
        if batch_seconds <= 0:
            raise ConfigError(f"batch_seconds must be > 0, got {batch_seconds!r}")
        self.kind = kind
        self.jobs = jobs
        self.source = source
        self.db = db
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.progress = progress
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.parallel_write = parallel_write
        self.policy = retry or source.retry_policy
        self.on_progress = on_progress
        self.skip_unchanged = skip_unchanged
        self.run_key = run_key
        self.skip = skip
        self.chunk_size = chunk_size
        self.cluster_options = cluster_options
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.last_log = self.t0
        self.done = 0
        self.committed: list[FileInfo] = []
        self.verifier = _Verifier(db)
        self.counts: dict[str, int] = {"pending": len(jobs)}
        self.rows_written = 0
        self.rows_fetched = 0
        self.report = RunReport(
            run_id=uuid.uuid4().hex[:12],
            kind=kind,
            source=source.name,
            scheduler=scheduler_name(scheduler),
            db=str(db.path),
            parallel_write=parallel_write,
            start=_iso(start),
            end=_iso(end),
            started=now_iso(),
            results={j.ticker: TickerResult(j.ticker) for j in jobs},
        )

    # -- progress ----------------------------------------------------------------------------

    def _emit(self, ticker: str | None, status: str | None, version: int | None = None) -> None:
        now = time.perf_counter()
        elapsed = now - self.t0
        c = self.counts
        p = Progress(
            done=self.done,
            total=len(self.jobs),
            written=c.get("written", 0),
            failed=c.get("failed", 0),
            skipped=c.get("skipped", 0),
            rows=self.rows_written,
            fetched_rows=self.rows_fetched,
            seconds=elapsed,
            rate=self.done / elapsed if elapsed > 0 else 0.0,
            ticker=ticker,
            status=status,
            version=version,
        )
        if self.progress and (now - self.last_log >= PROGRESS_LOG_SECONDS or p.done == p.total):
            self.last_log = now
            log.info(
                "%s: %d/%d tickers, %d rows written, %d failed, %.1f tickers/s",
                self.kind,
                p.done,
                p.total,
                p.rows,
                p.failed,
                p.rate,
            )
        if self.on_progress is not None:
            self.on_progress(p)

    def _set(self, res: TickerResult, status: str) -> None:
        """Change a ticker's status, keeping the running counts (call under the lock)."""
        self.counts[res.status] = self.counts.get(res.status, 0) - 1
        self.counts[status] = self.counts.get(status, 0) + 1
        res.status = status

    def finished(self, o: Outcome) -> None:
        """Record a fetch outcome (rows not yet committed)."""
        with self.lock:
            res = self.report.results[o.ticker]
            res.attempts = o.attempts
            res.seconds = round(o.seconds, 6)
            res.fetched = o.rows
            self.rows_fetched += o.rows
            if o.ok:
                self._set(res, "unchanged")  # until a commit publishes its rows
            else:
                self._set(res, "failed")
                res.error, res.error_type = o.error, o.error_type
                log.warning(
                    "%s: %s failed after %d attempt(s): %s",
                    self.kind,
                    o.ticker,
                    o.attempts,
                    o.error,
                )
            self.done += 1
            self._emit(o.ticker, res.status)

    # -- committing --------------------------------------------------------------------------

    def commit(self, batch: _Batch) -> None:
        """Runs on the writer thread: validate (single-writer mode) and publish a batch."""
        if self.parallel_write:
            files, written = batch.files, batch.written
        else:
            table, bad = validate_batch(batch.outcomes, self.source.name)
            for o in batch.outcomes:
                o.data = None
            for o in bad.values():
                with self.lock:
                    res = self.report.results[o.ticker]
                    self._set(res, "failed")
                    res.error, res.error_type = o.error, o.error_type
                log.warning("%s: %s rejected: %s", self.kind, o.ticker, o.error)
            if table is not None and self.skip_unchanged:
                table = drop_unchanged(self.db, table)
            files = []
            if table is not None and table.num_rows:
                files = self.db.write_files("prices", table)  # validated once: as is
            written = rows_per_ticker(files)
        done = sorted(o.ticker for o in batch.outcomes if o.ok)
        if not files:
            return
        info: dict[str, Any] = {"run_id": self.report.run_id, "pipeline": self.kind}
        if self.run_key is not None:
            info["run_key"] = self.run_key
            info["done"] = done
        result = self.db.commit_files("prices", files, info=info)
        self.verifier.add(files)
        with self.lock:
            self.committed.extend(files)
            self.report.versions.append(result.version)
            for t, n in written.items():
                res = self.report.results[t]
                self._set(res, "written")
                res.rows, res.version = res.rows + n, result.version
                self.rows_written += n
            self._emit(None, "commit", result.version)
        log.debug("%s: committed version %d (%d rows)", self.kind, result.version, result.rows)

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> RunReport:
        todo = [j for j in self.jobs if j.ticker not in self.skip]
        for j in self.jobs:
            if j.ticker in self.skip:
                self._set(self.report.results[j.ticker], "skipped")
                self.done += 1
        if self.skip:
            log.info("%s: resuming, %d ticker(s) already committed", self.kind, len(self.skip))
            self._emit(None, "skipped")
        try:
            writer = _Writer(self)
            try:
                if todo:
                    with open_runner(
                        self.scheduler, self.n_workers, cluster_options=self.cluster_options
                    ) as runner:
                        if self.parallel_write:
                            self._stream_files(runner, todo, writer)
                        else:
                            self._stream_rows(runner, todo, writer)
            finally:
                writer.finish()
            self.report.verify = self.verifier.result()
        finally:
            self.verifier.close()
        self.report.finished = now_iso()
        self.report.seconds = round(time.perf_counter() - self.t0, 6)
        if not self.report.verify.get("ok", True):
            log.error(
                "%s: committed files failed verification: %s",
                self.kind,
                self.report.verify.get("problems"),
            )
        self.db.record_run(self.report.to_dict())
        log.info("%r", self.report)
        return self.report

    def _max_inflight(self, runner: Runner) -> int:
        return max(2, 2 * runner.slots)

    def _stream_rows(self, runner: Runner, jobs: list[Job], writer: _Writer) -> None:
        """Single-writer mode: rows stream to the writer in batches.

        Tasks are submitted in ticker order, so every ticker still in flight sorts at or
        after the smallest pending one (the *frontier*). A batch takes only the finished
        tickers before the frontier, which keeps the ticker ranges of successive commits
        disjoint: each lands directly in the sorted level-1 layout and no compaction has to
        merge them afterwards. Stragglers (long retries) are waited for only until the
        buffer holds twice ``batch_rows``; then everything goes.
        """
        pending: list[str] = []  # heap of submitted, unfinished tickers
        finished: set[str] = set()

        def tasks() -> Iterator[tuple[Any, ...]]:
            for job in sorted(jobs, key=lambda j: j.ticker):
                heapq.heappush(pending, job.ticker)
                yield (self.source, job, self.policy)

        buffer: list[Outcome] = []
        rows = 0
        opened = time.monotonic()
        for args, result, exc in runner.imap_unordered(
            fetch_one, tasks(), self._max_inflight(runner)
        ):
            o: Outcome = result if exc is None else _crashed(args[1], exc)
            self.finished(o)
            finished.add(o.ticker)
            if not buffer:
                opened = time.monotonic()
            buffer.append(o)
            rows += o.rows
            if rows < self.batch_rows and time.monotonic() - opened < self.batch_seconds:
                continue
            while pending and pending[0] in finished:
                finished.discard(heapq.heappop(pending))
            if rows >= 2 * self.batch_rows or not pending:
                ready, buffer = buffer, []
            else:
                frontier = pending[0]
                ready = [b for b in buffer if b.ticker < frontier]
                buffer = [b for b in buffer if b.ticker >= frontier]
            if ready:
                writer.put(_Batch(outcomes=ready, rows=sum(b.rows for b in ready)))
                rows = sum(b.rows for b in buffer)
                opened = time.monotonic()
        if buffer:
            writer.put(_Batch(outcomes=buffer, rows=rows))

    def _stream_files(self, runner: Runner, jobs: list[Job], writer: _Writer) -> None:
        size = self.chunk_size or max(1, min(64, len(jobs) // (4 * runner.slots)))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        tasks: Iterator[tuple[Any, ...]] = (
            (self.db, self.source, chunk, self.policy, self.skip_unchanged) for chunk in chunks
        )
        batch = _Batch()
        opened = time.monotonic()
        try:
            for args, result, exc in runner.imap_unordered(
                fetch_write_chunk, tasks, self._max_inflight(runner)
            ):
                if exc is not None:
                    chunk_out = ChunkOutcome([_crashed(j, exc) for j in args[2]])
                else:
                    chunk_out = result
                for o in chunk_out.outcomes:
                    self.finished(o)
                if not batch.outcomes:
                    opened = time.monotonic()
                batch.outcomes.extend(chunk_out.outcomes)
                batch.files.extend(chunk_out.files)
                for t, n in chunk_out.written.items():
                    batch.written[t] = batch.written.get(t, 0) + n
                batch.rows += sum(f.rows for f in chunk_out.files)
                if batch.rows >= self.batch_rows or time.monotonic() - opened >= self.batch_seconds:
                    writer.put(batch)
                    batch = _Batch()
        except BaseException:
            self.db.discard_files("prices", batch.files)
            raise
        if batch.outcomes:
            writer.put(batch)


def _crashed(job: Job, exc: BaseException) -> Outcome:
    """An outcome for a task that did not return (its worker died, it was cancelled...)."""
    return Outcome(
        ticker=job.ticker,
        ok=False,
        attempts=1,
        seconds=0.0,
        error=describe(exc),
        error_type=type(exc).__name__,
    )


def _verify_result(files: list[FileInfo], problems: list[Problem]) -> dict[str, Any]:
    return {
        "ok": not problems,
        "files": len(files),
        "rows": sum(f.rows for f in files),
        "problems": [str(p) for p in problems],
    }


class _Verifier:
    """Reads committed files back (``db.check_files``, the check ``verify`` runs) on a
    background thread while the run
    goes on, so the post-run verification only waits for the last commit's files instead
    of reading the whole run back at the end."""

    def __init__(self, db: ParquetDB) -> None:
        self.db = db
        self.files: list[FileInfo] = []
        self.futures: list[Future[list[Problem]]] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickvault-verify")

    def add(self, files: list[FileInfo]) -> None:
        for f in files:
            self.files.append(f)
            self.futures.append(self.pool.submit(self.db.check_files, "prices", [f]))

    def result(self) -> dict[str, Any]:
        try:
            problems = [p for fut in self.futures for p in fut.result()]
        finally:
            self.pool.shutdown(wait=True)
        return _verify_result(self.files, problems)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- public API ------------------------------------------------------------------------------


def fetch_and_write(
    tickers: str | Iterable[str],
    source: Any = "demo",
    db: ParquetDB | str | os.PathLike[str] = "db",
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    scheduler: Any = "threads",
    n_workers: int | None = None,
    progress: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    resume: bool = False,
    parallel_write: bool = False,
    retry: RetryPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_size: int | None = None,
    cluster_options: dict[str, Any] | None = None,
) -> RunReport:
    """Fetch ``tickers`` from ``source`` in parallel and write them to ``db`` (a backfill).

    Fetch tasks run on ``scheduler`` (``"threads"``, ``"processes"``, ``"synchronous"``,
    ``"distributed"`` for a LocalCluster of ``n_workers`` processes started for the run,
    ``"tcp://host:port"``, or a ``distributed.Client``); ``n_workers`` sizes the pool (default:
    8 threads / one process per core / ``min(4, cores)`` cluster workers). Results stream
    to one writer as they complete, which commits a batch whenever it holds ``batch_rows``
    rows or has been open ``batch_seconds``; at most ``2 × workers`` tasks are in flight, so
    memory is bounded by the batch size, not by the number of tickers.

    ``parallel_write=True``: workers write their data files straight into the database folder
    (chunks of ``chunk_size`` tickers per task) and return only file metadata; the client
    publishes them in atomic commits. The database path must be reachable from the workers.

    A source that also has ``fetch_arrow(ticker, start, end) -> pyarrow.Table`` (like the
    demo source) is called through it, which skips a pandas round trip per ticker. Rows are
    validated once, per batch, on the writer thread; each commit's files are read back
    (``report.verify``) on a background thread while the run goes on.

    Each ticker is retried per ``retry`` (default: the source's ``retry_policy``) on the
    errors it lists (transient ones); any other error, or the last one, is recorded in the
    report and never aborts the run. ``resume=True`` skips tickers that earlier backfills of
    the same source and ``start``/``end`` already committed (see :func:`completed_tickers`).

    ``on_progress(p: Progress)`` is called (on the calling thread, or the writer thread for a
    ``"commit"`` event) after each ticker finishes and after each commit; see
    :class:`~tickvault.pipeline.Progress` for its fields (``done``, ``total``, ``written``,
    ``failed``, ``skipped``, ``rows``, ``fetched_rows``, ``seconds``, ``rate``, ``ticker``,
    ``status``, ``version``). ``progress=True`` logs progress every few seconds (the library
    never prints).

    Returns a :class:`~tickvault.pipeline.RunReport`, also stored with ``db.record_run``.
    """
    src = resolve_source(source)
    database = open_db(db)
    lo, hi = to_utc(start, what="start"), to_utc(end, what="end")
    names = unique_tickers(tickers)
    key = resume_key(src, lo, hi)
    skip = completed_tickers(database, key) & set(names) if resume else set()
    run = _Run(
        kind="backfill",
        jobs=[Job(t, lo, hi) for t in names],
        source=src,
        db=database,
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
        batch_rows=batch_rows,
        batch_seconds=batch_seconds,
        parallel_write=parallel_write,
        retry=retry,
        on_progress=on_progress,
        skip_unchanged=False,
        run_key=key,
        skip=skip,
        chunk_size=chunk_size,
        cluster_options=cluster_options,
        start=lo,
        end=hi,
    )
    try:
        return run.execute()
    finally:
        if database is not db:
            database.close()


def update_start(
    watermark: pd.Timestamp, lookback: int | dt.timedelta | pd.Timedelta
) -> pd.Timestamp:
    """Where an update of a ticker starts: its watermark minus the lookback window.

    An int is a number of business days before the watermark's date (for daily bars: the
    last ``lookback + 1`` stored bars are refetched, holidays only widen the window); a
    ``timedelta`` is subtracted as is."""
    if isinstance(lookback, bool) or not isinstance(lookback, int | dt.timedelta):
        raise ConfigError(
            f"lookback must be a number of business days (int) or a timedelta, got {lookback!r}"
        )
    if isinstance(lookback, int):
        if lookback < 0:
            raise ConfigError(f"lookback must be >= 0, got {lookback}")
        return watermark.normalize() - pd.offsets.BDay(lookback)
    return watermark - pd.Timedelta(lookback)


def update(
    tickers: str | Iterable[str] | None = None,
    source: Any = "demo",
    db: ParquetDB | str | os.PathLike[str] = "db",
    *,
    lookback: int | dt.timedelta = 5,
    start: TimeLike = None,
    end: TimeLike = None,
    scheduler: Any = "threads",
    n_workers: int | None = None,
    progress: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    parallel_write: bool = False,
    retry: RetryPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    skip_unchanged: bool = True,
    chunk_size: int | None = None,
    cluster_options: dict[str, Any] | None = None,
) -> RunReport:
    """Bring ``tickers`` (default: every ticker in the database) up to date.

    Each ticker is fetched from its watermark (last stored timestamp, from the log's
    metadata) minus ``lookback`` — an int counts business days (default 5: the last six daily
    bars are refetched, so bars the source revised are corrected), a ``timedelta`` is exact —
    up to ``end``. Tickers without stored data are fetched from ``start`` (default: the
    source's default history). With ``skip_unchanged`` (default) fetched bars already stored
    identically are not written again, so an update right after an update commits nothing.

    The other options are those of :func:`fetch_and_write`; returns a
    :class:`~tickvault.pipeline.RunReport` (``kind="update"``).
    """
    src = resolve_source(source)
    database = open_db(db)
    lo, hi = to_utc(start, what="start"), to_utc(end, what="end")
    marks = database.watermarks() if "prices" in database.tables() else {}
    names = unique_tickers(marks if tickers is None else tickers)
    jobs = []
    for t in names:
        mark = marks.get(t)
        jobs.append(Job(t, lo if mark is None else update_start(mark, lookback), hi))
    run = _Run(
        kind="update",
        jobs=jobs,
        source=src,
        db=database,
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
        batch_rows=batch_rows,
        batch_seconds=batch_seconds,
        parallel_write=parallel_write,
        retry=retry,
        on_progress=on_progress,
        skip_unchanged=skip_unchanged,
        run_key=None,
        skip=set(),
        chunk_size=chunk_size,
        cluster_options=cluster_options,
        start=lo,
        end=hi,
    )
    try:
        return run.execute()
    finally:
        if database is not db:
            database.close()
