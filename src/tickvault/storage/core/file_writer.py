"""Writing immutable data files.

A data file is sorted by the table key (ticker, timestamp, ...) and unique by it. Row groups
are cut at ticker boundaries (small tickers share a row group, large ones are split), so a
reader of one ticker decodes little more than that ticker's rows. Files are written through
:meth:`Store.writer <tickvault.storage.core.store.Store.writer>` under a new unique name: every
``*.parquet`` in a table folder is complete at every instant.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...keys import Runs, column_runs
from ...schema import INTERNAL_PREFIX, TableSchema
from .state import FileInfo
from .store import Store

SEQ_COLUMN = f"{INTERNAL_PREFIX}seq"
#: the key of a data file's Parquet key-value metadata that holds the file's own name:
#: a read checks the file is the one the log names (a file copied over another is
#: refused, never read as the other's rows); files written before it have none
FILE_NAME_KEY = b"tickvault.file"

#: the names :func:`write_data_file` gives data files (every version of tickvault has)
DATA_FILE_NAME = re.compile(r"part-[0-9a-f]{32}\.parquet")


def is_data_file_name(name: str) -> bool:
    """Is ``name`` one tickvault gives its data files? Another name in a table's folder was
    put there by someone else: no clean-up ever deletes it."""
    return DATA_FILE_NAME.fullmatch(name) is not None


#: ``encoding`` values: how the columns of new files are encoded (decision 020)
ENCODINGS = ("auto", "split", "plain")


@dataclass(frozen=True)
class WriteOptions:
    compression: str = "lz4"
    min_row_group_rows: int = 1024
    max_row_group_rows: int = 131_072
    row_group_years: int = 5
    fsync: bool = True
    encoding: str = "auto"


def split_by_rows(
    table: pa.Table, series: str, target: int, runs: Runs | None = None
) -> list[tuple[pa.Table, Runs]]:
    """Split a table sorted by ``series`` into pieces of about ``target`` rows, cutting
    only at ticker boundaries; each piece with its ticker runs.

    The pieces are balanced: ``round(rows / target)`` of them (at least one), cut at the
    ticker boundary nearest to each even share. So 1.02 x target rows stay one file
    instead of a full file plus a sliver, and 19.2 x target make 19 files."""
    if runs is None:
        runs = column_runs(table, series)
    n = table.num_rows
    count = max(1, round(n / target)) if target > 0 else 1
    if count == 1 or len(runs) < 2:
        return [(table, runs)]
    ends = runs.ends
    cut_runs: list[int] = []  # index of the last run of each piece but the last
    for k in range(1, count):
        want = k * n / count
        i = int(np.searchsorted(ends, want))  # first run ending at or after ``want``
        if i > 0 and want - ends[i - 1] < ends[min(i, len(ends) - 1)] - want:
            i -= 1  # the boundary before is nearer
        i = min(i, len(ends) - 2)
        if (not cut_runs or i > cut_runs[-1]) and i >= 0:
            cut_runs.append(i)
    pieces = []
    first = 0
    for i in [*cut_runs, len(ends) - 1]:
        a, b = int(runs.starts[first]), int(ends[i])
        pieces.append((table.slice(a, b - a), runs.slice(first, i + 1)))
        first = i + 1
    return pieces


@functools.cache
def _period_starts(years: int) -> np.ndarray:
    """ns since 1970 of 1 January of the first year of each row-group period (periods of
    ``years`` years counted from 1970), over the whole range of ns timestamps."""
    first = np.arange(1678, 2263, dtype=np.int64)
    first = first[(first - 1970) % years == 0]
    return (first - 1970).astype("datetime64[Y]").astype("datetime64[ns]").astype(np.int64)


def _row_groups(
    starts: np.ndarray, ends: np.ndarray, ts: np.ndarray, opts: WriteOptions
) -> list[tuple[int, int]]:
    """Row-group boundaries: whole tickers, small tickers grouped until
    ``min_row_group_rows``; a larger ticker gets its own row groups, cut every
    ``row_group_years`` calendar years (0: never) and at ``max_row_group_rows`` — so a
    one-month cross-section decodes one period per ticker, not its whole history
    (decision 002)."""
    groups: list[tuple[int, int]] = []
    cur_start: int | None = None
    changes: list[int] = []  # rows whose period differs from the previous row's
    if opts.row_group_years > 0 and len(ts):
        period = np.searchsorted(_period_starts(opts.row_group_years), ts, side="right")
        changes = (np.flatnonzero(period[1:] != period[:-1]) + 1).tolist()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < opts.min_row_group_rows:
            if cur_start is None:
                cur_start = s
            if e - cur_start >= opts.min_row_group_rows:
                groups.append((cur_start, e))
                cur_start = None
            continue
        if cur_start is not None:
            groups.append((cur_start, s))
            cur_start = None
        cuts = [s, *changes[bisect.bisect_right(changes, s) : bisect.bisect_left(changes, e)], e]
        for a, b in itertools.pairwise(cuts):
            for off in range(a, b, opts.max_row_group_rows):
                groups.append((off, min(b, off + opts.max_row_group_rows)))
    if cur_start is not None:
        groups.append((cur_start, int(ends[-1])))
    return groups


#: a float column is dictionary-encoded when it has at most this share of distinct values
REPEATS = 0.75


def column_encodings(table: pa.Table, encoding: str) -> tuple[list[str], dict[str, str]]:
    """(columns encoded by dictionary, other columns' encodings) of a new file (decision
    020). Every mode dictionary-encodes strings (a ticker repeats for its whole run).

    * ``"auto"`` (default): timestamps and integers ``DELTA_BINARY_PACKED`` (sorted times
      on a grid and the commit order pack into a few bits per row); each float column by
      its values in this file: a dictionary where they repeat (at most ``REPEATS`` of them
      distinct: minute prices in cents, round-lot volumes), ``BYTE_STREAM_SPLIT`` where they
      do not (daily prices, adjusted closes);
    * ``"split"``: every float ``BYTE_STREAM_SPLIT``, integers and timestamps delta;
    * ``"plain"``: pyarrow's defaults (files written before decision 020).

    Every engine tickvault hands files to (pyarrow, DuckDB, Polars) reads them all."""
    dictionary: list[str] = []
    encodings: dict[str, str] = {}
    for f in table.schema:
        t = f.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            dictionary.append(f.name)
        elif encoding == "plain":
            continue
        elif pa.types.is_float32(t) or pa.types.is_float64(t):
            if encoding == "auto" and _repeats(table.column(f.name)):
                dictionary.append(f.name)
            else:
                encodings[f.name] = "BYTE_STREAM_SPLIT"
        elif (pa.types.is_integer(t) and t.bit_width in (32, 64)) or pa.types.is_timestamp(t):
            encodings[f.name] = "DELTA_BINARY_PACKED"
    return dictionary, encodings


def _repeats(column: pa.ChunkedArray, sample: int = 1024) -> bool:
    """Do the column's values repeat enough for a dictionary? Judged on a contiguous block
    of up to ``sample`` rows from the middle of the file (what one row group's dictionary
    would see; counting a whole file's distinct values cost 20-30 ms per column, 2.5x the
    bulk load). All null: yes (nothing to store either way)."""
    start = max(0, (len(column) - sample) // 2)
    block = column.slice(start, sample).drop_null()
    if len(block) == 0:
        return True
    values = block.to_numpy()
    return len(np.unique(values)) <= REPEATS * len(values)


#: a table whose chunks average fewer rows than this is made contiguous before encoding
SHORT_CHUNK_ROWS = 65_536


def write_data_file(
    store: Store,
    folder: str,
    table: pa.Table,
    schema: TableSchema,
    opts: WriteOptions,
    runs: Runs | None = None,
    *,
    between: Callable[[], None] | None = None,
) -> FileInfo:
    """Write a sorted, unique table as one new immutable file. Returns its FileInfo
    (``seq`` and ``level`` are filled in by the committer). ``runs``: the table's ticker
    runs, if the caller has them. ``between()`` is called between row groups and before
    the file is closed (and made durable): the background compactor pauses there while a
    foreground write runs (:mod:`~tickvault.storage.upkeep.compactor`); it may raise to
    abandon the file, which is then deleted."""
    series, time_col = schema.series_column, schema.time_column
    chunks = table.column(0).num_chunks if table.num_columns else 0
    if chunks > 1 and table.num_rows < chunks * SHORT_CHUNK_ROWS:
        # a period's slices of a bulk load (one per ticker): encoding them as they are
        # cost 72-78 ms per 261 k-row year, contiguous 50-53 ms, the copy 7 ms
        table = table.combine_chunks()
    if runs is None:
        runs = column_runs(table, series)
    tickers, starts, ends = runs.values.to_pylist(), runs.starts, runs.ends
    ts = table.column(time_col).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    min_ts = ts[starts].tolist()
    max_ts = ts[ends - 1].tolist()
    name = f"part-{uuid.uuid4().hex}.parquet"
    dict_cols, encodings = column_encodings(table, opts.encoding)
    with store.writer(f"{folder}/{name}") as sink:
        with pq.ParquetWriter(
            sink,
            table.schema.remove_metadata(),  # a read table carries its file's name
            compression=opts.compression,
            use_dictionary=dict_cols,
            column_encoding=encodings or None,
            write_statistics=[series, time_col],
            # a CRC per page: verify finds a page damaged on disk (bit rot) instead of
            # decoding wrong values
            write_page_checksum=True,
        ) as writer:
            for i, (a, b) in enumerate(_row_groups(starts, ends, ts, opts)):
                if between is not None and i:
                    between()
                writer.write_table(table.slice(a, b - a), row_group_size=b - a)
            if between is not None:
                between()
            writer.add_key_value_metadata({FILE_NAME_KEY: name.encode()})
        size = sink.tell()
    return FileInfo(
        path=name,
        rows=table.num_rows,
        bytes=size,
        seq=-1,
        seq_col=SEQ_COLUMN in table.column_names,
        level=0,
        tickers=tickers,
        min_ts=min_ts,
        max_ts=max_ts,
        ticker_rows=(ends - starts).tolist(),
    )
