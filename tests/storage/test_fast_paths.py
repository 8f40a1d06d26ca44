"""The storage engine's fast paths give exactly what the plain algorithm gives.

Each fast path (shared ticker runs in validation, the tail-only single-ticker merge, row
ranges kept without a mask, the parallel file writer) is checked against a reference that
is obviously right, on random inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.bars import arrow_bars
from helpers.faulty_store import FaultyStore
from tickvault import ParquetDB, ValidationError
from tickvault.schema import PRICES, column_runs, is_sorted_unique
from tickvault.storage import LocalStore
from tickvault.storage.core.file_reader import _keep_ranges
from tickvault.storage.core.file_writer import SEQ_COLUMN
from tickvault.storage.core.read_merge import merge_one_series as _merge_one_series
from tickvault.storage.core.state import FileInfo

TS = pa.timestamp("ns", tz="UTC")


# -- validation with shared runs -------------------------------------------------------------

keys = st.lists(
    st.tuples(st.sampled_from(["A", "B", "BB", "C"]), st.integers(0, 6)), min_size=0, max_size=30
)


@settings(max_examples=200, deadline=None)
@given(keys)
def test_sorted_check_with_runs_matches_row_by_row(rows):
    t = arrow_bars([r[0] for r in rows], [r[1] for r in rows])
    ref = all(rows[i] < rows[i + 1] for i in range(len(rows) - 1))
    assert is_sorted_unique(t, PRICES.key) is ref
    assert is_sorted_unique(t, PRICES.key, column_runs(t, "ticker")) is ref


@settings(max_examples=200, deadline=None)
@given(keys)
def test_validate_runs_describe_the_result(rows):
    t = arrow_bars([r[0] for r in rows], [r[1] for r in rows])
    clean, runs = PRICES.validate_runs(t)
    # last occurrence wins, sorted by key
    want = sorted({(tk, d): i for i, (tk, d) in enumerate(rows)}.items())
    assert list(
        zip(
            clean.column("ticker").to_pylist(),
            pc.divide(clean.column("timestamp").cast(pa.int64()), 86_400 * 10**9).to_pylist(),
            strict=True,
        )
    ) == [k for k, _ in want]
    tickers = clean.column("ticker").to_pylist()
    assert runs.values.to_pylist() == sorted(set(tickers))
    for v, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True):
        assert set(tickers[a:b]) == {v}


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_ticker_is_found_in_unsorted_input(blank):
    t = arrow_bars(["B", "A", blank, "A", blank], [1, 1, 2, 2, 3])
    with pytest.raises(ValidationError) as info:
        PRICES.validate(t)
    msg = str(info.value)
    assert "column 'ticker' has 2 empty values, first at row 2" in msg
    assert info.value.column == "ticker"


# -- the single-ticker merge -----------------------------------------------------------------


def _part(days: list[int], seqs: list[int] | int, tag: float) -> tuple[pa.Table, FileInfo]:
    """One file's rows of ticker X: a whole-file commit order (int), or per-row orders
    as in compacted files (list)."""
    t = arrow_bars(["X"] * len(days), days, close=tag)
    if isinstance(seqs, list):
        t = t.append_column(SEQ_COLUMN, pa.array(seqs, pa.int64()))
    info = FileInfo(
        path=f"p{tag}",
        rows=len(days),
        bytes=0,
        seq=seqs if isinstance(seqs, int) else -1,
        seq_col=isinstance(seqs, list),
        level=0,
        tickers=["X"] if days else [],
        min_ts=[],
        max_ts=[],
        ticker_rows=[len(days)] if days else [],
    )
    return t, info


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sets(st.integers(0, 40), max_size=25), st.booleans(), st.integers(1, 9)),
        min_size=2,
        max_size=5,
    ),
    st.randoms(use_true_random=False),
)
def test_single_series_merge_keeps_the_newest_row_per_timestamp(spec, rnd):
    # commit orders are unique per key, as in a database: order * 10 + part number
    parts, files, model = [], [], {}
    for i, (day_set, per_row, order) in enumerate(spec):
        days = sorted(day_set)
        if per_row:
            seqs: list[int] | int = [rnd.randint(1, 9) * 10 + i for _ in days]
        else:
            seqs = order * 10 + i
        t, f = _part(days, seqs, tag=float(i + 1))
        cols = [c for c in t.column_names if c != SEQ_COLUMN]
        parts.append(t.select([*cols, *([SEQ_COLUMN] if per_row else [])]))
        files.append(f)
        for j, day in enumerate(days):
            s = seqs[j] if isinstance(seqs, list) else seqs
            if day not in model or s > model[day][0]:
                model[day] = (s, float(i + 1))
    out = _merge_one_series(parts, files, "timestamp")
    days = (out.column("timestamp").cast(pa.int64()).to_numpy() // (86_400 * 10**9)).tolist()
    assert days == sorted(model)
    assert out.column("close").to_pylist() == [model[d][1] for d in sorted(model)]
    assert SEQ_COLUMN not in out.column_names


# -- keeping row ranges of the row groups read -----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 20), min_size=1, max_size=8),
    st.data(),
)
def test_keep_ranges_equals_a_row_mask(group_sizes, data):
    ends = np.cumsum(group_sizes)
    starts = ends - np.asarray(group_sizes)
    n = int(ends[-1])
    picked = sorted(data.draw(st.sets(st.integers(0, len(group_sizes) - 1), min_size=1)))
    rg_start, rg_end = starts[picked], ends[picked]
    cuts = sorted(data.draw(st.sets(st.integers(0, n), min_size=2, max_size=8)))
    ranges = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    rows = np.concatenate([np.arange(a, b) for a, b in zip(rg_start, rg_end, strict=True)])
    t = pa.table({"row": rows})
    want = [r for r in rows.tolist() if any(a <= r < b for a, b in ranges)]
    kept, counts = _keep_ranges(t, ranges, rg_start, rg_end)
    assert kept.column("row").to_pylist() == want
    # how many rows of each range were kept: what a read of named tickers repeats each
    # ticker's name for (file_reader._names)
    assert counts == [sum(a <= r < b for r in rows.tolist()) for a, b in ranges]


# -- end to end: daily updates, then single-ticker reads ---------------------------------------


def test_single_ticker_reads_after_overlapping_updates_match_a_model(tmp_path):
    rng = np.random.default_rng(7)
    db = ParquetDB(tmp_path / "db", l0_max_files=3)
    tickers = [f"T{i:02d}" for i in range(12)]
    model: dict[tuple[str, int], float] = {}

    def put(tk: list[str], days: list[int]) -> None:
        closes = rng.uniform(5, 50, len(tk)).round(2)
        t = arrow_bars(tk, days).set_column(5, "close", pa.array(closes))
        t = t.set_column(2, "open", pa.array(closes)).set_column(7, "adj_close", pa.array(closes))
        t = t.set_column(3, "high", pa.array(closes + 1)).set_column(4, "low", pa.array(closes - 1))
        db.upsert_prices(t)
        for a, d, c in zip(tk, days, closes.tolist(), strict=True):
            model[(a, d)] = c

    put([t for t in tickers for _ in range(300)], [d for _ in tickers for d in range(300)])
    for day in range(300, 330):
        # a new day for every ticker, and a revision of two earlier days for a few
        put(tickers, [day] * len(tickers))
        few = list(rng.choice(tickers, 3, replace=False))
        put([t for t in few for _ in range(2)], [d for _ in few for d in (day - 5, day - 40)])
    for tk in tickers:
        df = db.read_table(tickers=tk)
        want = sorted((d, c) for (a, d), c in model.items() if a == tk)
        got_days = (df["timestamp"].astype("int64") // (86_400 * 10**9)).tolist()
        assert got_days == [d for d, _ in want]
        assert df["close"].tolist() == [c for _, c in want]
    assert db.verify().ok


# -- parallel file writes ----------------------------------------------------------------------


def test_failed_parallel_write_leaves_no_files(tmp_path):
    store = FaultyStore(LocalStore(tmp_path / "db"))
    db = ParquetDB(tmp_path / "db", store=store, target_file_rows=1000)
    db.upsert_prices(arrow_bars(["A"], [0]))
    before = sorted(p.name for p in (tmp_path / "db" / "prices").glob("*.parquet"))
    full = store.fail("writer", "prices/*.parquet", after=2)  # the third file: disk full
    big = arrow_bars([f"T{i:03d}" for i in range(40) for _ in range(200)], list(range(200)) * 40)
    with pytest.raises(OSError):
        db.upsert_prices(big)
    after = sorted(p.name for p in (tmp_path / "db" / "prices").glob("*.parquet"))
    assert after == before
    assert not [p for p in (tmp_path / "db" / "prices").iterdir() if p.name.endswith(".tmp")]
    assert len(db.read_table()) == 1
    assert full.fired == 1 and full.seen >= 3


def test_bulk_files_are_plain_parquet_with_the_row_groups_described(tmp_path):
    import pyarrow.parquet as pq

    from tickvault.storage import StorageOptions

    years = StorageOptions().row_group_years
    db = ParquetDB(tmp_path / "db", target_file_rows=5000, period="none")
    days = pd.bdate_range("2011-01-01", "2020-12-31")
    n = len(days)
    t = arrow_bars(
        [f"T{i}" for i in range(6) for _ in range(n)],
        [int(d.value // (86_400 * 10**9)) for _ in range(6) for d in days],
    )
    db.upsert_prices(t)
    paths = sorted((tmp_path / "db" / "prices").glob("*.parquet"))
    assert len(paths) >= 2
    total, groups = 0, 0
    for p in paths:
        md = pq.read_metadata(p)
        total += md.num_rows
        groups += md.num_row_groups
        for i in range(md.num_row_groups):
            g = md.row_group(i)
            ts = g.column(1).statistics
            # a row group never spans a period boundary of row_group_years years
            y0 = pd.Timestamp(ts.min).year
            y1 = pd.Timestamp(ts.max).year
            assert (y0 - 1970) // years == (y1 - 1970) // years
            tk = g.column(0).statistics
            assert tk.min == tk.max  # one ticker per row group (tickers are large)
    assert total == t.num_rows
    # 2011..2020 holds 4 periods of 3 years counted from 1970 (2009-, 2012-, 2015-, 2018-)
    assert groups == 6 * len({(d.year - 1970) // years for d in days})


# -- balanced split into files ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=40), st.integers(1, 400))
def test_split_by_rows_is_balanced_and_cuts_between_tickers(lengths, target):
    from tickvault.storage.core.file_writer import split_by_rows

    tickers = [f"T{i:03d}" for i, n in enumerate(lengths) for _ in range(n)]
    t = pa.table({"ticker": tickers, "row": list(range(len(tickers)))})
    pieces = split_by_rows(t, "ticker", target)
    # everything, in order, each piece with the runs of its own rows
    rows = [r for p, _ in pieces for r in p.column("row").to_pylist()]
    assert rows == list(range(len(tickers)))
    for p, runs in pieces:
        assert runs.values.to_pylist() == sorted(set(p.column("ticker").to_pylist()))
        assert int(runs.ends[-1]) == p.num_rows and int(runs.starts[0]) == 0
    # no ticker is split between pieces
    firsts = [p.column("ticker")[0].as_py() for p, _ in pieces]
    lasts = [p.column("ticker")[-1].as_py() for p, _ in pieces]
    assert all(a < b for a, b in zip(lasts, firsts[1:], strict=False))
    # round(n / target) pieces when there are enough tickers to cut between
    want = max(1, round(len(tickers) / target))
    assert len(pieces) <= want
    if len(lengths) >= 2 * want:
        # each cut is at the ticker boundary nearest its even share: off by < 1 ticker
        n = len(tickers)
        ends = np.cumsum([p.num_rows for p, _ in pieces])[:-1]
        for k, e in enumerate(ends, start=1):
            assert abs(e - k * n / len(pieces)) <= max(lengths)
