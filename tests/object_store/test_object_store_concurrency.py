"""Object storage, concurrency tier, on SeaweedFS (atomic conditional puts): many writers
in threads and processes commit to one bucket database at once, and writers SIGKILLed in
the middle of S3 commits lose nothing they acknowledged.

Asserted exactly: the rows, no duplicate keys, every upsert published once (versions
contiguous, commit ids unique), every file readable, ``verify`` clean.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from helpers.seaweed import BUCKET
from tickvault import ParquetDB

pytestmark = pytest.mark.s3

#: a writer process: upserts ROUNDS batches of its own tickers and prints each
#: acknowledged ticker (after the commit returned)
WRITER = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
from helpers.bars import arrow_bars
from tickvault import ParquetDB
url, opts, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
db = ParquetDB(url, storage_options=opts, l0_max_files=3)
for i in range(int(sys.argv[5])):
    t = f"{name}-{i}"
    db.upsert_prices(arrow_bars([t] * 5, list(range(5)), float(i + 1)))
    print(t, flush=True)
"""

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # helpers' parent


def writer(url: str, opts: dict[str, str], name: str, rounds: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", WRITER, url, json.dumps(opts), name, TESTS, str(rounds)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_exact(db: ParquetDB, tickers: set[str]) -> None:
    got = db.read_table()
    assert set(got["ticker"]) >= tickers
    assert len(got[got["ticker"].isin(tickers)]) == 5 * len(tickers)
    assert not got.duplicated(["ticker", "timestamp"]).any()
    log = db._table("prices").log
    history = db.history()
    assert [h["version"] for h in history] == list(range(len(history)))  # contiguous
    upserts = [log.read_entry(h["version"]) for h in history if h["operation"] == "upsert"]
    ids = [e["commit_id"] for e in upserts]
    assert len(ids) == len(set(ids))  # no commit published twice
    report = db.verify()
    assert report.ok, report.problems  # every live file opens and matches the log


def test_threads_and_processes_commit_to_one_bucket_without_losing_anything(seaweed):
    url = f"s3://{BUCKET}/hammer-{uuid.uuid4().hex[:8]}"
    ParquetDB(url, storage_options=seaweed)
    procs = [writer(url, seaweed, f"P{p}", 4) for p in range(2)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def thread_writer(k: int) -> None:
        from helpers.bars import arrow_bars

        try:
            db = ParquetDB(url, storage_options=seaweed, l0_max_files=3)
            barrier.wait()
            for i in range(4):
                db.upsert_prices(arrow_bars([f"T{k}-{i}"] * 5, list(range(5)), 1.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outs = [p.communicate(timeout=240) for p in procs]
    assert errors == [] and all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    expected = {f"T{k}-{i}" for k in range(4) for i in range(4)}
    expected |= {f"P{p}-{i}" for p in range(2) for i in range(4)}
    db = ParquetDB(url, storage_options=seaweed)
    db.compact()
    check_exact(db, expected)
    assert len([h for h in db.history() if h["operation"] == "upsert"]) == 24


@pytest.mark.crash
def test_writers_killed_during_s3_commits_lose_nothing_they_acknowledged(seaweed):
    url = f"s3://{BUCKET}/kill-{uuid.uuid4().hex[:8]}"
    ParquetDB(url, storage_options=seaweed)
    kills = int(os.environ.get("TICKVAULT_S3_KILLS", "6"))
    rng = random.Random(12)
    acknowledged: set[str] = set()
    for k in range(kills):
        proc = writer(url, seaweed, f"K{k}", 1000)
        time.sleep(rng.uniform(1.5, 3.0))  # about 1.5 s to start, then commits
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged |= set(out.split())
    assert len(acknowledged) >= kills  # the writers did commit before dying
    check_exact(ParquetDB(url, storage_options=seaweed), acknowledged)


def bucket_hammer(url: str, opts: dict[str, str], name: str, rounds: int) -> list[str]:
    """A Dask task that upserts straight into the bucket (the "wrong way" a user might
    use tickvault from workers): its own tickers, one commit per round."""
    from helpers.bars import arrow_bars

    db = ParquetDB(url, storage_options=opts, l0_max_files=3)
    done = []
    for i in range(rounds):
        t = f"{name}-{i}"
        db.upsert_prices(arrow_bars([t] * 5, list(range(5)), float(i + 1)))
        done.append(t)
    return done


def test_dask_threads_upserting_into_one_bucket_lose_nothing(seaweed):
    import dask

    url = f"s3://{BUCKET}/dask-threads-{uuid.uuid4().hex[:8]}"
    ParquetDB(url, storage_options=seaweed)
    tasks = [dask.delayed(bucket_hammer)(url, seaweed, f"D{w}", 3) for w in range(4)]
    done = dask.compute(*tasks, scheduler="threads", num_workers=4)
    acknowledged = {t for ts in done for t in ts}
    assert len(acknowledged) == 12
    db = ParquetDB(url, storage_options=seaweed)
    check_exact(db, acknowledged)
    assert len([h for h in db.history() if h["operation"] == "upsert"]) == 12


@pytest.mark.cluster
def test_a_local_cluster_upserting_into_one_bucket_loses_nothing(seaweed):
    from distributed import Client, LocalCluster

    url = f"s3://{BUCKET}/cluster-upserts-{uuid.uuid4().hex[:8]}"
    ParquetDB(url, storage_options=seaweed)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = [
            client.submit(bucket_hammer, url, seaweed, f"W{w}", 2, pure=False) for w in range(4)
        ]
        done = client.gather(futures)
    acknowledged = {t for ts in done for t in ts}
    assert len(acknowledged) == 8
    db = ParquetDB(url, storage_options=seaweed)
    db.compact()
    check_exact(db, acknowledged)


CLUSTER_BACKFILL = r"""
import json, sys
from tickvault import ParquetDB
from tickvault.pipeline import fetch_and_write
from tickvault.sources import DemoSource

db = ParquetDB(sys.argv[1], storage_options=json.loads(sys.argv[2]))
tickers = [f"C{i:02d}" for i in range(24)]
fetch_and_write(tickers, DemoSource(as_of="2024-06-28", latency=0.3), db,
                start="2023-01-02", end="2024-06-28", scheduler="distributed", n_workers=2,
                parallel_write=True, chunk_size=1, batch_rows=1, resume=True)
"""


@pytest.mark.cluster
@pytest.mark.crash
def test_a_cluster_writing_in_parallel_to_a_bucket_resumes_after_the_client_is_killed(seaweed):
    """Workers of a LocalCluster (processes) write data files straight to the bucket; the
    client, which commits, is SIGKILLed with its cluster; a resumed run completes it."""
    from tickvault.pipeline import fetch_and_write
    from tickvault.sources import DemoSource
    from tickvault.storage import MemoryStore

    url = f"s3://{BUCKET}/cluster-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(url, storage_options=seaweed)
    argv = [sys.executable, "-c", CLUSTER_BACKFILL, url, json.dumps(seaweed)]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while db.version < 4:  # several commits from the cluster's files
            assert proc.poll() is None, "the backfill ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its cluster's processes
        proc.wait(timeout=30)
    committed = set(db.tickers())
    assert 1 <= len(committed) < 24 and db.runs() == []
    tickers = [f"C{i:02d}" for i in range(24)]
    source = DemoSource(as_of="2024-06-28")
    report = fetch_and_write(tickers, source, db, start="2023-01-02", end="2024-06-28", resume=True)
    assert report["skipped"] == len(committed) and report["failed"] == 0
    reference = ParquetDB(store=MemoryStore())
    fetch_and_write(tickers, source, reference, start="2023-01-02", end="2024-06-28")
    got = db.read_table().reset_index(drop=True)
    assert got.equals(reference.read_table().reset_index(drop=True))
    assert db.verify().ok
