"""Readers reading in a loop while writers commit only ever see whole commits."""

from __future__ import annotations

import threading

import pandas as pd

from tickvault import ParquetDB

TICKERS = [f"T{i:02d}" for i in range(12)]
BASE = pd.Timestamp("2010-01-01", tz="UTC")


def commit_rows(i: int) -> pd.DataFrame:
    """Commit i writes one bar for every ticker at day i; its volume is i."""
    ts = BASE + pd.Timedelta(days=i)
    return pd.DataFrame(
        {
            "ticker": TICKERS,
            "timestamp": ts,
            "open": 10.0,
            "high": 11.0 + i,
            "low": 9.0,
            "close": 10.0 + i,
            "volume": float(i),
        }
    )


def test_readers_see_only_whole_commits(tmp_path):
    path = tmp_path / "db"
    n_commits = 40
    ParquetDB(path).upsert_prices(commit_rows(0))
    stop = threading.Event()
    failures: list[str] = []
    observations = []

    def writer() -> None:
        try:
            db = ParquetDB(path, fsync=False, l0_max_files=3, target_file_rows=100)
            for i in range(1, n_commits):
                db.upsert_prices(commit_rows(i))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(f"writer failed: {exc!r}")
        finally:
            stop.set()

    def reader() -> None:
        db = ParquetDB(path)
        while not stop.is_set():
            snap = db.snapshot()
            df = snap.read_table()
            sizes = df.groupby("volume").size()
            if not (sizes == len(TICKERS)).all():
                failures.append(f"partial commit at version {snap.version}: {sizes.to_dict()}")
            commits = sorted(int(v) for v in sizes.index)
            if commits != list(range(len(commits))):
                failures.append(f"gap in commits at version {snap.version}: {commits}")
            # reading the same pinned snapshot again gives the same answer
            again = snap.read_table()
            if not again.equals(df):
                failures.append(f"snapshot {snap.version} changed between reads")
            observations.append(len(commits))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    w = threading.Thread(target=writer)
    for t in threads:
        t.start()
    w.start()
    w.join()
    for t in threads:
        t.join()
    assert failures == []
    assert len(set(observations)) > 3  # the readers really did see the table grow
    final = ParquetDB(path).read_table()
    assert len(final) == n_commits * len(TICKERS)


def test_old_versions_stay_readable_after_compaction(tmp_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    for i in range(6):
        db.upsert_prices(commit_rows(i))
    v = db.version
    before = db.read_table(version=v)
    assert db.compact() is not None
    assert db.read_table(version=v).equals(before)
    assert db.read_table().equals(before)
