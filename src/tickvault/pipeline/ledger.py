"""A run's accounting: per-ticker status, running counts and progress events.

Both the fetching thread and the writer thread report here, under one lock; the
:class:`~tickvault.pipeline.report.RunReport` it fills is what the run returns and records.
"""

from __future__ import annotations

import logging
import threading
import time

from .options import ProgressCallback
from .report import Progress, RunReport, TickerResult
from .tasks import Outcome

log = logging.getLogger("tickvault.pipeline")

PROGRESS_LOG_SECONDS = 5.0


class Ledger:
    """Per-ticker results and progress of one run. Thread-safe."""

    def __init__(
        self, report: RunReport, *, progress: bool, on_progress: ProgressCallback | None
    ) -> None:
        self.report = report
        self.kind = report.kind
        self.progress = progress
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.last_log = self.t0
        self.done = 0
        self.counts: dict[str, int] = {"pending": len(report.results)}
        self.rows_written = 0
        self.rows_fetched = 0

    @property
    def total(self) -> int:
        return len(self.report.results)

    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def _emit(self, ticker: str | None, status: str | None, version: int | None = None) -> None:
        now = time.perf_counter()
        elapsed = now - self.t0
        c = self.counts
        p = Progress(
            done=self.done,
            total=self.total,
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

    def skipped(self, tickers: list[str]) -> None:
        """Tickers not fetched because an earlier run committed them (resume)."""
        if not tickers:
            return
        with self.lock:
            for t in tickers:
                self._set(self.report.results[t], "skipped")
                self.done += 1
            log.info("%s: resuming, %d ticker(s) already committed", self.kind, len(tickers))
            self._emit(None, "skipped")

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

    def rejected(self, o: Outcome) -> None:
        """A fetched ticker whose rows failed validation (``o`` carries the error)."""
        with self.lock:
            res = self.report.results[o.ticker]
            self._set(res, "failed")
            res.error, res.error_type = o.error, o.error_type
        log.warning("%s: %s rejected: %s", self.kind, o.ticker, o.error)

    def committed(self, version: int, written: dict[str, int]) -> None:
        """A commit published ``written`` rows per ticker as ``version``."""
        with self.lock:
            self.report.versions.append(version)
            for t, n in written.items():
                res = self.report.results[t]
                self._set(res, "written")
                res.rows, res.version = res.rows + n, version
                self.rows_written += n
            self._emit(None, "commit", version)
