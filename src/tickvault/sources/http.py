"""What every HTTP source shares: one pooled client per process, timeouts, retries with
backoff that honour ``Retry-After``, a token-bucket rate limit and a configurable base URL.

Retries happen at two levels, and they multiply:

* **Per request (here).** Each HTTP request is retried with :mod:`tenacity` per the source's
  ``http_retry`` policy (default: 4 attempts, backoff 0.5 s doubling up to 30 s, equal
  jitter) on 429, 5xx, 408, timeouts and connection errors. A ``Retry-After`` header (seconds
  or an HTTP date) is honoured exactly, and on a 429 the whole source (every thread of the
  process) pauses for that long, so one throttled thread does not let the others walk into
  a ban. When the attempts are used up the last error is raised:
  :class:`~tickvault.errors.RateLimited` (with ``retry_after``) or
  :class:`~tickvault.errors.SourceUnavailable`.
* **Per ticker (the pipeline).** The pipeline retries a ticker whose fetch raised a
  transient error per ``source.retry_policy``. HTTP sources default that to
  ``RetryPolicy(attempts=1)`` because they already retried each request; pass
  ``retry_policy=RetryPolicy(attempts=2, backoff=60)`` to add a slow second round (the total
  number of requests for a ticker is then at most ``2 x http_retry.attempts``).

Malformed responses (:class:`~tickvault.errors.BadSourceData`) and unknown symbols
(:class:`~tickvault.errors.TickerNotFound`) are permanent and never retried.

The rate limit (``rate_limit=`` requests per second, or a :class:`RateLimit`) is shared by
every thread, every worker process and every pickled copy of the source on one machine (a
state file under a lock, see :func:`~tickvault.sources.machine_limit.shared_bucket`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import email.utils
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import tenacity

from ..errors import BadSourceData, ConfigError, RateLimited, SourceUnavailable
from .machine_limit import shared_bucket
from .policy import RateLimit, RetryOption, RetryPolicy, TokenBucket

log = logging.getLogger(__name__)

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36 tickvault"
)
_DEFAULT = object()

_CLIENT: httpx.Client | None = None
_CLIENT_PID: int | None = None
_CLIENT_LOCK = threading.Lock()


def shared_client() -> httpx.Client:
    """The process's pooled :class:`httpx.Client`, created on first use (and after a fork)."""
    global _CLIENT, _CLIENT_PID
    pid = os.getpid()
    client = _CLIENT
    if client is not None and pid == _CLIENT_PID:
        return client
    with _CLIENT_LOCK:
        if _CLIENT is None or pid != _CLIENT_PID:
            _CLIENT = httpx.Client(
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                follow_redirects=True,
            )
            _CLIENT_PID = pid
            atexit.register(close_shared_client)
        return _CLIENT


def close_shared_client() -> None:
    """Close the process's client (a new one is created on next use)."""
    global _CLIENT
    with _CLIENT_LOCK:
        client, _CLIENT = _CLIENT, None
    if client is not None and os.getpid() == _CLIENT_PID:
        client.close()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (None if absent)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def resolve_base_url(provider: str, base_url: str | None, default: str) -> str:
    """``base_url`` if given, else ``$TICKVAULT_<PROVIDER>_BASE_URL``, else ``default``."""
    env = f"TICKVAULT_{provider.upper()}_BASE_URL"
    url = base_url or os.environ.get(env) or default
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{provider}: base_url must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def _seconds(value: Any, option: str, source: str) -> float:
    """A timeout option as seconds > 0, else a ConfigError naming it."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ConfigError(
        f"{source}: {option} must be a number of seconds > 0, e.g. {option}=10, got {value!r}"
    )


class HttpSource:
    """Base class of HTTP sources. Options (keyword-only, all optional):

    ``base_url`` (else ``$TICKVAULT_<PROVIDER>_BASE_URL``, else the provider's URL),
    ``rate_limit`` (requests/second, a :class:`RateLimit`, or None for none),
    ``timeout`` (read/write seconds), ``connect_timeout``, ``http_retry`` (per-request
    :class:`RetryPolicy`), ``retry_policy`` (per-ticker, for the pipeline; default 1 attempt;
    both also an int of attempts or a mapping of the policy's fields, :meth:`RetryPolicy.coerce`),
    ``headers`` (extra request headers), ``name``.
    """

    provider: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    default_rate_limit: ClassVar[float | None] = None
    ok_statuses: ClassVar[frozenset[int]] = frozenset({200})
    #: whether an empty response body is an answer (False: BadSourceData, for every
    #: built-in source; a plugin whose API answers "no bars" with nothing sets it)
    empty_body_ok: ClassVar[bool] = False

    def __init__(
        self,
        *,
        base_url: str | None = None,
        rate_limit: RateLimit | float | Any | None = _DEFAULT,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        http_retry: RetryOption = None,
        retry_policy: RetryOption = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or self.provider
        self.base_url = resolve_base_url(self.provider, base_url, self.default_base_url)
        self.rate_limit = RateLimit.coerce(
            self.default_rate_limit if rate_limit is _DEFAULT else rate_limit
        )
        self.timeout = _seconds(timeout, "timeout", self.name)
        self.connect_timeout = _seconds(connect_timeout, "connect_timeout", self.name)
        self.http_retry = RetryPolicy.coerce(http_retry, "http_retry") or RetryPolicy(
            attempts=4, backoff=0.5, max_backoff=30.0
        )
        self.retry_policy = RetryPolicy.coerce(retry_policy, "retry_policy") or RetryPolicy(
            attempts=1
        )
        self.headers = {"User-Agent": USER_AGENT, **dict(headers or {})}
        self._id = uuid.uuid4().hex  # shared by pickled copies: one rate limit per machine

    def __repr__(self) -> str:
        rate = self.rate_limit.per_second if self.rate_limit else None
        return f"{type(self).__name__}(base_url={self.base_url!r}, rate_limit={rate})"

    @property
    def bucket(self) -> TokenBucket | None:
        """This source's rate-limit bucket (None if unlimited); machine-wide."""
        if self.rate_limit is None:
            return None
        return shared_bucket(self._id, self.rate_limit)

    # -- requests --------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any], *, ticker: str) -> httpx.Response:
        """GET ``base_url + path`` with rate limiting and retries; return a response whose
        status is in ``ok_statuses`` or raise a classified error."""
        policy = self.http_retry

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return exc is None or not policy.should_retry(exc, state.attempt_number)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.delay(state.attempt_number, exc)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.info(
                "%s: attempt %d for %r failed (%s); retrying in %.2fs",
                self.name,
                state.attempt_number,
                ticker,
                exc,
                delay,
            )

        retrying = tenacity.Retrying(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception_type(policy.retry_on),
            before_sleep=before_sleep,
            reraise=True,
        )
        url = self.base_url + path
        response: httpx.Response = retrying(self._attempt, url, params, ticker)
        if not self.empty_body_ok and not response.content.strip():
            # no provider answers a request for bars with nothing at all (no bars is "No
            # data", an empty chart, a header line): an empty body is a failure somewhere
            # between us and the provider, never "no bars"
            raise BadSourceData(
                f"{self.name}: HTTP {response.status_code} with an empty body for {ticker!r} "
                f"from {url}",
                ticker=ticker,
                source=self.name,
            )
        return response

    def _attempt(self, url: str, params: Mapping[str, Any], ticker: str) -> httpx.Response:
        client = shared_client()
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        bucket = self.bucket
        extensions: dict[str, Any] = {}
        if bucket is not None:
            # Take the token at the last moment: when the request headers are about to be
            # written to an open connection (httpcore's documented ``trace`` extension), so
            # pool waits and connection set-up do not sit between the token and the wire.
            def trace(event: str, info: dict[str, Any]) -> None:
                if event.endswith("send_request_headers.started"):
                    bucket.acquire()

            extensions["trace"] = trace
        request = client.build_request(
            "GET",
            url,
            params=dict(params),
            headers=self.headers,
            timeout=timeout,
            extensions=extensions,
        )
        try:
            response = client.send(request)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(
                f"{self.name}: {type(exc).__name__} for {ticker!r} from {url} "
                f"(timeout {self.timeout}s, connect {self.connect_timeout}s)",
                ticker=ticker,
                source=self.name,
            ) from exc
        except httpx.TransportError as exc:
            raise SourceUnavailable(
                f"{self.name}: cannot reach {url} for {ticker!r}: {type(exc).__name__}: {exc}",
                ticker=ticker,
                source=self.name,
            ) from exc
        status = response.status_code
        if status in self.ok_statuses:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            if retry_after is not None and bucket is not None:
                bucket.defer(retry_after)
            raise RateLimited(
                f"{self.name}: HTTP 429 Too Many Requests for {ticker!r} "
                f"(Retry-After: {response.headers.get('Retry-After')})",
                retry_after=retry_after,
                ticker=ticker,
                source=self.name,
            )
        if status >= 500 or status == 408:
            raise SourceUnavailable(
                f"{self.name}: HTTP {status} for {ticker!r} from {url}",
                retry_after=retry_after,
                ticker=ticker,
                source=self.name,
            )
        raise BadSourceData(
            f"{self.name}: HTTP {status} for {ticker!r} from {response.url}: "
            f"{response.text[:200]!r}",
            ticker=ticker,
            source=self.name,
        )
