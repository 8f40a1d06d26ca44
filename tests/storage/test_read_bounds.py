"""Time bounds are inclusive at both ends, whether a file lies inside them (no row mask is
evaluated then) or straddles them, for every layout of files a read can meet."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB

NS = pd.Timedelta(1, "ns")


@pytest.mark.parametrize("compact", [False, True])
def test_bounds_on_and_around_file_edges(tmp_path, compact):
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
