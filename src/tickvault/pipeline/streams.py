"""How finished fetches become batches for the writer: the two streaming algorithms.

Both keep at most ``2 × slots`` tasks in flight and hand a batch over whenever it holds
``batch_rows`` rows or has been open ``batch_seconds``, so memory is bounded by the batch
size, not by the number of tickers.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..sources.base import Source
from ..sources.policy import RetryPolicy
from ..storage import ParquetDB
from .ledger import Ledger
from .schedulers import Runner
from .tasks import ChunkOutcome, Job, Outcome, describe, fetch_one, fetch_write_chunk
from .writer import Batch, Writer


@dataclass(frozen=True)
class Stream:
    """What both algorithms need: where tasks run, what they fetch, where results go."""

    runner: Runner
    source: Source
    policy: RetryPolicy
    ledger: Ledger
    writer: Writer
    batch_rows: int
    batch_seconds: float

    @property
    def max_inflight(self) -> int:
        return max(2, 2 * self.runner.slots)


def stream_rows(s: Stream, jobs: list[Job]) -> None:
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
            yield (s.source, job, s.policy)

    buffer: list[Outcome] = []
    rows = 0
    opened = time.monotonic()
    for args, result, exc in s.runner.imap_unordered(fetch_one, tasks(), s.max_inflight):
        o: Outcome = result if exc is None else crashed(args[1], exc)
        s.ledger.finished(o)
        finished.add(o.ticker)
        if not buffer:
            opened = time.monotonic()
        buffer.append(o)
        rows += o.rows
        if rows < s.batch_rows and time.monotonic() - opened < s.batch_seconds:
            continue
        while pending and pending[0] in finished:
            finished.discard(heapq.heappop(pending))
        if rows >= 2 * s.batch_rows or not pending:
            ready, buffer = buffer, []
        else:
            frontier = pending[0]
            ready = [b for b in buffer if b.ticker < frontier]
            buffer = [b for b in buffer if b.ticker >= frontier]
        if ready:
            s.writer.put(Batch(outcomes=ready, rows=sum(b.rows for b in ready), source=s.source))
            rows = sum(b.rows for b in buffer)
            opened = time.monotonic()
    if buffer:
        s.writer.put(Batch(outcomes=buffer, rows=rows, source=s.source))


def stream_files(
    s: Stream,
    jobs: list[Job],
    *,
    db: ParquetDB,
    chunk_size: int | None,
    skip_unchanged: bool,
    keep: frozenset[str] = frozenset(),
    table: str = "prices",
) -> None:
    """Parallel-write mode: workers write chunks of tickers as uncommitted files; their
    metadata streams to the writer, which commits them in batches. ``keep``: tickers
    written even when unchanged (see :func:`~tickvault.pipeline.tasks.drop_unchanged`)."""
    size = chunk_size or max(1, min(64, len(jobs) // (4 * s.runner.slots)))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    failed = False

    def tasks() -> Iterator[tuple[Any, ...]]:
        for chunk in chunks:
            if failed:
                return  # the run is failing: submit nothing more
            yield (
                db,
                s.source,
                chunk,
                s.policy,
                skip_unchanged,
                keep & {j.ticker for j in chunk},
                table,
            )

    batch = Batch(source=s.source)
    opened = time.monotonic()
    results = s.runner.imap_unordered(fetch_write_chunk, tasks(), s.max_inflight)
    try:
        for args, result, exc in results:
            if exc is not None:
                chunk_out = ChunkOutcome([crashed(j, exc) for j in args[2]])
            else:
                chunk_out = result
            for o in chunk_out.outcomes:
                s.ledger.finished(o)
            if not batch.outcomes:
                opened = time.monotonic()
            batch.outcomes.extend(chunk_out.outcomes)
            batch.files.extend(chunk_out.files)
            for t, n in chunk_out.written.items():
                batch.written[t] = batch.written.get(t, 0) + n
            batch.rows += sum(f.rows for f in chunk_out.files)
            if batch.rows >= s.batch_rows or time.monotonic() - opened >= s.batch_seconds:
                s.writer.put(batch)
                batch = Batch(source=s.source)
    except BaseException as exc:
        db.discard_files(table, batch.files)
        if isinstance(exc, Exception):  # not on Ctrl-C: that must stop at once
            # the chunks still running write files that will never be committed: wait for
            # them (nothing new is submitted) and delete what they wrote
            failed = True
            for _, result, task_exc in results:
                if task_exc is None:
                    db.discard_files(table, result.files)
        raise
    if batch.outcomes:
        s.writer.put(batch)


def crashed(job: Job, exc: BaseException) -> Outcome:
    """An outcome for a task that did not return (its worker died, it was cancelled...)."""
    return Outcome(
        ticker=job.ticker,
        ok=False,
        attempts=1,
        seconds=0.0,
        error=describe(exc),
        error_type=type(exc).__name__,
    )
