"""Retry and rate-limit settings, and the thread-safe token bucket behind ``rate_limit=``.

Two small frozen value objects (keyword-only, like httpx ``Timeout``):

* :class:`RetryPolicy` — how often and how patiently to retry a failed attempt. Every source
  carries one as ``source.retry_policy``; the pipeline retries a ticker whose fetch raised an
  error listed in ``retry_on`` (by default :class:`~tickvault.errors.TransientSourceError`).
  HTTP sources additionally use a policy per request (their ``http_retry`` attribute).
* :class:`RateLimit` — requests per second with a burst size.

:class:`TokenBucket` enforces a :class:`RateLimit` for every thread of a process, and
:class:`FileTokenBucket` (what sources use, through :func:`shared_bucket`) for every process
of the machine. It is a
GCRA (virtual scheduling) bucket checked under a lock: a caller takes the token if the
theoretical arrival time allows it, otherwise it sleeps until then and checks again. The next
slot is counted from the moment a token is really taken (less :data:`SLACK`, a tenth of an
interval, so ordinary wake-up latency costs no rate), so a thread that wakes very late never
lets the threads after it bunch up. Over any ``t`` seconds at most
``per_second * t + burst + SLACK`` tokens are granted (exactly ``per_second * t + burst``
when callers wake on time), and a saturated bucket grants ``per_second`` on average.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import random
import stat
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the limit is per process there
    fcntl = None  # type: ignore[assignment]

from ..errors import ConfigError, TransientSourceError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How to retry a failed attempt.

    ``attempts`` is the total number of tries (1 = no retry). Before try ``n + 1`` the caller
    waits ``min(max_backoff, backoff * 2 ** (n - 1))`` seconds; with ``jitter`` the wait is
    drawn uniformly from the upper half of that (``[d/2, d]``, "equal jitter"), which spreads
    retries of many workers apart while keeping a predictable minimum. An error carrying
    ``retry_after`` (e.g. :class:`~tickvault.errors.RateLimited` from a ``Retry-After``
    header) waits exactly that long instead; if it asks for more than ``max_backoff`` seconds
    no further attempt is made and the error is raised to the caller.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (TransientSourceError,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool):
            raise ConfigError(f"RetryPolicy.attempts must be an int >= 1, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError(
                f"RetryPolicy.backoff and max_backoff must be >= 0, got backoff={self.backoff}, "
                f"max_backoff={self.max_backoff}"
            )
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not all(isinstance(c, type) and issubclass(c, BaseException) for c in retry_on):
            raise ConfigError(
                f"RetryPolicy.retry_on must be a tuple of exception classes, got {retry_on!r}"
            )

    def backoff_for(self, attempt: int) -> float:
        """The un-jittered wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1)))

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) raised ``error``."""
        retry_after = retry_after_of(error)
        if retry_after is not None:
            return retry_after
        d = self.backoff_for(attempt)
        if self.jitter and d > 0:
            return random.uniform(d / 2, d)
        return d

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to make attempt ``attempt + 1`` after ``error``."""
        if attempt >= self.attempts or not isinstance(error, self.retry_on):
            return False
        retry_after = retry_after_of(error)
        return retry_after is None or retry_after <= self.max_backoff

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> Any:
        """Call ``fn(*args, **kwargs)``, retrying per this policy; re-raise the last error."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                if not self.should_retry(exc, attempt):
                    raise
                sleep(self.delay(attempt, exc))


def retry_after_of(error: BaseException | None) -> float | None:
    """The ``retry_after`` seconds an error carries, or None."""
    value = getattr(error, "retry_after", None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """At most ``per_second`` requests per second on average, at most ``burst`` at once.

    Precisely: over any interval of ``t`` seconds at most ``per_second * t + burst`` requests
    start, plus at most :data:`SLACK` (a tenth of a request: a slot may start up to a tenth
    of an interval early to make up for a late wake-up, see :class:`TokenBucket`), so the
    average rate never exceeds ``per_second``. ``burst=1`` (the default) spaces requests
    evenly, ``1 / per_second`` apart (at least ``0.9 / per_second``). A server that allows
    no burst at all may answer 429 to such a pair; give ``per_second`` a little below its
    limit then.
    """

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.per_second, int | float) and self.per_second > 0):
            raise ConfigError(f"RateLimit.per_second must be > 0, got {self.per_second!r}")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigError(f"RateLimit.burst must be an int >= 1, got {self.burst!r}")

    @classmethod
    def coerce(cls, value: RateLimit | float | None) -> RateLimit | None:
        """Accept a RateLimit, a number of requests per second, or None (unlimited)."""
        if value is None or isinstance(value, RateLimit):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(per_second=float(value))
        raise ConfigError(
            f"rate_limit must be a number of requests per second, a RateLimit or None, "
            f"got {value!r}"
        )


#: Lateness (as a fraction of the interval) a slot may absorb without losing rate.
SLACK = 0.1


@dataclass(eq=False)
class TokenBucket:
    """Thread-safe token bucket (GCRA) enforcing a :class:`RateLimit` within one process."""

    limit: RateLimit
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _tat: float = field(default=float("-inf"), init=False, repr=False)
    _not_before: float = field(default=float("-inf"), init=False, repr=False)

    @property
    def interval(self) -> float:
        return 1.0 / self.limit.per_second

    @contextlib.contextmanager
    def _state(self) -> Iterator[list[float]]:
        """``[tat, not_before]`` under the bucket's lock; changes to the list are kept."""
        with self._lock:
            st = [self._tat, self._not_before]
            yield st
            self._tat, self._not_before = st

    def try_acquire(self) -> float:
        """Take a token if one is free now (return 0.0), else return seconds to wait."""
        interval = self.interval
        tolerance = (self.limit.burst - 1) * interval
        with self._state() as st:
            now = self.clock()
            earliest = max(st[0] - tolerance, st[1])
            if now < earliest:
                return earliest - now
            # the next slot counts from when this one was really used, less at most SLACK of
            # an interval: a caller that woke a little late (a busy machine) costs no rate,
            # one that woke very late does not let the callers after it bunch up
            st[0] = max(st[0], now - SLACK * interval) + interval
            return 0.0

    def acquire(self) -> float:
        """Block until a request may start; return the seconds waited."""
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait <= 0.0:
                return waited
            time.sleep(wait)
            waited += wait

    @property
    def paused_until(self) -> float:
        """The clock time before which no slot starts (``-inf`` if never deferred)."""
        with self._state() as st:
            return st[1]

    def defer(self, seconds: float) -> None:
        """Let no new slot start before ``seconds`` from now (e.g. after a Retry-After),
        at most :data:`MAX_DEFER` seconds."""
        seconds = min(seconds, MAX_DEFER) if seconds > 0 else 0.0  # NaN -> 0
        with self._state() as st:
            st[1] = max(st[1], self.clock() + seconds)

    def __post_init__(self) -> None:
        _ALL_BUCKETS.add(self)


#: The longest pause a single Retry-After can impose on a bucket.
MAX_DEFER = 3600.0

_STATE = struct.Struct("<dd")  # tat, not_before
_ALL_BUCKETS: weakref.WeakSet[TokenBucket] = weakref.WeakSet()
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
    """A child forked while another thread was inside a bucket inherits its lock held:
    give every bucket (and the registry) fresh locks."""
    global _BUCKETS_LOCK
    _BUCKETS_LOCK = threading.Lock()
    for bucket in list(_ALL_BUCKETS):
        bucket._lock = threading.Lock()
    # state files the parent's threads had open: this process's copies would keep their
    # lock alive if the parent died holding it
    for fd in list(_OPEN_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _OPEN_FDS.clear()


_BUCKETS: dict[tuple[str, RateLimit], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
