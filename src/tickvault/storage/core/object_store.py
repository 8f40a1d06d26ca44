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
* Messages show the URL without userinfo; credentials never appear in ``repr``, errors,
  ``identity()`` or logs. A store pickles (Dask ships it) as its URL and options.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import obstore
import pyarrow as pa
from obstore.exceptions import AlreadyExistsError, BaseError
from obstore.store import from_url

from ...errors import ConfigError, ObjectStoreError
from .store import ObjectMeta, Store, display_url

#: the first GET of a file fetches this much of its end: the footer, or a small file whole
TAIL_BYTES = 256 << 10
#: a miss reads at least this much ahead (a row group is then one GET)
READ_AHEAD = 4 << 20

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
    """

    #: "already exists" may be our own create, retried by the client after a lost answer
    ambiguous_creates = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.location = display_url(url)
        self.requests: Counter[str] = Counter()  # per operation, for benchmarks and tests
        self._count_lock = threading.Lock()
        self._secrets = [str(v) for k, v in self.storage_options.items() if _is_secret(k) and v] + [
            p for p in (urlsplit(url).password, urlsplit(url).username) if p
        ]
        self.inner = self._connect()

    def _connect(self) -> Any:
        opts = dict(self.storage_options)
        client: Any = dict(opts.pop("client_options", None) or {})
        retry = opts.pop("retry_config", None)
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
            raise ConfigError(
                f"cannot open the object store at {self.location!r}: {self._clean(exc)}"
            ) from None

    # -- plumbing --------------------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url, self.storage_options))

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
        text = str(exc).split("\n", 1)[0][:500]
        text = re.sub(r"(\w+://)[^/@\s]*@", r"\1", text)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _fail(self, op: str, key: str, exc: BaseException, *, ambiguous: bool = False) -> Any:
        return ObjectStoreError(
            f"{op} {self.location}/{key} failed: {type(exc).__name__}: {self._clean(exc)}",
            ambiguous=ambiguous,
        )

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

    def _delete(self, key: str) -> None:
        self._count("delete")
        obstore.delete(self.inner, key)

    # -- writing ---------------------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self._put(key, data, "create")
        except AlreadyExistsError:
            return False
        except (BaseError, OSError) as exc:
            if _is_conflict(exc):  # S3's 409 ConditionalRequestConflict: a lost race
                return False
            raise self._fail("conditional PUT", key, exc, ambiguous=True) from None
        return True

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data, "overwrite")
        except (BaseError, OSError) as exc:
            raise self._fail("PUT", key, exc, ambiguous=True) from None

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        sink = pa.BufferOutputStream()
        yield sink
        self.put(key, sink.getvalue().to_pybytes())  # multipart above obstore's chunk size

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
        try:
            return self._get(key, options)
        except FileNotFoundError:
            raise self._missing(key) from None
        except (BaseError, OSError) as exc:
            if options and "416" in str(exc):  # a range starting at or past the end
                return b"", 0, 0
            raise self._fail("GET", key, exc) from None

    def open_input(self, key: str) -> pa.NativeFile:
        f = RangedFile(self, key)
        f.prefetch()  # FileNotFoundError now, as other stores raise it
        return pa.PythonFile(f, mode="r")

    def list(self, prefix: str) -> list[str]:
        base = prefix.strip("/")
        try:
            res = self._list(base or None)
        except FileNotFoundError:
            return []
        except (BaseError, OSError) as exc:
            raise self._fail("LIST", base, exc) from None
        cut = len(base) + 1 if base else 0
        names = [p[cut:].rstrip("/") for p in res.get("common_prefixes", [])]
        names += [o["path"][cut:] for o in res.get("objects", [])]
        return [n for n in names if n]

    def stat(self, key: str) -> ObjectMeta | None:
        try:
            meta = self._head(key)
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise self._fail("HEAD", key, exc) from None
        return ObjectMeta(size=int(meta["size"]), mtime=meta["last_modified"].timestamp())

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        try:
            self._delete(key)
        except FileNotFoundError:
            return False
        except (BaseError, OSError) as exc:
            raise self._fail("DELETE", key, exc) from None
        return True


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
