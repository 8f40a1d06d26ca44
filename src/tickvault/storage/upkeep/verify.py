"""verify: every live file read back and checked against the log, the log itself, orphans;
and the record of a failed background compaction that verify reports."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import CorruptDatabaseError, ObjectStoreError, ValidationError
from ...keys import column_runs, is_sorted_unique, same_as_previous
from ...schema import TableSchema
from ...times import now_iso
from ..core.file_reader import FileMismatch, read_whole
from ..core.file_writer import SEQ_COLUMN, is_data_file_name
from ..core.log import LOG_DIR
from ..core.state import FileInfo
from ..core.table import Table


@dataclass
class Problem:
    table: str
    path: str
    # missing | unreadable | foreign | schema | row_count | stats | values | duplicate_keys |
    # unsorted | log
    kind: str
    # (the pipeline's read-back also reports "unchecked": the store could not serve it)
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
            missing = f"{expected}" if v == expected + 1 else f"{expected}..{v - 1}"
            problems.append(
                Problem(
                    t.name,
                    f"{LOG_DIR}/{expected:020d}.json",
                    "log",
                    f"missing (gap before {v}): commit(s) {missing} lost; restore the entry "
                    f"from a backup, or see what `tickvault repair` would do",
                )
            )
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
    """Open one data file, decode every page (checking each page's CRC where the file has
    them) and compare it with what the log says about it: that it is the file the log
    names (its footer's name), columns and types, row count, sort order, unique keys,
    per-ticker statistics, and the row rules a write enforces (prices > 0, low <= open,
    close <= high, ...). The one file verifier (``verify``, ``repair`` and the
    pipeline's read-back)."""
    key = t.key(f.path)
    try:
        data = read_whole(t.store, key, checksums=True)
    except FileNotFoundError:
        return [Problem(t.name, f.path, "missing", "the log lists it but it is not on disk")]
    except ObjectStoreError:
        raise  # the store failed to serve it (network, permission): no verdict on the file
    except FileMismatch as exc:
        return [Problem(t.name, f.path, "foreign", str(exc))]
    except Exception as exc:  # any decoding failure (a page's CRC too) means unreadable
        return [Problem(t.name, f.path, "unreadable", f"{type(exc).__name__}: {exc}")]
    return check_table(t.name, t.schema, f, data)


def check_table(name: str, schema: TableSchema, f: FileInfo, data: pa.Table) -> list[Problem]:
    out = []
    expected = schema.arrow_schema
    got = data.schema
    # a file written before a late column was added lacks it (it reads as nulls)
    written = [n for n in expected.names if n in got.names or n not in schema.late_columns]
    want_names = [*written, *([SEQ_COLUMN] if f.seq_col else [])]
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
            or not np.array_equal(ts[starts], f.min_ts)
            or not np.array_equal(ts[ends - 1], f.max_ts)
            or not np.array_equal(ends - starts, f.ticker_rows)
        ):
            out.append(Problem(name, f.path, "stats", "tickers or time ranges differ from the log"))
    if not out:
        out.extend(check_values(name, schema, f, data))
    return out


def check_values(name: str, schema: TableSchema, f: FileInfo, data: pa.Table) -> list[Problem]:
    """The row rules a write enforces (``schema.checks``: prices > 0 and finite, low <=
    open, close <= high, volume >= 0, ...) re-applied to a file's decoded rows: a value
    damaged on disk in a file without page checksums decodes without error but breaks
    them. One problem naming the first rule broken."""
    if schema.checks is None or data.num_rows == 0:
        return []
    values = data.drop_columns([SEQ_COLUMN]) if SEQ_COLUMN in data.column_names else data
    try:
        schema.checks(values, schema)
    except ValidationError as exc:
        return [Problem(name, f.path, "values", f"a row breaks the table's rules: {exc}")]
    return []


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
        foreign = [e for e in listing if e.endswith(".parquet") and not is_data_file_name(e)]
        if foreign:
            report.warnings.append(
                f"{name}: {len(foreign)} Parquet file(s) tickvault did not write "
                f"({', '.join(sorted(foreign)[:3])}{' ...' if len(foreign) > 3 else ''}): "
                f"tickvault neither reads nor deletes them; move them out of the database "
                f"folder, or bring their bars in with `tickvault import PATH`"
            )
        for entry in listing:
            if entry in foreign:
                continue
            if entry.endswith(".parquet") and entry not in live:
                if entry in added:
                    report.unreferenced.append(f"{name}/{entry}")
                else:
                    report.orphans.append(f"{name}/{entry}")
            elif t.store.is_temporary(entry):
                report.orphans.append(f"{name}/{entry}")
    report.ok = not report.problems
    return report


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
