"""The single committer of a run and the read-back of what it committed.

Fetch results are grouped into :class:`Batch` es and handed to the :class:`Writer` thread,
which commits one at a time; the :class:`Verifier` reads each commit's files back on another
thread while the run goes on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import ObjectStoreError
from ..storage import FileInfo, ParquetDB, Problem, committed
from .tasks import Outcome


@dataclass
class Batch:
    """Finished fetches waiting for one commit: their outcomes (rows in single-writer mode),
    or the files workers already wrote and the rows per ticker in them (parallel writes)."""

    outcomes: list[Outcome] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    #: the source every outcome of the batch came from (recorded in its commit)
    source: Any = None


class Writer:
    """The single committer of a run, on its own thread so fetching never waits for it.

    Batches are handed over through a queue of size one: at most one batch is being
    committed, one waits, and one is being filled — memory is bounded by the batch size.
    ``commit(batch)`` publishes a batch; if it fails before publishing, ``discard(files)``
    deletes the batch's already-written files, and the error is raised to the fetching side
    at its next :meth:`put` (or at :meth:`finish`)."""

    def __init__(
        self,
        commit: Callable[[Batch], None],
        discard: Callable[[list[FileInfo]], None],
    ) -> None:
        self._commit = commit
        self._discard = discard
        self.q: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        #: set by :meth:`abort`: batches not yet being committed are discarded
        self.aborted = False
        self.thread = threading.Thread(target=self._loop, name="tickvault-writer", daemon=True)
        self.thread.start()

    def put(self, batch: Batch) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Commit what is queued, stop the thread, raise its error if it failed."""
        while self.thread.is_alive():
            try:
                self.q.put(None, timeout=0.2)
                break
            except queue.Full:
                continue
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop after the commit in progress (an interrupted run, e.g. a second Ctrl-C
        while :meth:`finish` waited): the queued batch is discarded, never committed, and
        this returns once the thread has ended — through further Ctrl-Cs, so that what the
        run records is all it committed (a commit takes moments; SIGKILL still ends it)."""
        self.aborted = True
        while self.thread.is_alive():
            try:
                try:
                    batch = self.q.get_nowait()
                except queue.Empty:
                    pass
                else:
                    if batch is not None:
                        self._discard(batch.files)
                with contextlib.suppress(queue.Full):
                    self.q.put_nowait(None)
                self.thread.join(0.2)
            except KeyboardInterrupt:
                continue

    def _loop(self) -> None:
        while True:
            batch = self.q.get()
            if batch is None:
                return
            if self.error is not None or self.aborted:
                self._discard(batch.files)  # drain: the run is failing, never committed
                continue
            try:
                self._commit(batch)
            except BaseException as exc:
                self.error = exc
                if not committed(exc):  # never committed: do not leave orphans
                    self._discard(batch.files)


class Verifier:
    """Reads committed files back (``db.check_files``, the check ``verify`` runs) on a
    background thread while the run goes on, so the post-run verification only waits for
    the last commit's files instead of reading the whole run back at the end."""

    def __init__(self, db: ParquetDB, table: str = "prices") -> None:
        self.db = db
        self.table = table
        self.files: list[FileInfo] = []
        self.futures: list[Future[list[Problem]]] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickvault-verify")

    def add(self, files: list[FileInfo]) -> None:
        for f in files:
            self.files.append(f)
            self.futures.append(self.pool.submit(self._check, f))

    def _check(self, f: FileInfo) -> list[Problem]:
        try:
            return self.db.check_files(self.table, [f])
        except ObjectStoreError as exc:  # the store, not the file: say it was not checked
            return [Problem(self.table, f.path, "unchecked", f"could not be read back: {exc}")]

    def result(self) -> dict[str, Any]:
        """``{"ok", "files", "rows", "problems"}`` once every check has finished."""
        try:
            problems = [str(p) for fut in self.futures for p in fut.result()]
        finally:
            self.pool.shutdown(wait=True)
        return {
            "ok": not problems,
            "files": len(self.files),
            "rows": sum(f.rows for f in self.files),
            "problems": problems,
        }

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
