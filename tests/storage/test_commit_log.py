"""The commit log: exclusive publication, checkpoints, incremental refresh."""

from __future__ import annotations

import threading

from tickvault import ParquetDB
from tickvault.storage import LocalStore
from tickvault.storage.core.log import LogStore, checkpoint_name, entry_name


def test_exactly_one_writer_publishes_a_version(tmp_path):
    store = LogStore(LocalStore(tmp_path, fsync=False), "t")
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def go(i: int) -> None:
        barrier.wait()
        results.append(store.publish(0, {"operation": "create", "writer": i}))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    entry = store.read_entry(0)
    assert entry is not None and entry["operation"] == "create"
    # no temporary files are left behind and nothing else claims version 0
    assert sorted(p.name for p in (tmp_path / "t" / "_log").iterdir()) == [entry_name(0)]


def test_checkpoints_make_old_entries_unnecessary(tmp_path, bars):
    path = tmp_path / "db"
    db = ParquetDB(path, checkpoint_interval=10, fsync=False)
    for i in range(25):
        db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-01-01", periods=3, salt=i))
    expected = db.read_table()
    log_dir = path / "prices" / "_log"
    assert (log_dir / checkpoint_name(20)).exists()
    # entries before the newest checkpoint are not needed to open the database
    for v in range(0, 20):
        (log_dir / entry_name(v)).unlink()
    fresh = ParquetDB(path)
    assert fresh.version == db.version
    assert fresh.read_table().equals(expected)
    assert fresh.watermarks() == db.watermarks()


def test_long_lived_instance_reads_only_new_entries(tmp_path, bars):
    path = tmp_path / "db"
    reader = ParquetDB(path, fsync=False)
    writer = ParquetDB(path, fsync=False)
    writer.upsert_prices(bars("AAPL", periods=3))
    assert reader.version == 1
    # once seen, old entries are never re-read: removing them does not disturb the reader
    log_dir = path / "prices" / "_log"
    for v in (0, 1):
        (log_dir / entry_name(v)).unlink()
    writer.upsert_prices(bars("MSFT", periods=3))
    assert reader.version == 2
    assert reader.tickers() == ["AAPL", "MSFT"]


def test_history_lists_operations(tmp_path, bars):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    for i in range(3):
        db.upsert_prices(bars("AAPL", periods=2, salt=i))
    db.compact()
    ops = [h["operation"] for h in db.history()]
    assert ops == ["create", "upsert", "upsert", "upsert", "compact"]
    assert [h["version"] for h in db.history(limit=2)] == [3, 4]
    info = db.info()["tables"]["prices"]
    assert info["tickers"] == 1 and info["files"] == 1 and info["version"] == 4


def test_log_statistics_stay_compact_at_minute_scale(tmp_path):
    """Decision 021: a day file per session holding every ticker writes its per-ticker
    statistics as packed integers, a checkpoint writes the shared ticker list once, and a
    reopened handle shares one list (and one index) between the files."""
    import json

    import numpy as np
    import pandas as pd

    tickers = [f"T{i:03d}" for i in range(300)]
    db = ParquetDB(tmp_path / "db", checkpoint_interval=5, fsync=False, auto_compact=False)
    days = pd.bdate_range("2024-03-04", periods=6, tz="UTC")
    for day in days:
        stamps = day + pd.Timedelta(hours=14, minutes=30) + pd.to_timedelta(np.arange(3), "min")
        df = pd.DataFrame(
            {
                "ticker": np.repeat(tickers, 3),
                "timestamp": np.tile(stamps, len(tickers)),
                "open": 10.0,
                "high": 11.0,
                "low": 9.0,
                "close": 10.5,
                "volume": 100.0,
            }
        )
        db.upsert_prices(df, interval="1m")
    log_dir = tmp_path / "db" / "prices_1m" / "_log"
    ckpt = json.loads((log_dir / checkpoint_name(5)).read_text())
    assert len(ckpt["ticker_lists"]) == 1 and ckpt["ticker_lists"][0] == tickers
    assert len(ckpt["files"]) == 5
    assert all(f["stats2"]["tickers"] == {"list": 0} for f in ckpt["files"])
    # 300 tickers x 5 files x 3 numbers: packed, far below the ~45 bytes per entry of
    # plain JSON numbers
    assert len((log_dir / checkpoint_name(5)).read_bytes()) < 300 * 5 * 10
    fresh = ParquetDB(tmp_path / "db")
    files = list(fresh.snapshot("prices_1m")._state.files.values())
    assert len(files) == 6
    assert all(f.tickers is files[0].tickers for f in files)
    assert all(f.index() is files[0].index() for f in files)
    assert files[0].min_ts.dtype == np.int64 and not files[0].min_ts.flags.writeable
    wm = fresh.watermarks(interval="1m")
    assert len(wm) == 300 and wm["T007"] == days[-1] + pd.Timedelta(hours=14, minutes=32)
    got = fresh.read_table("prices_1m", tickers="T007")
    assert len(got) == 18 and got["timestamp"].is_monotonic_increasing
    assert fresh.verify().problems == []
