"""The bad pattern made safe: many writers upserting into the same partitions at once.

Every writer has its own ParquetDB on one path (the original pattern's mistake). Afterwards
the database holds exactly the expected rows, no duplicate keys, every file opens and
verify() is clean — for threads, processes, dask threads and a dask.distributed cluster.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dask
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tickvault import ParquetDB

TICKERS = ["AAA", "BBB", "CCC"]
ITERATIONS = 8
DATES_PER_CALL = 2
BASE = pd.Timestamp("2000-01-03", tz="UTC")


def writer_rows(writer: int, iteration: int) -> pd.DataFrame:
    """Distinct keys per (writer, iteration); the value encodes who wrote it."""
    rows = []
    for t in TICKERS:
        for d in range(DATES_PER_CALL):
            day = (writer * ITERATIONS + iteration) * DATES_PER_CALL + d
            price = 100.0 + writer
            rows.append(
                (t, BASE + pd.Timedelta(days=day), price, price + 1, price - 1, price, float(day))
            )
    return pd.DataFrame(
        rows, columns=["ticker", "timestamp", "open", "high", "low", "close", "volume"]
    )


def hammer(path: str, writer: int) -> int:
    db = ParquetDB(path, fsync=False, l0_max_files=3)
    acked = 0
    for i in range(ITERATIONS):
        db.upsert_prices(writer_rows(writer, i))
        acked += 1
    return acked


def assert_exact(path: Path, writers: int) -> None:
    db = ParquetDB(path)
    df = db.read_table()
    expected = pd.concat(
        [writer_rows(w, i) for w in range(writers) for i in range(ITERATIONS)]
    ).sort_values(["ticker", "timestamp"], ignore_index=True)
    assert len(df) == writers * ITERATIONS * len(TICKERS) * DATES_PER_CALL
    assert not df.duplicated(["ticker", "timestamp"]).any()
    pd.testing.assert_frame_equal(
        df.drop(columns=["adj_close", "vwap", "trade_count"]),
        expected,
        check_dtype=False,
        check_like=False,
    )
    for f in (path / "prices").glob("*.parquet"):
        pq.read_table(f)  # every file opens
    report = db.verify()
    assert report.ok, report.problems


def test_sixteen_threads_each_with_its_own_db(tmp_path):
    path = tmp_path / "db"
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            hammer(str(path), w)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_exact(path, 16)


def test_one_shared_instance_across_threads(tmp_path):
    path = tmp_path / "db"
    db = ParquetDB(path, fsync=False, l0_max_files=3)
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            for i in range(ITERATIONS):
                db.upsert_prices(writer_rows(w, i))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_exact(path, 8)


@pytest.mark.slow
def test_four_processes(tmp_path):
    path = tmp_path / "db"
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        acked = list(pool.map(hammer, [str(path)] * 4, range(4)))
    assert acked == [ITERATIONS] * 4
    assert_exact(path, 4)


def test_dask_threads(tmp_path):
    path = tmp_path / "db"
    tasks = [dask.delayed(hammer)(str(path), w) for w in range(8)]
    acked = dask.compute(*tasks, scheduler="threads", num_workers=8)
    assert list(acked) == [ITERATIONS] * 8
    assert_exact(path, 8)


@pytest.mark.cluster
@pytest.mark.slow
def test_dask_distributed_local_cluster(tmp_path):
    from distributed import Client, LocalCluster

    path = tmp_path / "db"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = client.map(hammer, [str(path)] * 6, range(6), pure=False)
        acked = client.gather(futures)
    assert acked == [ITERATIONS] * 6
    assert_exact(path, 6)
