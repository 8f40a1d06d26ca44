"""A database in a bucket: :class:`ObjectStore`, the :class:`~.store.Store` for S3, GCS,
Azure (and obstore's in-memory store), on `obstore` (the Rust ``object_store`` crate that
delta-rs uses). See docs/decisions/009-object-storage.md.

* The commit primitive :meth:`ObjectStore.put_if_absent` is a conditional put
  (``If-None-Match: *`` on S3 and Azure, ``if-generation-match: 0`` on GCS); a 409
  ``ConditionalRequestConflict`` (S3 under contention) is a lost race, like "already exists".
* Any other failed write raises :class:`~tickvault.errors.ObjectStoreError` with
  ``ambiguous=True``: the put may have landed. The commit loop
  (:mod:`~tickvault.storage.core.commit`) resolves that by reading the entry back and
  comparing its commit id, and :attr:`ambiguous_creates` tells it that even "already
  exists" may be its own retried create.
* Data files are buffered and put under their final unique name on success (a put is
  atomic; large files go up as a multipart upload that only appears when completed).
* :meth:`open_input` is a random-access file doing ranged GETs: the first access fetches
  the tail (the Parquet footer, or the whole of a small file) with one suffix GET, which
  also tells the size; later misses read ahead, so a row-group read is one GET.
* Every request that fails in a way that can pass (a time-out, a dropped connection, a
  cut-off body, 5xx, 429) is retried with exponential backoff for up to ``retry_timeout``
  seconds (a storage option, default :data:`DEFAULT_RETRY_TIMEOUT`; decision 019), then
  raises :class:`~tickvault.errors.ObjectStoreUnavailable`. A refusal (401/403) raises
  :class:`~tickvault.errors.ObjectStorePermissionError` at once (missing credentials:
  :class:`~tickvault.errors.MissingCredentials`, saying how to give them), a missing
  bucket :class:`~tickvault.errors.BucketNotFound`.
* Messages show the URL without userinfo; credentials never appear in ``repr``, errors,
  ``identity()`` or logs. A store pickles (Dask ships it) as its URL and options.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import io
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import obstore
import pyarrow as pa
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import from_url

from ...errors import (
    BucketNotFound,
    ConfigError,
    MissingCredentials,
    ObjectStoreError,
    ObjectStorePermissionError,
    ObjectStoreUnavailable,
)
from .options import seconds
from .store import ObjectMeta, Store, display_url

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the first GET of a file fetches this much of its end: the footer, or a small file whole
TAIL_BYTES = 256 << 10
#: a miss reads at least this much ahead (a row group is then one GET)
READ_AHEAD = 4 << 20

#: how long a failing request is retried by default (seconds; the ``retry_timeout`` option)
DEFAULT_RETRY_TIMEOUT = 60.0
#: the environment variable that sets ``retry_timeout`` when the options do not (the CLI)
RETRY_TIMEOUT_ENV = "TICKVAULT_RETRY_TIMEOUT"
#: backoff between retries: the first wait, and the longest (each wait is jittered)
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 8.0

#: how to give credentials, per scheme, for MissingCredentials messages
_HOW_TO_AUTHENTICATE = {
    "s3": (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a server "
        "other than AWS), or pass storage_options={'access_key_id': ..., "
        "'secret_access_key': ...}"
    ),
    "gs": (
        "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a service-account "
        "JSON file, or pass storage_options={'google_service_account': PATH}"
    ),
    "az": (
        "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or "
        "AZURE_STORAGE_SAS_TOKEN, or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID), "
        "or pass storage_options={'account_name': ..., 'account_key': ...}"
    ),
}

_SECRET_WORDS = ("secret", "token", "password", "key", "credential", "sas", "signature")


def _is_secret(name: str) -> bool:
    """Is the option ``name`` a credential (key ids included: they name an account)?"""
    return any(w in name.lower() for w in _SECRET_WORDS)


class ObjectStore(Store):
    """A database root in a bucket: ``ObjectStore("s3://bucket/prefix", {...})``.

    ``storage_options`` use the object_store / delta-rs key names (``endpoint``,
    ``access_key_id``, ``secret_access_key``, ``region``, ``allow_http``, ...); anything
    not given comes from the standard environment variables (``AWS_*``, ``GOOGLE_*``,
    ``AZURE_*``). An ``http://`` endpoint turns ``allow_http`` on by itself.
    ``retry_timeout`` (seconds or a timedelta; else ``$TICKVAULT_RETRY_TIMEOUT``, else
    60) is how long a failing request is retried before it raises.
    """

    #: "already exists" may be our own create, retried by the client after a lost answer
    ambiguous_creates = True
    remote = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.location = display_url(url)
        self.scheme = _family(url)
        budget = self.storage_options.get("retry_timeout", os.environ.get(RETRY_TIMEOUT_ENV))
        if isinstance(budget, str):
            with contextlib.suppress(ValueError):  # else seconds() names it and an example
                budget = float(budget.strip().removesuffix("s"))
        #: how long a failing request is retried (seconds): the ``retry_timeout`` option
        self.retry_timeout = (
            DEFAULT_RETRY_TIMEOUT if budget is None else seconds(budget, "retry_timeout")
        )
        self.requests: Counter[str] = Counter()  # per operation, for benchmarks and tests
        self._count_lock = threading.Lock()
        self._secrets = [str(v) for k, v in self.storage_options.items() if _is_secret(k) and v] + [
            p for p in (urlsplit(url).password, urlsplit(url).username) if p
        ]
        self.inner = self._connect()

    def _connect(self) -> Any:
        opts = dict(self.storage_options)
        opts.pop("retry_timeout", None)  # tickvault's own: the retry loop below
        client: Any = dict(opts.pop("client_options", None) or {})
        retry = opts.pop("retry_config", None)
        if retry is None:  # the client's own quick retries, bounded by our budget
            retry = {
                "max_retries": 10 if self.retry_timeout > 0 else 0,
                "retry_timeout": dt.timedelta(seconds=self.retry_timeout),
                "backoff": {
                    "init_backoff": dt.timedelta(milliseconds=100),
                    "max_backoff": dt.timedelta(seconds=2),
                    "base": 2,
                },
            }
        endpoints = [str(v) for k, v in opts.items() if "endpoint" in k.lower()]
        endpoints += [v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")]
        if any(e.startswith("http://") for e in endpoints[:1]):
            client.setdefault("allow_http", True)  # a local server: http needs no flag
        for k in [k for k in opts if k.lower() in ("allow_http", "aws_allow_http")]:
            client["allow_http"] = str(opts.pop(k)).lower() in ("1", "true", "yes")
        url = self.url if not self.url.startswith("memory://") else "memory:///"
        try:
            return from_url(url, client_options=client or None, retry_config=retry, **opts)
        except (BaseError, ValueError, TypeError) as exc:
            if self.scheme == "az" and "account must be specified" in str(exc).lower():
                raise MissingCredentials(
                    f"no Azure storage account for {self.location!r}: an az:// URL is "
                    f"az://CONTAINER/PATH with the account given apart — "
                    f"{_HOW_TO_AUTHENTICATE['az']}; or write "
                    f"abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH",
                    operation="open",
                ) from None
            raise ConfigError(
                f"cannot open the object store at {self.location!r}: {self._clean(exc)}"
            ) from None

    # -- plumbing --------------------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        opts = dict(self.storage_options)
        if self.retry_timeout != DEFAULT_RETRY_TIMEOUT:  # e.g. from this machine's env
            opts.setdefault("retry_timeout", self.retry_timeout)
        return (type(self), (self.url, opts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def identity(self) -> tuple[object, ...]:
        if self.url.startswith("memory://"):
            return ("object", id(self.inner))
        # the location, plus a digest of the full URL: nothing secret, nothing shared
        return ("object", self.location, hashlib.sha256(self.url.encode()).hexdigest()[:16])

    def is_temporary(self, name: str) -> bool:
        return False  # puts are atomic: there are no temporary objects

    def _count(self, op: str) -> None:
        with self._count_lock:
            self.requests[op] += 1

    def _clean(self, exc: BaseException) -> str:
        """An error message with every credential and URL userinfo removed."""
        return self._clean_text(str(exc).split("\n", 1)[0][:500])

    def _clean_text(self, text: str) -> str:
        text = re.sub(r"(\w+://)[^/@\s]*@", r"\1", text)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _fail(self, op: str, key: str, exc: BaseException, *, ambiguous: bool = False) -> Any:
        """The typed error for a failed request that is not worth retrying (or whose
        retries ran out: see :meth:`_retrying`)."""
        where = f"{self.location}/{key}" if key else self.location
        reason = self._reason(exc)
        kind = _kind(exc)
        if kind == "credentials":
            return MissingCredentials(
                f"no credentials for {self.location!r} ({op} {where} could not sign its "
                f"request: {reason}): {_HOW_TO_AUTHENTICATE[self.scheme]}",
                operation=op,
                key=key,
            )
        if kind == "permission":
            return ObjectStorePermissionError(
                f"permission denied: the object store refused {op} {where} ({reason}); "
                f"check the credentials for {self.location!r} and that they may "
                f"{'write' if op in _WRITES else 'read'} it",
                operation=op,
                key=key,
            )
        if kind == "bucket":
            bucket = _bucket(self.url)
            return BucketNotFound(
                f"bucket {bucket!r} does not exist (database {self.location!r}); "
                f"create it first, or check the URL",
                bucket=bucket,
                operation=op,
                key=key,
            )
        if kind == "transient":
            return ObjectStoreUnavailable(
                f"the object store did not answer: {op} {where} failed: {reason}",
                ambiguous=ambiguous,
                operation=op,
                key=key,
            )
        err = ObjectStoreError(
            f"{op} {where} failed: {reason}", ambiguous=ambiguous, operation=op, key=key
        )
        err.retryable = False  # another 4xx: asking again gets the same answer
        return err

    def _reason(self, exc: BaseException) -> str:
        """What went wrong, in one short line: the status and the server's error code and
        message when there are some, else the client's error (no XML, no debug dump)."""
        text = str(exc)
        status = _status(text)
        if status is not None:
            code = re.search(r"<Code>([^<]*)</Code>", text)
            message = re.search(r"<Message>([^<]*)</Message>", text)
            out = f"HTTP {status}"
            if code:
                out += f" {code.group(1)}"
            if message:
                out += f": {message.group(1)}"
            if "169.254.169.254" in text or "/latest/api/token" in text:
                out += " (from the cloud metadata server)"
        else:
            first = text.split("\n", 1)[0]
            out = first.rsplit(" - ", 1)[-1].strip() or type(exc).__name__
        return self._clean_text(out)

    def _retrying(self, op: str, key: str, call: Callable[[], T], *, ambiguous: bool = False) -> T:
        """``call()``, retried with exponential backoff (jittered) while it fails in a way
        that can pass, for up to :attr:`retry_timeout` seconds; then the typed error.
        FileNotFoundError and AlreadyExistsError pass through (callers decide)."""
        started = time.monotonic()
        delay = FIRST_BACKOFF
        while True:
            try:
                return call()
            except AlreadyExistsError:
                raise
            except (BaseError, OSError) as exc:
                kind = _kind(exc)
                if kind == "missing":
                    raise
                spent = time.monotonic() - started
                left = self.retry_timeout - spent
                if kind != "transient" or left <= 0:
                    err = self._fail(op, key, exc, ambiguous=ambiguous)
                    if kind == "transient":
                        err.args = (
                            f"{err.args[0]} (gave up after {spent:.0f}s of attempts: "
                            f"retry_timeout={self.retry_timeout:g}s starts no new attempt "
                            f"after it, and ends none in flight)",
                        )
                    raise err from None
                wait = min(left, random.uniform(delay / 2, delay))
                log.info(
                    "%s %s/%s failed (%s); retrying in %.1fs",
                    op,
                    self.location,
                    key,
                    self._reason(exc),
                    wait,
                )
                time.sleep(wait)
                delay = min(delay * 2, MAX_BACKOFF)

    def _missing(self, key: str) -> FileNotFoundError:
        return FileNotFoundError(errno.ENOENT, "no such object", f"{self.location}/{key}")

    # -- the calls that reach the bucket (a fault-injecting test subclass overrides these) --

    def _put(self, key: str, data: Any, mode: str) -> None:
        self._count("put")
        obstore.put(self.inner, key, data, mode=mode)  # type: ignore[arg-type]

    def _get(self, key: str, options: dict[str, Any] | None = None) -> tuple[bytes, int, int]:
        """(bytes, offset of the bytes, object size)."""
        self._count("get")
        r = obstore.get(self.inner, key, options=options)  # type: ignore[arg-type]
        return r.bytes().to_bytes(), r.range[0], int(r.meta["size"])

    def _head(self, key: str) -> dict[str, Any]:
        self._count("head")
        return dict(obstore.head(self.inner, key))

    def _list(self, prefix: str | None) -> dict[str, Any]:
        self._count("list")
        return dict(obstore.list_with_delimiter(self.inner, prefix))

    def _list_after(self, prefix: str, offset: str) -> list[str]:
        """Paths under ``prefix`` after ``offset`` (S3's start-after)."""
        self._count("list")
        stream = obstore.list(self.inner, prefix, offset=offset, chunk_size=1000)
        return [o["path"] for batch in stream for o in batch]

    def _delete(self, key: str) -> None:
        self._count("delete")
        obstore.delete(self.inner, key)

    # -- writing ---------------------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        def create() -> bool:
            try:
                self._put(key, data, "create")
            except AlreadyExistsError:
                return False
            except (BaseError, OSError) as exc:
                if _is_conflict(exc):  # S3's 409 ConditionalRequestConflict: a lost race
                    return False
                raise
            return True

        # a retry after a lost answer may find our own create: "exists" is then ambiguous,
        # which ambiguous_creates tells the commit (it reads the entry back)
        return self._retrying("conditional PUT", key, create, ambiguous=True)

    def put(self, key: str, data: bytes) -> None:
        self._retrying("PUT", key, lambda: self._put(key, data, "overwrite"), ambiguous=True)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        sink = pa.BufferOutputStream()
        yield sink
        try:
            self.put(key, sink.getvalue().to_pybytes())  # multipart above the chunk size
        except ObjectStoreError as exc:
            # the failed put may have landed: a failed write leaves nothing behind
            if exc.ambiguous and not isinstance(exc, ObjectStorePermissionError):
                with contextlib.suppress(BaseError, OSError):  # one try: best effort
                    self._delete(key)
            raise

    def flush(self, prefix: str) -> None:
        pass  # a put is durable when it returns

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        return self._read(key, None)[0]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return self._read(key, {"range": [start, start + length]})[0]

    def _read(self, key: str, options: dict[str, Any] | None) -> tuple[bytes, int, int]:
        def get() -> tuple[bytes, int, int]:
            try:
                return self._get(key, options)
            except (BaseError, OSError) as exc:
                if options and "416" in str(exc):  # a range starting at or past the end
                    return b"", 0, 0
                raise

        try:
            return self._retrying("GET", key, get)
        except FileNotFoundError:
            raise self._missing(key) from None

    def open_input(self, key: str) -> pa.NativeFile:
        f = RangedFile(self, key)
        f.prefetch()  # FileNotFoundError now, as other stores raise it
        return pa.PythonFile(f, mode="r")

    def list_after(self, prefix: str, after: str) -> list[str]:
        base = prefix.strip("/")
        if not base:
            return super().list_after(prefix, after)
        try:
            paths = self._retrying("LIST", base, lambda: self._list_after(base, f"{base}/{after}"))
        except FileNotFoundError:
            return []
        cut = len(base) + 1
        return sorted(n for n in (p[cut:] for p in paths) if n and "/" not in n and n > after)

    def list(self, prefix: str) -> list[str]:
        base = prefix.strip("/")
        try:
            res = self._retrying("LIST", base, lambda: self._list(base or None))
        except FileNotFoundError:
            return []
        cut = len(base) + 1 if base else 0
        names = [p[cut:].rstrip("/") for p in res.get("common_prefixes", [])]
        names += [o["path"][cut:] for o in res.get("objects", [])]
        return [n for n in names if n]

    def check_root(self) -> None:
        """Does the bucket exist? A LIST says (a HEAD's 404 cannot tell a missing bucket
        from a missing object): BucketNotFound if it does not."""
        base = urlsplit(self.url).path.strip("/")
        with contextlib.suppress(FileNotFoundError):
            self._retrying("LIST", base, lambda: self._list(base or None))

    def stat(self, key: str) -> ObjectMeta | None:
        try:
            meta = self._retrying("HEAD", key, lambda: self._head(key))
        except FileNotFoundError:
            return None
        return ObjectMeta(size=int(meta["size"]), mtime=meta["last_modified"].timestamp())

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        try:
            self._retrying("DELETE", key, lambda: self._delete(key))
        except FileNotFoundError:
            return False
        return True


#: operations that write (a refusal then means "may not write")
_WRITES = ("PUT", "conditional PUT", "DELETE")


def _family(url: str) -> str:
    """``s3``, ``gs`` or ``az`` (or ``memory``) for a URL of any of their spellings."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a"):
        return "s3"
    if scheme in ("gs", "gcs"):
        return "gs"
    if scheme in ("az", "azure", "abfs", "abfss", "adl"):
        return "az"
    return "memory"


def _bucket(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() in ("abfs", "abfss") and parts.username:
        return parts.username  # abfss://container@account...
    return parts.hostname or ""


def _status(text: str) -> int | None:
    m = re.search(r"status code: (\d{3})", text) or re.search(r"\b(\d{3}) (?:[A-Z][a-z]+)", text)
    return int(m.group(1)) if m else None


def _kind(exc: BaseException) -> str:
    """Why a request failed: ``missing`` (no such object), ``bucket`` (no such bucket),
    ``credentials`` (none found: the client fell back to a cloud metadata server and
    got nothing), ``permission`` (401/403), ``transient`` (time-outs, connection errors,
    cut-off bodies, 408/429/5xx: worth retrying) or ``failed`` (another 4xx)."""
    text = str(exc)
    if "NoSuchBucket" in text or "ContainerNotFound" in text:
        return "bucket"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    metadata = (
        "169.254.169.254" in text
        or "/latest/api/token" in text
        or "computeMetadata" in text
        or "token request" in text.lower()
        or ("credential" in text.lower() and "metadata" in text.lower())
    )
    if metadata:
        return "credentials"
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return "permission"
    status = _status(text.split("\n\nDebug source", 1)[0])
    if status in (401, 403):
        return "permission"
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return "failed"
    return "transient"


def _is_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return "ConditionalRequestConflict" in text or "409 Conflict" in text


class RangedFile(io.RawIOBase):
    """A read-only, seekable view of one object through ranged GETs, for pyarrow.

    The first access fetches the last :data:`TAIL_BYTES` (one suffix GET that also gives
    the size; a small file arrives whole); a read outside the cached blocks fetches at
    least :data:`READ_AHEAD` bytes from there. A few blocks are kept, so the footer and a
    row group's column chunks are each one GET. Used by one thread at a time.
    """

    def __init__(self, store: ObjectStore, key: str) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self.pos = 0
        self._size: int | None = None
        self._blocks: list[tuple[int, bytes]] = []

    def prefetch(self) -> None:
        if self._size is None:
            data, start, size = self.store._read(self.key, {"range": {"suffix": TAIL_BYTES}})
            self._size = size
            self._blocks = [(start, data)]

    def size(self) -> int:
        self.prefetch()
        assert self._size is not None
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self.pos = offset
        elif whence == io.SEEK_CUR:
            self.pos += offset
        else:
            self.pos = self.size() + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        size = self.size()
        if n is None or n < 0:
            n = size - self.pos
        n = max(0, min(n, size - self.pos))
        if n == 0:
            return b""
        out = self._cached(self.pos, n)
        if out is None:
            length = min(size - self.pos, max(n, READ_AHEAD))
            data = self.store.get_range(self.key, self.pos, length)
            self._blocks = [*self._blocks[-3:], (self.pos, data)]
            out = data[:n]
        self.pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _cached(self, pos: int, n: int) -> bytes | None:
        for start, data in reversed(self._blocks):
            if start <= pos and pos + n <= start + len(data):
                return data[pos - start : pos - start + n]
        return None
