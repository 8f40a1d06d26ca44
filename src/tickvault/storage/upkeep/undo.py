"""Undo as ordinary commits: delete rows, restore a version (decision 016).

**Delete** rewrites only the files that hold a deleted row: each becomes a new file without
those rows — same level, same period, same commit order (its ``seq``, or its rows'
``_tv_seq``) — and the old one is removed, all in one commit with operation ``"delete"``.
Every live copy of a deleted key goes (superseded copies in older files too), so no older
row can resurface by newest-wins. A delete is planned against the newest version; if
another commit removed one of its input files (compaction) or added a file holding rows it
deletes (a concurrent upsert), it is planned again on the newer version, so it never drops
what another commit added after it looked, and never publishes a stale plan.

**Restore** makes the rows of all tickers (or the named ones) equal those of version N, as a
new commit with operation ``"restore"``. For all tickers it publishes N's live files again
(no data is rewritten: files are immutable, they only need to exist still). For named
tickers the files holding them now are rewritten without them and N's rows for them are
written as new files. History is never rewritten: a restore, like a delete, is undone by
restoring the version before it.

Both are previews unless ``dry_run=False``: which tickers, how many rows, which dates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import (
    CommitConflict,
    ConfigError,
    StorageError,
    VersionNotFound,
    VersionUnavailable,
)
from ...times import iso
from ..core.commit import commit, committed
from ..core.file_writer import SEQ_COLUMN
from ..core.state import FileInfo, TableState
from ..core.table import Table

log = logging.getLogger(__name__)

#: how often a delete or restore is planned again after losing a race before it gives up
MAX_ATTEMPTS = 50


@dataclass
class DeleteReport:
    """What a delete removes (``dry_run``) or removed: per ticker the live rows and their
    first and last timestamps; ``version``: the commit (None for a preview or when nothing
    matched); ``base_version``: the version the rows were counted on."""

    table: str
    dry_run: bool
    base_version: int
    rows: int = 0
    tickers: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    #: files replaced by a copy without the deleted rows, and files left with no row
    files_rewritten: int = 0
    files_dropped: int = 0

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RestoreReport:
    """What a restore to ``target`` changes: per ticker whose rows differ, the rows now and
    at ``target`` and how many come back, go, or change value; ``version``: the commit
    (None for a preview or when nothing differs)."""

    table: str
    dry_run: bool
    target: int
    base_version: int
    tickers: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    files_added: int = 0
    files_removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.tickers)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- delete -------------------------------------------------------------------------------------


def _matches(f: FileInfo, tickers: set[str] | None, start: int | None, end: int | None) -> bool:
    """Can file ``f`` hold a row the filter selects? (From its statistics.)"""
    for t, lo, hi, _ in f.stat_rows():
        if tickers is not None and t not in tickers:
            continue
        if (start is None or hi >= start) and (end is None or lo <= end):
            return True
    return False


def _selected(
    t: Table, data: pa.Table, tickers: set[str] | None, start: int | None, end: int | None
) -> np.ndarray:
    """A boolean mask of the rows of ``data`` the filter selects."""
    schema = t.schema
    mask = np.ones(data.num_rows, dtype=bool)
    if tickers is not None:
        col = data.column(schema.series_column)
        mask &= pc.is_in(col, value_set=pa.array(sorted(tickers), col.type)).to_numpy(
            zero_copy_only=False
        )
    if start is not None or end is not None:
        ts = data.column(schema.time_column).combine_chunks().cast(pa.int64())
        ns = ts.to_numpy(zero_copy_only=False)
        if start is not None:
            mask &= ns >= start
        if end is not None:
            mask &= ns <= end
    return mask


def _summary(t: Table, keys: pa.Table) -> list[dict[str, Any]]:
    """Per ticker of ``keys`` (sorted by key): rows, first and last timestamp."""
    schema = t.schema
    if keys.num_rows == 0:
        return []
    names = keys.column(schema.series_column).to_numpy(zero_copy_only=False)
    ns = keys.column(schema.time_column).combine_chunks().cast(pa.int64())
    ts = ns.to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero(names[1:] != names[:-1]) + 1
    out = []
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(names)], strict=True):
        out.append(
            {
                "ticker": str(names[a]),
                "rows": int(b - a),
                "first": iso(int(ts[a:b].min())),
                "last": iso(int(ts[a:b].max())),
            }
        )
    return out


def _without(
    t: Table,
    state: TableState,
    f: FileInfo,
    drop: Callable[[pa.Table], np.ndarray],
    unchanged: set[str],
) -> FileInfo | None:
    """A new file holding ``f``'s rows except those ``drop`` selects, with ``f``'s level,
    period and commit order (None: nothing is left, or nothing is dropped — then ``f``'s
    path is added to ``unchanged``: its statistics overlapped, its rows did not)."""
    cols = [*t.schema.column_names, SEQ_COLUMN]
    data = t.read_part(f, state.version, tickers=None, start=None, end=None, cols=cols)
    keep = ~drop(data)
    if keep.all():
        unchanged.add(f.path)
        return None
    if not keep.any():
        return None
    kept = data.filter(pa.array(keep))
    kept = kept.select([c for c in cols if c in kept.column_names])
    info = t.write_file(kept, period=f.period)
    info.level = f.level
    info.seq = f.seq  # the rows keep their commit order (decision 003)
    return info


def _rewrite(
    t: Table, state: TableState, files: Sequence[FileInfo], drop: Callable[[pa.Table], np.ndarray]
) -> tuple[list[FileInfo], list[str]]:
    """Rewrite ``files`` without the rows ``drop`` selects: (new files, removed paths).
    Files holding no such row are left as they are."""
    unchanged: set[str] = set()
    made = t.map_writing(
        lambda f: [x for x in [_without(t, state, f, drop, unchanged)] if x], list(files)
    )
    return made, [f.path for f in files if f.path not in unchanged]


def _conflicts_if(
    planned: TableState, removed: Sequence[str], touches: Callable[[FileInfo], bool]
) -> Callable[[TableState, int], None]:
    """The ``prepare`` of an undo commit: abandon (and plan again) if a commit since
    ``planned`` removed one of our inputs or added a file ``touches`` selects."""

    def prepare(current: TableState, version: int) -> None:
        gone = [p for p in removed if p not in current.files]
        if gone:
            raise CommitConflict(f"input file(s) {gone[:3]} were removed by another commit")
        new = [f for p, f in current.files.items() if p not in planned.files and touches(f)]
        if new:
            raise CommitConflict(f"another commit added rows this one must see ({new[0].path})")

    return prepare


def _publish(
    t: Table,
    *,
    operation: str,
    add: list[FileInfo],
    remove: list[str],
    info: dict[str, Any],
    prepare: Callable[[TableState, int], None],
    made: list[FileInfo],
) -> int | None:
    """Commit; None when the plan went stale. ``made``: the files this undo wrote (deleted
    unless committed; files a restore publishes again belong to the table and are never
    deleted here)."""
    try:
        return commit(t, operation=operation, add=add, remove=remove, info=info, prepare=prepare)
    except CommitConflict as exc:
        log.info("%s: %s planned again: %s", t.name, operation, exc)
        t.discard_files(made)
        return None
    except BaseException as exc:
        if not committed(exc):
            t.discard_files(made)
        raise


def _retry_pause(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * 2 ** min(attempt, 6)))


def delete(
    t: Table,
    *,
    tickers: Sequence[str] | None,
    start: int | None,
    end: int | None,
    dry_run: bool,
) -> DeleteReport:
    """Delete (``dry_run=False``) or preview deleting the live rows of ``tickers`` (None:
    all) with ``start <= timestamp <= end`` (ns; None: unbounded), as one commit."""
    if tickers is None and start is None and end is None:
        raise ConfigError(
            "a delete needs a filter: tickers=, start= or end= (e.g. tickers=['AAPL'], "
            "start='2024-03-01'); deleting a whole table is not offered"
        )
    wanted = None if tickers is None else set(tickers)
    for attempt in range(MAX_ATTEMPTS):
        state = t.refresh()
        keys = t.read(
            state,
            tickers=None if wanted is None else sorted(wanted),
            start=start,
            end=end,
            columns=[],
        )
        report = DeleteReport(
            table=t.name,
            dry_run=dry_run,
            base_version=state.version,
            rows=keys.num_rows,
            tickers=_summary(t, keys),
        )
        if dry_run or keys.num_rows == 0:
            return report
        inputs = [f for f in state.files.values() if _matches(f, wanted, start, end)]
        made, removed = _rewrite(
            t, state, inputs, lambda data: _selected(t, data, wanted, start, end)
        )
        info = {
            "rows": keys.num_rows,
            "tickers": [d["ticker"] for d in report.tickers],
            "start": iso(start) if start is not None else None,
            "end": iso(end) if end is not None else None,
        }
        version = _publish(
            t,
            operation="delete",
            add=made,
            remove=removed,
            info=info,
            prepare=_conflicts_if(state, removed, lambda f: _matches(f, wanted, start, end)),
            made=made,
        )
        if version is not None:
            report.version = version
            report.files_rewritten = len(made)
            report.files_dropped = len(removed) - len(made)
            return report
        _retry_pause(attempt)
    raise CommitConflict(
        f"{t.name}: the delete was planned {MAX_ATTEMPTS} times and other commits changed "
        f"its files every time; run it again when writes are quieter"
    )


# -- restore ------------------------------------------------------------------------------------


def _target_state(t: Table, version: int, newest: int) -> TableState:
    """The state at ``version``, all of whose files still exist; else VersionNotFound (a
    version not written yet, like ``read_table(version=)``) or VersionUnavailable."""
    if version > newest:
        raise VersionNotFound(
            f"version={version} does not exist: the newest version of {t.name!r} is {newest} "
            f"(`tickvault history` lists them)",
            newest=newest,
        )
    try:
        target = t.state_at(version)
    except StorageError as exc:  # entries before a checkpoint were pruned
        oldest = t.oldest_readable()
        raise VersionUnavailable(
            f"{t.name}: version {version} can no longer be restored ({exc}); the oldest "
            f"version still readable is {oldest}",
            oldest=oldest,
        ) from exc
    t.require_files(target, "restored")
    return target


def _files_of(state: TableState, ticker: str) -> set[str]:
    return set(state.by_ticker().get(ticker, ()))


def _row_diff(t: Table, now: pa.Table, then: pa.Table) -> tuple[int, int, int]:
    """(rows that come back, rows that go, rows whose values change) from ``now`` to
    ``then`` (both one ticker's rows, unique by key)."""
    key = list(t.schema.key)
    a, b = now.to_pandas(), then.to_pandas()
    m = a.merge(b, on=key, how="outer", suffixes=("_now", "_then"), indicator=True)
    back = int((m["_merge"] == "right_only").sum())
    gone = int((m["_merge"] == "left_only").sum())
    both = m[m["_merge"] == "both"]
    changed = np.zeros(len(both), dtype=bool)
    for c in t.schema.column_names:
        if c in key:
            continue
        x, y = both[f"{c}_now"], both[f"{c}_then"]
        differ = (x != y) & ~(x.isna() & y.isna())
        changed |= differ.fillna(True).to_numpy(dtype=bool)
    return back, gone, int(changed.sum())


def _changes(
    t: Table, now: TableState, then: TableState, tickers: Sequence[str]
) -> list[dict[str, Any]]:
    """Per ticker whose rows differ between ``now`` and ``then``: the counts. Tickers whose
    files are the same at both versions are not read."""
    out = []
    for name in sorted(tickers):
        if _files_of(now, name) == _files_of(then, name):
            continue
        a = t.read(now, tickers=[name], start=None, end=None, columns=None)
        b = t.read(then, tickers=[name], start=None, end=None, columns=None)
        back, gone, changed = _row_diff(t, a, b)
        if back or gone or changed:
            out.append(
                {
                    "ticker": name,
                    "rows_now": a.num_rows,
                    "rows_then": b.num_rows,
                    "come_back": back,
                    "go": gone,
                    "change": changed,
                }
            )
    return out


def restore(
    t: Table, *, version: int, tickers: Sequence[str] | None, dry_run: bool
) -> RestoreReport:
    """Make the rows of ``tickers`` (None: all) equal those of ``version``, as one commit
    (``dry_run=False``), or preview what that changes."""
    for attempt in range(MAX_ATTEMPTS):
        state = t.refresh()
        target = _target_state(t, version, state.version)
        names = (
            sorted(set(state.by_ticker()) | set(target.by_ticker()))
            if tickers is None
            else sorted(set(tickers))
        )
        report = RestoreReport(
            table=t.name,
            dry_run=dry_run,
            target=version,
            base_version=state.version,
            tickers=_changes(t, state, target, names),
        )
        if dry_run or not report.changed:
            return report
        info = {
            "restored": version,
            "rows": sum(d["rows_then"] for d in report.tickers),
            "tickers": [d["ticker"] for d in report.tickers],
        }
        if tickers is None:  # publish version N's live files again: nothing is rewritten
            add = [_again(f) for p, f in target.files.items() if p not in state.files]
            remove = [p for p in state.files if p not in target.files]
            made: list[FileInfo] = []
            prepare = _unchanged_since(state)
        else:
            changed = {d["ticker"] for d in report.tickers}
            add, remove, prepare = _restore_tickers(t, state, target, changed)
            made = add
        version_made = _publish(
            t, operation="restore", add=add, remove=remove, info=info, prepare=prepare, made=made
        )
        if version_made is not None:
            report.version = version_made
            report.files_added = len(add)
            report.files_removed = len(remove)
            if tickers is None:
                _check_republished(t, add, version_made, state.version)
            return report
        _retry_pause(attempt)
    raise CommitConflict(
        f"{t.name}: the restore was planned {MAX_ATTEMPTS} times and other commits changed "
        f"the table every time; run it again when writes are quieter"
    )


def _restore_tickers(
    t: Table, state: TableState, target: TableState, changed: set[str]
) -> tuple[list[FileInfo], list[str], Callable[[TableState, int], None]]:
    """The files of a restore of the ``changed`` tickers: the files holding them now,
    rewritten without them, and ``target``'s rows of them as new files (level 0: compaction
    places them; seq: the restore's version, and no other copy of their keys is left)."""
    made, remove = _rewrite(
        t,
        state,
        [f for f in state.files.values() if changed & set(f.tickers)],
        lambda data: _selected(t, data, changed, None, None),
    )
    try:
        rows = t.read(target, tickers=sorted(changed), start=None, end=None, columns=None)
        fresh = t.write_files(rows) if rows.num_rows else []
    except BaseException:
        t.discard_files(made)
        raise
    for f in fresh:
        f.level = 0
    prepare = _conflicts_if(state, remove, lambda f: bool(changed & set(f.tickers)))
    return [*made, *fresh], remove, prepare


def _check_republished(t: Table, files: Sequence[FileInfo], version: int, before: int) -> None:
    """Files published again are checked before the commit; a vacuum in another process
    could still reclaim one in the instant before the entry landed. Say so at once rather
    than leave it for the next read."""
    gone = [f.path for f in files if not t.store.exists(t.key(f.path))]
    if gone:
        raise StorageError(
            f"{t.name}: restore published version {version}, but its file {gone[0]} was "
            f"reclaimed by a vacuum meanwhile (the restored version was near the end of the "
            f"retention); run `tickvault restore --version {before} --apply` to go back, "
            f"and keep a longer retention for versions you may restore"
        )


def _again(f: FileInfo) -> FileInfo:
    """An existing file published again by a restore: same rows, level, period, seq."""
    return FileInfo.from_json(f.to_json(), added=0)


def _unchanged_since(planned: TableState) -> Callable[[TableState, int], None]:
    """A whole-table restore is exact only on the version it was planned on."""

    def prepare(current: TableState, version: int) -> None:
        if current.version != planned.version:
            raise CommitConflict(f"version {current.version} was committed meanwhile")

    return prepare
