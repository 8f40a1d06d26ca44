"""Compaction off the caller's thread (decision 007).

An upsert commits its own files and returns; if compaction is due it only *asks* for it.
Each process keeps one :class:`Compactor` per database and table: a daemon thread that
coalesces requests (a burst of 400 commits is a handful of compactions, not 400) and runs at
most one compaction of the table at a time in this process — ``db.compact()`` takes the same
lock. Another process compacting the same table is safe as before: a compaction re-checks
its inputs when it commits and abandons if another commit removed one (decision 001).

Stopping: ``db.close()`` waits for pending work (``close(cancel=True)`` abandons it);
at interpreter exit pending work is abandoned and a running compaction stops at its next
check (it deletes what it wrote), waiting at most :data:`EXIT_WAIT_SECONDS`. A process killed
outright leaves only orphan files, which ``vacuum`` removes. A failed background compaction is
logged (once per distinct error), recorded for ``verify`` (``<table>/_compaction.json``), and
retried at the next request; it is never raised into an unrelated call.

Manners toward writes (issue 25 item 7). A compaction running next to a write slows it
most where the compaction holds the GIL (Python between the Parquet calls): every time a
writer thread comes back from an fsync it must get the GIL back. So ``db.upsert`` and the
pipeline's ``write_files``/``commit_files`` mark themselves with :func:`foreground_write`,
and a background compaction, at each safe point (before each file read, each merge, each
file and row group written, the commit, a reclaim pass and the next compaction), waits while
such a write of this process is in progress — at most :data:`MAX_PAUSE_SECONDS` at a time.
In a tight loop of writes that alone would starve it, so compaction keeps level 0 small
by *back pressure* instead of by overlapping: when level 0 holds more than
:data:`BEHIND_FACTOR` x ``l0_max_files`` files and its compaction is pending or running, a
write (``upsert``, ``commit_files``) first gives way to it — a paced compaction does not
pause for the waiting writer, nor for other writes meanwhile — until level 0 is back within
that bound, at most ``ROOM_SECONDS`` per bound's worth of level-0 files
(:data:`MAX_ROOM_SECONDS` at most). Every write of a loop then pays a similar share of the
compaction, instead of a few paying it all at once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from ...errors import NewerFormat, TickvaultError
from ..core.snapshot import pinned_files
from ..core.table import Table
from . import compaction, vacuum_repair, verify

log = logging.getLogger(__name__)

#: At interpreter exit, how long to wait for a running compaction to stop.
EXIT_WAIT_SECONDS = 1.0
#: An idle worker thread ends after this long; the next request starts a new one.
IDLE_SECONDS = 30.0
#: While a foreground write of this process is in progress, a background compaction waits
#: at its next safe point for it to end — never longer than this at a time.
MAX_PAUSE_SECONDS = 1.0
#: Level 0 is behind when it holds more than this many times ``l0_max_files`` files while
#: its compaction is pending or running: a write then first gives way to the compaction ...
BEHIND_FACTOR = 8
#: ... for up to this long per ``BEHIND_FACTOR * l0_max_files`` level-0 files ...
ROOM_SECONDS = 0.05
#: ... and never longer than this.
MAX_ROOM_SECONDS = 0.5


class _Foreground:
    """This process's foreground writes: how many are in progress, and how many writers are
    giving way to a compaction (then compactions do not pause)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.room = 0

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self.cond:
            self.active += 1
        try:
            yield
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    @contextlib.contextmanager
    def giving_way(self) -> Iterator[None]:
        with self.cond:
            self.room += 1
            self.cond.notify_all()  # paused compactions resume
        try:
            yield
        finally:
            with self.cond:
                self.room -= 1

    def yields(self) -> bool:
        """Should a background compaction pause now?"""
        return bool(self.active) and not self.room

    def wait(self, timeout: float, stop: Callable[[], bool]) -> None:
        """While :meth:`yields`, unless ``stop()`` turns true or ``timeout`` runs out."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.yields() and not stop():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(min(left, 0.05))  # stop() is polled


_foreground = _Foreground()


@contextlib.contextmanager
def foreground_write(*, give_way: bool = True) -> Iterator[None]:
    """Mark a write (its files and commit) in progress on this thread: this process's
    background compactions pause at their next safe point until it ends. ``give_way``: if
    a compaction of this process is behind, first wait for it (see the module docstring;
    a write that only writes files, committed later, passes False). Not to be held while
    waiting for a compaction otherwise (it would pause up to :data:`MAX_PAUSE_SECONDS` at
    each safe point)."""
    if give_way:
        with _lock:
            behind = [c for c in _compactors.values() if c.behind()]
        for c in behind:
            c.make_room()
    with _foreground.writing():
        yield


class Pacer:
    """The safe points of a background compaction: ``pacer()`` returns at once unless a
    foreground write of this process is in progress (and no writer is giving way); then it
    waits for the writes to end, at most :data:`MAX_PAUSE_SECONDS`, less if ``stop()``
    turns true. Safe to call from several threads."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        self.stop = stop
        #: pauses taken and seconds spent in them
        self.pauses = 0
        self.paused = 0.0

    def __call__(self) -> None:
        if not _foreground.yields():
            return
        t0 = time.monotonic()
        _foreground.wait(MAX_PAUSE_SECONDS, self.stop)
        self.pauses += 1
        self.paused += time.monotonic() - t0


class Compactor:
    """Background compaction of one table in this process. Thread-safe."""

    def __init__(self, table: Table) -> None:
        self.table = table
        #: held while a compaction of this table runs in this process (also by db.compact)
        self.run_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending = False
        self._full = False
        self._compact = False
        self._running = False
        self._cancelled = False
        self._thread: threading.Thread | None = None
        self._logged: set[str] = set()
        #: did the last compaction not start for want of disk space? (said once in the log
        #: until a compaction commits again)
        self.no_room = False
        self.last_error: str | None = None
        self._reclaim = False
        # when a superseded file kept for its age becomes deletable; None: nothing known.
        self._next_reclaim: float | None = None
        #: has a reclaim pass run in this process? The first commit of a process asks for
        #: one, so what crashed writers left is reclaimed without a vacuum (decision 019);
        #: it reads the log for old removals only if the folder holds files outside the
        #: newest state.
        self.swept = False
        self._removals = vacuum_repair.RemovalIndex()
        #: level-0 files as of the newest commit this process made (an upsert's or a
        #: compaction's), and how many make it behind
        self.backlog = 0
        self.bound = BEHIND_FACTOR * table.opts.l0_max_files
        #: pauses for foreground writes, and seconds spent in them, since the thread began
        self.pauses = 0
        self.paused = 0.0

    # -- requests --------------------------------------------------------------------------

    def request(self, *, full: bool = False, reclaim: bool = False) -> None:
        """Ask for a compaction (``full``: merge all of level 0; ``reclaim``: only delete
        what is due) and return at once."""
        with self._cond:
            self._pending = True
            self._full = self._full or full
            self._reclaim = self._reclaim or reclaim
            # a reclaim-only request compacts nothing: a table with auto_compact off was
            # compacted by a sweep that ran after its level 0 had grown (decision 019)
            self._compact = self._compact or not reclaim
            self._cancelled = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name=f"tickvault-compact-{self.table.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending or running; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._running, timeout)

    def cancel(self) -> None:
        """Drop pending requests and make a running compaction stop at its next check (it
        deletes what it wrote; nothing is committed)."""
        with self._cond:
            self._pending = False
            self._full = False
            self._compact = False
            self._reclaim = False
            self._cancelled = True
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._pending or self._running

    def stopping(self) -> bool:
        return self._cancelled

    # -- the worker ------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._pending, IDLE_SECONDS):
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
                full, self._full = self._full, False
                reclaim, self._reclaim = self._reclaim, False
                wanted_compaction, self._compact = self._compact, False
                self._pending = False
                self._running = True
            pacer = Pacer(self.stopping)
            try:
                compacted = wanted_compaction and self.compact(
                    full=full, stop=self.stopping, pause=pacer
                )
                if compacted:
                    self._superseded(time.time())
                # a pass only when something may be due: not after every compaction (with
                # a long retention it would list and stat every kept file each time)
                wanted = (
                    reclaim or self.no_room or self.reclaim_due() or (compacted and not self.swept)
                )
                if wanted and self.table.opts.auto_vacuum and not self._cancelled:
                    pacer()
                    freed = self.reclaim()
                    if self.no_room and freed is not None and freed.bytes:
                        with self._cond:  # space came back: the compaction may fit now
                            self._pending = True
                            self._compact = True
                            self._full = self._full or full
            finally:
                with self._cond:
                    self._running = False
                    self.pauses += pacer.pauses
                    self.paused += pacer.paused
                    self._cond.notify_all()

    def compact(
        self,
        *,
        full: bool,
        stop: Callable[[], bool] | None = None,
        pause: Callable[[], None] | None = None,
    ) -> bool:
        """Run compactions until none is due (``full``: until level 0 is empty). Errors are
        logged and recorded, not raised. True when a compaction committed. ``pause``: the
        safe points' pacer (:class:`Pacer`)."""
        committed = False
        with self.run_lock:
            try:
                for _ in range(20 if full else 4):
                    if stop is not None and stop():
                        return committed
                    if pause is not None:
                        pause()  # planning reads the log: Python, the GIL
                    result = compaction.run(self.table, full=full, stop=stop, pause=pause)
                    committed = committed or result is not None
                    if result is None and not (full and self._level0_left()):
                        break
                    if result is not None:
                        self.no_room = False
                        self._committed()
            except compaction.NoRoom as exc:
                self._wont_fit(str(exc))
                return committed
            except (TickvaultError, OSError) as exc:
                self._failed(exc)
                return False
            except Exception as exc:  # a bug must not kill the worker thread silently
                log.exception("%s: background compaction failed", self.table.name)
                self._failed(exc)
                return False
        self._succeeded()
        return committed

    def _committed(self) -> None:
        level0 = sum(1 for f in self.table.cached_state().files.values() if f.level == 0)
        with self._cond:
            self.backlog = level0
            self._cond.notify_all()

    def behind(self) -> bool:
        """Is level 0 past :data:`BEHIND_FACTOR` x ``l0_max_files`` files while its
        compaction is pending or running?"""
        return (
            self.backlog > self.bound and (self._pending or self._running) and not self._cancelled
        )

    def make_room(self) -> None:
        """Give way to this compaction (a writer, before it writes): until level 0 is within
        the bound again or nothing is pending — :data:`ROOM_SECONDS` per bound's worth of
        level-0 files at most, never more than :data:`MAX_ROOM_SECONDS`. Meanwhile no
        compaction of this process pauses for writes."""
        timeout = min(MAX_ROOM_SECONDS, ROOM_SECONDS * self.backlog / max(1, self.bound))
        with _foreground.giving_way(), self._cond:
            self._cond.wait_for(lambda: not self.behind(), timeout)

    def _wont_fit(self, message: str) -> None:
        """A compaction did not start for want of room: said once (until one commits again),
        not an error for ``verify``; reclaiming runs next and, if it frees space, the
        compaction again."""
        if not self.no_room:
            log.warning("%s; it runs again when space is freed", message)
        self.no_room = True

    def _level0_left(self) -> bool:
        return any(f.level == 0 for f in self.table.refresh().files.values())

    def _failed(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self.last_error = message
        if message not in self._logged:
            self._logged.add(message)
            log.warning(
                "%s: background compaction failed (retried at the next commit): %s",
                self.table.name,
                message,
            )
        if not isinstance(exc, NewerFormat):
            # (a table of a newer tickvault gets nothing written into it, not even this
            # record: ``verify`` of this version refuses the table anyway)
            verify.record_error(self.table, message)

    def _succeeded(self) -> None:
        self.last_error = None
        self._logged.clear()
        verify.clear_error(self.table)

    # -- reclaiming space ------------------------------------------------------------------

    def _superseded(self, when: float) -> None:
        """Files a commit removed at ``when`` may be deleted once the retention has passed."""
        due = when + self.table.opts.retention_seconds
        if self._next_reclaim is None or due < self._next_reclaim:
            self._next_reclaim = due

    def reclaim_due(self) -> bool:
        """Has a superseded file outlived the retention since the last reclaim pass?"""
        due = self._next_reclaim
        return due is not None and time.time() >= due

    def reclaim(self) -> vacuum_repair.VacuumReport | None:
        """Delete what compaction superseded once it is older than the retention (the rules
        of ``vacuum``; orphans only after ``vacuum_repair.ORPHAN_MIN_AGE``; files of open
        snapshots kept). Errors are logged, not raised. None if it failed."""
        opts = self.table.opts
        report = vacuum_repair.VacuumReport(dry_run=False)
        self.swept = True
        with self.run_lock:
            try:
                self._next_reclaim = vacuum_repair.vacuum_table(
                    self.table,
                    report,
                    retention=opts.retention_seconds,
                    orphan_age=max(opts.retention_seconds, vacuum_repair.ORPHAN_MIN_AGE),
                    removed_at=lambda: self._removals.update(self.table),
                    pinned=pinned_files(self.table),
                )
            except (TickvaultError, OSError) as exc:
                log.warning("%s: automatic space reclamation failed: %s", self.table.name, exc)
                self._next_reclaim = time.time() + 60.0  # tried again after a minute
                return None
        if report.files:
            log.info(
                "%s: reclaimed %d superseded file(s), %d bytes",
                self.table.name,
                len(report.files),
                report.bytes,
            )
        return report


# -- one compactor per process, database and table ------------------------------------------

_lock = threading.Lock()
_compactors: dict[tuple[object, str], Compactor] = {}


def compactor_for(table: Table) -> Compactor:
    """This process's compactor for ``table``'s database and name (created on first use,
    with its own handle on the table)."""
    key = (table.store.identity(), table.name)
    with _lock:
        c = _compactors.get(key)
        if c is None:
            c = _compactors[key] = Compactor(Table(table.store, table.schema, table.opts))
        return c


def existing_compactor(table: Table) -> Compactor | None:
    """This process's compactor for ``table`` if one was ever asked for, else None."""
    with _lock:
        return _compactors.get((table.store.identity(), table.name))


def _after_fork() -> None:
    """A forked child has none of the parent's threads: start from an empty registry."""
    global _lock, _foreground
    _lock = threading.Lock()
    _foreground = _Foreground()
    _compactors.clear()


def _at_exit() -> None:
    """Abandon pending work; give running compactions a moment to stop cleanly."""
    with _lock:
        compactors = list(_compactors.values())
    for c in compactors:
        c.cancel()
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for c in compactors:
        c.wait(max(0.0, deadline - time.monotonic()))


os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)


def after_commit(t: Table) -> None:
    """What a commit may have made due, asked of this process's compactor and never done
    inline (the committer pays only for its own I/O, decision 007): a compaction when
    level 0 has grown past its bound, else reclaiming superseded files — and, once per
    process, orphans that crashed writers left (older than the retention)."""
    state = t.cached_state()
    if t.opts.auto_compact and compaction.due(state, t.opts):
        c = compactor_for(t)
        c.backlog = sum(1 for f in state.files.values() if f.level == 0)
        c.request()
    elif t.opts.auto_vacuum:
        worker = existing_compactor(t)
        if worker is None or not worker.swept or worker.reclaim_due():
            (worker or compactor_for(t)).request(reclaim=True)
