"""Compaction: keep read cost bounded by merging small files, as ordinary commits.

Two levels (docs/decisions/002-storage-layout.md, amended by decision 015):

* level 1 files are keyed by (period, ticker range): each lies in one calendar period of
  its table (:mod:`~tickvault.storage.core.periods`), files of one period hold disjoint
  ticker ranges, sorted, about ``target_file_rows`` rows each;
* level 0 files are what upserts write (any tickers), plus merges of them.

Policy after each commit: while level 0 has more than ``l0_max_files`` files, merge them —
into one level-0 file while level 0 is small next to the level-1 rows a merge into level 1
would rewrite (cheap, tiered: a big level-0 file is not rewritten for every small one), or
into level 1 once level 0 holds at least ``l1_merge_ratio`` of those rows (rewriting only
the level-1 files whose (period, ticker range) slot holds the new rows, so appends never
rewrite a closed period). Rows keep their commit order in a ``_tv_seq`` column, so a
merge of any set of files resolves keys exactly as a read would. A compaction aborts (and
deletes what it wrote) if another commit removed one of its input files first.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ...errors import CommitConflict, CorruptDatabaseError, StorageFull, VersionUnavailable
from ...formats import human_bytes
from ...keys import column_runs, is_sorted_unique
from ...schema import TableSchema
from ..core import periods
from ..core.commit import CommitResult, commit, committed
from ..core.file_writer import SEQ_COLUMN
from ..core.options import StorageOptions
from ..core.read_merge import merge_newest, with_seq
from ..core.state import FileInfo, TableState
from ..core.table import Table

log = logging.getLogger(__name__)


#: a level-1 file's period when it has none (written before periods existed): all time
ALL_TIME = (periods.ALL_TIME, 2**63 - 1)


def period_of_file(f: FileInfo) -> tuple[int, int]:
    return f.period if f.period is not None else ALL_TIME


def collides(a: FileInfo, b: FileInfo) -> bool:
    """Would ``a`` and ``b`` break the level-1 invariant together? Level-1 files whose
    periods intersect and whose ticker ranges overlap must lie in disjoint time spans
    (decision 015; decision 023: a period's appended rows are level-1 files of their own
    after its older files, not a rewrite of them), so no key is in two level-1 files."""
    pa_, pb = period_of_file(a), period_of_file(b)
    if pa_[0] >= pb[1] or pb[0] >= pa_[1]:
        return False
    if a.min_ticker > b.max_ticker or b.min_ticker > a.max_ticker:
        return False
    return a.start <= b.end and b.start <= a.end


@dataclass
class Group:
    """One independent merge: level-1 files (``anchors``; none for new level-1 files) and
    the level-0 rows that belong to them: ``cells`` maps a ticker to the period starts (of
    the table's period) whose rows move in."""

    anchors: list[FileInfo] = field(default_factory=list)
    cells: dict[str, set[int]] = field(default_factory=dict)
    feeds: list[FileInfo] = field(default_factory=list)


@dataclass
class Plan:
    """A compaction: which files to merge and how to lay out the result."""

    kind: str  # "l0" (merge level-0 files) or "l1" (merge level 0 into level 1)
    inputs: list[FileInfo]
    groups: list[Group] = field(default_factory=list)


def place(files: Sequence[FileInfo], state: TableState, opts: StorageOptions) -> int:
    """The level new upsert files go to: 1 when each lies in one period and none collides
    with another or with a level-1 file (:func:`collides`), and they are not small next to
    a level-1 file; else 0, where compaction places them."""
    fs = list(files)
    if any(f.period is None for f in fs) and any(f.period is not None for f in fs):
        return 0
    for i, a in enumerate(fs):
        if any(collides(a, b) for b in fs[i + 1 :]):
            return 0
    l1 = [f for f in state.files.values() if f.level != 0]
    for f in fs:
        near = _intersecting(l1, period_of_file(f))
        if any(collides(f, g) for g in near):
            return 0
        if len(generations(near)) > MAX_GENERATIONS:
            return 0  # one generation too many: compaction merges it with the newest
    if l1 and any(f.rows < opts.target_file_rows // 8 for f in fs):
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


def _intersecting(files: Sequence[FileInfo], period: tuple[int, int]) -> list[FileInfo]:
    lo, hi = period
    return [f for f in files if period_of_file(f)[0] < hi and lo < period_of_file(f)[1]]


def plan(state: TableState, table: Table, *, full: bool, relayout: bool = False) -> Plan | None:
    opts = table.opts
    l0 = [f for f in state.files.values() if f.level == 0]
    l1 = [f for f in state.files.values() if f.level != 0]
    if relayout:
        stale = [f for f in l1 if _needs_relayout(f, table.period)]
        if not l0 and not stale:
            return None
        return _plan_l1(l0, l1, table, stale=stale)
    if full:
        # a full compaction also merges each period's generations into one (decision 023)
        stacked = _stacked(l1)
        if not l0 and not stacked:
            return None
        return _plan_l1(l0, l1, table, stale=stacked)
    if len(l0) <= opts.l0_max_files:
        return None
    l0_rows = sum(f.rows for f in l0)
    # periods that closed with appended generations are merged into one, once
    p = _plan_l1(l0, l1, table, stale=_closed_stacks(l0, l1, table.period))
    # merge into level 1 once level 0 is not small next to what that rewrites
    rewritten = sum(f.rows for g in p.groups for f in g.anchors)
    if not rewritten or l0_rows >= opts.l1_merge_ratio * rewritten:
        return p
    l0.sort(key=lambda f: f.rows, reverse=True)
    inputs = l0
    if l0[0].rows > 4 * sum(f.rows for f in l0[1:]):
        inputs = l0[1:]
    if len(inputs) < 2:
        return None
    return Plan(kind="l0", inputs=inputs, groups=[Group(feeds=inputs)])


def _closed_stacks(l0: list[FileInfo], l1: list[FileInfo], period: str) -> list[FileInfo]:
    """Level-1 files of periods holding several generations that ended before the newest
    data's period began: rows are appended to the new period now, so the old one is merged
    into one generation (once; reads of its history then open one file set again)."""
    if period == "none" or not l1:
        return []
    current = periods.period_of(max(f.end for f in [*l0, *l1]), period)
    return [f for f in _stacked(l1) if f.period is not None and f.period[1] <= current]


def _stacked(l1: list[FileInfo]) -> list[FileInfo]:
    """Level-1 files of periods that hold more than one generation (:func:`generations`)."""
    by_period: dict[tuple[int, int], list[FileInfo]] = {}
    for f in l1:
        if f.period is not None:
            by_period.setdefault(f.period, []).append(f)
    out: list[FileInfo] = []
    for files in by_period.values():
        if len(files) > 1 and len(generations(files)) > 1:
            out.extend(files)
    return out


def _needs_relayout(f: FileInfo, period: str) -> bool:
    """Is level-1 file ``f`` laid out for another period than the table's?"""
    if period == "none":
        return f.period is not None
    if f.period is None:
        return True
    return f.period != (f.period[0], periods.period_end(f.period[0], period)) or (
        periods.period_of(f.period[0], period) != f.period[0]
    )


#: A period's appended generations (decision 023) stay separate files until more than this
#: many follow its first one; then the newest of them are merged into one.
MAX_GENERATIONS = 8


def generations(files: Sequence[FileInfo]) -> list[list[FileInfo]]:
    """Level-1 files of one period in time order, clustered where their time spans meet:
    the first cluster is what the period held before appends, each later one an appended
    generation (files of one cluster hold disjoint ticker ranges). Clusters are disjoint
    in time, each after the one before."""
    out: list[list[FileInfo]] = []
    reach = -(2**63)
    for f in sorted(files, key=lambda f: (f.start, f.min_ticker)):
        if out and f.start <= reach:
            out[-1].append(f)
        else:
            out.append([f])
        reach = max(reach, f.end)
    return out


def _appends(
    cells: list[tuple[str, FileInfo]], p: int, l1: list[FileInfo], table: Table
) -> list[FileInfo] | None:
    """When every level-0 row of period ``p`` lies after every level-1 file of ``p`` (in
    time: daily appends) and those hold at least ``target_file_rows / 8`` rows, the
    level-1 files to merge with them — none, so they become a new
    generation of ``p`` of their own, or the newest generations once there are more than
    :data:`MAX_GENERATIONS` (never the first: the bulk of the period, which appends must not
    rewrite). None when the rows are not appends: they merge into the files whose slot
    holds them (:func:`_plan_l1`)."""
    end = periods.period_end(p, table.period)
    files = _intersecting(l1, (p, end))
    if not files or any(period_of_file(f) != (p, end) for f in files):
        return None
    if sum(f.rows for f in files) < table.opts.target_file_rows // 8:
        return None  # small: rewriting it is cheap, and keeps the period in few files
    newest = max(f.end for f in files)
    first: dict[str, int] = {}
    for t, f in cells:
        i = f.index()[t]
        first[t] = min(first.get(t, 2**63 - 1), max(int(f.min_ts[i]), p))
    if min(first.values()) <= newest:
        return None
    gens = generations(files)
    if len(gens) <= MAX_GENERATIONS:
        return []
    # merge the newest generations, from the newest back, until one is much larger than
    # what is merged so far (size-tiered: a large generation is not rewritten for small ones)
    acc = sum(f.ticker_rows[f.index()[t]] for t, f in cells)
    anchors: list[FileInfo] = []
    for g in reversed(gens[1:]):
        rows = sum(f.rows for f in g)
        if anchors and rows > 4 * acc:
            break
        anchors.extend(g)
        acc += rows
    return anchors


def _plan_l1(
    l0: list[FileInfo], l1: list[FileInfo], table: Table, stale: Sequence[FileInfo] = ()
) -> Plan:
    """Assign every (ticker, period) of level 0 to the level-1 files whose slot holds it.

    For each period the level-0 rows touch, the level-1 files whose periods intersect it
    are sorted by first ticker; files among them whose ticker ranges overlap (files of a
    finer period inside this coarser one) are merged as one unit. A ticker belongs to the
    last unit starting at or before it (the first unit for tickers before all). Tickers
    after the last unit's range form a new level-1 file of their own once that unit holds
    half a target file: growing it instead would rewrite its rows at every compaction
    (measured: 3-4x the write's own I/O for 400 sequential single-ticker upserts). A
    period without level-1 files gets new files. Units that share a file are one group.
    ``stale`` level-1 files (laid out for another period) are rewritten too. A period whose
    level-0 rows all lie after its level-1 files gets them as a new generation instead
    (:func:`_appends`, decision 023)."""
    period, target = table.period, table.opts.target_file_rows
    touched: dict[int, list[tuple[str, FileInfo]]] = {}
    for f in l0:
        lows = periods.period_starts(f.min_ts, period)
        if len(lows) and bool(np.all(lows == lows[0])):
            highs = periods.period_starts(f.max_ts, period)
            if bool(np.all(highs == lows[0])):  # one period: a day's appends, most often
                touched.setdefault(int(lows[0]), []).extend((t, f) for t in f.tickers)
                continue
        for t, lo, hi, _ in f.stat_rows():
            p, end = periods.span(lo, hi, period)
            while True:
                touched.setdefault(p, []).append((t, f))
                if p >= end:
                    break
                p = periods.period_end(p, period)

    appended: dict[int, Group] = {}
    if period != "none" and not stale:
        for p, cells in touched.items():
            anchors = _appends(cells, p, l1, table)
            if anchors is None:
                continue
            g = appended[p] = Group(anchors=sorted(anchors, key=lambda f: f.path))
            for t, f in cells:
                g.cells.setdefault(t, set()).add(p)
                if not g.feeds or g.feeds[-1] is not f:
                    g.feeds.append(f)
            g.feeds = list({f.path: f for f in g.feeds}.values())
        for p in appended:
            del touched[p]

    for f in stale:  # the periods its rows lie in, without level-0 cells
        p, last = periods.span(f.start, f.end, period)
        while True:
            touched.setdefault(p, [])
            if p >= last:
                break
            p = periods.period_end(p, period)

    # union-find over level-1 files that must be rewritten together
    parent: dict[str, str] = {}
    by_path = {f.path: f for f in l1}

    def find(x: str) -> str:
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    units: dict[int, list[list[FileInfo]]] = {}
    for p in touched:
        files = sorted(
            _intersecting(l1, (p, periods.period_end(p, period))), key=lambda f: f.min_ticker
        )
        runs: list[list[FileInfo]] = []
        for f in files:
            if runs and f.min_ticker <= max(g.max_ticker for g in runs[-1]):
                runs[-1].append(f)
                parent[find(f.path)] = find(runs[-1][0].path)
            else:
                runs.append([f])
                find(f.path)
        units[p] = runs

    groups: dict[str, Group] = {}

    def group_for(key: str) -> Group:
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group()
        return g

    for p, cells in touched.items():
        runs = units[p]
        mins = [r[0].min_ticker for r in runs]
        for t, f in cells:
            if not runs:
                g = group_for(f"new:{p}")
            else:
                i = max(0, bisect.bisect_right(mins, t) - 1)
                unit = runs[i]
                top = max(x.max_ticker for x in unit)
                full = sum(x.rows for x in unit) >= target // 2
                if i == len(runs) - 1 and t > top and full:
                    g = group_for(f"tail:{p}")
                else:
                    g = group_for(find(unit[0].path))
            g.cells.setdefault(t, set()).add(p)
            if not g.feeds or g.feeds[-1] is not f:
                g.feeds.append(f)
    for f in stale:
        group_for(find(f.path))
    members: dict[str, list[FileInfo]] = {}
    for path in parent:
        members.setdefault(find(path), []).append(by_path[path])
    for key, g in groups.items():
        g.anchors = sorted(members.get(key, []), key=lambda f: f.path)
        g.feeds = list({f.path: f for f in g.feeds}.values())
    ordered = [*groups.values(), *appended.values()]
    inputs = [*l0, *(f for g in ordered for f in g.anchors)]
    return Plan(kind="l1", inputs=inputs, groups=ordered)


def run(
    table: Table,
    *,
    full: bool = False,
    relayout: bool = False,
    stop: Callable[[], bool] | None = None,
    pause: Callable[[], None] | None = None,
) -> CommitResult | None:
    """Plan and run one compaction. None when there is nothing to do, it lost a race, or
    ``stop()`` turned true before it committed (what it wrote is deleted). ``relayout``:
    also rewrite level-1 files laid out for another period (``compact --relayout``).
    ``pause()`` (the background compactor's, :class:`.compactor.Pacer`) is called at every
    safe point — before each file read, each merge, each file and row group written, and
    the commit — by whichever thread merges the group; it may wait there while foreground
    writes run (it holds no lock a write needs)."""
    state = table.refresh()
    p = plan(state, table, full=full, relayout=relayout)
    if p is None:
        return None
    check_room(table, p)
    schema = table.schema
    cols = [*schema.column_names, SEQ_COLUMN]
    level = 1 if p.kind == "l1" else 0

    def step() -> None:
        if pause is not None:
            pause()

    def read(f: FileInfo, tickers: list[str] | None) -> pa.Table:
        step()
        try:
            t = table.read_part(f, state.version, tickers=tickers, start=None, end=None, cols=cols)
        except (CorruptDatabaseError, VersionUnavailable):
            if f.path not in table.refresh().files:
                # another writer compacted (and vacuumed) this input first: we lost
                raise CommitConflict(f"compaction input {f.path} already removed") from None
            raise
        return with_seq(t, f).select(cols)

    shared: dict[str, pa.Table] = {}

    def read_shared() -> None:
        """A level-0 file whose rows go to several groups (a merge of level-0 files spans
        many periods) is read once, not once per group: reading it by ticker cannot skip the
        other periods' rows. At most a target file's worth of rows is held this way."""
        if p.kind != "l1" or table.period == "none":
            return
        uses = Counter(f.path for g in p.groups for f in g.feeds)
        budget = table.opts.target_file_rows
        for g in p.groups:
            for f in g.feeds:
                if uses[f.path] > 1 and f.path not in shared and f.rows <= budget:
                    shared[f.path] = read(f, None)
                    budget -= f.rows

    def merge_group(g: Group) -> list[FileInfo]:
        """Read one group's rows, keep the newest per key, write them as new files."""
        if stop is not None and stop():
            raise CommitConflict("compaction stopped")
        parts = []
        for f in g.anchors:
            parts.append(read(f, None))
        for f in g.feeds:
            if p.kind == "l0":
                parts.append(read(f, None))
                continue
            tk = [t for t in f.tickers if t in g.cells]
            if tk:
                whole = shared.get(f.path)
                if whole is None:  # every ticker of the file: read it whole, no ranges
                    whole = read(f, None if len(tk) == len(f.tickers) else tk)
                rows = whole
                part = _in_cells(rows, g.cells, schema, table.period)
                if part.num_rows:
                    parts.append(part)
        if not parts:
            return []
        step()
        merged = _merged(parts, schema)
        written: list[FileInfo] = []
        try:
            pieces = table.pieces(merged) if level == 1 else [(None, merged, None)]
            for period, piece, runs in pieces:
                step()
                info = table.write_file(piece, runs, period=period, between=pause)
                info.level = level
                written.append(info)
        except BaseException:
            table.discard_files(written)
            raise
        return written

    outputs: list[FileInfo] = []
    try:
        read_shared()
        # groups are independent (disjoint slots): merge them in parallel threads
        outputs = table.map_writing(merge_group, p.groups)
        removed = [f.path for f in p.inputs]

        def prepare(current: TableState, version: int) -> None:
            if stop is not None and stop():
                raise CommitConflict("compaction stopped")
            gone = [path for path in removed if path not in current.files]
            if gone:
                raise CommitConflict(f"compaction inputs already removed: {gone[:3]}")
            if p.kind == "l1":
                gone_set = set(removed)
                others = [
                    f for f in current.files.values() if f.level != 0 and f.path not in gone_set
                ]
                for o in outputs:
                    if any(collides(o, f) for f in _intersecting(others, period_of_file(o))):
                        raise CommitConflict("a new level-1 file overlaps the compaction output")

        step()
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


class NoRoom(StorageFull):
    """A compaction did not start: its output would not fit on the disk (nothing was
    written). It needs about as many free bytes as its inputs hold, until it commits."""


def check_room(table: Table, p: Plan) -> None:
    """Raise :class:`NoRoom` when the store says fewer bytes are free than ``p``'s inputs
    hold (its output is about that size, and both exist until the commit), so a compaction
    never fills the disk half way and fails with ENOSPC (issue 25 item 6)."""
    free = table.store.free_bytes()
    need = sum(f.bytes for f in p.inputs)
    if free is None or need <= free:
        return
    raise NoRoom(
        f"{table.name}: compaction of {len(p.inputs)} file(s) not started: it needs about "
        f"{human_bytes(need)} free on the disk holding {table.store.location!r}, which has "
        f"{human_bytes(free)}",
        path=table.store.location,
    )


def _merged(parts: list[pa.Table], schema: TableSchema) -> pa.Table:
    """The newest row per key of ``parts`` (each sorted by key, carrying ``_tv_seq``), sorted
    (:func:`merge_newest`). When the parts hold disjoint ticker ranges, as when tickers are
    loaded one upsert after another, no key needs resolving: their concatenation in ticker
    order is the answer, checked in one pass instead of sorted (a part that is not sorted,
    say a damaged file, falls back to the sort)."""
    spans = []
    for t in parts:
        if t.num_rows:
            col = t.column(schema.series_column)
            spans.append((col[0].as_py(), col[-1].as_py(), t))
    spans.sort(key=lambda s: s[0])
    if len(spans) > 1 and all(a[1] < b[0] for a, b in itertools.pairwise(spans)):
        whole = pa.concat_tables([s[2] for s in spans]).combine_chunks()
        series = schema.series_column
        if is_sorted_unique(whole, schema.key, column_runs(whole, series)):
            return whole
    return merge_newest(parts, schema.key)


def _in_cells(
    t: pa.Table, cells: dict[str, set[int]], schema: TableSchema, period: str
) -> pa.Table:
    """The rows of ``t`` (sorted by ticker) whose (ticker, period) is one of ``cells``."""
    if period == "none" or t.num_rows == 0:
        return t
    runs = column_runs(t, schema.series_column)
    ts = (
        t.column(schema.time_column)
        .combine_chunks()
        .cast(pa.int64())
        .to_numpy(zero_copy_only=False)
    )
    starts = periods.period_starts(ts, period)
    names = runs.values.to_pylist()
    wanted = [cells.get(ticker) for ticker in names]
    first = wanted[0] if wanted else None
    if first and all(w == first for w in wanted):  # every ticker wants the same periods
        keep = np.isin(starts, np.fromiter(first, dtype=np.int64))
    else:
        keep = np.zeros(t.num_rows, dtype=bool)
        for want, a, b in zip(wanted, runs.starts.tolist(), runs.ends.tolist(), strict=True):
            if want:
                keep[a:b] = np.isin(starts[a:b], np.fromiter(want, dtype=np.int64))
    return t if keep.all() else t.filter(pa.array(keep))


def due(state: TableState, opts: StorageOptions) -> bool:
    """Would an automatic compaction do something at ``state``? (Cheap: no I/O.)"""
    return sum(1 for f in state.files.values() if f.level == 0) > opts.l0_max_files
