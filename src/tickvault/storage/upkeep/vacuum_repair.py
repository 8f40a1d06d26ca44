"""vacuum and repair: deleting what no version needs, and fixing what verify found."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from ...errors import CorruptDatabaseError
from ...keys import column_runs
from ...times import iso, now_iso
from ..core.commit import commit
from ..core.file_reader import read_whole
from ..core.file_writer import SEQ_COLUMN, is_data_file_name
from ..core.log import DAMAGED_DIR, LOG_DIR, checkpoint_name, entry_name
from ..core.read_merge import merge_newest
from ..core.state import FileInfo
from ..core.table import Table
from .verify import Problem, _entry_time, verify


@dataclass
class VacuumReport:
    dry_run: bool
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_recent: list[str] = field(default_factory=list)
    #: files in a table's folder that tickvault did not write (another name): never
    #: deleted, never read; listed so that their owner can move them
    foreign: list[str] = field(default_factory=list)

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


#: Orphans (files no commit references yet) younger than this are kept whatever the
#: retention, unless the caller says no writer is running (``force``): a writer may be
#: about to commit them (a bulk load commits its files when the last one is written), and
#: a temporary file may be one a writer is writing now.
ORPHAN_MIN_AGE = 3600.0


def vacuum(
    tables: Sequence[Table],
    *,
    dry_run: bool,
    retention: float,
    pinned: Callable[[Table], set[str]] = lambda t: set(),
    force: bool = False,
) -> VacuumReport:
    """List or delete what no version within ``retention`` seconds needs, in ``tables``;
    orphans only once :data:`ORPHAN_MIN_AGE` old too, unless ``force``."""
    report = VacuumReport(dry_run=dry_run)
    for t in tables:
        vacuum_table(
            t,
            report,
            retention=retention,
            orphan_age=retention if force else max(retention, ORPHAN_MIN_AGE),
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
    removed_at: dict[str, float] | Callable[[], dict[str, float]],
    pinned: set[str],
) -> float | None:
    """List (``report.dry_run``) or delete the files of ``t`` that no version within
    ``retention`` seconds needs: files removed by a commit older than that, and orphans
    (never committed; temporary files of crashed writers) older than ``orphan_age`` — an
    in-flight writer may be about to commit a young one. Files in ``pinned`` (read by a
    snapshot that is still open) are kept. Returns when the oldest file kept for its age
    becomes deletable (seconds since the epoch), or None. ``removed_at`` may be a callable,
    called (it reads the log) only when a file outside the newest state is found."""
    now = time.time()
    # list first, then read the state: a file committed while vacuum runs is in that newer
    # state, and every deletion re-checks the newest state
    listing = t.store.list(t.name)
    log_listing = t.log.names()
    state = t.refresh()
    candidates: list[tuple[str, str, float, float]] = []  # (rel path, name, time, keep for)
    if callable(removed_at) and any(is_data_file_name(e) and e not in state.files for e in listing):
        removed_at = removed_at()
    elif callable(removed_at):
        removed_at = {}  # nothing outside the state: no need to read the log
    for entry in listing:
        if entry.endswith(".parquet") and entry not in state.files and not is_data_file_name(entry):
            report.foreign.append(f"{t.name}/{entry}")  # someone else's file: not ours to delete
        elif entry.endswith(".parquet") and entry not in state.files:
            if entry in removed_at:  # superseded (compaction, repair)
                stamp = max(_mtime(t, entry), removed_at[entry])
                candidates.append((entry, entry, stamp, retention))
            else:
                candidates.append((entry, entry, _mtime(t, entry), orphan_age))
        elif t.store.is_temporary(entry):
            candidates.append((entry, entry, _mtime(t, entry), _temp_age(entry, orphan_age)))
    for entry in log_listing:
        if t.store.is_temporary(entry):
            rel = f"{LOG_DIR}/{entry}"
            candidates.append((rel, entry, _mtime(t, rel), _temp_age(entry, orphan_age)))
    candidates += _superseded_checkpoints(t, log_listing, retention)
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


def _temp_age(name: str, orphan_age: float) -> float:
    """How old a temporary file must be to go: a local writer names its temporary files
    ``.<final>.<pid>.<token>.tmp``; while that process lives on this machine it may be
    writing the file, so it is kept (:data:`ORPHAN_MIN_AGE` at least, ``force`` or not —
    deleting it would make the writer fail)."""
    parts = name.split(".")
    pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
    if pid is not None and _alive(pid):
        return max(orphan_age, ORPHAN_MIN_AGE)
    return orphan_age


def _alive(pid: int) -> bool:
    """Is process ``pid`` running on this machine?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def _superseded_checkpoints(
    t: Table, log_listing: list[str], retention: float
) -> list[tuple[str, str, float, float]]:
    """Checkpoints a newer one replaced (a full state each, every ``checkpoint_interval``
    versions: on a small disk they add up to a quarter of it, issue 25 item 6), aged from
    when the next one was written. The newest and the hinted one always stay; reading an
    old version without its checkpoint replays the log from an earlier one (or version 0),
    so nothing becomes unreadable."""
    names = {n for n in log_listing if n.endswith(".checkpoint.json")}
    versions = sorted(v for v in t.log.list_checkpoints() if checkpoint_name(v) in names)
    hint = t.log.checkpoint_hint()
    out = []
    for v, newer in itertools.pairwise(versions):
        if v != hint:
            stamp = _mtime(t, f"{LOG_DIR}/{checkpoint_name(newer)}")
            out.append((f"{LOG_DIR}/{checkpoint_name(v)}", checkpoint_name(v), stamp, retention))
    return out


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


#: problems of a data file whose rows cannot be recovered from it: repair drops it (the
#: report lists what it held, to re-fetch). ``foreign``: the file holds another file's
#: bytes (its footer names that file), so rewriting it would put the other file's rows
#: in its place under its commit order. (``values`` — a decoded row the table's rules
#: refuse — is not dropped: it may be a value damaged on disk, or a rule newer than the
#: file; repair says how to replace the rows instead, see :data:`VALUES_ADVICE`.)
DROP_KINDS = frozenset({"missing", "unreadable", "foreign"})
#: what repair says of a file with values the rules refuse (it changes nothing)
VALUES_ADVICE = (
    "not dropped (the value may be damaged on disk, or the rule newer than the file): "
    "fetch the ticker's bars of that range again (`tickvault backfill TICKER --start ... "
    "--end ...`: the newest commit wins, and compaction then rewrites the file), or "
    "`tickvault delete` those rows"
)
#: problems meaning the file holds other rows than the log says: a rewrite keeps what it
#: holds, and reports what the log says it held that it does not, as lost
CONTENT_KINDS = frozenset({"row_count", "stats"})


def repair(tables: Sequence[Table], *, dry_run: bool) -> RepairReport:
    """Drop live files that are missing, unreadable or another file's bytes (their rows
    are lost; the report says which tickers and ranges, and how many rows) and rewrite
    readable files whose content differs from the log (unsorted, duplicate keys, wrong
    statistics) — each as an ordinary commit; a file with values the table's rules refuse
    is left, with advice (:data:`VALUES_ADVICE`). A
    rewrite that cannot give back every row the log says the file held (row count or
    statistics differ) reports those as lost too."""
    report = RepairReport(dry_run=dry_run)
    log_fixed = {t.name for t in tables if repair_log(t, report, dry_run=dry_run)}
    if dry_run and log_fixed and report.actions:
        # verify cannot read past the damage until it is repaired (review)
        last = report.actions[-1]
        last["detail"] = (
            f"{last.get('detail', '')} The data files of {', '.join(sorted(log_fixed))} "
            f"are checked once the log is repaired: run this dry run again after --apply"
        ).strip()
    vr = verify(tables)
    by_name = {t.name: t for t in tables}
    for p in vr.problems:
        if p.kind == "log" and p.table not in log_fixed:
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
            if kinds == {"values"}:
                report.unrepairable.extend(f"{p}; {VALUES_ADVICE}" for p in problems)
                continue
            if kinds & DROP_KINDS:
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
                            "first": iso(lo),
                            "last": iso(hi),
                            "rows": n,
                        }
                        for tk, lo, hi, n in f.stat_rows()
                    ],
                }
                report.actions.append(action)
                if not dry_run:
                    v = commit(t, operation="repair", add=[], remove=[path], info=action)
                    report.versions.append(v)
                continue
            action = {"table": name, "path": path, "action": "rewrite", "problems": sorted(kinds)}
            clean = _cleaned(t, f)
            if clean is not None and kinds & CONTENT_KINDS:
                lost = _lost_by_rewrite(t, f, clean)
                if lost:
                    action["rows_lost"] = sum(x["rows"] for x in lost)
                    action["lost"] = lost
            report.actions.append(action)
            if dry_run:
                continue
            if clean is None:
                report.unrepairable.append(f"{name}/{path}: cannot be cast to the table schema")
                continue
            new = _write_rewrite(t, f, clean)
            v = commit(t, operation="repair", add=[new], remove=[path], info=action)
            report.versions.append(v)
    return report


def _lost_by_rewrite(t: Table, f: FileInfo, clean: pa.Table) -> list[dict[str, Any]]:
    """What the log says ``f`` held that its rewrite ``clean`` does not, per ticker: all
    the log's rows of a ticker the rewrite lacks or holds over another time range, the
    missing count of one it holds over the same range with fewer rows (what
    ``backfill --tickers-from-repair`` re-fetches)."""
    runs = column_runs(clean, t.schema.series_column)
    ts = clean.column(t.schema.time_column).combine_chunks().cast(pa.int64())
    ts_np = ts.to_numpy(zero_copy_only=False)
    have = {
        tk: (int(ts_np[a]), int(ts_np[b - 1]), int(b - a))
        for tk, a, b in zip(
            runs.values.to_pylist(), runs.starts.tolist(), runs.ends.tolist(), strict=True
        )
    }
    lost = []
    for tk, lo, hi, n in f.stat_rows():
        got = have.get(tk)
        missing = n if got is None or got[:2] != (lo, hi) else max(0, n - got[2])
        if missing:
            lost.append({"ticker": tk, "first": iso(lo), "last": iso(hi), "rows": int(missing)})
    return lost


def _write_rewrite(t: Table, f: FileInfo, clean: pa.Table) -> FileInfo:
    """Write ``clean`` (:func:`_cleaned`) as the file replacing ``f``: same commit order,
    level and period."""
    new = t.write_file(clean)
    new.seq = f.seq
    new.level = f.level
    new.period = f.period
    return new


def _cleaned(t: Table, f: FileInfo) -> pa.Table | None:
    """The rows of a readable file whose content differs from the log, cast and checked,
    duplicate keys resolved and sorted — without changing which row wins; None if they
    cannot be. Rows of a compacted file keep their own commit order (``_tv_seq``):
    duplicates resolve to the highest seq and the column stays aligned with its rows."""
    data = read_whole(t.store, t.key(f.path))
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
    return clean


def repair_log(t: Table, report: RepairReport, *, dry_run: bool) -> bool:
    """Find the commits of ``t``'s log that are lost — an entry missing between two others
    (a gap) or unreadable (empty, not JSON) — and report (``dry_run``) or make the loss
    explicit (decision 001, gaps); True if there was any:

    * a damaged NEWEST entry (or a run of them at the end) is set aside: moved to
      ``_log/damaged/`` (never deleted), so the table reads as the version before it and
      the next commit takes its number;
    * a missing or damaged entry with readable ones after it is replaced by an empty
      ``repair`` entry recording that the commit is lost (a damaged one is set aside
      first), so the versions after it become readable again — without its changes.

    Each action says which commit is lost and what it named, if that is readable; files
    no remaining entry names (maybe the lost commit's) are listed with their tickers."""
    versions = t.log.list_versions()
    if not versions:
        return False
    damaged: dict[int, str] = {}
    adds: set[str] = set()
    for v in versions:
        try:
            entry = t.log.read_entry(v)
        except CorruptDatabaseError as exc:  # (a newer format is NewerFormat: not damage)
            damaged[v] = str(exc.__cause__ or "not a log entry of this table")
            continue
        for d in (entry or {}).get("add", []):
            adds.add(d.get("path"))
    readable = [v for v in versions if v not in damaged]
    last_good = readable[-1] if readable else -1
    present = set(versions)
    lost = sorted(
        {v for v in range(versions[0], versions[-1] + 1) if v not in present} | set(damaged)
    )
    if not lost:
        return False
    unnamed = _unnamed_files(t, adds)
    for v in lost:
        name = f"{LOG_DIR}/{entry_name(v)}"
        tail = v > last_good  # damaged newest entries: nothing readable after them
        action: dict[str, Any] = {
            "table": t.name,
            "path": name,
            "action": "set_aside" if tail else ("replace" if v in damaged else "bridge"),
            "lost_version": v,
            "lost": _named_in(t, v) if v in damaged else [],
            "unnamed_files": unnamed,
        }
        why = f"its entry is unreadable: {damaged[v]}" if v in damaged else "its entry is missing"
        if tail:
            action["detail"] = (
                f"commit {v} is lost ({why}); the entry is moved to {LOG_DIR}/{DAMAGED_DIR}/ "
                f"(kept, no longer read) and the table reads as version {v - 1}"
            )
        else:
            action["detail"] = (
                f"commit {v} is lost ({why}); an empty `repair` entry takes its place, "
                f"recording the loss, so versions {v + 1}..{versions[-1]} become readable "
                f"again without commit {v}'s changes (restore the entry from a backup "
                f"instead if you have one)"
            )
        report.actions.append(action)
        if dry_run:
            continue
        if v in damaged:
            _set_aside(t, v)
        if not tail:
            entry = {
                "operation": "repair",
                "timestamp": now_iso(),
                "commit_id": uuid.uuid4().hex,
                "add": [],
                "remove": [],
                "info": {
                    "lost_commit": v,
                    "reason": why,
                    "pid": os.getpid(),
                    # what `backfill --tickers-from-repair` re-fetches: what the entry named,
                    # else the unnamed files (probably the lost commit's; a re-fetch of a
                    # failed write's rows too is harmless)
                    "lost": action["lost"] or [r for u in unnamed for r in u["ranges"]],
                },
            }
            if t.log.publish(v, entry):
                report.versions.append(v)
            else:  # restored meanwhile
                action["detail"] += f"; entry {v} reappeared meanwhile and was kept"
    return True


def _named_in(t: Table, version: int) -> list[dict[str, Any]]:
    """What a damaged entry's ``add`` actions say, if its bytes still parse as JSON."""
    try:
        raw = json.loads(t.store.get(t.key(f"{LOG_DIR}/{entry_name(version)}")))
        out = []
        for d in raw.get("add", []):
            f = FileInfo.from_json(d, added=version)
            out += [
                {"ticker": tk, "first": iso(lo), "last": iso(hi), "rows": n, "file": f.path}
                for tk, lo, hi, n in f.stat_rows()
            ]
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _unnamed_files(t: Table, named: set[str]) -> list[dict[str, Any]]:
    """The data files of ``t`` that no readable entry adds (a lost commit's, or a failed
    write's), with their tickers; ``vacuum`` deletes them once old enough."""
    out = []
    for name in sorted(t.store.list(t.name)):
        if not is_data_file_name(name) or name in named:
            continue
        ranges: list[dict[str, Any]] = []
        try:
            data = read_whole(t.store, t.key(name))
            tickers = sorted(set(data.column(t.schema.series_column).to_pylist()))
            rows = data.num_rows
            if tickers:
                series, time = t.schema.series_column, t.schema.time_column
                span = data.group_by(series).aggregate(
                    [(time, "min"), (time, "max"), (time, "count")]
                )
                for r in span.to_pylist():
                    ranges.append(
                        {
                            "ticker": r[series],
                            "first": iso(r[f"{time}_min"]),
                            "last": iso(r[f"{time}_max"]),
                            "rows": int(r[f"{time}_count"]),
                        }
                    )
        except Exception:  # unreadable too: still worth naming
            tickers, rows = [], 0
        out.append({"file": name, "tickers": tickers, "rows": rows, "ranges": ranges})
    return out


def _set_aside(t: Table, version: int) -> None:
    """Move a damaged entry to ``_log/damaged/`` (under a new name if one is there): it is
    kept for whoever wants to look at it, and is no longer an entry."""
    key = t.key(f"{LOG_DIR}/{entry_name(version)}")
    data = t.store.get(key)
    for i in itertools.count():
        suffix = f".{i}" if i else ""
        aside = t.key(f"{LOG_DIR}/{DAMAGED_DIR}/{entry_name(version)}{suffix}")
        if t.store.put_if_absent(aside, data):
            break
    t.store.delete(key)


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
