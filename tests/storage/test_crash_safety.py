"""Kill writers with SIGKILL at random instants; nothing acknowledged is ever lost.

A writer process upserts numbered batches (and compacts often) and acknowledges each batch
through a pipe once ``upsert_prices`` has returned. The test kills it at a random moment —
while writing data files, publishing a log entry, writing a checkpoint or compacting — and
then checks: every acknowledged batch is present in full, no batch is partly visible, every
file opens, ``verify().ok``, and a new writer carries on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tickvault import ParquetDB

pytestmark = [pytest.mark.crash, pytest.mark.slow]

TICKERS = ["AAA", "BBB", "CCC", "DDD"]
ROWS_PER_TICKER = 3
BASE = pd.Timestamp("2001-01-01", tz="UTC")
KILLS = 50


def batch(i: int) -> pd.DataFrame:
    rows = []
    for t in TICKERS:
        for d in range(ROWS_PER_TICKER):
            ts = BASE + pd.Timedelta(days=i * ROWS_PER_TICKER + d)
            rows.append((t, ts, 10.0, 11.0, 9.0, 10.5, float(i)))
    return pd.DataFrame(
        rows, columns=["ticker", "timestamp", "open", "high", "low", "close", "volume"]
    )


def writer(path: str, first: int, conn: Connection) -> None:
    db = ParquetDB(path, l0_max_files=2, checkpoint_interval=7, target_file_rows=40)
    i = first
    while True:
        db.upsert_prices(batch(i))
        conn.send(i)
        i += 1


def check(path: Path, acked: set[int], started: int) -> int:
    """Assert the invariants; return the next batch number to write."""
    db = ParquetDB(path)
    df = db.read_table()
    assert not df.duplicated(["ticker", "timestamp"]).any()
    per_batch = df.groupby("volume").size()
    full = len(TICKERS) * ROWS_PER_TICKER
    # atomic: a batch is either entirely there or entirely absent
    assert (per_batch == full).all(), per_batch[per_batch != full]
    present = {int(v) for v in per_batch.index}
    assert acked <= present, sorted(acked - present)
    for f in (path / "prices").glob("*.parquet"):
        pq.read_table(f)
    report = db.verify()
    assert report.ok, report.problems
    return max(present | {started - 1}) + 1


def test_sigkill_at_random_instants_loses_nothing_acknowledged(tmp_path):
    path = tmp_path / "db"
    ParquetDB(path)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tickvault", "pandas", "pyarrow.parquet"])
    rng = random.Random(1234)
    acked: set[int] = set()
    nxt = 0
    kills = 0
    while kills < KILLS:
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=writer, args=(str(path), nxt, send))
        p.start()
        send.close()
        # wait for the first ack so the kill lands mid-run, then a random extra delay
        if recv.poll(30):
            acked.add(recv.recv())
        time.sleep(rng.uniform(0, 0.25))
        os.kill(p.pid, 9)
        p.join()
        kills += 1
        while recv.poll():
            try:
                acked.add(recv.recv())
            except EOFError:
                break
        recv.close()
        before = len(acked)
        nxt = check(path, acked, nxt)
        assert before == len(acked)
    assert kills >= KILLS
    # the kills landed mid-write: crashed writers left files that no version references
    assert ParquetDB(path).verify().orphans
    # and the writers' background compactions ran (and were killed) in between
    assert any(e["operation"] == "compact" for e in ParquetDB(path).history())
    # after all the kills, a fresh writer carries on normally
    db = ParquetDB(path)
    db.upsert_prices(batch(nxt))
    assert db.compact() is not None or db.verify().ok
    final = db.read_table()
    assert set(final.volume.astype(int)) >= acked | {nxt}
    assert db.verify().ok
