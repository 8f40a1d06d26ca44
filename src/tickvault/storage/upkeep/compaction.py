"""Compaction: keep read cost bounded by merging small files, as ordinary commits.

Two levels (docs/decisions/002-storage-layout.md):

* level 1 files hold disjoint ticker ranges, sorted, about ``target_file_rows`` each;
* level 0 files are what upserts write (any tickers), plus merges of them.

Policy after each commit: while level 0 has more than ``l0_max_files`` files, merge them —
into one level-0 file while level 0 is small next to level 1 (cheap, tiered: a big level-0
file is not rewritten for every small one), or into level 1 once level 0 holds at least
``l1_merge_ratio`` of level 1's rows (rewriting only the level-1 files whose ranges the new
rows fall into). Rows keep their commit order in a ``_tv_seq`` column, so a merge of any set
of files resolves keys exactly as a read would. A compaction aborts (and deletes what it
wrote) if another commit removed one of its input files first.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ...errors import CommitConflict, CorruptDatabaseError, VersionUnavailable
from ..core.commit import CommitResult, commit, committed
from ..core.file_writer import SEQ_COLUMN, split_by_rows
from ..core.options import StorageOptions
from ..core.read_merge import merge_newest, with_seq
from ..core.state import FileInfo, TableState
from ..core.table import Table

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A compaction: which files to merge and how to lay out the result."""

    kind: str  # "l0" (merge level-0 files) or "l1" (merge level 0 into level 1)
    inputs: list[FileInfo]
    groups: list[list[FileInfo]] = field(default_factory=list)
    #: level-0 tickers after this one start a new level-1 file instead of growing the last
    tail_after: str | None = None


def overlaps_any(lo: str, hi: str, ranges: list[tuple[str, str]]) -> bool:
    """Does [lo, hi] intersect any of the sorted, disjoint ``ranges``?"""
    i = bisect.bisect_left(ranges, (lo, lo))
    for j in (i - 1, i):
        if 0 <= j < len(ranges):
            a, b = ranges[j]
            if a <= hi and lo <= b:
                return True
    return False


def place(files: Sequence[FileInfo], state: TableState, opts: StorageOptions) -> int:
    """The level new upsert files go to: 1 when they fit between the level-1 ranges (no
    overlap with each other or level 1) and are not small next to a level-1 file; else 0,
    where compaction places them."""
    ranges = sorted((f.min_ticker, f.max_ticker) for f in files)
    if any(ranges[i][1] >= ranges[i + 1][0] for i in range(len(ranges) - 1)):
        return 0
    l1 = sorted((f.min_ticker, f.max_ticker) for f in state.files.values() if f.level != 0)
    if any(overlaps_any(lo, hi, l1) for lo, hi in ranges):
        return 0
    if l1 and any(f.rows < opts.target_file_rows // 8 for f in files):
        return 0
    return 1


def placing(files: Sequence[FileInfo], opts: StorageOptions) -> Callable[[TableState, int], None]:
    """The ``prepare`` step of an upsert commit: set the files' level against the state
    the entry will follow (:func:`place`)."""

    def prepare(state: TableState, version: int) -> None:
        level = place(files, state, opts)
        for f in files:
            f.level = level

    return prepare


def plan(state: TableState, table: Table, *, full: bool) -> Plan | None:
    opts = table.opts
    l0 = [f for f in state.files.values() if f.level == 0]
    l1 = sorted((f for f in state.files.values() if f.level != 0), key=lambda f: f.min_ticker)
    if full:
        if not l0:
            return None
        return _plan_l1(l0, l1, opts.target_file_rows)
    if len(l0) <= opts.l0_max_files:
        return None
    l0_rows = sum(f.rows for f in l0)
    l1_rows = sum(f.rows for f in l1)
    if not l1 or l0_rows >= opts.l1_merge_ratio * l1_rows:
        return _plan_l1(l0, l1, opts.target_file_rows)
    l0.sort(key=lambda f: f.rows, reverse=True)
    inputs = l0
    if l0[0].rows > 4 * sum(f.rows for f in l0[1:]):
        inputs = l0[1:]
    if len(inputs) < 2:
        return None
    return Plan(kind="l0", inputs=inputs, groups=[inputs])


def _plan_l1(l0: list[FileInfo], l1: list[FileInfo], target: int) -> Plan:
    """Assign level-0 tickers to the level-1 file whose range they fall into.

    Tickers after the last level-1 file's range (new tickers appended in order: a backfill
    one ticker at a time) form a group of their own, a new level-1 file, once the last file
    holds half a target file: growing it instead would rewrite its rows at every compaction
    (measured: 3-4x the write's own I/O for 400 sequential single-ticker upserts)."""
    if not l1:
        return Plan(kind="l1", inputs=list(l0), groups=[list(l0)])
    mins = [f.min_ticker for f in l1]
    last = l1[-1]
    tail_after = last.max_ticker if last.rows >= target // 2 else None
    touched: set[int] = set()
    tail = False
    for f in l0:
        for t in f.tickers:
            if tail_after is not None and t > tail_after:
                tail = True
            else:
                touched.add(max(0, bisect.bisect_right(mins, t) - 1))
    groups: list[list[FileInfo]] = [[l1[i]] for i in sorted(touched)]
    inputs = [*l0, *(g[0] for g in groups)]
    # level-0 files feed every group; each group reads only its own ticker range
    merged = [[*g, *l0] for g in groups]
    if tail:
        merged.append(list(l0))
    return Plan(kind="l1", inputs=inputs, groups=merged, tail_after=tail_after if tail else None)


def run(
    table: Table, *, full: bool = False, stop: Callable[[], bool] | None = None
) -> CommitResult | None:
    """Plan and run one compaction. None when there is nothing to do, it lost a race, or
    ``stop()`` turned true before it committed (what it wrote is deleted)."""
    state = table.refresh()
    p = plan(state, table, full=full)
    if p is None:
        return None
    schema = table.schema
    cols = [*schema.column_names, SEQ_COLUMN]
    l1_sorted = sorted(
        (f for f in state.files.values() if f.level != 0), key=lambda f: f.min_ticker
    )
    l1_mins = [f.min_ticker for f in l1_sorted]
    level = 1 if p.kind == "l1" else 0

    def merge_group(group: list[FileInfo]) -> list[FileInfo]:
        """Read one group's rows, keep the newest per key, write them as new files."""
        if stop is not None and stop():
            raise CommitConflict("compaction stopped")
        bounds = _bounds(group, p, l1_sorted, l1_mins)
        parts = []
        for f in group:
            tk = None
            if bounds is not None:
                lo, hi = bounds
                tk = [t for t in f.tickers if (lo is None or t >= lo) and (hi is None or t < hi)]
                if not tk:
                    continue
            try:
                t = table.read_part(f, state.version, tickers=tk, start=None, end=None, cols=cols)
            except (CorruptDatabaseError, VersionUnavailable):
                if f.path not in table.refresh().files:
                    # another writer compacted (and vacuumed) this input first: we lost
                    raise CommitConflict(f"compaction input {f.path} already removed") from None
                raise
            parts.append(with_seq(t, f).select(cols))
        if not parts:
            return []
        merged = merge_newest(parts, schema.key)
        target = table.opts.target_file_rows if level == 1 else max(merged.num_rows, 1)
        written: list[FileInfo] = []
        try:
            for piece, runs in split_by_rows(merged, schema.series_column, target):
                info = table.write_file(piece, runs)
                info.level = level
                written.append(info)
        except BaseException:
            table.discard_files(written)
            raise
        return written

    outputs: list[FileInfo] = []
    try:
        # groups are independent (disjoint ticker ranges): merge them in parallel threads
        outputs = table.map_writing(merge_group, p.groups)
        removed = [f.path for f in p.inputs]

        def prepare(current: TableState, version: int) -> None:
            if stop is not None and stop():
                raise CommitConflict("compaction stopped")
            gone = [path for path in removed if path not in current.files]
            if gone:
                raise CommitConflict(f"compaction inputs already removed: {gone[:3]}")
            if p.kind == "l1":
                others = sorted(
                    (f.min_ticker, f.max_ticker)
                    for f in current.files.values()
                    if f.level != 0 and f.path not in removed
                )
                for o in outputs:
                    if overlaps_any(o.min_ticker, o.max_ticker, others):
                        raise CommitConflict("a new level-1 file overlaps the compaction output")

        version = commit(
            table,
            operation="compact",
            add=outputs,
            remove=removed,
            info={"kind": p.kind, "inputs": len(removed), "outputs": len(outputs)},
            prepare=prepare,
        )
    except CommitConflict as exc:
        log.info("%s: compaction abandoned: %s", table.name, exc)
        table.discard_files(outputs)
        return None
    except BaseException as exc:
        if not committed(exc):
            table.discard_files(outputs)
        raise
    return CommitResult(
        table=table.name,
        version=version,
        rows=sum(o.rows for o in outputs),
        files=tuple(o.path for o in outputs),
        operation="compact",
    )


def _bounds(
    group: Sequence[FileInfo], p: Plan, l1_sorted: list[FileInfo], l1_mins: list[str]
) -> tuple[str | None, str | None] | None:
    """The ticker range [lo, hi) a level-1 group owns, or None for 'everything'."""
    if p.kind != "l1" or not l1_sorted:
        return None
    after = None if p.tail_after is None else p.tail_after + "\x00"  # the next string up
    anchor = group[0]
    if anchor.level == 0:  # the tail group: tickers after the last level-1 file
        return after, None
    i = l1_mins.index(anchor.min_ticker)
    lo = None if i == 0 else anchor.min_ticker
    hi = l1_mins[i + 1] if i + 1 < len(l1_mins) else after
    return lo, hi


def due(state: TableState, opts: StorageOptions) -> bool:
    """Would an automatic compaction do something at ``state``? (Cheap: no I/O.)"""
    return sum(1 for f in state.files.values() if f.level == 0) > opts.l0_max_files
