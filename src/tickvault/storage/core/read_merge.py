"""Read planning and the newest-wins merge.

A read pins one :class:`~tickvault.storage.core.state.TableState`; :func:`candidates` picks the
files (and, for a ticker read, the tickers of each) whose log statistics overlap the
request, and the parts read from them are combined: concatenated when no two files can
hold the same key, else resolved newest-wins by commit order (decision 003).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import ValidationError
from ...keys import column_runs, keep_highest
from ...schema import TableSchema
from .file_writer import SEQ_COLUMN
from .state import FileInfo, TableState

#: One file of a read and the tickers to take from it (None: every ticker).
Candidate = tuple[FileInfo, list[str] | None]


def candidates(
    state: TableState,
    *,
    tickers: Sequence[str] | None,
    start: int | None,
    end: int | None,
) -> list[Candidate]:
    """The files a read must open, ordered by the first ticker it takes from each: when
    they are disjoint for this read, concatenating in this order is already sorted."""
    out: list[Candidate] = []
    if tickers is not None:
        by_ticker = state.by_ticker()
        paths: dict[str, list[str]] = {}
        for t in sorted(set(tickers)):
            for p in by_ticker.get(t, ()):
                f = state.files[p]
                i = f.index()[t]
                if (start is None or f.max_ts[i] >= start) and (end is None or f.min_ts[i] <= end):
                    paths.setdefault(p, []).append(t)
        out = [(state.files[p], tk) for p, tk in paths.items()]
    else:
        for f in state.files.values():
            if (start is None or f.end >= start) and (end is None or f.start <= end):
                out.append((f, None))
    out.sort(key=lambda c: (c[1][0] if c[1] else c[0].min_ticker, c[0].path))
    return out


def estimated_rows(cands: list[Candidate]) -> int:
    est = 0
    for f, tk in cands:
        if tk is None:
            est += f.rows
        else:
            idx = f.index()
            est += sum(f.ticker_rows[idx[t]] for t in tk)
    return est


def merge_newest(tables: Sequence[pa.Table], key: Sequence[str]) -> pa.Table:
    """Concatenate tables carrying a _tv_seq column, keep the highest seq per key, sort."""
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if t.num_rows < 2:
        return t
    lo, hi = pc.min_max(t.column(key[0])).values()
    if lo == hi and len(key) == 2:  # one series: resolve in numpy
        return _take_newest(t, _int64(t.column(key[1])), _int64(t.column(SEQ_COLUMN)))
    return keep_highest(t, key, SEQ_COLUMN)


def _take_newest(t: pa.Table, ts: np.ndarray, seq: np.ndarray) -> pa.Table:
    """Rows of one series sorted by time, keeping the highest seq per timestamp."""
    order = np.lexsort((-seq, ts))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ts[order[1:]] != ts[order[:-1]]
    idx = order[first]
    if len(idx) == len(ts) and bool(np.all(idx[1:] > idx[:-1])):
        return t  # nothing superseded and already in time order
    return t.take(pa.array(idx))


def with_seq(t: pa.Table, info: FileInfo) -> pa.Table:
    if SEQ_COLUMN in t.column_names:
        return t
    return t.append_column(SEQ_COLUMN, pa.array(np.full(t.num_rows, info.seq, dtype=np.int64)))


def merge_one_series(parts: list[pa.Table], files: list[FileInfo], time_col: str) -> pa.Table:
    """Newest-wins merge of one ticker's rows from several files: per row, the commit order
    is the file's (or the row's own ``_tv_seq`` in compacted files).

    Each part is sorted by time. After daily updates one part (the level-1 history) is
    large and the others are a few recent rows, so the large part's rows older than every
    other part's first row are final as they are; only the overlapping tail is resolved."""
    ts_parts, seq_parts, tables = [], [], []
    for t, f in zip(parts, files, strict=True):
        ts_parts.append(_int64(t.column(time_col)))
        if SEQ_COLUMN in t.schema.names:
            seq_parts.append(_int64(t.column(SEQ_COLUMN)))
            t = t.drop_columns([SEQ_COLUMN])
        else:
            seq_parts.append(np.full(t.num_rows, f.seq, dtype=np.int64))
        tables.append(t)
    big = max(range(len(tables)), key=lambda i: tables[i].num_rows)
    others = [ts_parts[i][0] for i in range(len(tables)) if i != big and len(ts_parts[i])]
    head = None
    if others:
        k = int(np.searchsorted(ts_parts[big], min(others), side="left"))
        if k:
            head = tables[big].slice(0, k)
            tables[big] = tables[big].slice(k)
            ts_parts[big] = ts_parts[big][k:]
            seq_parts[big] = seq_parts[big][k:]
    ts = np.concatenate(ts_parts)
    if head is not None and len(ts) == 0:
        return head
    tail = _take_newest(pa.concat_tables(tables), ts, np.concatenate(seq_parts))
    return tail if head is None else pa.concat_tables([head, tail])


def _int64(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp or integer column's values as an int64 numpy array (no copy when it
    is one chunk)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.view(pa.int64()).to_numpy(zero_copy_only=False)


def output_columns(schema: TableSchema, columns: Sequence[str] | None) -> list[str]:
    names = schema.column_names
    if columns is None:
        return names
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ValidationError(
            f"{schema.name}: unknown column(s) {unknown} in columns=; the columns are {names}",
            column=unknown[0],
        )
    want = set(columns) | set(schema.key)
    return [c for c in names if c in want]


def empty(schema: TableSchema, cols: list[str]) -> pa.Table:
    return schema.arrow_schema.empty_table().select(cols)


def disjoint(cands: list[Candidate]) -> bool:
    """True when no two candidate files can hold the same key for this read."""
    if len(cands) == 1:
        return True
    ranges = []
    for f, tk in cands:
        if tk is not None:
            ranges.append((tk[0], tk[-1]))
        else:
            ranges.append((f.min_ticker, f.max_ticker))
    ranges.sort()
    return all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))


def one_series_in_order(cands: list[Candidate], ticker: str) -> list[Candidate] | None:
    """``cands`` (each holding ``ticker``) in time order when no two of them hold the same
    time of it (their per-ticker spans in the log do not overlap); None otherwise."""
    spans = []
    for c in cands:
        f = c[0]
        i = f.index().get(ticker)
        if i is None:
            return None
        spans.append((f.min_ts[i], f.max_ts[i], c))
    spans.sort(key=lambda s: (s[0], s[1]))
    if any(spans[k][1] >= spans[k + 1][0] for k in range(len(spans) - 1)):
        return None
    return [s[2] for s in spans]


def keys_apart(cands: list[Candidate], most: int = 4096) -> bool:
    """True when no two candidate files can hold the same key because, wherever their
    ticker ranges overlap, their time spans do not: files of one period layout (decision
    015) that each hold every ticker, one per day of minute bars. Their parts are then
    :func:`interleave`\\ d instead of merged. False beyond ``most`` files (not worth it)."""
    n = len(cands)
    if n < 2 or n > most:
        return n < 2
    lo_t, hi_t = [], []
    for f, tk in cands:
        lo_t.append(tk[0] if tk is not None else f.min_ticker)
        hi_t.append(tk[-1] if tk is not None else f.max_ticker)
    _, codes = np.unique(np.asarray(lo_t + hi_t, dtype=object), return_inverse=True)
    a, b = codes[:n], codes[n:]
    start = np.array([f.start for f, _ in cands], dtype=np.int64)
    end = np.array([f.end for f, _ in cands], dtype=np.int64)
    tickers_meet = (a[:, None] <= b[None, :]) & (a[None, :] <= b[:, None])
    times_meet = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    both = tickers_meet & times_meet
    np.fill_diagonal(both, False)
    return not bool(both.any())


def interleave(parts: Sequence[pa.Table], cands: list[Candidate], series: str) -> pa.Table:
    """Parts of files that :func:`keys_apart` cleared, each sorted by key, as one table
    sorted by key: the runs of each ticker taken file by file in time order (a ticker's
    rows in two files lie in disjoint time spans), by one ``take``."""
    whole = pa.concat_tables(parts)
    starts_t: list[np.ndarray] = []
    ends_t: list[np.ndarray] = []
    names: list[pa.Array] = []
    when: list[np.ndarray] = []
    offset = 0
    for part, (f, _) in zip(parts, cands, strict=True):
        runs = column_runs(part, series)
        starts_t.append(runs.starts + offset)
        ends_t.append(runs.ends + offset)
        names.append(runs.values)
        when.append(np.full(len(runs), f.start, dtype=np.int64))
        offset += part.num_rows
    if offset == 0:
        return whole
    values = pa.concat_arrays([v.cast(pa.string()) for v in names])
    codes = pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy()
    order = np.lexsort((np.concatenate(when), codes))
    s, e = np.concatenate(starts_t)[order], np.concatenate(ends_t)[order]
    lengths = e - s
    idx = np.repeat(s - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    idx += np.arange(int(lengths.sum()), dtype=np.int64)
    if np.array_equal(idx, np.arange(offset)):
        return whole
    return whole.combine_chunks().take(pa.array(idx))  # take on chunks is 3x slower
