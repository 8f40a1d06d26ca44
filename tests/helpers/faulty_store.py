"""A :class:`~tickvault.storage.Store` that injects I/O faults: it wraps a real store
(``LocalStore``/``MemoryStore``), delegates every call to it, and raises a chosen exception
on a chosen operation for keys matching a pattern, so a test reaches the fault through the
one door every byte of a database goes through instead of patching private names::

    store = FaultyStore(LocalStore(path))
    db = ParquetDB(path, store=store)
    full = store.fail("writer", "prices/*.parquet", enospc(), after=2)
    with pytest.raises(OSError):
        db.upsert_prices(...)
    assert full.fired == 1

:meth:`FaultyStore.on` runs an action instead of raising (another writer commits in the
middle of a compaction, just before it writes its output). A fault may be limited to some
threads with ``when`` (a predicate called on the calling thread).

Operations are the Store's methods — ``put_if_absent``, ``put``, ``get``, ``get_range``,
``list``, ``delete``, ``stat``, ``open_input``, ``flush``, ``writer`` (opening a stream for a
new object) — plus ``write`` (each write to such a stream: a disk that fills while a file is
written) and ``publish`` (the end of a ``writer`` block: the stream is complete and is about
to appear). ``exists`` goes through ``stat``. ``list`` and ``flush`` match the prefix.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from tickvault.storage import Store
from tickvault.storage.core.store import ObjectMeta

OPERATIONS = frozenset(
    {
        "put_if_absent",
        "put",
        "get",
        "get_range",
        "list",
        "delete",
        "stat",
        "open_input",
        "flush",
        "writer",
        "write",
        "publish",
    }
)

Raised = BaseException | type[BaseException] | Callable[[str, str], BaseException]


def enospc(key: str = "") -> OSError:
    """The error a full disk gives."""
    return OSError(errno.ENOSPC, "No space left on device", key or None)


@dataclass
class Fault:
    """Raise ``exc`` (or run ``action``) on ``ops`` for keys matching ``pattern`` (fnmatch)
    on threads where ``when()`` holds: the first ``after`` matching calls go through, then
    the next ``times`` fire (``None``: every one)."""

    ops: frozenset[str]
    pattern: str
    exc: Raised | None = None
    action: Callable[[], object] | None = None
    times: int | None = 1
    after: int = 0
    when: Callable[[], bool] | None = None
    #: matching calls seen so far, and how many of them fired
    seen: int = 0
    fired: int = 0
    #: (operation, key) of each call that fired
    hits: list[tuple[str, str]] = field(default_factory=list)
    #: what ``action`` returned, once per firing
    results: list[object] = field(default_factory=list)

    def matches(self, op: str, key: str) -> bool:
        return (
            op in self.ops
            and fnmatch.fnmatchcase(key, self.pattern)
            and (self.when is None or self.when())
        )

    def take(self) -> bool:
        """Count one matching call; should it raise?"""
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times is None or self.fired < self.times

    def error(self, op: str, key: str) -> BaseException:
        exc = self.exc
        if exc is None:
            return enospc(key)
        if isinstance(exc, BaseException):
            return exc
        if isinstance(exc, type):
            return exc(f"injected fault: {op} {key}")
        return exc(op, key)


class FaultyStore(Store):
    """Every call goes to ``inner``; :meth:`fail` adds a fault. Thread-safe like the store
    it wraps (faults are counted under a lock). ``calls`` records every (operation, key)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.location = inner.location
        self.ambiguous_creates = inner.ambiguous_creates
        self.remote = inner.remote
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- the faults ------------------------------------------------------------------------

    def fail(
        self,
        op: str | tuple[str, ...],
        pattern: str = "*",
        exc: Raised | None = None,
        *,
        times: int | None = 1,
        after: int = 0,
        when: Callable[[], bool] | None = None,
    ) -> Fault:
        """Make ``op`` (one operation, several, or ``"*"`` for all) raise ``exc`` (default:
        a full disk) for keys matching ``pattern``; returns the fault, whose ``fired``
        tells how often it raised."""
        return self._add(Fault(_ops(op), pattern, exc=exc, times=times, after=after, when=when))

    def on(
        self,
        op: str | tuple[str, ...],
        pattern: str,
        action: Callable[[], object],
        *,
        times: int | None = 1,
        after: int = 0,
        when: Callable[[], bool] | None = None,
    ) -> Fault:
        """Run ``action()`` just before ``op`` on a key matching ``pattern`` goes to the
        real store (then the operation goes on); its results are in the fault's
        ``results``. The action's own calls through this store do not trigger it again."""
        fault = Fault(_ops(op), pattern, action=action, times=times, after=after, when=when)
        return self._add(fault)

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """Remove every fault (the disk has space again)."""
        with self._lock:
            self.faults.clear()

    def _check(self, op: str, key: str) -> None:
        if getattr(self._local, "in_action", False):
            return  # an action's own store calls
        fired = None
        with self._lock:
            self.calls.append((op, key))
            for fault in self.faults:
                if fault.matches(op, key) and fault.take():
                    fault.fired += 1
                    fault.hits.append((op, key))
                    fired = fault
                    break
        if fired is None:
            return
        if fired.action is None:
            raise fired.error(op, key)
        self._local.in_action = True
        try:
            fired.results.append(fired.action())
        finally:
            self._local.in_action = False

    # -- the Store interface, delegated ----------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check("put_if_absent", key)
        return self.inner.put_if_absent(key, data)

    def put(self, key: str, data: bytes) -> None:
        self._check("put", key)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self._check("get", key)
        return self.inner.get(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self._check("get_range", key)
        return self.inner.get_range(key, start, length)

    def list(self, prefix: str) -> list[str]:
        self._check("list", prefix)
        return self.inner.list(prefix)

    def delete(self, key: str) -> bool:
        self._check("delete", key)
        return self.inner.delete(key)

    def stat(self, key: str) -> ObjectMeta | None:
        self._check("stat", key)
        return self.inner.stat(key)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[pa.NativeFile]:
        self._check("writer", key)
        with self.inner.writer(key) as sink:
            if any("write" in f.ops for f in self.faults):
                yield pa.PythonFile(_CheckedSink(sink, lambda: self._check("write", key)), "w")
            else:
                yield sink
            # raised inside the inner block, so the inner store cleans up as for any error
            self._check("publish", key)

    def open_input(self, key: str) -> pa.NativeFile:
        self._check("open_input", key)
        return self.inner.open_input(key)

    def flush(self, prefix: str) -> None:
        self._check("flush", prefix)
        self.inner.flush(prefix)

    def free_bytes(self) -> int | None:
        return self.inner.free_bytes()

    def identity(self) -> tuple[object, ...]:
        return self.inner.identity()  # the same database as the store it wraps

    def is_temporary(self, name: str) -> bool:
        return self.inner.is_temporary(name)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r})"


def _ops(op: str | tuple[str, ...]) -> frozenset[str]:
    ops = OPERATIONS if op == "*" else frozenset((op,) if isinstance(op, str) else op)
    unknown = ops - OPERATIONS
    if unknown:
        raise ValueError(f"unknown store operation(s) {sorted(unknown)}")
    return ops


class _CheckedSink(io.RawIOBase):
    """A write-only stream over ``sink`` that asks ``check`` before every write."""

    def __init__(self, sink: pa.NativeFile, check: Callable[[], None]) -> None:
        super().__init__()
        self._sink = sink
        self._check = check

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self._check()
        self._sink.write(b)
        return len(memoryview(b))

    def tell(self) -> int:
        return self._sink.tell()

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:  # the inner store's writer closes the real stream
        super().close()
