"""Reads and layout at the edges: int64 views of sliced and chunked columns, row groups at
calendar periods near the ns limits, the single-series newest-wins merge, balanced splits,
and reads after overlapping daily upserts against a pandas model."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers.bars import arrow_bars, chunked
from tickvault import ParquetDB
from tickvault.schema import (
    TIMESTAMP_TYPE,
    column_runs,
)
from tickvault.storage.core.file_writer import SEQ_COLUMN, WriteOptions, _row_groups, split_by_rows
from tickvault.storage.core.read_merge import _int64
from tickvault.storage.core.read_merge import merge_one_series as _merge_one_series
from tickvault.storage.core.state import FileInfo

DAY = 86_400 * 10**9


def test_int64_view_of_sliced_and_chunked_columns():
    a = pa.array(np.arange(10) * DAY).cast(TIMESTAMP_TYPE)
    assert _int64(a.slice(3, 4)).tolist() == [3 * DAY, 4 * DAY, 5 * DAY, 6 * DAY]
    c = pa.chunked_array([a.slice(1, 2), a.slice(7)])
    assert _int64(c).tolist() == [d * DAY for d in (1, 2, 7, 8, 9)]
    assert _int64(pa.chunked_array([], TIMESTAMP_TYPE)).tolist() == []


def _old_row_groups(starts, ends, ts, opts):
    """The calendar-conversion algorithm the searchsorted version replaced."""
    groups, cur = [], None
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < opts.min_row_group_rows:
            cur = s if cur is None else cur
            if e - cur >= opts.min_row_group_rows:
                groups.append((cur, e))
                cur = None
            continue
        if cur is not None:
            groups.append((cur, s))
            cur = None
        cuts = [s, e]
        if opts.row_group_years > 0:
            y = ts[s:e].astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64)
            p = y // opts.row_group_years
            cuts = [s, *(np.flatnonzero(p[1:] != p[:-1]) + 1 + s).tolist(), e]
        for a, b in itertools.pairwise(cuts):
            for off in range(a, b, opts.max_row_group_rows):
                groups.append((off, min(b, off + opts.max_row_group_rows)))
    if cur is not None:
        groups.append((cur, int(ends[-1])))
    return groups


@pytest.mark.parametrize("years", [1, 2, 3, 7, 400])
def test_row_groups_match_calendar_periods_near_ns_limits(years):
    rng = np.random.default_rng(years)
    lo, hi = pd.Timestamp.min.value, pd.Timestamp.max.value
    anchors = [lo, hi, 0, -1, pd.Timestamp("1679-01-01").value, pd.Timestamp("2261-01-01").value]
    for _ in range(300):
        lens = rng.integers(1, 30, rng.integers(1, 4))
        ends = np.cumsum(lens)
        starts = ends - lens
        ts = []
        for n in lens.tolist():
            c = anchors[rng.integers(len(anchors))]
            spread = 10**17 if rng.random() < 0.5 else 5
            ts += sorted(np.clip(c + rng.integers(-spread, spread, n), lo, hi).tolist())
        ts = np.asarray(ts, dtype=np.int64)
        opts = WriteOptions(
            min_row_group_rows=int(rng.choice([1, 5, 20])),
            max_row_group_rows=int(rng.choice([3, 100])),
            row_group_years=years,
        )
        assert _row_groups(starts, ends, ts, opts) == _old_row_groups(starts, ends, ts, opts)


def _part(days: list[int], seq: int | list[int], tag: float):
    t = arrow_bars(["X"] * len(days), days, tag)
    if isinstance(seq, list):
        t = t.append_column(SEQ_COLUMN, pa.array(seq, pa.int64()))
    f = FileInfo(
        path=f"p{tag}",
        rows=len(days),
        bytes=0,
        seq=seq if isinstance(seq, int) else -1,
        seq_col=isinstance(seq, list),
        level=0,
        tickers=["X"],
        min_ts=[],
        max_ts=[],
        ticker_rows=[len(days)],
    )
    return t, f


@pytest.mark.parametrize(
    "specs",
    [
        # others all older than the big part (a backfill): nothing is final up front
        [(list(range(10, 20)), 1), ([0, 1, 15], 2)],
        # others all newer than the big part: all of it is final
        [(list(range(10)), 1), ([20, 21], 2)],
        # a tie on the big part's first row, and an empty part
        [(list(range(5)), 3), ([0], 2), ([], 9)],
        # per-row seq in the big part: the newer file wins only where its seq is higher
        [(list(range(6)), [1, 1, 1, 9, 9, 9]), ([3, 4], 5)],
        # the big part is not the first one, and two small parts overlap each other
        [([7, 8], 4), (list(range(12)), 1), ([8, 9], 3)],
    ],
)
def test_single_series_merge_edge_cases(specs):
    parts, files, model = [], [], {}
    for i, (days, seq) in enumerate(specs):
        t, f = _part(days, seq, float(i + 1))
        parts.append(t)
        files.append(f)
        for j, d in enumerate(days):
            s = seq[j] if isinstance(seq, list) else seq
            if d not in model or s > model[d][0]:
                model[d] = (s, float(i + 1))
    out = _merge_one_series(parts, files, "timestamp")
    got = dict(
        zip(
            (out.column("timestamp").cast(pa.int64()).to_numpy() // DAY).tolist(),
            out.column("close").to_pylist(),
            strict=True,
        )
    )
    assert list(got) == sorted(model)
    assert got == {d: v for d, (_, v) in model.items()}
    assert SEQ_COLUMN not in out.column_names


def test_split_by_rows_runs_line_up_with_pieces():
    t = chunked(arrow_bars(["A"] * 3 + ["B"] * 5 + ["C"] + ["D"] * 4, list(range(13))), [2, 9])
    pieces = split_by_rows(t, "ticker", 4, column_runs(t, "ticker"))
    assert sum(p.num_rows for p, _ in pieces) == 13
    for piece, runs in pieces:
        ref = column_runs(piece, "ticker")
        assert runs.values.to_pylist() == ref.values.to_pylist()
        assert runs.starts.tolist() == ref.starts.tolist()
        assert runs.ends.tolist() == ref.ends.tolist()


def test_reads_after_overlapping_daily_upserts_match_a_pandas_model(tmp_path):
    rng = np.random.default_rng(11)
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=3000)
    tickers = [f"T{i}" for i in range(6)]
    base = -400  # history starts before 1970
    model = pd.DataFrame(columns=["ticker", "day", "close"])

    def put(tk: list[str], days: list[int]) -> None:
        nonlocal model
        closes = rng.uniform(5, 50, len(tk)).round(2)
        db.upsert_prices(arrow_bars(tk, days, closes))
        new = pd.DataFrame({"ticker": tk, "day": days, "close": closes})
        model = pd.concat([model, new]).drop_duplicates(["ticker", "day"], keep="last")

    put([t for t in tickers for _ in range(1500)], [base + d for _ in tickers for d in range(1500)])
    for day in range(1500, 1515):
        tk, dd = list(tickers), [base + day] * len(tickers)
        for t in rng.choice(tickers, 2, replace=False).tolist():
            # revise recent and old days, and backfill before the history
            tk += [t] * 3
            dd += [
                base + day - 3,
                base + int(rng.integers(0, 1500)),
                base - int(rng.integers(1, 9)),
            ]
        put(tk, dd)
    model = model.sort_values(["ticker", "day"]).reset_index(drop=True)
    for _ in range(40):
        pick = rng.choice(tickers, int(rng.integers(1, 3)), replace=False).tolist()
        lo = int(rng.integers(base - 10, base + 1515))
        hi = int(rng.integers(lo, base + 1520))
        kw = {"start": pd.Timestamp(lo * DAY, tz="UTC") if rng.random() < 0.7 else None}
        kw["end"] = pd.Timestamp(hi * DAY, tz="UTC") if rng.random() < 0.7 else None
        df = db.read_table(tickers=pick, columns=["close"], **kw)
        m = model[model["ticker"].isin(pick)]
        if kw["start"] is not None:
            m = m[m["day"] >= lo]
        if kw["end"] is not None:
            m = m[m["day"] <= hi]
        assert list(df.columns) == ["ticker", "timestamp", "close"]
        assert df["ticker"].tolist() == m["ticker"].tolist()
        assert (df["timestamp"].astype("int64") // DAY).tolist() == m["day"].tolist()
        assert df["close"].tolist() == m["close"].tolist()
    assert db.verify().ok
