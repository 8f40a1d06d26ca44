"""One rate limit for every process on the machine: :class:`FileTokenBucket` keeps a
:class:`~tickvault.sources.policy.TokenBucket`'s state in a small file under an exclusive
``flock`` in a private per-user folder, and :func:`shared_bucket` hands each source the
bucket for its key (see decision 005)."""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the limit is per process there
    fcntl = None  # type: ignore[assignment]

from .policy import MAX_DEFER, RateLimit, TokenBucket

log = logging.getLogger(__name__)


_STATE = struct.Struct("<dd")  # tat, not_before


_OPEN_FDS: set[int] = set()  # state-file descriptors open right now (inside _state)


@dataclass(eq=False)
class FileTokenBucket(TokenBucket):
    """A :class:`TokenBucket` whose state lives in a small file under an exclusive
    ``flock``, so every process on the machine that uses the same file shares one limit.

    * One machine: the state is in ``time.monotonic`` units (CLOCK_MONOTONIC, system-wide
      on Linux and macOS, but counted from each machine's boot).
    * The file is opened for each use and closed right after, so no descriptor outlives
      a call: a killed holder's lock goes with it, a forked child inherits nothing, and a
      long-lived process keeps no file open per source.
    * State read from the file is sanitised (not-a-number, or further ahead than one
      burst or :data:`MAX_DEFER`, is reset), so a damaged file cannot stop or unlimit the
      bucket.
    * Any failure to use the file (no space, no ``flock`` on this filesystem, a read-only
      folder) falls back to the in-process state, with one warning."""

    path: Path = field(kw_only=True)
    _warned: bool = field(default=False, init=False, repr=False)

    def _fallback(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "rate limit state file %s unusable (%s); limiting per process", self.path, exc
            )

    def _sanitise(self, raw: bytes) -> list[float]:
        if len(raw) != _STATE.size:
            return [-math.inf, -math.inf]
        tat, not_before = _STATE.unpack(raw)
        now = self.clock()
        if math.isnan(tat) or tat > now + self.limit.burst * self.interval:
            tat = -math.inf  # impossible for this bucket: reset
        if math.isnan(not_before) or not_before > now + MAX_DEFER:
            not_before = -math.inf
        return [tat, not_before]

    @contextlib.contextmanager
    def _state(self) -> Iterator[list[float]]:
        with self._lock:
            fd = -1
            try:
                fd = _open_state_file(self.path, os.O_RDWR | os.O_CREAT)
                _OPEN_FDS.add(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = self._sanitise(os.pread(fd, _STATE.size, 0))
            except OSError as exc:
                if fd >= 0:
                    _OPEN_FDS.discard(fd)
                    os.close(fd)
                self._fallback(exc)
                st = [self._tat, self._not_before]
                yield st
                self._tat, self._not_before = st
                return
            try:
                before = list(st)
                yield st
                self._tat, self._not_before = st  # what the fallback would continue from
                if st != before:
                    try:
                        os.pwrite(fd, _STATE.pack(*st), 0)
                    except OSError as exc:
                        self._fallback(exc)
            finally:
                # unlock explicitly: a child forked meanwhile holds a copy of ``fd``, and
                # closing ours alone would leave the lock held while the child lives
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                _OPEN_FDS.discard(fd)
                os.close(fd)


def _open_state_file(path: Path, flags: int) -> int:
    """Open a state file without following a symlink, and only if it is a regular file
    owned by this user: nobody else's file is ever written through a planted name."""
    fd = os.open(path, flags | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            raise PermissionError(
                errno.EPERM, "not a regular file owned by this user", os.fspath(path)
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _after_fork_in_child() -> None:
    """A child forked while another thread was inside the registry inherits its lock held:
    give it a fresh one (policy.py does the same for every bucket's own lock)."""
    global _BUCKETS_LOCK
    _BUCKETS_LOCK = threading.Lock()
    # state files the parent's threads had open: this process's copies would keep their
    # lock alive if the parent died holding it
    for fd in list(_OPEN_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _OPEN_FDS.clear()


_BUCKETS: dict[tuple[str, RateLimit], TokenBucket] = {}


_BUCKETS_LOCK = threading.Lock()


_WARNED_FOLDERS: set[str] = set()


def _folder_problem(st: os.stat_result, *, private: bool) -> str | None:
    """What makes a state folder unsafe: not a real folder, someone else's, or writable
    by others (``private``: any access by others)."""
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder (a symlink or a file)"
    if st.st_uid != os.getuid():
        return f"belongs to uid {st.st_uid}, not to this user (uid {os.getuid()})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & (0o077 if private else 0o022):
        return f"has mode {mode:04o}; it must be private (0700)"
    return None


def rate_state_dir() -> Path | None:
    """Where machine-wide rate-limit state lives: ``$TICKVAULT_RATE_DIR``, else
    ``tickvault-rate-<uid>`` in the temporary directory, created with mode 0700.

    The temporary directory is shared with every local user, so that folder is used only
    if it is a real folder (not a symlink) owned by this user with mode 0700; a
    ``$TICKVAULT_RATE_DIR`` folder must be owned by this user and not writable by others.
    Otherwise (someone else created it first, or it cannot be created) the answer is None
    — the limit is then per process — with one warning per folder. None also where file
    locks are unavailable (Windows)."""
    if fcntl is None:
        return None
    env = os.environ.get("TICKVAULT_RATE_DIR")
    d = Path(env) if env else Path(tempfile.gettempdir()) / f"tickvault-rate-{os.getuid()}"
    try:
        if env:  # the user's own choice: may be a symlink to a folder of theirs
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = d.stat()
        else:
            with contextlib.suppress(FileExistsError):
                d.mkdir(mode=0o700)
            st = d.lstat()
        problem = _folder_problem(st, private=not env)
    except OSError as exc:
        problem = f"cannot be used ({exc.strerror or exc})"
    if problem is None:
        return d
    if str(d) not in _WARNED_FOLDERS:
        _WARNED_FOLDERS.add(str(d))
        log.warning(
            "rate limit state folder %s %s; limiting per process instead (remove it, or "
            "set TICKVAULT_RATE_DIR to a folder of your own)",
            d,
            problem,
        )
    return None


#: State files unused (not written) for this long are removed when a new bucket is made.
STALE_SECONDS = 86_400.0


def _sweep(folder: Path) -> None:
    """Remove state files nobody has written for a day and whose limit has fully
    recovered, each under its lock (a file in use is skipped). Best effort."""
    cutoff = time.time() - STALE_SECONDS
    now = time.monotonic()
    with contextlib.suppress(OSError):
        for f in folder.glob("*.bucket"):
            with contextlib.suppress(OSError):
                if f.lstat().st_mtime >= cutoff:
                    continue
                fd = _open_state_file(f, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    raw = os.pread(fd, _STATE.size, 0)
                    live = len(raw) == _STATE.size and any(
                        v > now for v in _STATE.unpack(raw) if not math.isnan(v)
                    )
                    if os.fstat(fd).st_mtime < cutoff and not live:
                        f.unlink()
                finally:
                    os.close(fd)


def shared_bucket(key: str, limit: RateLimit) -> TokenBucket:
    """The bucket for ``key``, shared by every copy of one source on this machine.

    Sources are pickled to worker threads, processes and Dask workers, possibly once per
    task; keying the bucket by the source's stable id gives one limit per source however
    many copies exist. Processes share it through a state file (:class:`FileTokenBucket`) in
    :func:`rate_state_dir`, so ``rate_limit=R`` means R requests per second from the whole
    machine, whatever the scheduler. Workers on other machines have their own limit (the
    state is in each machine's monotonic clock; do not point ``TICKVAULT_RATE_DIR`` at a
    folder shared between machines). Where no state folder is available the limit is per
    process.
    """
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get((key, limit))
        if bucket is None:
            folder = rate_state_dir()
            if folder is None:
                bucket = TokenBucket(limit)
            else:
                _sweep(folder)
                name = f"{key}-{limit.per_second!r}-{limit.burst}.bucket"
                bucket = FileTokenBucket(limit, path=folder / name)
            _BUCKETS[(key, limit)] = bucket
        return bucket
