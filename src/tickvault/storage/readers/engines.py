"""A pinned version of a table for pyarrow, DuckDB and Polars (decision 011).

Each returns exactly the rows of ``read_arrow(table, version=)`` (as a multiset; not
sorted) with the table's columns: :func:`~tickvault.storage.readers.open_plan.plan` hands the
files that no other file overlaps to the engine with their statistics and resolves
newest-wins only where files overlap. DuckDB and Polars are optional and imported here,
lazily; without them the call raises :class:`~tickvault.errors.MissingDependency` naming
the pip command.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from typing import TYPE_CHECKING, Any

from ...errors import MissingDependency
from ..core.state import FileInfo
from ..core.store import LocalStore
from . import open_plan

if TYPE_CHECKING:
    from ..core.snapshot import Snapshot


def optional(module: str, extra: str) -> Any:
    """Import an optional package, or raise MissingDependency naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{module} is not installed; install it with: pip install 'tickvault[{extra}]'"
        ) from None


def plan_of(snap: Snapshot) -> open_plan.OpenPlan:
    return open_plan.plan(snap)


def to_pyarrow_dataset(snap: Snapshot) -> Any:
    return open_plan.to_dataset(plan_of(snap))


def to_duckdb(snap: Snapshot, connection: Any = None) -> Any:
    """A DuckDB relation: DuckDB's own Parquet reader over the whole files on local disk
    (it skips files and row groups by their footers' statistics), UNION ALL a scan of the
    pyarrow dataset of the rest (partly overlapping files, the merged rows; and every file
    of a database in a bucket). The dataset part pins the snapshot and the relation holds
    it, as do relations derived from it."""
    optional("duckdb", "duckdb")
    con = connection if connection is not None else duckdb_connection()
    p = plan_of(snap)
    cols = p.schema.names
    native = _native(p)
    rel = con.from_arrow(open_plan.to_dataset(p, native=native))
    for paths in _native_groups(p):
        rel = con.read_parquet(paths).select(*cols).union(rel)
    if native:
        series, time = p.table.schema.key[0], p.table.schema.key[1]
        for f, h in p.partial:
            ts = _q(time)
            cold = f"{ts} < '{_iso(h.start)}'::TIMESTAMPTZ OR {ts} >= '{_iso(h.stop)}'::TIMESTAMPTZ"
            if h.tickers is not None:
                cold += f" OR {_q(series)} NOT IN ({', '.join(_lit(t) for t in sorted(h.tickers))})"
            part = con.read_parquet(_abspath(p, f)).select(*cols).filter(cold)
            rel = part.union(rel)
    return rel


def duckdb_relation(rows: Any, connection: Any = None) -> Any:
    """A DuckDB relation over rows already read (an Arrow table): a narrowed
    :meth:`~tickvault.storage.db.ParquetDB.to_duckdb`."""
    optional("duckdb", "duckdb")
    con = connection if connection is not None else duckdb_connection()
    return con.from_arrow(rows)


def polars_frame(rows: Any) -> Any:
    """A Polars LazyFrame over rows already read (an Arrow table)."""
    pl = optional("polars", "polars")
    return pl.from_arrow(rows).lazy()


def duckdb_connection() -> Any:
    """A new in-memory DuckDB connection set up for tickvault's files: the session time
    zone is UTC (so ``timestamp >= '2024-01-02'`` and ``timestamp::DATE`` mean the same on
    every machine, whatever ``TZ`` says), extensions are never downloaded or loaded behind
    the caller's back, Parquet footers are cached across queries (data files never change,
    so the cache never goes stale; a one-ticker query then costs a few ms instead of parsing
    every footer again) and there is no progress bar (it would be printed into a command's
    output)."""
    duckdb = optional("duckdb", "duckdb")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET parquet_metadata_cache = true")
    return con


def native_paths(snap: Snapshot) -> list[str]:
    """The local files :func:`to_duckdb` hands to DuckDB's own reader for ``snap`` (the only
    files a locked connection needs to open)."""
    p = plan_of(snap)
    paths = [path for group in _native_groups(p) for path in group]
    if _native(p):
        paths.extend(_abspath(p, f) for f, _ in p.partial)
    return paths


def to_polars(snap: Snapshot) -> Any:
    """A Polars LazyFrame: Polars' own Parquet scan of the whole files on local disk, and
    a scan of the pyarrow dataset of the rest (which pins the snapshot), concatenated."""
    pl = optional("polars", "polars")
    p = plan_of(snap)
    cols = p.schema.names
    native = _native(p)
    # the dataset scan (empty when everything is native) pins the snapshot for every
    # frame derived from this one
    frames = [pl.scan_pyarrow_dataset(open_plan.to_dataset(p, native=native, merged=False))]
    if p.merged is not None and p.merged.num_rows:
        frames.append(pl.from_arrow(p.merged).lazy())
    for paths in _native_groups(p):
        frames.insert(0, pl.scan_parquet(paths, glob=False).select(cols))
    if native:
        series, time = p.table.schema.key[0], p.table.schema.key[1]
        for f, h in p.partial:
            hot = pl.col(time).is_between(_timestamp(h.start), _timestamp(h.stop), closed="left")
            if h.tickers is not None:
                hot = hot & pl.col(series).is_in(sorted(h.tickers))
            frames.insert(0, pl.scan_parquet(_abspath(p, f), glob=False).select(cols).filter(~hot))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _native(p: open_plan.OpenPlan) -> bool:
    """Can the engine read the whole files itself? On local disk; a bucket is read through
    the dataset (the engines' own object-store support needs credentials and, for DuckDB,
    an extension downloaded at run time)."""
    store = p.table.store
    # DuckDB reads every path as a glob pattern: a folder named like one is left to pyarrow
    return isinstance(store, LocalStore) and not any(c in str(store.root) for c in "*?[]{}")


def _native_groups(p: open_plan.OpenPlan) -> list[list[str]]:
    """Absolute paths of the whole files, grouped by their columns (compacted files also
    hold ``_tv_seq``): each group is one scan selecting the table's columns."""
    if not _native(p):
        return []
    groups: dict[bool, list[str]] = {}
    for f in p.whole:
        groups.setdefault(f.seq_col, []).append(_abspath(p, f))
    return [g for _, g in sorted(groups.items())]


def _abspath(p: open_plan.OpenPlan, f: FileInfo) -> str:
    store = p.table.store
    assert isinstance(store, LocalStore)
    return os.path.join(os.path.abspath(store.root), p.table.key(f.path))


def _timestamp(ns: int) -> dt.datetime:
    """A µs-aligned ns time (the plan aligns them) as an aware datetime."""
    return dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=ns // 1000)


def _iso(ns: int) -> str:
    return _timestamp(ns).isoformat()


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def to_dask(snap: Snapshot, db: Any) -> Any:
    """A ``dask.dataframe.DataFrame`` of the pinned ``snap``: one partition per file no
    other file overlaps (read whole), per partly overlapping file (its rows outside the hot
    part) and one of the merged hot parts — exactly the rows of ``read_table`` (unsorted
    across partitions). Partitions read through ``db`` (a :class:`ParquetDB`, pickled to
    workers: local folders and buckets alike) at the snapshot's version, so a commit after
    the call changes nothing; the frame pins the snapshot while it lives (files replaced
    by compaction are kept for the ``retention`` period for workers in other processes)."""
    dd = optional("dask.dataframe", "dask")
    from ..core.snapshot import to_pandas

    p = plan_of(snap)
    parts: list[tuple[str, Any, Any]] = [("file", f, None) for f in p.whole]
    parts.extend(("file", f, h) for f, h in p.partial)
    if p.merged is not None and p.merged.num_rows:
        parts.append(("rows", p.merged, None))
    if not parts:
        parts.append(("rows", p.schema.empty_table(), None))
    meta = to_pandas(p.schema.empty_table())
    reader = DaskPart(db, snap.table, snap.version)
    frame = dd.from_map(reader, parts, meta=meta, enforce_metadata=False)
    return open_plan.keep_alive(frame, snap)


class DaskPart:
    """Reads one partition of :func:`to_dask` (picklable: the database handle, the table
    name and the pinned version)."""

    def __init__(self, db: Any, table: str, version: int) -> None:
        self.db, self.table, self.version = db, table, version

    def __call__(self, part: tuple[str, Any, Any]) -> Any:
        from ..core.snapshot import to_pandas

        kind, item, hot = part
        t = self.db._table(self.table)
        schema = t.schema.arrow_schema
        if kind == "rows":
            return to_pandas(open_plan.conform(item, schema))
        rows = t.read_part(
            item, self.version, tickers=None, start=None, end=None, cols=schema.names
        )
        if hot is not None:
            series, time = t.schema.key[0], t.schema.key[1]
            rows = rows.filter(open_plan.cold_filter(hot, series, time))
        return to_pandas(open_plan.conform(rows, schema))
