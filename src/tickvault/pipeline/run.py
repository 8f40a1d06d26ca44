"""fetch_and_write and update: parallel fetch, one streaming writer, run reports."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..future_bars import ahead_of, max_future_seconds
from ..modes import parse_interval, prices_table
from ..schema import Validated, get_schema
from ..sources.base import Source, is_synthetic
from ..sources.policy import RetryPolicy
from ..sources.provenance import describe as describe_origin
from ..sources.provenance import origin
from ..storage import FileInfo, ParquetDB
from ..times import (
    TimeLike,
    check_not_future,
    check_order,
    iso,
    now_iso,
    parse_end,
    parse_time,
)
from .actions import commit_actions
from .guard import SourceConflict, SourceGuard, lost_message
from .inputs import (
    check_sources,
    completed_tickers,
    open_db,
    resolve_source,
    resume_key,
    stored_sources,
    stored_spans,
    unique_tickers,
    unrecorded,
)
from .ledger import Ledger
from .options import DEFAULT_BATCH_ROWS, DEFAULT_BATCH_SECONDS, ProgressCallback, RunOptions
from .report import RunReport, TickerResult
from .schedulers import open_runner, scheduler_name
from .streams import Stream, stream_files, stream_rows
from .tasks import (
    Job,
    Outcome,
    drop_unchanged,
    refuse_restamps,
    rows_per_ticker,
    validate_batch,
)
from .writer import Batch, Verifier, Writer

log = logging.getLogger("tickvault.pipeline")


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Jobs fetched from one source (an ``update`` of tickers recorded from several
    sources has one group per source, run one after the other in one run)."""

    source: Source
    jobs: list[Job]


class Run:
    """One backfill or update: fetch each group's ``jobs`` from its source on the runner,
    stream the results to one writer, commit, read the commits back, record the report."""

    def __init__(
        self,
        *,
        kind: str,
        groups: list[Group],
        db: ParquetDB,
        options: RunOptions,
        skip_unchanged: bool,
        run_key: str | None = None,
        skip: set[str] | frozenset[str] = frozenset(),
        keep: frozenset[str] = frozenset(),
        refused: dict[str, str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        table: str = "prices",
        recorded: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.kind = kind
        #: the prices table of the run's interval (``prices``, ``prices_1m``, ...)
        self.table = table
        self.groups = groups
        self.jobs = [j for g in groups for j in g.jobs]
        self.db = db
        self.options = options
        self.skip_unchanged = skip_unchanged
        self.run_key = run_key
        self.skip = skip
        #: tickers written even when unchanged, so the run records their source
        self.keep = keep
        #: tickers failed before fetching: {ticker: "ErrorClass: why"}
        self.refused = dict(refused or {})
        #: each commit checks again, atomically, that no ticker was recorded from another
        #: source since the run checked (``recorded``: ``db.sources()`` then)
        self.guard = SourceGuard(recorded or {})
        results = {
            j.ticker: TickerResult(j.ticker, source=describe_origin(origin(g.source)))
            for g in groups
            for j in g.jobs
        }
        for t in self.refused:  # e.g. a recorded source update cannot recreate
            theirs = (recorded or {}).get(t)
            label = describe_origin(theirs) if theirs else None
            results.setdefault(t, TickerResult(t, source=label))
        report = RunReport(
            run_id=uuid.uuid4().hex[:12],
            kind=kind,
            source=_label([g.source for g in groups]),
            scheduler=scheduler_name(options.scheduler),
            db=str(db.path),
            parallel_write=options.parallel_write,
            start=iso(start),
            end=iso(end),
            started=now_iso(),
            results=results,
        )
        self.ledger = Ledger(report, progress=options.progress, on_progress=options.on_progress)
        self.verifier = Verifier(db, table)
        self._writer: Writer | None = None

    @property
    def report(self) -> RunReport:
        return self.ledger.report

    def commit(self, batch: Batch) -> None:
        """Runs on the writer thread: validate (single-writer mode) and publish a batch
        (the fetches of one group: one source, recorded in the commit)."""
        source = batch.source if batch.source is not None else self.groups[0].source
        mine = origin(source)
        # tickers another run recorded from another source meanwhile fail here, before
        # their actions or bars are written; the commit checks again atomically (below)
        recorded = self.db.sources(self.table)
        self._lose(batch, self.guard.conflicts(recorded, _ok(batch.outcomes), mine), mine)
        validated = None
        if self.options.parallel_write:
            files, written = batch.files, batch.written
        else:
            limit = max_future_seconds(self.db.options.max_future)
            validated, bad = validate_batch(
                batch.outcomes, source.name, limit, get_schema(self.table)
            )
            for o in batch.outcomes:
                o.data = None
            for o in bad.values():
                self.ledger.rejected(o)
            if validated is not None:
                validated, refused = refuse_restamps(self.db, self.table, validated, batch.outcomes)
                for o in refused:
                    self.ledger.rejected(o)
            if validated is not None and self.skip_unchanged:
                validated = drop_unchanged(self.db, validated, keep=self.keep)
            files, written = self._write(validated)
        info: dict[str, Any] = {
            "run_id": self.report.run_id,
            "pipeline": self.kind,
            "source": mine,
        }
        commit_actions(self.db, batch.outcomes, dict(info))  # before the bars: decision 012
        if self.run_key is not None:
            info["run_key"] = self.run_key
        while files:
            if self.run_key is not None:
                info["done"] = sorted(o.ticker for o in batch.outcomes if o.ok)
            try:
                result = self.db.commit_files(
                    self.table, files, info=info, check_sources=self.guard.check(mine)
                )
            except SourceConflict as exc:  # lost a race: the files were deleted
                batch.files = []
                self._lose(batch, exc.lost, mine)
                if validated is None:  # parallel writes: the batch's rows are gone
                    self._lose_rest(batch, exc.lost, mine)
                    return
                gone = pa.array(sorted(exc.lost))
                validated = validated.filter(pc.invert(pc.is_in(validated.data["ticker"], gone)))
                files, written = self._write(validated)
                continue
            self.verifier.add(files)
            self.ledger.committed(result.version, written)
            log.debug("%s: committed version %d (%d rows)", self.kind, result.version, result.rows)
            return

    def _write(self, validated: Validated | None) -> tuple[list[FileInfo], dict[str, int]]:
        if validated is None or not validated.num_rows:
            return [], {}
        files = self.db.write_files(self.table, validated)  # validated once: as is
        return files, rows_per_ticker(files)

    def _lose(self, batch: Batch, lost: dict[str, dict[str, Any]], mine: dict[str, Any]) -> None:
        """Fail the tickers another run recorded from another source meanwhile (``lost``):
        their outcomes, and (parallel writes) the files holding their rows, which are
        deleted; tickers sharing such a file fail too (:meth:`_lose_rest`)."""
        if not lost:
            return
        for o in batch.outcomes:
            if o.ticker in lost and o.ok:
                o.ok, o.data, o.actions = False, None, None
                o.error = f"SourceConflict: {lost_message([o.ticker], lost, mine)}"
                o.error_type = "SourceConflict"
                self.ledger.rejected(o)
        if batch.files:
            drop = [f for f in batch.files if lost.keys() & set(f.tickers)]
            if drop:
                self.db.discard_files(self.table, drop)
                kept = [f for f in batch.files if f not in drop]
                self._lose_rest(batch, lost, mine, {t for f in drop for t in f.tickers})
                batch.files, batch.written = kept, rows_per_ticker(kept)

    def _lose_rest(
        self,
        batch: Batch,
        lost: dict[str, dict[str, Any]],
        mine: dict[str, Any],
        among: set[str] | None = None,
    ) -> None:
        """Fail the tickers (of ``among``, default all) whose rows were in deleted files
        with a lost ticker's (parallel writes): run again to write them."""
        few = ", ".join(sorted(lost)[:5])
        for o in batch.outcomes:
            if o.ok and (among is None or o.ticker in among):
                o.ok, o.actions = False, None
                o.error = (
                    f"SourceConflict: not written: its rows shared a data file with "
                    f"{few}, which another run wrote from another source meanwhile "
                    f"(this run: {describe_origin(mine)}); run again to write it"
                )
                o.error_type = "SourceConflict"
                self.ledger.rejected(o)

    def execute(self) -> RunReport:
        """Run; an interruption (Ctrl-C, SIGTERM in the CLI) is recorded as an
        ``interrupted`` run with what it had committed, then re-raised."""
        try:
            return self._execute()
        except KeyboardInterrupt:
            if self._writer is not None:
                self._writer.abort()  # nothing is committed after the run is recorded
            self.report.status = "interrupted"
            for r in self.report.results.values():
                if r.status == "unchanged" and r.version is None and r.fetched > 0:
                    r.status = "pending"  # fetched, but its rows may not be committed
            self.report.finished = now_iso()
            self.report.seconds = round(self.ledger.seconds(), 6)
            try:
                self.db.record_run(self.report.to_dict())
            except Exception as exc:  # recording is best effort while shutting down
                log.warning("%s: could not record the interrupted run: %s", self.kind, exc)
            raise

    def _stream(self, runner: Any, writer: Writer, source: Source, jobs: list[Job]) -> None:
        """Fetch ``jobs`` from ``source`` and hand the results to ``writer``; the last
        batch is handed over before this returns, so no batch mixes two groups."""
        opts = self.options
        runner.check_sendable(source, f"the source {source.name!r}")
        stream = Stream(
            runner=runner,
            source=source,
            policy=(
                opts.retry
                or RetryPolicy.coerce(source.retry_policy, "retry_policy")
                or RetryPolicy()
            ),
            ledger=self.ledger,
            writer=writer,
            batch_rows=opts.batch_rows,
            batch_seconds=opts.batch_seconds,
        )
        if opts.parallel_write:
            stream_files(
                stream,
                jobs,
                db=self.db,
                chunk_size=opts.chunk_size,
                skip_unchanged=self.skip_unchanged,
                keep=self.keep,
                table=self.table,
            )
        else:
            stream_rows(stream, jobs)

    def _execute(self) -> RunReport:
        self.ledger.skipped([j.ticker for j in self.jobs if j.ticker in self.skip])
        for ticker, error in self.refused.items():
            kind, _, _ = error.partition(":")
            self.ledger.finished(Outcome(ticker, False, 0, 0.0, error=error, error_type=kind))
        passed = self.skip | set(self.refused)
        todo = [j for j in self.jobs if j.ticker not in passed]
        opts = self.options
        try:
            writer = Writer(self.commit, lambda files: self.db.discard_files(self.table, files))
            self._writer = writer
            try:
                if todo:
                    with open_runner(
                        opts.scheduler, opts.n_workers, cluster_options=opts.cluster_options
                    ) as runner:
                        for group in self.groups:
                            jobs = [j for j in group.jobs if j.ticker not in passed]
                            if jobs:
                                self._stream(runner, writer, group.source, jobs)
            finally:
                writer.finish()
            self.report.verify = self.verifier.result()
        finally:
            self.verifier.close()
        self.report.finished = now_iso()
        self.report.seconds = round(self.ledger.seconds(), 6)
        if not self.report.verify.get("ok", True):
            log.error(
                "%s: committed files failed verification: %s",
                self.kind,
                self.report.verify.get("problems"),
            )
        self.db.record_run(self.report.to_dict())
        log.info("%r", self.report)
        return self.report


def _label(sources: list[Source]) -> str:
    """The report's ``source``: the source's name, or each source (with its location)
    when a run fetched from several."""
    if len(sources) == 1:
        return sources[0].name
    if not sources:
        return "none"
    # tickers grouped by their recorded source may name one source several times
    return ", ".join(dict.fromkeys(describe_origin(origin(s)) for s in sources))


def _ok(outcomes: list[Outcome]) -> list[str]:
    return [o.ticker for o in outcomes if o.ok]


def _execute(run: Run, db: ParquetDB | str | os.PathLike[str] | None) -> RunReport:
    """Run it, closing the database handle if the run opened it."""
    try:
        return run.execute()
    finally:
        if run.db is not db:
            run.db.close()


# -- public API ------------------------------------------------------------------------------


def fetch_and_write(
    tickers: str | Iterable[str],
    source: Any = "demo",
    db: ParquetDB | str | os.PathLike[str] | None = None,
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
    replace_source: bool = False,
    skip_unchanged: bool = True,
    interval: str | None = None,
) -> RunReport:
    """Fetch ``tickers`` from ``source`` in parallel and write them to ``db`` (a backfill).

    ``start``/``end``: inclusive bounds passed to the source; a bare ``end`` date is the end
    of that day (its intraday bars too), an ``end`` with a time of day is exact.

    ``interval`` (default ``"1d"``): the bars to fetch and the table they go to (``"1m"``:
    ``prices_1m``). A source named by a string is created for that interval; a source
    object must give bars of it (its ``interval`` attribute): otherwise ConfigError before
    anything is fetched (e.g. Stooq is daily only).

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

    Each commit records the source (name and non-secret options, see ``db.sources()``). A
    ticker whose stored bars came from another source is refused with ConfigError before
    anything is fetched, unless ``replace_source=True``. With ``skip_unchanged`` (default)
    bars already stored identically are not written again (as in :func:`update`): re-running
    the same backfill commits nothing.

    ``on_progress(p: Progress)`` is called (on the calling thread, or the writer thread for a
    ``"commit"`` event) after each ticker finishes and after each commit; see
    :class:`~tickvault.pipeline.Progress` for its fields (``done``, ``total``, ``written``,
    ``failed``, ``skipped``, ``rows``, ``fetched_rows``, ``seconds``, ``rate``, ``ticker``,
    ``status``, ``version``). ``progress=True`` logs progress every few seconds (the library
    never prints).

    Returns a :class:`~tickvault.pipeline.RunReport`, also stored with ``db.record_run``.
    """
    options = RunOptions(
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
        batch_rows=batch_rows,
        batch_seconds=batch_seconds,
        parallel_write=parallel_write,
        retry=retry,
        on_progress=on_progress,
        chunk_size=chunk_size,
        cluster_options=cluster_options,
    )
    iv = parse_interval(interval)
    table = prices_table(iv)
    src = resolve_source(source, iv)
    lo, hi = parse_time(start, name="start"), parse_end(end, name="end")
    check_order(start, end, lo, hi)
    check_not_future(start, lo)
    names = unique_tickers(tickers)
    if is_synthetic(src):  # every time, as the command line says it: never real prices
        log.warning(
            "the %r source is synthetic: its bars are generated, not market prices (the "
            "default source; name a real one, e.g. source='yahoo' or a file source)",
            src.name,
        )
    database = open_db(db)
    check_sources(database, names, src, replace_source, table)
    key = resume_key(src, lo, hi)
    skip = completed_tickers(database, key, table) & set(names) if resume else set()
    run = Run(
        kind="backfill",
        groups=[Group(src, [Job(t, lo, hi) for t in names])],
        db=database,
        options=options,
        skip_unchanged=skip_unchanged,
        run_key=key,
        skip=skip,
        keep=unrecorded(database, names, src, table),
        start=lo,
        end=hi,
        table=table,
        recorded=database.sources(table),
    )
    return _execute(run, db)


def update_start(
    watermark: pd.Timestamp,
    lookback: int | dt.timedelta | pd.Timedelta,
    first: pd.Timestamp | None = None,
) -> pd.Timestamp:
    """Where an update of a ticker starts: its watermark minus the lookback window, but
    never before ``first``, its first stored bar (an update refetches stored bars; bars
    before the range that was backfilled, or deleted from its start, stay out).

    An int is a number of business days before the watermark's date (for daily bars: the
    last ``lookback + 1`` stored bars are refetched, holidays only widen the window); a
    ``timedelta`` is subtracted as is. A ticker whose stored bars span less than the window
    is refetched from its first stored bar."""
    if isinstance(lookback, bool) or not isinstance(lookback, int | dt.timedelta):
        raise ConfigError(
            f"lookback must be a number of business days (int) or a timedelta, got {lookback!r}"
        )
    if isinstance(lookback, int):
        if lookback < 0:
            raise ConfigError(f"lookback must be >= 0, got {lookback}")
        start = watermark.normalize() - pd.offsets.BDay(lookback)
    else:
        start = watermark - pd.Timedelta(lookback)
    return start if first is None else max(start, first)


def frozen(
    marks: dict[str, pd.Timestamp], tickers: list[str], max_future: float | None
) -> dict[str, str]:
    """Tickers whose last stored bar is later than now + ``max_future``: an update would
    start after it and never fetch anything, so each fails (its error says why) rather
    than being reported unchanged (:mod:`tickvault.future_bars`)."""
    ahead = ahead_of({t: marks[t] for t in tickers if t in marks}, max_future)
    return {
        t: f"ValidationError: its last stored bar ({ts.isoformat()}) is in the future; update "
        f"starts from the last stored bar, so {t} is never brought up to date. Such bars are "
        f"refused when written (ParquetDB max_future); this one must be removed from the "
        f"database (`tickvault verify` lists the tickers that hold one)"
        for t, ts in ahead.items()
    }


def update(
    tickers: str | Iterable[str] | None = None,
    source: Any = None,
    db: ParquetDB | str | os.PathLike[str] | None = None,
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
    replace_source: bool = False,
    interval: str | None = None,
) -> RunReport:
    """Bring ``tickers`` (default: every ticker in the database) up to date.

    ``interval`` (default ``"1d"``): which prices table to update (``"1m"``: ``prices_1m``,
    its watermarks, its recorded sources, each created for that interval); a source that
    cannot give bars of it is a ConfigError before anything is fetched. For intraday
    tables an int ``lookback`` counts business days too (the last sessions are refetched).

    Each ticker is fetched from its watermark (last stored timestamp, from the log's
    metadata) minus ``lookback`` — an int counts business days (default 5: the last six daily
    bars are refetched, so bars the source revised are corrected), a ``timedelta`` is exact —
    but never from before its first stored bar (so bars before the backfilled range, or
    deleted from the start of its history, are not fetched), up to ``end`` (a bare date: the
    end of that day). Tickers without stored data are fetched from ``start`` (default: the
    source's default history). With ``skip_unchanged`` (default) fetched bars already stored
    identically are not written again, so an update right after an update commits nothing.

    ``source=None`` (the default) fetches each ticker from the source its stored bars came
    from (as recorded by earlier runs, ``db.sources()``): tickers from several sources are
    updated each from its own, in one run with one report. A ticker with no recorded source
    (written with ``upsert_prices``, or not stored yet) is a ConfigError naming it, before
    anything is fetched: name the source. Another source than the recorded one is refused
    unless ``replace_source=True``. Tickers whose recorded source is not the one fetched
    from have their bars written even when unchanged, so the source is recorded.

    The other options are those of :func:`fetch_and_write`; returns a
    :class:`~tickvault.pipeline.RunReport` (``kind="update"``).
    """
    options = RunOptions(
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
        batch_rows=batch_rows,
        batch_seconds=batch_seconds,
        parallel_write=parallel_write,
        retry=retry,
        on_progress=on_progress,
        chunk_size=chunk_size,
        cluster_options=cluster_options,
    )
    lo, hi = parse_time(start, name="start"), parse_end(end, name="end")
    check_order(start, end, lo, hi)
    check_not_future(start, lo)
    iv = parse_interval(interval)
    table = prices_table(iv)
    if source is not None:
        src = resolve_source(source, iv)  # before opening anything: a wrong interval
    database = open_db(db)
    firsts, marks = stored_spans(database, table)
    names = unique_tickers(marks if tickers is None else tickers)
    recorded = database.sources(table)
    if source is None:
        plan, refused = stored_sources(database, names, table)
        keep: frozenset[str] = frozenset()
    else:
        check_sources(database, names, src, replace_source, table)
        plan, refused = [(src, names)], {}
        keep = unrecorded(database, names, src, table)
    refused.update(frozen(marks, names, max_future_seconds(database.options.max_future)))
    groups = [
        Group(
            fetch_from,
            [
                Job(t, lo if t not in marks else update_start(marks[t], lookback, firsts[t]), hi)
                for t in ts
            ],
        )
        for fetch_from, ts in plan
    ]
    run = Run(
        kind="update",
        groups=groups,
        db=database,
        options=options,
        skip_unchanged=skip_unchanged,
        keep=keep,
        refused=refused,
        start=lo,
        end=hi,
        table=table,
        recorded=recorded,
    )
    return _execute(run, db)
