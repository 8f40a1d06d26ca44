"""What the log knows: one data file's statistics (:class:`FileInfo`) and the set of live
files at one version (:class:`TableState`).

The statistics are one entry per (file, ticker): at minute-bar scale (a file per day, every
file holding every ticker) that is millions of entries, so they are kept compact (decision
021): in memory the times and row counts are numpy arrays and files with the same ticker
list share one list object (and one name → position index); in the log they are written
as ``stats2``: integers as base64 of zlib-compressed little-endian int64, and a checkpoint
writes each distinct ticker list once. Entries written as ``stats`` (plain JSON lists, by
older versions) read unchanged.
"""

from __future__ import annotations

import base64
import itertools
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import CorruptDatabaseError, NewerFormat, ValidationError

#: The log format this version reads and writes (log entries, checkpoints). A change
#: that older versions would misread raises it, and the entries and checkpoints written
#: in it say so (``"format": n``): an older tickvault then refuses the table with
#: NewerFormat instead of misreading it or writing over it (:func:`check_format`).
FORMAT_VERSION = 1


def check_format(value: Any, where: str) -> None:
    """Refuse a log entry or checkpoint whose ``format`` is newer than this version's."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise CorruptDatabaseError(f"{where}: its format {value!r} is not a whole number")
    if value > FORMAT_VERSION:
        raise NewerFormat(
            f"{where} is in log format {value}, written by a newer tickvault; this "
            f"tickvault reads format {FORMAT_VERSION} and changed nothing: upgrade it "
            f"(pip install -U tickvault) to read or write this database",
            format=value,
            supported=FORMAT_VERSION,
        )


_SHARED_MAX = 4096
_shared_lock = threading.Lock()
_lists: OrderedDict[tuple[str, ...], list[str]] = OrderedDict()
_indexes: OrderedDict[int, tuple[list[str], dict[str, int]]] = OrderedDict()


def shared_tickers(names: Sequence[str]) -> list[str]:
    """One list object per distinct ticker list (recently seen ones): a table of day files
    that all hold the same 5,000 tickers keeps one list, not one per file. Never mutate
    the result."""
    key = tuple(names)
    with _shared_lock:
        hit = _lists.get(key)
        if hit is not None:
            _lists.move_to_end(key)
            return hit
        out = list(key)
        _lists[key] = out
        if len(_lists) > _SHARED_MAX:
            _lists.popitem(last=False)
        return out


def _index_of(names: list[str]) -> dict[str, int]:
    """Ticker → position in ``names``, shared by every file holding that same list object."""
    with _shared_lock:
        hit = _indexes.get(id(names))
        if hit is not None and hit[0] is names:
            _indexes.move_to_end(id(names))
            return hit[1]
    index = {t: i for i, t in enumerate(names)}
    with _shared_lock:
        _indexes[id(names)] = (names, index)  # the list is held: its id stays its own
        if len(_indexes) > _SHARED_MAX:
            _indexes.popitem(last=False)
    return index


def pack_ints(values: Any) -> str:
    """int64 values as base64 of zlib-compressed little-endian bytes, prefixed ``z``."""
    raw = np.ascontiguousarray(values, dtype="<i8").tobytes()
    return "z" + base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def unpack_ints(value: Any) -> np.ndarray:
    """The inverse of :func:`pack_ints`; a plain JSON list (older entries) also reads."""
    if isinstance(value, str):
        if not value.startswith("z"):
            raise CorruptDatabaseError(f"log statistics in an unknown encoding: {value[:12]!r}")
        raw = zlib.decompress(base64.b64decode(value[1:]))
        return np.frombuffer(raw, dtype="<i8").astype(np.int64)
    return np.asarray(value, dtype=np.int64).reshape(-1)


def _ints(values: Any) -> np.ndarray:
    arr = (
        np.asarray(values, dtype=np.int64).reshape(-1).view()
    )  # a view: the caller's stays writable
    arr.flags.writeable = False
    return arr


@dataclass
class FileInfo:
    """What the log knows about one data file."""

    path: str  # relative to the table folder
    rows: int
    bytes: int
    seq: int  # commit order of the rows (the version that first committed them)
    seq_col: bool  # rows carry their own seq in the _tv_seq column (compaction output)
    level: int
    #: per ticker of the file, in file order (sorted): name, first and last time (ns) and
    #: row count. The three numeric ones are read-only int64 arrays (lists given to the
    #: constructor are converted); ``tickers`` may be shared with other files.
    tickers: list[str]
    min_ts: np.ndarray = field(compare=False)
    max_ts: np.ndarray = field(compare=False)
    ticker_rows: np.ndarray = field(compare=False)
    added: int = 0  # version that added this file
    #: the level-1 period [start, end) ns every row lies in (decision 015); None: all time
    #: (level-1 files written before periods existed, and any level-0 file)
    period: tuple[int, int] | None = None
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _offsets: Any = field(default=None, repr=False, compare=False)
    #: ``start``/``end``, computed once (the statistics never change): reads, placement and
    #: compaction planning ask for them per file and pair of files
    _span: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.tickers = shared_tickers(self.tickers)
        self.min_ts = _ints(self.min_ts)
        self.max_ts = _ints(self.max_ts)
        self.ticker_rows = _ints(self.ticker_rows)

    @property
    def min_ticker(self) -> str:
        return self.tickers[0]

    @property
    def max_ticker(self) -> str:
        return self.tickers[-1]

    @property
    def start(self) -> int:
        return self.span[0]

    @property
    def end(self) -> int:
        return self.span[1]

    @property
    def span(self) -> tuple[int, int]:
        """(first, last) time of any row, ns."""
        if self._span is None:
            self._span = (int(self.min_ts.min()), int(self.max_ts.max()))
        return self._span

    def offsets(self) -> Any:
        """First row of each ticker in the file (files are sorted by ticker)."""
        if self._offsets is None:
            self._offsets = np.cumsum(self.ticker_rows) - self.ticker_rows
        return self._offsets

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = _index_of(self.tickers)
        return self._index

    def stat_rows(self) -> zip[tuple[str, int, int, int]]:
        """(ticker, first ns, last ns, rows) per ticker of the file, as Python ints."""
        return zip(
            self.tickers,
            self.min_ts.tolist(),
            self.max_ts.tolist(),
            self.ticker_rows.tolist(),
            strict=True,
        )

    def to_json(self, lists: dict[tuple[str, ...], int] | None = None) -> dict[str, Any]:
        """The log's form. ``lists``: a checkpoint's table of distinct ticker lists (the
        file's list is added if new and referred to by position)."""
        tickers: Any = self.tickers
        if lists is not None:
            tickers = {"list": lists.setdefault(tuple(self.tickers), len(lists))}
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "seq": self.seq,
            "seq_col": self.seq_col,
            "level": self.level,
            **({"period": list(self.period)} if self.period is not None else {}),
            "stats2": {
                "tickers": tickers,
                "min": pack_ints(self.min_ts),
                "max": pack_ints(self.max_ts),
                "rows": pack_ints(self.ticker_rows),
            },
        }

    @classmethod
    def from_json(
        cls, d: dict[str, Any], added: int, lists: Sequence[list[str]] | None = None
    ) -> FileInfo:
        s = d.get("stats2")
        if s is None:
            s = d["stats"]  # written by versions before decision 021
        tickers = s["tickers"]
        if isinstance(tickers, dict):
            if lists is None:
                raise CorruptDatabaseError(
                    f"data file {d['path']}: ticker list reference outside a checkpoint"
                )
            tickers = lists[int(tickers["list"])]
        info = cls(
            path=d["path"],
            rows=int(d["rows"]),
            bytes=int(d.get("bytes", 0)),
            seq=int(d["seq"]),
            seq_col=bool(d.get("seq_col", False)),
            level=int(d.get("level", 0)),
            tickers=tickers,
            min_ts=unpack_ints(s["min"]),
            max_ts=unpack_ints(s["max"]),
            ticker_rows=unpack_ints(s["rows"]),
            added=int(d.get("added", added)),
            period=(int(d["period"][0]), int(d["period"][1])) if d.get("period") else None,
        )
        n = len(info.tickers)
        if not n == len(info.min_ts) == len(info.max_ts) == len(info.ticker_rows):
            raise CorruptDatabaseError(
                f"data file {info.path}: the log's statistics name {n} tickers but hold "
                f"{len(info.min_ts)}/{len(info.max_ts)}/{len(info.ticker_rows)} values"
            )
        return info


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
        """Ticker → paths of the files holding it. Files sharing a ticker list (decision
        021) are taken as one group: a ticker's list is its groups' path lists joined
        (shared, not copied, when it is in one group). Never mutate the lists."""
        idx: dict[str, list[str]] | None = self._derived.get("by_ticker")
        if idx is None:
            groups: dict[int, tuple[list[str], list[str]]] = {}
            for f in sorted(self.files.values(), key=lambda f: f.path):
                groups.setdefault(id(f.tickers), (f.tickers, []))[1].append(f.path)
            idx = {}
            for names, paths in groups.values():
                for t in names:
                    have = idx.get(t)
                    idx[t] = paths if have is None else [*have, *paths]
            self._derived["by_ticker"] = idx
        return idx

    def to_json(self) -> dict[str, Any]:
        files = []
        lists: dict[tuple[str, ...], int] = {}
        for f in self.files.values():
            d = f.to_json(lists)
            d["added"] = f.added
            files.append(d)
        return {
            "format": FORMAT_VERSION,
            "version": self.version,
            "meta": self.meta,
            "sources": self.sources,
            "ticker_lists": [list(t) for t in sorted(lists, key=lists.__getitem__)],
            "files": files,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableState:
        st = cls(
            version=int(d["version"]),
            meta=dict(d.get("meta", {})),
            sources=dict(d.get("sources", {})),
        )
        lists = [shared_tickers(names) for names in d.get("ticker_lists", [])]
        for fd in d.get("files", []):
            info = FileInfo.from_json(fd, added=int(fd.get("added", 0)), lists=lists)
            st.files[info.path] = info
        return st


def reject_shared_keys(files: Sequence[FileInfo]) -> None:
    """Files of one commit share its commit order, so no key may be in two of them:
    which row won would be arbitrary. The log statistics make this check cheap."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for f in files:
        for t, lo, hi, _ in f.stat_rows():
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
