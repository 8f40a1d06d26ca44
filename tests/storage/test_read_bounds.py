"""Time bounds are inclusive at both ends, whether a file lies inside them (no row mask is
evaluated then) or straddles them, for every layout of files a read can meet."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB

NS = pd.Timedelta(1, "ns")


@pytest.mark.parametrize("compact", [False, True])
def test_bounds_on_and_around_file_edges(tmp_path, compact, file_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2023-12-20", 12))  # two year periods
    db.upsert_prices(make_bars(["AAA"], "2024-01-10", 3, salt=4))  # a level-0 file
    if compact:
        db.compact()
    full = db.read_table()
    ts = full["timestamp"]
    first, last = ts.min(), ts.max()
    year_end = pd.Timestamp("2023-12-29", tz="UTC")
    cases = [
        (first, last),  # every file inside the bounds
        (first - NS, last + NS),
        (first + NS, last - NS),  # one ns inside: the first and last bars go
        (year_end, year_end),  # one bar per ticker at a period's last day
        (year_end + NS, None),
        (None, year_end - NS),
        (pd.Timestamp("2024-01-10", tz="UTC"), pd.Timestamp("2024-01-12", tz="UTC")),
    ]
    for start, end in cases:
        want = full
        if start is not None:
            want = want[want["timestamp"] >= start]
        if end is not None:
            want = want[want["timestamp"] <= end]
        got = db.read_table(start=start, end=end)
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
        for t in ("AAA", "BBB"):
            one = db.read_table(tickers=t, start=start, end=end)
            pd.testing.assert_frame_equal(
                one, want[want["ticker"] == t].reset_index(drop=True), check_dtype=False
            )


@pytest.fixture(params=["decoded whole", "by row group"])
def file_path(request, monkeypatch):
    """Both ways a file is read: small files decoded whole and sliced (what test-sized
    files get by default), and by row group from the footer (what real tables get)."""
    from tickvault.storage.core import file_reader

    if request.param == "by row group":
        monkeypatch.setattr(file_reader, "SMALL_ROWS_LEVEL0", 0)
        monkeypatch.setattr(file_reader, "SMALL_ROWS_LEVEL1", 0)
    return request.param


@pytest.mark.parametrize("seed", range(4))
def test_named_tickers_with_bounds_across_small_row_groups(tmp_path, seed, file_path):
    """A read of named tickers takes their names from the log, not from the files: with
    row groups of a few rows (several tickers each, some pruned by the time bounds, some
    read whole), in level-1 period files and level-0 updates, every selection equals the
    filter of the whole table — ticker column included, in any case and order asked."""
    import numpy as np

    rng = np.random.default_rng(seed)
    db = ParquetDB(tmp_path / "db", auto_compact=False, min_row_group_rows=4, max_row_group_rows=16)
    names = [f"T{i:02d}" for i in range(12)]
    db.upsert_prices(make_bars(names, "2022-11-01", 120, salt=seed))  # two year periods
    db.compact()
    db.upsert_prices(make_bars(names[::3], "2023-02-01", 20, salt=seed + 7))  # level 0
    full = db.read_table()
    stamps = full["timestamp"].sort_values().unique()
    for _ in range(12):
        k = int(rng.integers(1, 6))
        pick = [str(t) for t in rng.choice(names, k, replace=False)]
        asked = [t.lower() if rng.random() < 0.3 else t for t in pick]
        if rng.random() < 0.3:
            asked.append("NOPE")
        lo, hi = sorted(rng.choice(len(stamps), 2, replace=False).tolist())
        start = stamps[lo] if rng.random() < 0.8 else None
        end = stamps[hi] if rng.random() < 0.8 else None
        got = db.read_table(tickers=asked, start=start, end=end)
        want = full[full["ticker"].isin(pick)]
        if start is not None:
            want = want[want["timestamp"] >= start]
        if end is not None:
            want = want[want["timestamp"] <= end]
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
