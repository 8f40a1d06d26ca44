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

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..tickers import normalize
from ..times import TimeLike, check_order, to_ns
from . import open_tables
from .log import now_iso

if TYPE_CHECKING:
    from .db import ParquetDB

MANIFEST = "_tickvault_export.json"
FORMATS = ("parquet", "csv")
#: rows per output file
PART_ROWS = 4_000_000

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
    flt = _filter(db._table(table).schema.key, tickers, start, end)
    dataset = open_tables.to_dataset(open_tables.plan(snap))
    folder.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(folder):  # temporaries of an export that was killed
        if name.startswith(".part-") and name.endswith(".tmp"):
            (folder / name).unlink(missing_ok=True)
    reader = dataset.scanner(filter=flt, batch_size=1 << 17).to_reader()
    written: list[str] = []
    rows = 0
    batches = iter(reader)
    pending = next(batches, None)
    while pending is not None or not written:
        name = f"part-{len(written):05d}.{format}"
        n, pending = _write_part(folder / name, format, reader.schema, pending, batches)
        rows += n
        written.append(name)
        if pending is None:
            break
    for name in os.listdir(folder):  # parts of an earlier, bigger export
        if name.startswith("part-") and name not in written:
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
                while batch is not None and (n == 0 or n + batch.num_rows <= PART_ROWS):
                    writer.write_batch(batch)
                    n += batch.num_rows
                    batch = next(rest, None)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n, batch


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
    others = [n for n in os.listdir(folder) if not n.startswith(".part-")]
    if others:
        raise ConfigError(
            f"export folder {str(folder)!r} holds other files ({others[0]!r}, ...) and no "
            f"earlier export ({MANIFEST}); use a new or empty folder"
        )


def _filter(
    key: tuple[str, ...],
    tickers: str | Iterable[str] | None,
    start: TimeLike,
    end: TimeLike,
) -> ds.Expression | None:
    """The read_arrow selection as a dataset filter (same ticker spellings and bounds)."""
    flt = None
    if tickers is not None:
        if isinstance(tickers, str):
            tickers = [tickers]
        names = sorted({n for t in tickers for n in (normalize(str(t)), str(t))})
        flt = ds.field(key[0]).isin(names)
    s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
    check_order(start, end, s, e)
    for bound in (
        None if s is None else ds.field(key[1]) >= pa.scalar(s, _TS),
        None if e is None else ds.field(key[1]) <= pa.scalar(e, _TS),
    ):
        if bound is not None:
            flt = bound if flt is None else flt & bound
    return flt
