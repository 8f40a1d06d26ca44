"""The one door to the bytes of a database: every read, write, listing and deletion under a
database root goes through a :class:`Store`.

Everything above it — the commit log, data files, checkpoints, the marker, run records,
verify/vacuum/repair — speaks only to this interface, so a new home for a database (an
object store) is a second implementation, not a rewrite (docs/decisions/006-storage-interface.md).

The interface has no rename, no fsync and no hard links, because object stores have none:

* :meth:`Store.put_if_absent` is the commit primitive: it creates an object only if no
  object has that key, atomically (local disk: temporary file, fsync, hard link; object
  stores: a conditional put).
* :meth:`Store.put` and :meth:`Store.writer` publish whole objects atomically: a reader sees
  the old object, or none, or the complete new one — never a part.
* :meth:`Store.flush` is a durability barrier: the objects written under a prefix are
  durable before anything that refers to them is published (local disk: fsync the folder;
  object stores: nothing, a put is durable when it returns).

Keys are ``/``-separated paths relative to the root (``prices/_log/00000000000000000007.json``).
Temporary names (local disk only) end in :data:`TEMP_SUFFIX`, never in ``.parquet``.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from ...errors import ConfigError

#: Suffix of the temporary objects a local writer creates before publishing.
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class ObjectMeta:
    """Size in bytes and last-modified time (seconds since the epoch) of one object."""

    size: int
    mtime: float


class Store(abc.ABC):
    """Every byte of one database root. Implementations are thread-safe."""

    #: Where the root is, for messages (a folder path or a URL without credentials).
    location: str
    #: Can a create that reports "already exists", or fails, have been our own create?
    #: (Object stores: a client retries a create whose answer was lost.) The commit then
    #: reads the entry back and compares its commit id (decision 009).
    ambiguous_creates: bool = False
    #: Is every call a round trip over a network (a bucket)? Then files are read by exact
    #: byte ranges, many at once, and a new handle lists the log's tail in one request
    #: instead of probing entry after entry; on a local disk, by open files and the cores.
    remote: bool = False

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data`` unless it exists; False if it did (nothing
        changed). Two callers racing for one key: exactly one gets True."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` with ``data``, atomically."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; FileNotFoundError if there is none."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer at the end of the object)."""

    def list_after(self, prefix: str, after: str) -> list[str]:
        """Names of the objects directly under ``prefix`` that sort after ``after``,
        sorted. An object store asks for exactly those (one request for a short tail of a
        long folder, where :meth:`list` would page through all of it)."""
        return sorted(n for n in self.list(prefix) if n > after)

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Names of the objects and folders directly under ``prefix`` ('' is the root),
        unsorted; [] when there is nothing there."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; False if it did not exist."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectMeta | None:
        """Size and modification time of ``key``; None if it does not exist."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        """A stream for a new object ``key`` (a unique name that does not exist yet).
        The object appears, complete, only when the block exits without an error; after an
        error nothing is left behind."""

    @abc.abstractmethod
    def open_input(self, key: str) -> pa.NativeFile:
        """A random-access stream over ``key`` (the caller closes it);
        FileNotFoundError if there is none."""

    @abc.abstractmethod
    def flush(self, prefix: str) -> None:
        """Make the objects created under ``prefix`` durable before something that refers
        to them is published."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def identity(self) -> tuple[object, ...]:
        """Equal for two stores of the same database (per-process registries key on it)."""
        return (type(self).__name__, self.location)

    def is_temporary(self, name: str) -> bool:
        """Is ``name`` a writer's temporary object (an orphan if its writer died)?"""
        return name.endswith(TEMP_SUFFIX)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections or handles."""

    def check_root(self) -> None:  # noqa: B027 - optional hook
        """Raise if the place the root lives in is missing (a bucket: BucketNotFound).
        Asked when a database is not found, so the message can say why."""

    def free_bytes(self) -> int | None:
        """Bytes still free where the root lives; None when unknown or unbounded (object
        stores). A compaction that would not fit there does not start (issue 25)."""
        return None


#: URL schemes that name an object store (everything else is a local path).
URL_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl", "memory")


def is_url(path: object) -> bool:
    """Does ``path`` name an object store (``s3://``, ``gs://``, ``az://``, ...)?"""
    if not isinstance(path, str) or "://" not in path:
        return False
    return path.split("://", 1)[0].lower() in URL_SCHEMES


#: a path that starts like a URL (``ftp://x``, ``s3:/bucket``); one letter is a drive (C:/)
_SCHEME_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):[/\\]")


def check_location(path: object) -> None:
    """ConfigError for a path that looks like a URL but is not one tickvault opens (an
    unknown scheme, ``s3:/bucket`` with one slash): it would silently become a local
    folder named ``ftp:/...``."""
    if not isinstance(path, str) or is_url(path):
        return
    m = _SCHEME_LIKE.match(path)
    if m is None:
        return
    scheme = m.group(1).lower()
    supported = ", ".join(f"{s}://" for s in URL_SCHEMES)
    if scheme in URL_SCHEMES:
        rest = path[len(scheme) + 1 :].lstrip("/\\")
        raise ConfigError(
            f"{path!r} is not a valid {scheme}:// URL: did you mean {f'{scheme}://{rest}'!r}? "
            f"(supported: {supported}, or a local folder)"
        )
    raise ConfigError(
        f"{path!r}: unknown URL scheme {scheme + '://'!r}; a database is a local folder or "
        f"one of {supported} (for a folder whose name has a colon, write ./{path})"
    )


def display_url(url: str) -> str:
    """``url`` without userinfo, query or fragment (where credentials hide). Only the
    ``abfs[s]://container@account...`` form keeps its user part: it is the container."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username and parts.password is None and parts.scheme.lower() in ("abfs", "abfss"):
        host = f"{parts.username}@{host}"
    return f"{parts.scheme}://{host}{parts.path}"


def join(*parts: str) -> str:
    """A key from parts (empty parts are skipped)."""
    return "/".join(p.strip("/") for p in parts if p)


class LocalStore(Store):
    """A folder on a local or shared POSIX filesystem.

    Every publish writes a temporary file (name ends in ``.tmp``), flushes it, fsyncs it
    (``fsync=True``) and then links or renames it to its final name, so a final name always
    holds a complete file. :meth:`put_if_absent` hard-links, which fails when the name
    exists — the exclusive create that commits rely on (decision 001); filesystems without
    hard links fall back to ``O_CREAT | O_EXCL``.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.location = str(self.root)
        self._identity = ("local", os.path.realpath(self.root))

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def identity(self) -> tuple[object, ...]:
        return self._identity

    # -- writing ---------------------------------------------------------------------------

    def _tmp(self, final: Path) -> Path:
        return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")

    def _write_tmp(self, final: Path, data: bytes) -> Path:
        tmp = self._tmp(final)
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        try:
            with fh:
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
        except BaseException:
            _unlink(tmp)
            raise
        return tmp

    def put_if_absent(self, key: str, data: bytes) -> bool:
        final = self.path(key)
        tmp = self._write_tmp(final, data)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            return self._create_exclusive(final, data)  # no hard links on this filesystem
        finally:
            _unlink(tmp)
        if self.fsync:
            fsync_dir(final.parent)
        return True

    def _create_exclusive(self, final: Path, data: bytes) -> bool:
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        return True

    def put(self, key: str, data: bytes) -> None:
        final = self.path(key)
        tmp = self._write_tmp(final, data)
        try:
            os.replace(tmp, final)
        except BaseException:
            _unlink(tmp)
            raise

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        final = self.path(key)
        tmp = self._tmp(final)
        try:
            try:
                raw = pa.OSFile(str(tmp), "wb")
            except FileNotFoundError:
                final.parent.mkdir(parents=True, exist_ok=True)
                raw = pa.OSFile(str(tmp), "wb")
            # A native Arrow stream, not a Python file object: the Parquet encoder then
            # never takes the GIL to write a page, so files written in parallel threads
            # really encode in parallel (decision 004).
            sink = pa.BufferedOutputStream(raw, buffer_size=1 << 20)
            try:
                yield sink
            finally:
                sink.close()
            if self.fsync:
                fsync_path(tmp)
            os.rename(tmp, final)  # a unique new name: never replaces another file
        except BaseException:
            _unlink(tmp)  # a failed write leaves nothing behind
            raise

    def flush(self, prefix: str) -> None:
        if self.fsync:
            fsync_dir(self.path(prefix))

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return None  # the root does not exist yet, or the filesystem will not say

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        with open(self.path(key), "rb") as fh:
            return fh.read()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        with open(self.path(key), "rb") as fh:
            fh.seek(start)
            return fh.read(length)

    def open_input(self, key: str) -> pa.NativeFile:
        # no memory mapping: a mapped file truncated behind our back would crash the
        # process with SIGBUS instead of raising
        return pa.OSFile(str(self.path(key)), "rb")

    def list(self, prefix: str) -> list[str]:
        try:
            return os.listdir(self.path(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def stat(self, key: str) -> ObjectMeta | None:
        try:
            st = os.stat(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectMeta(size=st.st_size, mtime=st.st_mtime)

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def __repr__(self) -> str:
        return f"LocalStore({self.location!r})"


class MemoryStore(Store):
    """Objects in a dict: for tests and demos, and the proof that nothing above the
    interface needs a filesystem (no rename, no fsync, no links). Read like a bucket, so
    tests take the bucket's read paths without a server."""

    remote = True

    def __init__(self, location: str = "memory://") -> None:
        self.location = location
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def identity(self) -> tuple[object, ...]:
        return ("memory", id(self))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (bytes(data), time.time())
            return True

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = (bytes(data), time.time())

    def get(self, key: str) -> bytes:
        with self._lock:
            item = self._objects.get(key)
        if item is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", f"{self.location}{key}")
        return item[0]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.get(key)[start : start + length]

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        sink = pa.BufferOutputStream()
        yield sink
        self.put(key, sink.getvalue().to_pybytes())

    def open_input(self, key: str) -> pa.NativeFile:
        return pa.BufferReader(self.get(key))

    def list(self, prefix: str) -> list[str]:
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        with self._lock:
            keys = list(self._objects)
        return sorted({k[len(base) :].split("/", 1)[0] for k in keys if k.startswith(base)})

    def stat(self, key: str) -> ObjectMeta | None:
        with self._lock:
            item = self._objects.get(key)
        return None if item is None else ObjectMeta(size=len(item[0]), mtime=item[1])

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._objects.pop(key, None) is not None

    def flush(self, prefix: str) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryStore({self.location!r})"


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new names) durable; best effort where folders cannot be
    opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a closed file's data to disk (fsync applies to the file, whichever
    descriptor asks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
