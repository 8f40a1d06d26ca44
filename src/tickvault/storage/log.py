"""The commit log: one JSON entry per version, published by exclusive create.

Layout of a table folder::

    <table>/_log/00000000000000000007.json              version 7
    <table>/_log/00000000000000000050.checkpoint.json   full state at version 50
    <table>/_log/_last_checkpoint                        hint: newest checkpoint version
    <table>/<uuid>.parquet                               immutable data files

An entry is written to a temporary file, flushed, then *hard-linked* to its final name.
``link`` fails if the name exists, so two writers can never both publish version N and a
reader never sees a half-written entry. The loser re-reads the log and retries as N+1.

Each ``add`` action carries the file's statistics (per series value: min/max timestamp and
row count), so listing tickers, watermarks and freshness never open a data file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CorruptDatabaseError

log = logging.getLogger(__name__)

LOG_DIR = "_log"
CHECKPOINT_HINT = "_last_checkpoint"
FORMAT_VERSION = 1


def entry_name(version: int) -> str:
    return f"{version:020d}.json"


def checkpoint_name(version: int) -> str:
    return f"{version:020d}.checkpoint.json"


def fsync_dir(path: Path) -> None:
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


@dataclass
class FileInfo:
    """What the log knows about one data file."""

    path: str  # relative to the table folder
    rows: int
    bytes: int
    seq: int  # commit order of the rows (the version that first committed them)
    seq_col: bool  # rows carry their own seq in the _tv_seq column (compaction output)
    level: int
    tickers: list[str]
    min_ts: list[int]
    max_ts: list[int]
    ticker_rows: list[int]
    added: int = 0  # version that added this file
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _offsets: Any = field(default=None, repr=False, compare=False)

    @property
    def min_ticker(self) -> str:
        return self.tickers[0]

    @property
    def max_ticker(self) -> str:
        return self.tickers[-1]

    @functools.cached_property
    def start(self) -> int:
        return min(self.min_ts)

    @functools.cached_property
    def end(self) -> int:
        return max(self.max_ts)

    def offsets(self) -> Any:
        """First row of each ticker in the file (files are sorted by ticker)."""
        if self._offsets is None:
            import numpy as np

            rows = np.asarray(self.ticker_rows, dtype=np.int64)
            self._offsets = np.cumsum(rows) - rows
        return self._offsets

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self.tickers)}
        return self._index

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "seq": self.seq,
            "seq_col": self.seq_col,
            "level": self.level,
            "stats": {
                "tickers": self.tickers,
                "min": self.min_ts,
                "max": self.max_ts,
                "rows": self.ticker_rows,
            },
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], added: int) -> FileInfo:
        s = d["stats"]
        return cls(
            path=d["path"],
            rows=int(d["rows"]),
            bytes=int(d.get("bytes", 0)),
            seq=int(d["seq"]),
            seq_col=bool(d.get("seq_col", False)),
            level=int(d.get("level", 0)),
            tickers=list(s["tickers"]),
            min_ts=list(s["min"]),
            max_ts=list(s["max"]),
            ticker_rows=list(s["rows"]),
            added=int(d.get("added", added)),
        )


@dataclass
class TableState:
    """The set of live files at one version, plus the table's creation metadata."""

    version: int = -1
    files: dict[str, FileInfo] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # derived indexes, shared by copies of the same version (replaced, never mutated, when
    # ``files`` changes), so an index is built once per version however many reads pin it
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def copy(self) -> TableState:
        return TableState(self.version, dict(self.files), dict(self.meta), self._derived)

    def apply(self, version: int, entry: dict[str, Any]) -> None:
        if version != self.version + 1:
            raise CorruptDatabaseError(
                f"log entry {version} applied on top of version {self.version}"
            )
        if entry.get("operation") == "create":
            self.meta = dict(entry.get("meta", {}))
        for path in entry.get("remove", []):
            self.files.pop(path, None)
        for d in entry.get("add", []):
            info = FileInfo.from_json(d, added=version)
            self.files[info.path] = info
        self.version = version
        self._derived = {}

    def by_ticker(self) -> dict[str, list[str]]:
        idx: dict[str, list[str]] | None = self._derived.get("by_ticker")
        if idx is None:
            idx = {}
            for f in sorted(self.files.values(), key=lambda f: f.path):
                for t in f.tickers:
                    idx.setdefault(t, []).append(f.path)
            self._derived["by_ticker"] = idx
        return idx

    def to_json(self) -> dict[str, Any]:
        files = []
        for f in self.files.values():
            d = f.to_json()
            d["added"] = f.added
            files.append(d)
        return {
            "format": FORMAT_VERSION,
            "version": self.version,
            "meta": self.meta,
            "files": files,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableState:
        st = cls(version=int(d["version"]), meta=dict(d.get("meta", {})))
        for fd in d.get("files", []):
            info = FileInfo.from_json(fd, added=int(fd.get("added", 0)))
            st.files[info.path] = info
        return st


class LogStore:
    """Reads and publishes the log of one table folder."""

    def __init__(self, table_dir: Path, *, fsync: bool = True) -> None:
        self.table_dir = table_dir
        self.dir = table_dir / LOG_DIR
        self.fsync = fsync

    # -- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        """Has version 0 ever been published? (Old entries may have been pruned.)"""
        return (self.dir / entry_name(0)).exists() or (self.dir / CHECKPOINT_HINT).exists()

    def read_entry(self, version: int) -> dict[str, Any] | None:
        path = self.dir / entry_name(version)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(data)
        except ValueError as exc:
            raise CorruptDatabaseError(
                f"log entry {path} is not valid JSON ({exc}); run `tickvault verify`"
            ) from exc
        if not isinstance(entry, dict):
            raise CorruptDatabaseError(f"log entry {path} is not a JSON object")
        return entry

    def list_versions(self) -> list[int]:
        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        for name in names:
            if name.endswith(".json") and not name.endswith(".checkpoint.json"):
                stem = name[:-5]
                if stem.isdigit():
                    out.append(int(stem))
        return sorted(out)

    def list_checkpoints(self) -> list[int]:
        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        for name in names:
            if name.endswith(".checkpoint.json"):
                stem = name[: -len(".checkpoint.json")]
                if stem.isdigit():
                    out.append(int(stem))
        return sorted(out)

    def read_checkpoint(self, version: int) -> TableState | None:
        path = self.dir / checkpoint_name(version)
        try:
            with open(path, "rb") as fh:
                return TableState.from_json(json.loads(fh.read()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
            return None

    def checkpoint_hint(self) -> int | None:
        try:
            with open(self.dir / CHECKPOINT_HINT, encoding="utf-8") as fh:
                return int(json.load(fh)["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, upto: int | None = None, base: TableState | None = None) -> TableState:
        """The state at version ``upto`` (None: the newest), from ``base`` if given."""
        state = base.copy() if base is not None else None
        if state is None or state.version < 0 or (upto is not None and upto < state.version):
            state = self._start_state(upto)
        elif upto is None or upto > state.version:
            nxt = self.read_entry(state.version + 1)
            if nxt is not None:  # new commits: if far behind, jump to the newest checkpoint
                hint = self.checkpoint_hint()
                if hint is not None and hint > state.version and (upto is None or hint <= upto):
                    state = self._start_state(upto)
                else:
                    state.apply(state.version + 1, nxt)
        v = state.version + 1
        while upto is None or v <= upto:
            entry = self.read_entry(v)
            if entry is None:
                break
            state.apply(v, entry)
            v += 1
        if upto is not None and state.version < upto:
            from ..errors import StorageError

            raise StorageError(
                f"version {upto} does not exist in {self.table_dir}; newest is {state.version}"
            )
        return state

    def _start_state(self, upto: int | None) -> TableState:
        hint = self.checkpoint_hint()
        if hint is not None and (upto is None or hint <= upto):
            st = self.read_checkpoint(hint)
            if st is not None:
                return st
        for c in reversed(self.list_checkpoints()):
            if upto is None or c <= upto:
                st = self.read_checkpoint(c)
                if st is not None:
                    return st
        return TableState()

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        v = start
        while True:
            entry = self.read_entry(v)
            if entry is None:
                return
            yield v, entry
            v += 1

    # -- writing ---------------------------------------------------------------------------

    def _write_tmp(self, data: bytes, tag: str) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{tag}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        return tmp

    def publish(self, version: int, entry: dict[str, Any]) -> bool:
        """Publish ``entry`` as ``version``. False if another writer already did."""
        data = json.dumps(entry, separators=(",", ":")).encode()
        tmp = self._write_tmp(data, f"entry-{version}")
        final = self.dir / entry_name(version)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # a filesystem without hard links: fall back to an exclusive create
            return self._publish_excl(final, data)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if self.fsync:
            fsync_dir(self.dir)
        return True

    def _publish_excl(self, final: Path, data: bytes) -> bool:
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

    def write_checkpoint(self, state: TableState) -> None:
        data = json.dumps(state.to_json(), separators=(",", ":")).encode()
        tmp = self._write_tmp(data, f"checkpoint-{state.version}")
        os.replace(tmp, self.dir / checkpoint_name(state.version))
        hint = self._write_tmp(json.dumps({"version": state.version}).encode(), "hint")
        # the hint only ever moves forward
        current = self.checkpoint_hint()
        if current is None or current < state.version:
            os.replace(hint, self.dir / CHECKPOINT_HINT)
        else:
            with contextlib.suppress(OSError):
                os.unlink(hint)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def referenced_paths(entries: Iterable[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for e in entries:
        for d in e.get("add", []):
            out.add(d["path"])
    return out
