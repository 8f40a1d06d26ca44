"""verify, vacuum and repair."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import CorruptDatabaseError
from ..keys import column_runs, is_sorted_unique, same_as_previous
from ..schema import TableSchema
from .files import SEQ_COLUMN
from .log import LOG_DIR, now_iso
from .reads import merge_newest
from .state import FileInfo, TableState
from .table import Table


@dataclass
class Problem:
    table: str
    path: str
    kind: str  # missing | unreadable | schema | row_count | stats | duplicate_keys | unsorted | log
    detail: str

    def __str__(self) -> str:
        return f"{self.table}/{self.path}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    ok: bool
    files_checked: int
    rows_checked: int
    problems: list[Problem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    #: not damage (``ok`` stays true), but worth a look: e.g. a failed background compaction
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [asdict(p) for p in self.problems]
        return d


def _scan_log(t: Table) -> tuple[dict[str, int], dict[str, float], list[Problem]]:
    """path -> version that added it; path -> time it was removed; log problems."""
    added: dict[str, int] = {}
    removed_at: dict[str, float] = {}
    problems: list[Problem] = []
    versions = t.log.list_versions()
    expected = 0
    for v in versions:
        if v != expected:
            problems.append(Problem(t.name, f"{LOG_DIR}/{v:020d}.json", "log", f"gap before {v}"))
        expected = v + 1
        try:
            e = t.log.read_entry(v)
        except CorruptDatabaseError as exc:
            problems.append(Problem(t.name, f"{LOG_DIR}/{v:020d}.json", "log", str(exc)))
            continue
        if e is None:
            continue
        for d in e.get("add", []):
            added.setdefault(d["path"], v)
        stamp = _entry_time(e)
        for p in e.get("remove", []):
            removed_at[p] = stamp
    return added, removed_at, problems


def _entry_time(e: dict[str, Any]) -> float:
    try:
        return dt.datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return 0.0


def check_file(t: Table, f: FileInfo) -> list[Problem]:
    """Open one data file, decode every page and compare it with what the log says about
    it: columns and types, row count, sort order, unique keys, per-ticker statistics.
    The one file verifier (``verify``, ``repair`` and the pipeline's read-back)."""
    key = t.key(f.path)
    try:
        with t.store.open_input(key) as src:
            data = pq.read_table(src)
    except FileNotFoundError:
        return [Problem(t.name, f.path, "missing", "the log lists it but it is not on disk")]
    except Exception as exc:  # any decoding failure means unreadable
        return [Problem(t.name, f.path, "unreadable", f"{type(exc).__name__}: {exc}")]
    return check_table(t.name, t.schema, f, data)


def check_table(name: str, schema: TableSchema, f: FileInfo, data: pa.Table) -> list[Problem]:
    out = []
    expected = schema.arrow_schema
    got = data.schema
    want_names = [*expected.names, *([SEQ_COLUMN] if f.seq_col else [])]
    if got.names != want_names or any(
        got.field(n).type != expected.field(n).type for n in expected.names if n in got.names
    ):
        out.append(
            Problem(name, f.path, "schema", f"columns {got.names} / types differ from {want_names}")
        )
        return out
    if data.num_rows != f.rows:
        out.append(
            Problem(name, f.path, "row_count", f"{data.num_rows} rows, the log says {f.rows}")
        )
    key = list(schema.key)
    runs = column_runs(data, schema.series_column)
    if data.num_rows > 1 and not is_sorted_unique(data, key, runs):
        order = pc.sort_indices(data, sort_keys=[(k, "ascending") for k in key])
        if not np.array_equal(order.to_numpy(), np.arange(data.num_rows)):
            out.append(Problem(name, f.path, "unsorted", "rows are not sorted by the key"))
            data = data.take(order)
        same = same_as_previous(data, key)
        if same.any():
            out.append(
                Problem(name, f.path, "duplicate_keys", f"{int(same.sum())} duplicate key(s)")
            )
    if not out:
        tickers, starts, ends = runs.values.to_pylist(), runs.starts, runs.ends
        ts = data.column(schema.time_column).combine_chunks().cast(pa.int64()).to_numpy()
        if (
            tickers != f.tickers
            or ts[starts].tolist() != f.min_ts
            or ts[ends - 1].tolist() != f.max_ts
            or (ends - starts).tolist() != f.ticker_rows
        ):
            out.append(Problem(name, f.path, "stats", "tickers or time ranges differ from the log"))
    return out


def verify(tables: Sequence[Table]) -> VerifyReport:
    report = VerifyReport(ok=True, files_checked=0, rows_checked=0)
    for t in tables:
        name = t.name
        # list the folder BEFORE reading the log: a file committed meanwhile is then in
        # the (newer) state we classify against, never mistaken for an orphan
        listing = sorted(t.store.list(name))
        try:
            state = t.refresh()
        except CorruptDatabaseError as exc:
            report.problems.append(Problem(name, LOG_DIR, "log", str(exc)))
            continue
        report.versions[name] = state.version
        failure = last_error(t)
        if failure is not None:
            report.warnings.append(
                f"{name}: background compaction failed at {failure.get('time')} "
                f"(pid {failure.get('pid')}): {failure.get('error')}; it is retried after the "
                f"next commit, or run `tickvault compact`"
            )
        added, _, log_problems = _scan_log(t)
        report.problems.extend(log_problems)
        for f in sorted(state.files.values(), key=lambda f: f.path):
            report.files_checked += 1
            report.rows_checked += f.rows
            report.problems.extend(check_file(t, f))
        live = set(t.refresh().files) | set(state.files)
        for entry in listing:
            if entry.endswith(".parquet") and entry not in live:
                if entry in added:
                    report.unreferenced.append(f"{name}/{entry}")
                else:
                    report.orphans.append(f"{name}/{entry}")
            elif t.store.is_temporary(entry):
                report.orphans.append(f"{name}/{entry}")
    report.ok = not report.problems
    return report


@dataclass
class VacuumReport:
    dry_run: bool
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_recent: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RemovalIndex:
    """When each file left its table (the time of the commit that removed it), read from
    the log incrementally: a long-lived reclaimer reads each entry once."""

    def __init__(self) -> None:
        self.upto = -1
        self.removed_at: dict[str, float] = {}

    def update(self, t: Table) -> dict[str, float]:
        v = self.upto + 1
        if v == 0:
            versions = t.log.list_versions()
            v = versions[0] if versions else 0
        while True:
            try:
                entry = t.log.read_entry(v)
            except CorruptDatabaseError:
                break  # verify reports it; nothing after it is trusted here
            if entry is None:
                break
            stamp = _entry_time(entry)
            for p in entry.get("remove", []):
                self.removed_at[p] = stamp
            v += 1
        self.upto = v - 1
        return self.removed_at


def vacuum(
    tables: Sequence[Table],
    *,
    dry_run: bool,
    retention: dt.timedelta,
    pinned: Callable[[Table], set[str]] = lambda t: set(),
) -> VacuumReport:
    report = VacuumReport(dry_run=dry_run)
    for t in tables:
        seconds = retention.total_seconds()
        vacuum_table(
            t,
            report,
            retention=seconds,
            orphan_age=seconds,
            removed_at=RemovalIndex().update(t),
            pinned=pinned(t),
        )
    return report


def vacuum_table(
    t: Table,
    report: VacuumReport,
    *,
    retention: float,
    orphan_age: float,
    removed_at: dict[str, float],
    pinned: set[str],
) -> float | None:
    """List (``report.dry_run``) or delete the files of ``t`` that no version within
    ``retention`` seconds needs: files removed by a commit older than that, and orphans
    (never committed; temporary files of crashed writers) older than ``orphan_age`` — an
    in-flight writer may be about to commit a young one. Files in ``pinned`` (read by a
    snapshot that is still open) are kept. Returns when the oldest file kept for its age
    becomes deletable (seconds since the epoch), or None."""
    now = time.time()
    # list first, then read the state: a file committed while vacuum runs is in that newer
    # state, and every deletion re-checks the newest state
    listing = t.store.list(t.name)
    log_listing = t.log.names()
    state = t.refresh()
    candidates: list[tuple[str, str, float, float]] = []  # (rel path, name, time, keep for)
    for entry in listing:
        if entry.endswith(".parquet") and entry not in state.files:
            if entry in removed_at:  # superseded (compaction, repair)
                stamp = max(_mtime(t, entry), removed_at[entry])
                candidates.append((entry, entry, stamp, retention))
            else:
                candidates.append((entry, entry, _mtime(t, entry), orphan_age))
        elif t.store.is_temporary(entry):
            candidates.append((entry, entry, _mtime(t, entry), orphan_age))
    for entry in log_listing:
        if t.store.is_temporary(entry):
            rel = f"{LOG_DIR}/{entry}"
            candidates.append((rel, entry, _mtime(t, rel), orphan_age))
    next_due: float | None = None
    for rel, entry, stamp, keep in sorted(candidates):
        shown = f"{t.name}/{rel}"
        if stamp > now - keep or entry in pinned:
            report.kept_recent.append(shown)
            due = stamp + keep if entry not in pinned else max(stamp + keep, now + 60.0)
            next_due = due if next_due is None else min(next_due, due)
            continue
        if entry in t.refresh().files:
            continue  # committed while vacuum ran: live, keep it
        meta = t.store.stat(t.key(rel))
        if meta is None:
            continue
        report.files.append(shown)
        report.bytes += meta.size
        if not report.dry_run:
            t.footers.discard(t.key(rel))
            t.store.delete(t.key(rel))
            removed_at.pop(entry, None)
    return next_due


def _mtime(t: Table, rel: str) -> float:
    meta = t.store.stat(t.key(rel))
    return 0.0 if meta is None else meta.mtime


@dataclass
class RepairReport:
    dry_run: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    unrepairable: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def repair(tables: Sequence[Table], *, dry_run: bool) -> RepairReport:
    """Drop live files that are missing or unreadable (their rows are lost; the report
    says how many) and rewrite readable files whose content differs from the log
    (unsorted, duplicate keys, wrong statistics) — each as an ordinary commit."""
    report = RepairReport(dry_run=dry_run)
    vr = verify(tables)
    by_name = {t.name: t for t in tables}
    for p in vr.problems:
        if p.kind == "log":
            report.unrepairable.append(str(p))
    by_table: dict[str, dict[str, list[Problem]]] = {}
    for p in vr.problems:
        if p.kind != "log":
            by_table.setdefault(p.table, {}).setdefault(p.path, []).append(p)
    for name, files in by_table.items():
        t = by_name[name]
        state = t.refresh()
        for path, problems in sorted(files.items()):
            f = state.files.get(path)
            if f is None:
                continue
            kinds = {p.kind for p in problems}
            if kinds & {"missing", "unreadable"}:
                action = {
                    "table": name,
                    "path": path,
                    "action": "drop",
                    "rows_lost": f.rows,
                    # what the file held, from the log: which series and time ranges a
                    # re-fetch must cover (some rows may also be held by newer files)
                    "lost": [
                        {
                            "ticker": tk,
                            "first": _iso_ns(lo),
                            "last": _iso_ns(hi),
                            "rows": n,
                        }
                        for tk, lo, hi, n in zip(
                            f.tickers, f.min_ts, f.max_ts, f.ticker_rows, strict=True
                        )
                    ],
                }
                report.actions.append(action)
                if not dry_run:
                    v = t.commit(operation="repair", add=[], remove=[path], info=action)
                    report.versions.append(v)
                continue
            action = {"table": name, "path": path, "action": "rewrite", "problems": sorted(kinds)}
            report.actions.append(action)
            if dry_run:
                continue
            new = _rewrite(t, f, state)
            if new is None:
                report.unrepairable.append(f"{name}/{path}: cannot be cast to the table schema")
                continue
            v = t.commit(operation="repair", add=[new], remove=[path], info=action)
            report.versions.append(v)
    return report


def _rewrite(t: Table, f: FileInfo, state: TableState) -> FileInfo | None:
    """Rewrite a readable file whose content differs from the log: cast and check the
    values, resolve duplicate keys and sort — without changing which row wins. Rows of a
    compacted file keep their own commit order (``_tv_seq``): duplicates resolve to the
    highest seq and the column stays aligned with its rows."""
    with t.store.open_input(t.key(f.path)) as src:
        data = pq.read_table(src)
    key = list(t.schema.key)
    try:
        if SEQ_COLUMN in data.column_names:
            seq = data.column(SEQ_COLUMN).cast(pa.int64())
            values = data.drop_columns([SEQ_COLUMN])
            t.schema.check_columns(values)
            cast = t.schema.cast(values)
            resolved = merge_newest([cast.append_column(SEQ_COLUMN, seq)], key)
            values = resolved.drop_columns([SEQ_COLUMN])
            clean = t.schema.validate(values)  # sorted and unique: keeps the order
            if clean.num_rows != resolved.num_rows:
                return None
            clean = clean.append_column(SEQ_COLUMN, resolved.column(SEQ_COLUMN))
        else:
            clean = t.schema.validate(data)  # like one batch: the last occurrence wins
    except Exception:
        return None
    new = t.write_file(clean)
    new.seq = f.seq
    new.level = f.level
    return new


# -- the record of a failed background compaction ----------------------------------------

#: Where the last background failure of a table is recorded (cleared by a success).
ERROR_KEY = "_compaction.json"


def record_error(t: Table, message: str) -> None:
    record = {"error": message, "time": now_iso(), "pid": os.getpid()}
    # e.g. the disk is full: then the caller's log line is all there is
    with contextlib.suppress(OSError):
        t.store.put(t.key(ERROR_KEY), json.dumps(record).encode())


def clear_error(t: Table) -> None:
    with contextlib.suppress(OSError):  # a failure recorded earlier, maybe by another process
        t.store.delete(t.key(ERROR_KEY))


def last_error(t: Table) -> dict[str, Any] | None:
    """The recorded failure of the last background compaction of ``t`` (any process)."""
    try:
        data = t.store.get(t.key(ERROR_KEY))
    except FileNotFoundError:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _iso_ns(ns: int) -> str:
    import pandas as pd

    return pd.Timestamp(ns, tz="UTC").isoformat()


def lost_in_repairs(table: Table) -> dict[str, tuple[str, str]]:
    """Tickers whose rows repairs dropped (from the log's ``repair`` commits), each with the
    widest ``(first, last)`` range lost: what ``backfill --tickers-from-repair`` re-fetches."""
    out: dict[str, tuple[str, str]] = {}
    newest = table.refresh().version
    for v in range(newest + 1):
        e = table.log.read_entry(v)
        if e is None or e.get("operation") != "repair":
            continue
        for lost in (e.get("info") or {}).get("lost") or ():
            t, lo, hi = lost["ticker"], lost["first"], lost["last"]
            if t in out:
                lo, hi = min(lo, out[t][0]), max(hi, out[t][1])
            out[t] = (lo, hi)
    return out
