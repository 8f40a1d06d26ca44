"""Key algorithms over Arrow tables sorted by a key (series, timestamp, ...).

The ground floor shared by validation (:mod:`tickvault.schema`) and the storage engine:
runs of equal series values, the sorted-and-unique check, and keep-one-row-per-key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Runs:
    """The runs of equal values of one column: rows ``starts[i]:ends[i]`` hold
    ``values[i]``. For a table sorted by its series column these are the series (tickers)
    and where each one's rows are; computed once per batch and shared by validation, the
    split into files and each file's statistics."""

    values: pa.Array
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def slice(self, i: int, j: int) -> Runs:
        """Runs ``i .. j-1``, with row numbers counted from the first of them."""
        base = self.starts[i] if i < len(self.starts) else 0
        return Runs(self.values.slice(i, j - i), self.starts[i:j] - base, self.ends[i:j] - base)

    def expand(self, per_run: np.ndarray) -> np.ndarray:
        """A per-run boolean as a per-row one."""
        return np.repeat(per_run, self.lengths)


def column_runs(table: pa.Table, column: str) -> Runs:
    """Runs of equal values of ``column`` (nulls form runs of their own)."""
    if table.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(pa.array([], type=table.schema.field(column).type), empty, empty)
    ree = pc.run_end_encode(table.column(column).combine_chunks())
    ends = np.asarray(ree.run_ends.to_numpy(zero_copy_only=False), dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    return Runs(ree.values, starts, ends)


def is_sorted_unique(table: pa.Table, key: Sequence[str], runs: Runs | None = None) -> bool:
    """True when rows are strictly increasing by ``key`` (sorted, no duplicate keys).
    ``runs``, the runs of ``key[0]``, saves comparing that column row by row."""
    n = table.num_rows
    if n < 2:
        return True
    undecided = np.ones(n - 1, dtype=bool)  # row i+1 equal to row i on the keys so far
    for pos, k in enumerate(key):
        if pos == 0 and runs is not None:
            # consecutive runs differ by construction; the table is sorted by this
            # column when the run values increase, and rows tie only inside a run
            # (a null value: not sorted, let the sort decide where nulls go)
            if runs.values.null_count:
                return False
            if (
                len(runs) > 1
                and pc.any(
                    pc.greater_equal(runs.values.slice(0, len(runs) - 1), runs.values.slice(1))
                ).as_py()
            ):
                return False
            undecided[runs.ends[:-1] - 1] = False
        else:
            col = table.column(k)
            if col.null_count == 0 and (
                pa.types.is_timestamp(col.type) or pa.types.is_signed_integer(col.type)
            ):
                v = col.combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
                if np.any(undecided & (v[:-1] > v[1:])):
                    return False
                undecided &= v[:-1] == v[1:]
            else:
                a, b = col.slice(0, n - 1), col.slice(1)
                if undecided.any() and pc.any(pc.greater(a, b)).as_py():
                    bigger = pc.greater(a, b).to_numpy(zero_copy_only=False)
                    if (undecided & bigger).any():
                        return False
                undecided &= pc.equal(a, b).to_numpy(zero_copy_only=False)
        if not undecided.any():
            return True
    return not undecided.any()


def same_as_previous(table: pa.Table, key: Sequence[str]) -> np.ndarray:
    """For rows 1..n-1 of a table sorted by ``key``: does the row repeat the previous key?"""
    n = table.num_rows
    same = np.ones(max(n - 1, 0), dtype=bool)
    for k in key:
        col = table.column(k)
        same &= pc.equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return same


def keep_highest(table: pa.Table, key: Sequence[str], rank: str) -> pa.Table:
    """Sorted by ``key``, with one row per key: the one with the highest ``rank``."""
    if table.num_rows < 2:
        return table
    sort_keys = [(k, "ascending") for k in key] + [(rank, "descending")]
    t = table.take(pc.sort_indices(table, sort_keys=sort_keys))
    same = same_as_previous(t, key)
    if not same.any():
        return t
    return t.filter(pa.array(np.concatenate([[True], ~same])))


def dedupe_last(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """Sort by ``key`` and keep, for each key, the last occurrence in input order."""
    n = table.num_rows
    if n == 0 or is_sorted_unique(table, key):
        return table
    t = table.append_column("__pos", pa.array(np.arange(n, dtype=np.int64)))
    return keep_highest(t, key, "__pos").drop_columns(["__pos"])
