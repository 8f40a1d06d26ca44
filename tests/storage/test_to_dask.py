"""Issue 23 item 7: db.to_dask over a pinned version holds exactly the rows of read_table."""

from __future__ import annotations

import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write

dd = pytest.importorskip("dask.dataframe")


def key_sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ticker", "timestamp"]).reset_index(drop=True)


def test_to_dask_is_read_table_at_a_pinned_version(tmp_path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(
        ["AAPL", "MSFT"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-07"
    )
    v1 = db.table_version("prices_5m")
    # an overlapping correction (a level-0 file over level-1 rows) and a new ticker
    fix = db.read_table(
        "prices", interval="5m", tickers="AAPL", start="2024-06-05", end="2024-06-05 23:00"
    )
    fix[["open", "high", "low", "close"]] *= 1.01
    fix["vwap"] = fix["close"]
    db.upsert_prices(fix, interval="5m")
    fetch_and_write(["IBM"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-04")
    frame = db.to_dask("prices", interval="5m")
    assert isinstance(frame, dd.DataFrame) and frame.npartitions >= 2
    got = key_sorted(frame.compute(scheduler="synchronous"))
    want = db.read_table("prices", interval="5m")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    old = db.to_dask("prices", interval="5m", version=v1)
    db.upsert_prices(
        fix.assign(close=fix["close"] * 1.001, high=fix["high"] * 1.001), interval="5m"
    )
    db.compact("prices_5m")
    pinned = key_sorted(old.compute(scheduler="synchronous"))
    pd.testing.assert_frame_equal(
        pinned, db.read_table("prices", interval="5m", version=v1), check_dtype=False
    )
    assert set(pinned["ticker"]) == {"AAPL", "MSFT"}


def test_to_dask_runs_on_worker_processes(tmp_path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, start="2024-01-02", end="2024-03-01")
    got = key_sorted(db.to_dask().compute(scheduler="processes", num_workers=2))
    pd.testing.assert_frame_equal(got, db.read_table(), check_dtype=False)
