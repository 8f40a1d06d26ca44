"""ParquetDB: the public face of the storage engine."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import DatabaseNotFound, StorageError, TickvaultError, ValidationError
from ..schema import TableSchema, get_schema, table_names
from . import compaction
from .log import LOG_DIR, FileInfo, TableState, now_iso
from .table import CommitResult, StorageOptions, Table, committed, overlaps_any

log = logging.getLogger(__name__)

MARKER = "tickvault.json"

TimeLike = str | dt.date | dt.datetime | pd.Timestamp | None


def to_ns(value: TimeLike, *, end: bool = False, name: str = "start") -> int | None:
    """A timestamp bound in ns since the epoch (UTC). A bare date as ``end`` means the
    end of that day, so ``end='2024-03-31'`` includes intraday bars of the 31st."""
    if value is None:
        return None
    date_only = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if isinstance(value, str):
        s = value.strip()
        date_only = len(s) == 10 and s[4] == "-" and s[7] == "-"
    out_of_range = ValidationError(
        f"{name}={value!r} is outside the supported range 1677-09-21 .. 2262-04-11 "
        f"(timestamps are stored in nanoseconds since 1970)",
        column=name,
    )
    try:
        ts = pd.Timestamp(value)
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:  # e.g. year 99999
        raise out_of_range from exc
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{name}={value!r} is not a date or timestamp; use e.g. '2024-03-01' or "
            f"'2024-03-01T14:30:00Z'",
            column=name,
        ) from exc
    if ts is pd.NaT:
        raise ValidationError(f"{name}={value!r} is not a date", column=name)
    try:
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except OverflowError as exc:
        raise out_of_range from exc
    if not _NS_MIN.date() <= ts.date() <= _NS_MAX.date():
        raise out_of_range
    if end and date_only:  # up to the last ns of that day (computed in us: no overflow)
        next_day = ts.as_unit("us") + pd.Timedelta(days=1)
        if next_day <= _NS_MAX:
            return int(next_day.as_unit("ns").value) - 1
        ts = _NS_MAX
    # the first and last storable days hold a few minutes that do not fit: clamp
    return int(min(max(ts, _NS_MIN), _NS_MAX).as_unit("ns").value)


_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")


class Snapshot:
    """One pinned version of one table: every read through it sees exactly that version."""

    def __init__(self, table: Table, state: TableState) -> None:
        self._table = table
        self._state = state

    @property
    def version(self) -> int:
        return self._state.version

    @property
    def files(self) -> list[str]:
        return sorted(self._state.files)

    def read_arrow(
        self,
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        if isinstance(tickers, str):
            tickers = [tickers]
        tk = None if tickers is None else [str(t) for t in tickers]
        s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
        if s is not None and e is not None and s > e:
            raise ValidationError(f"start={start!r} is after end={end!r}", column="start")
        return self._table.read(self._state, tickers=tk, start=s, end=e, columns=columns)

    def read_table(self, **kwargs: Any) -> pd.DataFrame:
        return _to_pandas(self.read_arrow(**kwargs))

    def tickers(self) -> list[str]:
        return sorted(self._state.by_ticker())

    def watermarks(self) -> dict[str, pd.Timestamp]:
        """Last timestamp per ticker, from the log's statistics (no data file is opened)."""
        cached = self._state._derived.get("watermarks")
        if cached is not None:
            return dict(cached)
        best: dict[str, int] = {}
        for f in self._state.files.values():
            for t, m in zip(f.tickers, f.max_ts, strict=True):
                if m > best.get(t, -(2**63)):
                    best[t] = m
        names = sorted(best)
        stamps = pd.DatetimeIndex(np.array([best[t] for t in names], dtype="M8[ns]"), tz="UTC")
        result = dict(zip(names, stamps, strict=True))
        self._state._derived["watermarks"] = result
        return dict(result)

    def first_timestamps(self) -> dict[str, pd.Timestamp]:
        best: dict[str, int] = {}
        for f in self._state.files.values():
            for t, m in zip(f.tickers, f.min_ts, strict=True):
                if m < best.get(t, 2**63 - 1):
                    best[t] = m
        return {t: pd.Timestamp(best[t], tz="UTC") for t in sorted(best)}

    def stored_rows(self) -> int:
        return sum(f.rows for f in self._state.files.values())

    def stored_bytes(self) -> int:
        return sum(f.bytes for f in self._state.files.values())


def _to_pandas(t: pa.Table) -> pd.DataFrame:
    return t.to_pandas(split_blocks=True)


class ParquetDB:
    """A Parquet price database that cannot lose or corrupt data.

    ``ParquetDB(path)`` opens the database at ``path``, creating it unless ``create=False``.
    Many instances on one path — in threads, processes or machines sharing a filesystem —
    is normal use: commits serialise through exclusive creation of log entries.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "db",
        *,
        create: bool = True,
        options: StorageOptions | None = None,
        **option_overrides: Any,
    ) -> None:
        self.path = Path(path)
        opts = options or StorageOptions()
        if option_overrides:
            valid = set(StorageOptions.__dataclass_fields__)
            bad = sorted(set(option_overrides) - valid)
            if bad:
                from ..errors import ConfigError

                raise ConfigError(f"unknown ParquetDB option(s) {bad}; valid: {sorted(valid)}")
            opts = replace(opts, **option_overrides)
        self.options = opts
        if not (self.path / MARKER).exists():
            if not create:
                raise DatabaseNotFound(
                    f"no tickvault database at {str(self.path)!r} (expected {MARKER}); "
                    f"create one with `tickvault backfill` or ParquetDB(path)"
                )
            if self.path.exists() and not self.path.is_dir():
                raise StorageError(f"{str(self.path)!r} exists and is not a folder")
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    json.dump({"format": 1, "created": now_iso()}, fh)
        self._tables: dict[str, Table] = {}

    # -- plumbing --------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.options = state["options"]
        self._tables = {}

    def __repr__(self) -> str:
        return f"ParquetDB({str(self.path)!r})"

    def _table(self, name: str) -> Table:
        t = self._tables.get(name)
        if t is None:
            schema: TableSchema = get_schema(name)
            t = self._tables.setdefault(name, Table(self.path, schema, self.options))
        return t

    def close(self) -> None:
        for t in self._tables.values():
            t.close()

    def __enter__(self) -> ParquetDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        """Tables that exist in this database."""
        return [n for n in table_names() if (self.path / n / LOG_DIR).is_dir()]

    # -- writes ----------------------------------------------------------------------------

    def upsert(self, table: str, data: Any) -> CommitResult:
        """Insert or replace rows by key; the newest commit wins, and within one batch the
        last occurrence wins. Validation happens before anything is written."""
        t = self._table(table)
        clean, runs = t.schema.validate_runs(data)
        if clean.num_rows == 0:
            return CommitResult(table=table, version=t.refresh().version, rows=0)
        files = t.write_files(clean, runs)
        info = {"rows": clean.num_rows, "tickers": sum(len(f.tickers) for f in files)}
        version = self._publish(t, files, info)
        return CommitResult(
            table=table, version=version, rows=clean.num_rows, files=tuple(f.path for f in files)
        )

    def _publish(self, t: Table, files: list[FileInfo], info: dict[str, Any]) -> int:
        """Commit freshly written files as one upsert (deleting them if that fails), then
        compact if due. Files go to level 1 when they fit between the level-1 ranges and
        are not small; otherwise to level 0, where compaction places them."""
        ranges = sorted((f.min_ticker, f.max_ticker) for f in files)
        disjoint = all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))

        def prepare(state: TableState, version: int) -> None:
            l1 = sorted((f.min_ticker, f.max_ticker) for f in state.files.values() if f.level != 0)
            level = 1
            if (
                not disjoint
                or any(overlaps_any(lo, hi, l1) for lo, hi in ranges)
                or (l1 and any(f.rows < t.opts.target_file_rows // 8 for f in files))
            ):
                level = 0
            for f in files:
                f.level = level

        try:
            version = t.commit(operation="upsert", add=files, info=info, prepare=prepare)
        except BaseException as exc:
            if not committed(exc):
                t.discard_files(files)
            raise
        if t.opts.auto_compact:
            self._auto_compact(t)
        return version

    def upsert_prices(self, df: Any) -> CommitResult:
        """Upsert price bars (ticker, timestamp, open, high, low, close, volume[, adj_close])."""
        return self.upsert("prices", df)

    def _auto_compact(self, t: Table) -> None:
        for _ in range(4):
            try:
                if compaction.run(t, full=False) is None:
                    return
            except TickvaultError as exc:  # the upsert itself succeeded
                log.warning("%s: automatic compaction failed: %s", t.name, exc)
                return
            except OSError as exc:
                log.warning("%s: automatic compaction failed: %s", t.name, exc)
                return

    def compact(self, table: str = "prices") -> CommitResult | None:
        """Merge level-0 files into the sorted level-1 layout (one commit). None if there
        was nothing to do."""
        t = self._table(table)
        result = None
        for _ in range(20):
            st = t.refresh()
            if not any(f.level == 0 for f in st.files.values()):
                return result
            r = compaction.run(t, full=True)
            if r is not None:
                result = r
        return result

    # -- reads -----------------------------------------------------------------------------

    def snapshot(self, table: str = "prices", version: int | None = None) -> Snapshot:
        t = self._table(table)
        return Snapshot(t, t.state_at(version))

    def read_arrow(
        self,
        name: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
    ) -> pa.Table:
        """Rows of one pinned version, sorted by key, keys unique, start/end inclusive."""
        return self.snapshot(name, version).read_arrow(
            tickers=tickers, start=start, end=end, columns=columns
        )

    def read_table(
        self,
        name: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`read_arrow`, as a pandas DataFrame (timestamps tz-aware UTC)."""
        return _to_pandas(
            self.read_arrow(
                name, tickers=tickers, start=start, end=end, columns=columns, version=version
            )
        )

    def tickers(self, table: str = "prices") -> list[str]:
        return self.snapshot(table).tickers()

    def watermarks(self, table: str = "prices") -> dict[str, pd.Timestamp]:
        return self.snapshot(table).watermarks()

    @property
    def version(self) -> int:
        """The prices table's newest version (-1 before the first write)."""
        return self._table("prices").refresh().version

    def table_version(self, table: str) -> int:
        return self._table(table).refresh().version

    def history(self, table: str = "prices", *, limit: int | None = None) -> list[dict[str, Any]]:
        """Versions, oldest first: time, operation, rows and files added/removed."""
        t = self._table(table)
        newest = t.refresh().version
        first = 0 if limit is None else max(0, newest - limit + 1)
        out = []
        for v in range(first, newest + 1):
            e = t.log.read_entry(v)
            if e is None:
                continue
            info = e.get("info", {})
            out.append(
                {
                    "version": v,
                    "timestamp": e.get("timestamp"),
                    "operation": e.get("operation"),
                    "rows": info.get("rows", sum(a.get("rows", 0) for a in e.get("add", []))),
                    "files_added": len(e.get("add", [])),
                    "files_removed": len(e.get("remove", [])),
                    "info": info,
                }
            )
        return out

    def info(self) -> dict[str, Any]:
        """Tables, tickers, stored rows, date range, versions and bytes — from the log."""
        out: dict[str, Any] = {"path": str(self.path), "tables": {}}
        for name in self.tables():
            snap = self.snapshot(name)
            wm = snap.watermarks()
            first = snap.first_timestamps()
            out["tables"][name] = {
                "version": snap.version,
                "files": len(snap.files),
                "tickers": len(wm),
                "stored_rows": snap.stored_rows(),
                "bytes": snap.stored_bytes(),
                "first": min(first.values()).isoformat() if first else None,
                "last": max(wm.values()).isoformat() if wm else None,
            }
        return out

    # -- run history -----------------------------------------------------------------------

    def record_run(self, run: dict[str, Any]) -> str:
        """Store a pipeline run record (JSON-serialisable dict); returns its run id."""
        from .runs import record_run

        return record_run(self.path, run)

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored run records, newest first."""
        from .runs import list_runs

        return list_runs(self.path, limit)

    # -- maintenance -----------------------------------------------------------------------

    def verify(self, table: str | None = None) -> Any:
        """Open every live data file and check it against the log. See VerifyReport."""
        from .maintenance import verify

        return verify(self, table)

    def vacuum(
        self,
        *,
        dry_run: bool = True,
        retention: dt.timedelta = dt.timedelta(hours=1),
        table: str | None = None,
    ) -> Any:
        """List (dry run) or delete files no version needs any more: orphans of crashed
        writers and files removed by compaction, once older than ``retention``."""
        from .maintenance import vacuum

        return vacuum(self, dry_run=dry_run, retention=retention, table=table)

    def repair(self, *, dry_run: bool = True, table: str | None = None) -> Any:
        """Fix what verify found where possible (as ordinary commits)."""
        from .maintenance import repair

        return repair(self, dry_run=dry_run, table=table)

    # -- parallel-write mode (pipeline) ----------------------------------------------------

    def write_files(self, table: str, data: Any) -> list[FileInfo]:
        """Validate ``data`` and write it as new immutable data files, *without* committing.

        For parallel writers (e.g. Dask workers): each writes its own uniquely named files
        and returns the ``FileInfo`` list (picklable) to one client, which publishes them with
        :meth:`commit_files`. Until then no version references the files; if they are never
        committed they are orphans that ``verify`` reports and ``vacuum`` removes.
        """
        t = self._table(table)
        clean, runs = t.schema.validate_runs(data)
        if clean.num_rows == 0:
            return []
        return t.write_files(clean, runs)

    def commit_files(
        self,
        table: str,
        files: Sequence[FileInfo],
        *,
        info: dict[str, Any] | None = None,
    ) -> CommitResult:
        """Publish files written by :meth:`write_files` as one atomic upsert commit.

        Same semantics as :meth:`upsert` (the commit assigns the files' seq; rows of a later
        commit win; among files of one commit, keys must not repeat across files — files of
        one ``write_files`` call never do, and different tickers never collide). Levels are
        chosen like :meth:`upsert` does. On failure the files are deleted.
        """
        t = self._table(table)
        add = [replace(f, level=0, seq=-1) for f in files]
        rows = sum(f.rows for f in add)
        if not add:
            return CommitResult(table=table, version=t.refresh().version, rows=0)
        _reject_shared_keys(add)
        version = self._publish(
            t, add, {"rows": rows, "tickers": sum(len(f.tickers) for f in add), **(info or {})}
        )
        return CommitResult(
            table=table, version=version, rows=rows, files=tuple(f.path for f in add)
        )


def _reject_shared_keys(files: Sequence[Any]) -> None:
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
