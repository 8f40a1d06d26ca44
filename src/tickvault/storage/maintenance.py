"""verify, vacuum and repair."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import CorruptDatabaseError
from ..schema import TableSchema, same_as_previous
from .files import SEQ_COLUMN, ticker_runs, write_data_file
from .log import LOG_DIR, FileInfo, TableState
from .table import Table, merge_newest

if TYPE_CHECKING:
    from .db import ParquetDB


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
    """Open one live file and compare it with what the log says about it."""
    path = t.dir / f.path
    schema = t.schema
    if not path.exists():
        return [Problem(t.name, f.path, "missing", "the log lists it but it is not on disk")]
    try:
        data = pq.read_table(path)
    except Exception as exc:  # any decoding failure means unreadable
        return [Problem(t.name, f.path, "unreadable", f"{type(exc).__name__}: {exc}")]
    return check_table(t.name, schema, f, data)


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
    if data.num_rows > 1:
        order = pc.sort_indices(data, sort_keys=[(k, "ascending") for k in key])
        if not np.array_equal(order.to_numpy(), np.arange(data.num_rows)):
            out.append(Problem(name, f.path, "unsorted", "rows are not sorted by the key"))
            data = data.take(order)
        same = same_as_previous(data, key)
        if same.any():
            out.append(
                Problem(name, f.path, "duplicate_keys", f"{int(same.sum())} duplicate key(s)")
            )
    tickers, starts, ends = ticker_runs(data, schema.series_column)
    if not out:
        ts = data.column(schema.time_column).combine_chunks().cast(pa.int64()).to_numpy()
        if (
            tickers != f.tickers
            or ts[starts].tolist() != f.min_ts
            or ts[ends - 1].tolist() != f.max_ts
            or (ends - starts).tolist() != f.ticker_rows
        ):
            out.append(Problem(name, f.path, "stats", "tickers or time ranges differ from the log"))
    return out


def verify(db: ParquetDB, table: str | None) -> VerifyReport:
    report = VerifyReport(ok=True, files_checked=0, rows_checked=0)
    for name in [table] if table else db.tables():
        t = db._table(name)
        # list the folder BEFORE reading the log: a file committed meanwhile is then in
        # the (newer) state we classify against, never mistaken for an orphan
        listing = sorted(os.listdir(t.dir)) if t.dir.exists() else []
        try:
            state = t.refresh()
        except CorruptDatabaseError as exc:
            report.problems.append(Problem(name, LOG_DIR, "log", str(exc)))
            continue
        report.versions[name] = state.version
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
            elif entry.endswith(".tmp"):
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


def vacuum(
    db: ParquetDB, *, dry_run: bool, retention: dt.timedelta, table: str | None
) -> VacuumReport:
    report = VacuumReport(dry_run=dry_run)
    cutoff = time.time() - retention.total_seconds()
    for name in [table] if table else db.tables():
        t = db._table(name)
        # list first, then read the state and the log: a file committed while vacuum runs
        # is in that newer state, and every deletion re-checks the newest state
        listing = os.listdir(t.dir)
        log_listing = os.listdir(t.dir / LOG_DIR)
        state = t.refresh()
        _, removed_at, _ = _scan_log(t)
        candidates = []
        for entry in listing:
            p = t.dir / entry
            if entry.endswith(".parquet") and entry not in state.files:
                candidates.append((p, max(_mtime(p), removed_at.get(entry, 0.0))))
            elif entry.endswith(".tmp"):
                candidates.append((p, _mtime(p)))
        for entry in log_listing:
            if entry.endswith(".tmp"):
                p = t.dir / LOG_DIR / entry
                candidates.append((p, _mtime(p)))
        for p, stamp in sorted(candidates):
            rel = f"{name}/{p.relative_to(t.dir)}"
            if stamp > cutoff:
                report.kept_recent.append(rel)
                continue
            if p.name in t.refresh().files:
                continue  # committed while vacuum ran: live, keep it
            report.files.append(rel)
            try:
                report.bytes += p.stat().st_size
                if not dry_run:
                    t.footers.discard(p)
                    os.unlink(p)
            except FileNotFoundError:
                pass
    return report


def _mtime(p: Any) -> float:
    try:
        return float(os.stat(p).st_mtime)
    except OSError:
        return 0.0


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


def repair(db: ParquetDB, *, dry_run: bool, table: str | None) -> RepairReport:
    """Drop live files that are missing or unreadable (their rows are lost; the report
    says how many) and rewrite readable files whose content differs from the log
    (unsorted, duplicate keys, wrong statistics) — each as an ordinary commit."""
    report = RepairReport(dry_run=dry_run)
    vr = verify(db, table)
    for p in vr.problems:
        if p.kind == "log":
            report.unrepairable.append(str(p))
    by_table: dict[str, dict[str, list[Problem]]] = {}
    for p in vr.problems:
        if p.kind != "log":
            by_table.setdefault(p.table, {}).setdefault(p.path, []).append(p)
    for name, files in by_table.items():
        t = db._table(name)
        state = t.refresh()
        for path, problems in sorted(files.items()):
            f = state.files.get(path)
            if f is None:
                continue
            kinds = {p.kind for p in problems}
            if kinds & {"missing", "unreadable"}:
                action = {"table": name, "path": path, "action": "drop", "rows_lost": f.rows}
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
    data = pq.read_table(t.dir / f.path)
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
    new = write_data_file(t.dir, clean, t.schema, t.opts.write)
    new.seq = f.seq
    new.level = f.level
    return new
