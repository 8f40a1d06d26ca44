"""What the log knows: one data file's statistics (:class:`FileInfo`) and the set of live
files at one version (:class:`TableState`)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import CorruptDatabaseError, ValidationError

FORMAT_VERSION = 1


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
    #: the level-1 period [start, end) ns every row lies in (decision 015); None: all time
    #: (level-1 files written before periods existed, and any level-0 file)
    period: tuple[int, int] | None = None
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
            **({"period": list(self.period)} if self.period is not None else {}),
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
            period=(int(d["period"][0]), int(d["period"][1])) if d.get("period") else None,
        )


@dataclass
class TableState:
    """The set of live files at one version, plus the table's creation metadata."""

    version: int = -1
    files: dict[str, FileInfo] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: provenance: ticker -> the source (name, non-secret options) of the newest commit that
    #: wrote it with a ``source`` in its ``info`` (pipeline commits); kept in checkpoints, so
    #: it survives log pruning like the files' statistics
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    # derived indexes, shared by copies of the same version (replaced, never mutated, when
    # ``files`` changes), so an index is built once per version however many reads pin it
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def copy(self) -> TableState:
        return TableState(
            self.version, dict(self.files), dict(self.meta), dict(self.sources), self._derived
        )

    def apply(self, version: int, entry: dict[str, Any]) -> None:
        if version != self.version + 1:
            raise CorruptDatabaseError(
                f"log entry {version} applied on top of version {self.version}"
            )
        if entry.get("operation") == "create":
            self.meta = dict(entry.get("meta", {}))
        for path in entry.get("remove", []):
            self.files.pop(path, None)
        source = (entry.get("info") or {}).get("source")
        for d in entry.get("add", []):
            info = FileInfo.from_json(d, added=version)
            self.files[info.path] = info
            if isinstance(source, dict):
                for t in info.tickers:
                    self.sources[t] = source
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
            "sources": self.sources,
            "files": files,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableState:
        st = cls(
            version=int(d["version"]),
            meta=dict(d.get("meta", {})),
            sources=dict(d.get("sources", {})),
        )
        for fd in d.get("files", []):
            info = FileInfo.from_json(fd, added=int(fd.get("added", 0)))
            st.files[info.path] = info
        return st


def reject_shared_keys(files: Sequence[FileInfo]) -> None:
    """Files of one commit share its commit order, so no key may be in two of them:
    which row won would be arbitrary. The log statistics make this check cheap."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for f in files:
        for t, lo, hi in zip(f.tickers, f.min_ts, f.max_ts, strict=True):
            spans.setdefault(t, []).append((lo, hi, f.path))
    for t, items in spans.items():
        if len(items) < 2:
            continue
        items.sort()
        for (_, hi_a, a), (lo_b, _, b) in itertools.pairwise(items):
            if lo_b <= hi_a:
                raise ValidationError(
                    f"files {a} and {b} of one commit both hold rows of ticker {t!r} in "
                    f"overlapping time ranges; commit them separately (the later commit "
                    f"wins) or write them in one write_files call",
                    column="ticker",
                )
