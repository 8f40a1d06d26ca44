"""Export one pinned version of a table as plain Parquet or CSV files that any tool reads
correctly (decision 011).

The output folder holds ``part-00000.parquet`` (or ``.csv``), ... and a ``_tickvault_export.json``
manifest (readers skip names starting with ``_``). Each file is written under a temporary
name that starts with ``.`` and ends in ``.tmp`` and renamed when complete, so a killed
export never leaves a half file under a final name. Exporting again into the same folder
replaces the parts and removes the ones it no longer needs: the same export twice gives
the same folder.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ...errors import ConfigError
from ...tickers import normalize
from ...times import TimeLike, check_order, now_iso, to_ns
from ..core import file_reader
from ..core.file_writer import SEQ_COLUMN
from ..core.state import FileInfo
from ..core.store import LocalStore, Store, is_url
from . import open_plan

if TYPE_CHECKING:
    from ..core.snapshot import Snapshot

MANIFEST = "_tickvault_export.json"
FORMATS = ("parquet", "csv")
#: rows per output file
PART_ROWS = 4_000_000
#: rows per row group written
CHUNK_ROWS = 1 << 20

_TS = pa.timestamp("ns", tz="UTC")


def export(
    snapshot: Callable[[], Snapshot],
    out: str | os.PathLike[str],
    *,
    fsync: bool = True,
    format: str = "parquet",
    tickers: str | Iterable[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> dict[str, Any]:
    """Write the rows of the snapshot ``snapshot()`` pins (``read_arrow(tickers=, start=,
    end=)``) into the folder ``out``; returns what was written (rows, files, version)."""
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not an export format; use one of {FORMATS}")
    store = _target(out, fsync)
    _check_folder(store)
    snap = snapshot()
    table = snap.table
    tk, s, e = _selection(tickers, start, end)
    plan = open_plan.plan(snap)
    for name in store.list(""):  # temporaries of an export that was killed
        if store.is_temporary(name) and _ours(name):
            store.delete(name)
    written: list[str] = []
    rows = 0
    with ThreadPoolExecutor(1, thread_name_prefix="tickvault-export") as pool:
        batches = _prefetched(pool, _parts(plan, tk, s, e))
        pending = next(batches, None)
        while pending is not None or not written:
            name = f"part-{len(written):05d}.{format}"
            n, pending = _write_part(store, name, format, plan.schema, pending, batches)
            rows += n
            written.append(name)
            if pending is None:
                break
    for name in store.list(""):  # parts of an earlier, bigger export
        if _PART.fullmatch(name) and name not in written:
            store.delete(name)
    manifest = {
        "table": table,
        "version": snap.version,
        "format": format,
        "rows": rows,
        "files": written,
        "exported": now_iso(),
    }
    store.put(MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def _target(out: str | os.PathLike[str], fsync: bool) -> Store:
    """The output folder as a Store: a local folder (fsynced as the database's option
    says), or a bucket URL. Its writer publishes each file whole under its final name."""
    if is_url(out):
        from ..core.object_store import ObjectStore

        return ObjectStore(str(out))
    return LocalStore(out, fsync=fsync)


def _write_part(
    store: Store,
    name: str,
    format: str,
    schema: pa.Schema,
    first: pa.RecordBatch | None,
    rest: Any,
) -> tuple[int, pa.RecordBatch | None]:
    """Write batches into one part file until it holds about PART_ROWS rows (through the
    store's writer: a temporary name, renamed when complete); returns the rows written
    and the next batch (None: done)."""
    n = 0
    batch = first
    shape = (lambda t: t) if format == "parquet" else _iso_timestamps
    with store.writer(name) as sink:
        writer: Any = (
            pq.ParquetWriter(sink, _pandas_types(schema))
            if format == "parquet"
            else pacsv.CSVWriter(sink, _iso_timestamps(schema.empty_table()).schema)
        )
        with writer:
            chunk: list[pa.RecordBatch] = []
            rows = 0
            while batch is not None and (n == 0 or n + batch.num_rows <= PART_ROWS):
                # write row groups of CHUNK_ROWS, as pq.write_table would
                chunk.append(batch)
                rows += batch.num_rows
                n += batch.num_rows
                batch = next(rest, None)
                if rows >= CHUNK_ROWS or batch is None:
                    writer.write_table(shape(pa.Table.from_batches(chunk, schema)))
                    chunk, rows = [], 0
            if chunk:
                writer.write_table(shape(pa.Table.from_batches(chunk, schema)))
    return n, batch


def _pandas_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with pandas metadata naming the dtypes ``read_table`` gives: an integer
    column with nulls (``trade_count``) then reads back through ``pd.read_parquet`` as
    pandas' nullable ``Int64``, not as floats."""
    empty = schema.empty_table().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    meta = pa.Schema.from_pandas(empty, preserve_index=False).metadata or {}
    return schema.with_metadata({**(schema.metadata or {}), **meta})


def _iso_timestamps(t: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text in UTC with a ``Z`` (``2024-03-01T00:00:00Z``), as the
    CLI's CSV and JSON write them; fractions of a second only where a value has one."""
    for i, field in enumerate(t.schema):
        if not pa.types.is_timestamp(field.type):
            continue
        col = t.column(i)
        whole = col.cast(pa.timestamp("s", tz="UTC"), safe=False)
        if pc.all(pc.equal(whole.cast(field.type), col)).as_py() in (True, None):
            col = whole
        text = pc.strftime(col, "%Y-%m-%dT%H:%M:%SZ")
        t = t.set_column(i, pa.field(field.name, pa.string()), text)
    return t


def _ours(name: str) -> bool:
    """A name an export writes: a part (also of an export killed before its manifest)
    or a temporary of a part or of the manifest (killed while writing it)."""
    if _PART.fullmatch(name):
        return True
    temporary = name.endswith(".tmp")
    return temporary and (name.startswith(".part-") or name.startswith(f".{MANIFEST}."))


_PART = re.compile(r"part-\d{5}\.(parquet|csv)")


def _check_folder(store: Store) -> None:
    """``out`` must be new, empty or an earlier export: never mix parts into other files."""
    if store.exists(MANIFEST):
        return
    others = [n for n in store.list("") if not _ours(n)]
    if others:
        raise ConfigError(
            f"export folder {store.location!r} holds other files ({sorted(others)[0]!r}, "
            f"...) and no earlier export ({MANIFEST}); use a new or empty folder"
        )


def _selection(
    tickers: str | Iterable[str] | None, start: TimeLike, end: TimeLike
) -> tuple[list[str] | None, int | None, int | None]:
    """The read_arrow selection: the same ticker spellings and bounds (ns, inclusive)."""
    tk = None
    if tickers is not None:
        if isinstance(tickers, str):
            tickers = [tickers]
        tk = sorted({n for t in tickers for n in (normalize(str(t)), str(t))})
    s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
    check_order(start, end, s, e)
    return tk, s, e


def _parts(
    p: open_plan.OpenPlan, tickers: list[str] | None, start: int | None, end: int | None
) -> Iterator[Callable[[], pa.Table]]:
    """Thunks reading the selected rows of the plan: each whole file, each partial file's
    cold rows, the merged rows. Files are read by tickvault's reader, which takes only
    the selected tickers' row ranges (from the log) and row groups (from the footers)."""
    t = p.table
    series, time = t.schema.key[0], t.schema.key[1]
    cols = p.schema.names
    version = p.snapshot.version

    def read(f: FileInfo, hot: open_plan.Hot | None) -> pa.Table:
        if tickers is None and start is None and end is None:
            # every row: one pre-buffered read of the whole file, 3-4x faster than row
            # group by row group on files of many small row groups
            part = file_reader.read_whole(t.store, t.key(f.path)).select(
                [c for c in cols if c != SEQ_COLUMN]
            )
        else:
            tk = None if tickers is None else [x for x in tickers if x in f.index()]
            part = t.read_part(f, version, tickers=tk, start=start, end=end, cols=cols)
        if hot is not None:
            part = part.filter(open_plan.cold_filter(hot, series, time))
        return open_plan.conform(part, p.schema)

    files = [(f, None) for f in p.whole] + list(p.partial)
    for f, hot in sorted(files, key=lambda x: (x[0].min_ticker, x[0].path)):
        if tickers is not None and not any(x in f.index() for x in tickers):
            continue
        if (start is not None and f.end < start) or (end is not None and f.start > end):
            continue
        yield functools.partial(read, f, hot)
    if p.merged is not None and p.merged.num_rows:
        merged = p.merged
        flt = _filter(t.schema.key, tickers, start, end)
        yield lambda: merged if flt is None else merged.filter(flt)


def _prefetched(pool: ThreadPoolExecutor, thunks: Iterator[Callable[[], pa.Table]]) -> Any:
    """Record batches of the thunks' tables, the next table read on ``pool`` while the
    caller writes this one."""
    ahead = None
    for thunk in thunks:
        nxt = pool.submit(thunk)
        if ahead is not None:
            yield from ahead.result().to_batches()
        ahead = nxt
    if ahead is not None:
        yield from ahead.result().to_batches()


def _filter(
    key: tuple[str, ...], tickers: list[str] | None, start: int | None, end: int | None
) -> ds.Expression | None:
    flt = None
    if tickers is not None:
        flt = ds.field(key[0]).isin(tickers)
    for bound in (
        None if start is None else ds.field(key[1]) >= pa.scalar(start, _TS),
        None if end is None else ds.field(key[1]) <= pa.scalar(end, _TS),
    ):
        if bound is not None:
            flt = bound if flt is None else flt & bound
    return flt
