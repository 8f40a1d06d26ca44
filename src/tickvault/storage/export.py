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
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..tickers import normalize
from ..times import TimeLike, check_order, to_ns
from . import open_tables, reading
from .files import SEQ_COLUMN
from .log import now_iso
from .state import FileInfo

if TYPE_CHECKING:
    from .db import ParquetDB

MANIFEST = "_tickvault_export.json"
FORMATS = ("parquet", "csv")
#: rows per output file
PART_ROWS = 4_000_000
#: rows per row group written
CHUNK_ROWS = 1 << 20

_TS = pa.timestamp("ns", tz="UTC")


def export(
    db: ParquetDB,
    out: str | os.PathLike[str],
    *,
    table: str = "prices",
    format: str = "parquet",
    tickers: str | Iterable[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    version: int | None = None,
) -> dict[str, Any]:
    """Write the rows ``read_arrow(table, tickers=, start=, end=, version=)`` returns into
    the folder ``out``; returns what was written (rows, files, version)."""
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not an export format; use one of {FORMATS}")
    folder = Path(out)
    _check_folder(folder)
    snap = db.snapshot(table, version)
    tk, s, e = _selection(tickers, start, end)
    plan = open_tables.plan(snap)
    folder.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(folder):  # temporaries of an export that was killed
        if name.startswith(".part-") and name.endswith(".tmp"):
            (folder / name).unlink(missing_ok=True)
    written: list[str] = []
    rows = 0
    with ThreadPoolExecutor(1, thread_name_prefix="tickvault-export") as pool:
        batches = _prefetched(pool, _parts(plan, tk, s, e))
        pending = next(batches, None)
        while pending is not None or not written:
            name = f"part-{len(written):05d}.{format}"
            n, pending = _write_part(
                folder / name, format, plan.schema, pending, batches, fsync=db.options.fsync
            )
            rows += n
            written.append(name)
            if pending is None:
                break
    for name in os.listdir(folder):  # parts of an earlier, bigger export
        if _PART.fullmatch(name) and name not in written:
            (folder / name).unlink(missing_ok=True)
    manifest = {
        "table": table,
        "version": snap.version,
        "format": format,
        "rows": rows,
        "files": written,
        "exported": now_iso(),
    }
    _replace(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def _write_part(
    path: Path,
    format: str,
    schema: pa.Schema,
    first: pa.RecordBatch | None,
    rest: Any,
    *,
    fsync: bool,
) -> tuple[int, pa.RecordBatch | None]:
    """Write batches into one part file (temporary name, then rename) until it holds
    about PART_ROWS rows; returns the rows written and the next batch (None: done)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    n = 0
    batch = first
    try:
        with open(tmp, "wb") as fh:
            writer: Any = (
                pq.ParquetWriter(fh, schema) if format == "parquet" else pacsv.CSVWriter(fh, schema)
            )
            with writer:
                chunk: list[pa.RecordBatch] = []
                rows = 0
                while batch is not None and (n == 0 or n + batch.num_rows <= PART_ROWS):
                    # the scan yields a batch per stored row group (often ~1000 rows):
                    # write row groups of CHUNK_ROWS, as pq.write_table would
                    chunk.append(batch)
                    rows += batch.num_rows
                    n += batch.num_rows
                    batch = next(rest, None)
                    if rows >= CHUNK_ROWS or batch is None:
                        writer.write_table(pa.Table.from_batches(chunk, schema))
                        chunk, rows = [], 0
                if chunk:
                    writer.write_table(pa.Table.from_batches(chunk, schema))
            fh.flush()
            if fsync:  # the database's own setting (default on)
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n, batch


def _ours(name: str) -> bool:
    """A name an export writes: a part (also of an export killed before its manifest)
    or a temporary."""
    return bool(_PART.fullmatch(name)) or (name.startswith(".part-") and name.endswith(".tmp"))


_PART = re.compile(r"part-\d{5}\.(parquet|csv)")


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _check_folder(folder: Path) -> None:
    """``out`` must be new, empty or an earlier export: never mix parts into other files."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"export folder {str(folder)!r} is a file; pass a folder")
    if not folder.is_dir() or (folder / MANIFEST).exists():
        return
    others = [n for n in os.listdir(folder) if not _ours(n)]
    if others:
        raise ConfigError(
            f"export folder {str(folder)!r} holds other files ({others[0]!r}, ...) and no "
            f"earlier export ({MANIFEST}); use a new or empty folder"
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
    p: open_tables.OpenPlan, tickers: list[str] | None, start: int | None, end: int | None
) -> Iterator[Callable[[], pa.Table]]:
    """Thunks reading the selected rows of the plan: each whole file, each partial file's
    cold rows, the merged rows. Files are read by tickvault's reader, which takes only
    the selected tickers' row ranges (from the log) and row groups (from the footers)."""
    t = p.table
    series, time = t.schema.key[0], t.schema.key[1]
    cols = p.schema.names
    version = p.snapshot.version

    def read(f: FileInfo, hot: open_tables.Hot | None) -> pa.Table:
        if tickers is None and start is None and end is None:
            # every row: one pre-buffered read of the whole file, 3-4x faster than row
            # group by row group on files of many small row groups
            part = reading.read_whole(t.store, t.key(f.path)).select(
                [c for c in cols if c != SEQ_COLUMN]
            )
        else:
            tk = None if tickers is None else [x for x in tickers if x in f.index()]
            part = t.read_part(f, version, tickers=tk, start=start, end=end, cols=cols)
        if hot is not None:
            part = part.filter(open_tables.cold_filter(hot, series, time))
        return open_tables.conform(part, p.schema)

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
