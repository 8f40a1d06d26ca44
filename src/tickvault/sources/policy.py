"""Retry and rate-limit settings, and the thread-safe token bucket behind ``rate_limit=``.

Two small frozen value objects (keyword-only, like httpx ``Timeout``):

* :class:`RetryPolicy` — how often and how patiently to retry a failed attempt. Every source
  carries one as ``source.retry_policy``; the pipeline retries a ticker whose fetch raised an
  error listed in ``retry_on`` (by default :class:`~tickvault.errors.TransientSourceError`).
  HTTP sources additionally use a policy per request (their ``http_retry`` attribute).
* :class:`RateLimit` — requests per second with a burst size.

:class:`TokenBucket` enforces a :class:`RateLimit` for every thread of a process, and
:class:`~tickvault.sources.machine_limit.FileTokenBucket` (what sources use, through
:func:`~tickvault.sources.machine_limit.shared_bucket`) for every process of the machine. It is a
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
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

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
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
                raise ConfigError(
                    f"RetryPolicy.{name} must be a number of seconds >= 0, got {value!r}"
                )
        if not isinstance(self.jitter, bool):
            raise ConfigError(f"RetryPolicy.jitter must be true or false, got {self.jitter!r}")
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

    @classmethod
    def coerce(cls, value: Any, option: str) -> RetryPolicy | None:
        """The policy an option names (like :meth:`RateLimit.coerce`): a RetryPolicy, an
        int (the number of attempts, other fields as default: ``3`` is
        ``RetryPolicy(attempts=3)``), a mapping of its fields (``{"attempts": 3,
        "backoff": 1}``, what ``--source-option 'retry_policy={"attempts":3}'`` gives), or
        None (the caller's default). Anything else is a ConfigError naming ``option``,
        the problem and an example, raised where the option is given, not at the first
        retry."""
        if value is None or isinstance(value, RetryPolicy):
            return value
        example = (
            f'e.g. {option}=3 (attempts) or {option}={{"attempts": 3, "backoff": 1.0}}, '
            f"or RetryPolicy(attempts=3) from Python"
        )
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ConfigError(
                    f"{option}={value}: the number of attempts must be >= 1 (1 = no retry); "
                    f"{example}"
                )
            return cls(attempts=value)
        if isinstance(value, Mapping):
            unknown = sorted(str(k) for k in value if k not in _OPTION_FIELDS)
            if unknown:
                also = (
                    " (retry_on takes exception classes: give a RetryPolicy from Python)"
                    if "retry_on" in unknown
                    else ""
                )
                raise ConfigError(
                    f"{option}: unknown field(s) {unknown}{also}; the fields are "
                    f"{list(_OPTION_FIELDS)}, {example}"
                )
            try:
                return cls(**{str(k): v for k, v in value.items()})
            except ConfigError as exc:
                raise ConfigError(f"{option}: {exc}; {example}") from exc
        raise ConfigError(
            f"{option} must be a number of attempts, the policy's fields or a RetryPolicy, "
            f"got {value!r} ({type(value).__name__}); {example}"
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


#: what a retry option accepts (:meth:`RetryPolicy.coerce`)
RetryOption: TypeAlias = "RetryPolicy | int | Mapping[str, Any] | None"

#: the fields of a RetryPolicy an option may give (``retry_on`` needs Python classes)
_OPTION_FIELDS = ("attempts", "backoff", "max_backoff", "jitter")


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

_ALL_BUCKETS: weakref.WeakSet[TokenBucket] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A child forked while another thread was inside a bucket inherits its lock held:
    give every bucket a fresh lock."""
    for bucket in list(_ALL_BUCKETS):
        bucket._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
