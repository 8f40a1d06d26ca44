"""The tickvault exception tree.

Every error tickvault raises on purpose derives from :class:`TickvaultError`::

    TickvaultError
    ├── ValidationError            (also a ValueError) bad input; nothing was written
    ├── ConfigError                (also a ValueError) unknown option value, source name, ...
    │   ├── BadTimeBound           (also a ValidationError) a start/end/now that is not a time
    │   └── AddressInUse           ``serve``: another program listens on the host and port
    ├── MissingDependency          (also an ImportError) an optional package is not installed
    ├── StorageError               the database on disk
    │   ├── DatabaseNotFound       no database at the path (read-only opens)
    │   ├── TableNotFound          the table does not exist / is not registered
    │   ├── CorruptDatabaseError   a log entry or data file cannot be read
    │   ├── VersionNotFound        (also a LookupError) a version that was never published
    │   ├── VersionUnavailable     an old version whose files were reclaimed
    │   ├── StorageFull            (also an OSError) no space left; nothing was committed
    │   ├── ObjectStoreError       (also an OSError) a bucket request failed
    │   │   ├── ObjectStoreUnavailable  retryable: unreachable, time-outs, 5xx for the
    │   │   │                           whole retry budget (``retry_timeout``)
    │   │   ├── ObjectStorePermissionError  (also a PermissionError) 401/403: refused
    │   │   │   └── MissingCredentials      no credentials found (says how to give them)
    │   │   └── BucketNotFound     (also a DatabaseNotFound) the bucket does not exist
    │   └── CommitConflict         retryable: another writer published first
    └── SourceError                fetching data from a source
        ├── TickerNotFound         permanent, for that ticker only
        │   └── UnknownTicker      the database does not hold these tickers (strict reads, CLI)
        ├── BadSourceData          permanent: response unparsable or failed validation
        └── TransientSourceError   retryable
            ├── RateLimited        carries ``retry_after`` (seconds or None)
            └── SourceUnavailable  timeouts, connection errors, 5xx

Errors cross Dask process boundaries, so every class pickles with all its attributes
(see :meth:`TickvaultError.__reduce__`). ``retryable`` on the class tells the pipeline whether
trying again can help.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls, *args)
    obj.args = args
    obj.__dict__.update(state)
    return obj


class TickvaultError(Exception):
    """Root of every error tickvault raises on purpose."""

    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ValidationError(TickvaultError, ValueError):
    """Input rejected before anything was written; the database is unchanged."""

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        count: int | None = None,
        row: int | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(message)
        self.column = column
        self.count = count
        self.row = row
        #: the message without where (for a caller that names the place itself, e.g. a
        #: file's line): "below-low value; high must be >= low"
        self.problem = problem


class ConfigError(TickvaultError, ValueError):
    """An option has a value tickvault does not accept (the message lists valid ones)."""


class MissingDependency(TickvaultError, ImportError):
    """An optional package a feature needs is not installed; the message names the pip
    command (``pip install 'tickvault[duckdb]'``)."""


class AddressInUse(ConfigError):
    """The dashboard cannot listen: another program already uses that host and port."""


class BadTimeBound(ValidationError, ConfigError):
    """A time bound (``start``, ``end``, ``now``, ...) that is not a date or time, is out of
    the storable range, or a start after its end. ``option`` names it. One type wherever a
    time is parsed (:mod:`tickvault.times`); it is both a ValidationError and a ConfigError,
    so code that caught either keeps working."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message, column=option)
        self.option = option


class StorageError(TickvaultError):
    """Something about the database on disk."""


class DatabaseNotFound(StorageError):
    """No tickvault database at the given path."""


class TableNotFound(StorageError, KeyError):
    """The table is not registered or does not exist in this database."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CorruptDatabaseError(StorageError):
    """A log entry or data file could not be read; ``tickvault verify`` names it."""


class NewerFormat(StorageError):
    """The table's log says it was written in a format newer than this tickvault reads
    (``format``: the table's; ``supported``: this version's). Nothing was changed: a
    writer refuses too, so an older tickvault never rewrites what it cannot read."""

    def __init__(self, message: str, *, format: int, supported: int) -> None:
        super().__init__(message)
        self.format = format
        self.supported = supported


class VersionNotFound(StorageError, LookupError):
    """A version that does not exist (yet): ``newest`` is the newest there is."""

    def __init__(self, message: str, *, newest: int | None = None) -> None:
        super().__init__(message)
        self.newest = newest

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class VersionUnavailable(StorageError):
    """``read_table(version=N)`` for a version whose files were reclaimed after the
    retention period; ``oldest`` is the oldest version still readable."""

    def __init__(self, message: str, *, oldest: int | None = None) -> None:
        super().__init__(message)
        self.oldest = oldest


class StorageFull(StorageError, OSError):
    """The disk (or quota) holding the database is full. Nothing of the failed write was
    committed; ``reclaimable`` is how many bytes ``vacuum`` could free right now."""

    def __init__(self, message: str, *, path: str = "", reclaimable: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.reclaimable = reclaimable

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ObjectStoreError(StorageError, OSError):
    """A request to an object store (S3, GCS, Azure) failed. The message names the
    operation and the key, never a credential. ``ambiguous`` marks a write that may have
    happened anyway (the commit resolves it by reading the entry back); ``operation`` and
    ``key`` say what failed (``"GET"``, ``"prices/_log/...json"``). The subclasses say why;
    a plain ObjectStoreError is a request the store rejected for another reason (a 4xx)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool = False,
        operation: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.operation = operation
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ObjectStoreUnavailable(ObjectStoreError):
    """The store could not be reached, or kept failing (time-outs, dropped connections,
    5xx, cut-off answers), for the whole retry budget (the ``retry_timeout`` storage
    option, default 60 s). Nothing committed is lost: run again later."""

    retryable = True


class ObjectStorePermissionError(ObjectStoreError, PermissionError):
    """The store refused a request (401/403: a wrong key or secret, an expired token, a
    policy that does not allow this operation). Not retried: it fails at once."""

    retryable = False


class MissingCredentials(ObjectStorePermissionError):
    """No credentials were found for the store; the message names the environment
    variables and ``storage_options`` keys that supply them."""


class BucketNotFound(ObjectStoreError, DatabaseNotFound):
    """The bucket (or container) of a database URL does not exist; ``bucket`` names it."""

    retryable = False

    def __init__(self, message: str, *, bucket: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.bucket = bucket


class CommitConflict(StorageError):
    """Another writer published the version this commit wanted. Retried internally."""

    retryable = True


class SourceError(TickvaultError):
    """Fetching from a data source failed."""

    def __init__(self, message: str, *, ticker: str | None = None, source: str | None = None):
        super().__init__(message)
        self.ticker = ticker
        self.source = source


class TickerNotFound(SourceError):
    """The source does not know this ticker. Permanent for this ticker."""


class UnknownTicker(TickerNotFound):
    """Tickers the database does not hold, named with the closest stored ones
    (``read_table(..., strict=True)``, every CLI command that names tickers: exit 3).
    ``tickers`` lists them (upper case), ``suggestions`` maps each to its closest stored
    tickers (possibly none). A :class:`TickerNotFound`, so code catching that still works."""

    def __init__(
        self,
        message: str,
        *,
        tickers: list[str] | tuple[str, ...] = (),
        suggestions: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, ticker=tickers[0] if len(tickers) == 1 else None)
        self.tickers = list(tickers)
        self.suggestions = dict(suggestions or {})


class BadSourceData(SourceError):
    """The source answered, but the answer could not be parsed or failed validation."""

    @classmethod
    def from_validation(
        cls, exc: BaseException, *, source: str, ticker: str, where: str = "", row: bool = False
    ) -> BadSourceData:
        """The one wording of "this source returned bad data" for a validation (or Arrow
        conversion) error ``exc``: names the source, the ticker and, if given, ``where``
        (e.g. " at AAPL.csv line 17, column 'close'"; ``row``: it names the offending row,
        so the error's own row number is left out). Raise it ``from exc``."""
        problem = getattr(exc, "problem", None) if row else None
        return cls(
            f"source {source!r} returned bad data for {ticker!r}{where}: {problem or exc}",
            ticker=ticker,
            source=source,
        )


class TransientSourceError(SourceError):
    """A failure that may go away when retried. ``retry_after``: the seconds the source
    asked us to wait (an HTTP ``Retry-After``), None when it said nothing."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        ticker: str | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message, ticker=ticker, source=source)
        self.retry_after = retry_after


class RateLimited(TransientSourceError):
    """The source asked us to slow down (HTTP 429); ``retry_after`` as for every
    :class:`TransientSourceError`."""


class SourceUnavailable(TransientSourceError):
    """Timeout, connection error or server error (5xx)."""


__all__ = [
    "AddressInUse",
    "BadSourceData",
    "BadTimeBound",
    "BucketNotFound",
    "CommitConflict",
    "ConfigError",
    "CorruptDatabaseError",
    "DatabaseNotFound",
    "MissingCredentials",
    "ObjectStoreError",
    "ObjectStorePermissionError",
    "ObjectStoreUnavailable",
    "RateLimited",
    "SourceError",
    "SourceUnavailable",
    "StorageError",
    "StorageFull",
    "TableNotFound",
    "TickerNotFound",
    "TickvaultError",
    "TransientSourceError",
    "UnknownTicker",
    "ValidationError",
    "VersionNotFound",
    "VersionUnavailable",
]
