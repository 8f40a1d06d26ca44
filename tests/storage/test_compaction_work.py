"""How much a compaction reads and sorts: parts with disjoint ticker ranges are concatenated
instead of sorted, and a level-0 file feeding several groups is read once (issue 25 item 7:
less compaction work next to the writes). The results are those of the full merge."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from helpers.storage_model import NS_DAY, TINY, Y2020, Model, assert_healthy, assert_same, bars
from tickvault import ParquetDB
from tickvault.schema import get_schema
from tickvault.storage.core.file_writer import SEQ_COLUMN
from tickvault.storage.core.read_merge import merge_newest
from tickvault.storage.core.table import Table
from tickvault.storage.upkeep import compaction

PRICES = get_schema("prices")


def part(tickers: list[str], days: list[int], seq: int, close: float = 1.0) -> pa.Table:
    """A sorted part as compaction reads it: the table's columns and ``_tv_seq``."""
    rows = [(t, d) for t in tickers for d in days]
    n = len(rows)
    cols: dict[str, pa.Array] = {}
    for f in PRICES.arrow_schema:
        if f.name == "ticker":
            cols[f.name] = pa.array([r[0] for r in rows], type=f.type)
        elif f.name == "timestamp":
            cols[f.name] = pa.array([Y2020 + r[1] * NS_DAY for r in rows], type=f.type)
        else:
            cols[f.name] = pa.array(np.full(n, close), type=f.type)
    cols[SEQ_COLUMN] = pa.array(np.full(n, seq, dtype=np.int64))
    return pa.table(cols)


@pytest.mark.parametrize(
    "parts",
    [
        # disjoint ticker ranges, given out of order: concatenated in ticker order
        [part(["C", "D"], [0, 1], 3), part(["A"], [0, 2], 1), part(["B"], [5], 2)],
        # overlapping ranges (a key repeats): the newest wins, by sorting
        [part(["A", "B"], [0, 1], 1, 1.0), part(["B"], [1, 2], 2, 2.0)],
        # ranges touch at one ticker: not disjoint
        [part(["A", "B"], [0], 1), part(["B", "C"], [3], 2)],
        # one part, and an empty one
        [part(["A"], [0, 1], 1), part([], [], 2)],
    ],
)
def test_merged_is_merge_newest(parts):
    got = compaction._merged(parts, PRICES)
    want = merge_newest(parts, PRICES.key)
    assert got.equals(want.combine_chunks()) or got.to_pylist() == want.to_pylist()


def test_merged_of_an_unsorted_part_falls_back_to_the_sort():
    """Disjoint ranges, but one part is not sorted inside (a damaged file): the result is
    still sorted and unique, as merge_newest makes it."""
    bad = part(["A"], [2, 0, 1], 1)
    got = compaction._merged([bad, part(["B"], [0], 2)], PRICES)
    days = got.column("timestamp").to_pylist()
    assert days[:3] == sorted(days[:3])
    assert got.to_pylist() == merge_newest([bad, part(["B"], [0], 2)], PRICES.key).to_pylist()


def test_a_level0_file_feeding_several_groups_is_read_once(tmp_path, monkeypatch):
    """A merge of level-0 files spans two years; the level-1 compaction after it has a
    group per year, and each takes only its year's rows of that file — from one read."""
    opts = {**TINY, "auto_compact": False, "l1_merge_ratio": 0.5}
    db = ParquetDB(tmp_path / "db", **opts)
    model = Model()
    # level 1: 12 tickers over two years (the days straddle 2019/2020)
    base = bars((f"T{i:02d}", Y2020 + d * NS_DAY, 1.0) for i in range(12) for d in range(24))
    model.add(db.upsert_prices(base).version, base)
    db.compact()
    # small upserts of tickers inside level 1's ranges (level 0), four days across new
    # year each; merged into one level-0 file (small next to what level 1 would rewrite)
    for name in ("T05A", "T05B", "T05C"):
        df = bars((name, Y2020 + d * NS_DAY, 2.0) for d in range(10, 14))
        model.add(db.upsert_prices(df).version, df)
    t = db._table("prices")
    assert compaction.run(t, full=False) is not None  # the level-0 merge
    l0 = [f for f in t.refresh().files.values() if f.level == 0]
    assert len(l0) == 1 and l0[0].period is None and len(l0[0].tickers) == 3
    df = bars(("T05D", Y2020 + d * NS_DAY, 3.0) for d in range(10, 14))
    model.add(db.upsert_prices(df).version, df)
    p = compaction.plan(t.refresh(), t, full=True)
    assert p is not None and p.kind == "l1"
    uses = Counter(f.path for g in p.groups for f in g.feeds)
    assert uses[l0[0].path] >= 2  # really shared

    reads: Counter[str] = Counter()
    real = Table.read_part

    def counting(self, f, *args, **kwargs):
        reads[f.path] += 1
        return real(self, f, *args, **kwargs)

    monkeypatch.setattr(Table, "read_part", counting)
    assert compaction.run(t, full=True) is not None
    assert reads and max(reads.values()) == 1
    assert_same(db.read_table(), model.frame())
    db.close()
    assert_healthy(tmp_path / "db")
