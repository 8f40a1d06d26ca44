"""update(): incremental from the watermark minus a lookback; revised bars get corrected."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tickvault import ConfigError, ParquetDB
from tickvault.pipeline import fetch_and_write, update, update_start
from tickvault.sources import DemoSource

START = "2023-06-01"
AS_OF = "2024-06-28"  # a Friday
TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def full(source: DemoSource, tickers: list[str]) -> pd.DataFrame:
    frames = [source.fetch(t, START, None) for t in sorted(tickers)]
    return pd.concat(frames, ignore_index=True)


def stored(db: ParquetDB, columns: list[str]) -> pd.DataFrame:
    return db.read_table()[columns].reset_index(drop=True)


def test_update_corrects_revised_bars_and_a_second_update_writes_nothing(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    original = DemoSource(as_of=AS_OF)
    fetch_and_write(TICKERS, original, db, start=START)
    revised = DemoSource(as_of=AS_OF, revision=1)  # the last 5 bars changed
    expected = full(revised, TICKERS)
    before = full(original, TICKERS)
    changed = int((expected["close"] != before["close"]).sum())
    assert changed == 5 * len(TICKERS)

    report = update(None, revised, db)
    assert report.kind == "update"
    assert (report["total"], report["written"], report["failed"]) == (4, 4, 0)
    assert report["rows"] == changed  # only the revised bars are written
    assert report["fetched_rows"] == 6 * len(TICKERS)  # watermark + 5 business days back
    assert len(report.versions) == 1
    pd.testing.assert_frame_equal(stored(db, list(expected.columns)), expected, check_dtype=False)

    again = update(None, revised, db)
    assert again["rows"] == 0 and again["versions"] == []
    assert again["unchanged"] == 4 and again["written"] == 0
    assert again["fetched_rows"] == 6 * len(TICKERS)  # (almost) nothing
    assert db.runs()[0]["run_id"] == again.run_id


def test_update_appends_new_bars_and_backfills_new_tickers(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(TICKERS[:3], DemoSource(as_of="2024-06-14"), db, start=START)
    later = DemoSource(as_of=AS_OF)
    report = update([*TICKERS[:3], "NEW"], later, db, start=START, scheduler="synchronous")
    expected = full(later, [*TICKERS[:3], "NEW"])
    pd.testing.assert_frame_equal(stored(db, list(expected.columns)), expected, check_dtype=False)
    t = report["tickers"]
    assert t["AAA"]["rows"] == 9  # two new weeks of sessions (19 June is a holiday)
    assert t["NEW"]["rows"] == len(later.fetch("NEW", START, None))
    assert db.watermarks()["AAA"] == pd.Timestamp(AS_OF, tz="UTC")


def test_update_of_an_empty_database_does_nothing(tmp_path: Path):
    report = update(None, DemoSource(as_of=AS_OF), tmp_path / "db")
    assert report["total"] == 0 and report["versions"] == []


def test_update_without_skip_unchanged_rewrites_the_window(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    src = DemoSource(as_of=AS_OF)
    fetch_and_write(["AAA"], src, db, start=START)
    report = update(None, src, db, skip_unchanged=False, lookback=dt.timedelta(days=7))
    assert report["rows"] == 6  # Fri 21st .. Fri 28th
    assert len(db.read_table()) == len(src.fetch("AAA", START, None))


def test_update_start():
    wm = pd.Timestamp("2024-06-28", tz="UTC")  # Friday
    assert update_start(wm, 5) == pd.Timestamp("2024-06-21", tz="UTC")
    assert update_start(wm, 0) == wm
    assert update_start(pd.Timestamp("2024-06-24 15:30", tz="UTC"), 1) == pd.Timestamp(
        "2024-06-21", tz="UTC"
    )
    assert update_start(wm, dt.timedelta(hours=1)) == wm - pd.Timedelta(hours=1)
    with pytest.raises(ConfigError, match="lookback"):
        update_start(wm, -1)
    with pytest.raises(ConfigError, match="lookback"):
        update_start(wm, 2.5)  # type: ignore[arg-type]
