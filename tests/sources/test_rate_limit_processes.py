"""``rate_limit=R`` holds for the whole machine: threads, worker processes, pickled copies.

A source's token bucket lives in a small state file under an exclusive lock
(:class:`~tickvault.sources.machine_limit.FileTokenBucket`), so P worker processes together start
at most R requests per second instead of P x R."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import struct
import time
from pathlib import Path

import pytest

from helpers.http_server import MarketServer
from tickvault import ParquetDB, fetch_and_write, get_source
from tickvault.sources.machine_limit import FileTokenBucket, rate_state_dir, shared_bucket
from tickvault.sources.policy import RateLimit, RetryPolicy

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_file_buckets_on_one_file_share_one_limit(tmp_path: Path) -> None:
    clock = FakeClock()
    limit = RateLimit(per_second=10)
    a = FileTokenBucket(limit, clock=clock, path=tmp_path / "b")
    b = FileTokenBucket(limit, clock=clock, path=tmp_path / "b")
    assert a.try_acquire() == 0.0
    # the other "process" sees the slot taken: it must wait most of an interval
    assert b.try_acquire() == pytest.approx(0.09)
    clock.now += 0.09
    assert b.try_acquire() == 0.0
    assert a.try_acquire() == pytest.approx(0.1)
    b.defer(2.0)
    assert a.paused_until == pytest.approx(clock.now + 2.0)
    # a bucket on another file is independent
    c = FileTokenBucket(limit, clock=clock, path=tmp_path / "c")
    assert c.try_acquire() == 0.0


def test_shared_bucket_uses_a_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(tmp_path / "rate"))
    assert rate_state_dir() == tmp_path / "rate"
    bucket = shared_bucket("test-key-1", RateLimit(per_second=3, burst=2))
    assert isinstance(bucket, FileTokenBucket)
    assert bucket.path.parent == tmp_path / "rate"
    assert bucket.acquire() == 0.0
    assert bucket.path.stat().st_size == 16  # the state was written
    assert shared_bucket("test-key-1", RateLimit(per_second=3, burst=2)) is bucket


def test_stale_state_files_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "rate"
    folder.mkdir()
    old, young = folder / "old.bucket", folder / "young.bucket"
    expired = struct.pack("<dd", 0.0, float("-inf"))  # both long before now
    old.write_bytes(expired)
    young.write_bytes(expired)
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(folder))
    shared_bucket("test-key-sweep", RateLimit(per_second=1))
    assert not old.exists() and young.exists()


def _grants_in_child(args: tuple[str, int]) -> list[float]:
    path, n = args
    bucket = FileTokenBucket(RateLimit(per_second=40), path=Path(path))
    out = []
    for _ in range(n):
        bucket.acquire()
        out.append(time.monotonic())
    return out


@pytest.mark.slow
def test_processes_together_stay_within_the_limit(tmp_path: Path) -> None:
    shared = str(tmp_path / "shared.bucket")
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        # warm the pool first so process start-up does not spread the grants out
        list(pool.map(abs, range(4)))
        grants = sorted(t for ts in pool.map(_grants_in_child, [(shared, 15)] * 4) for t in ts)
    assert len(grants) == 60
    # per-process buckets would grant 4 x 40 / s, all 60 in about 0.4 s
    assert grants[-1] - grants[0] >= 57 / 40
    for i in range(len(grants)):
        for j in range(i + 1, len(grants)):
            # at most rate * t + burst (+ SLACK, + one for timestamps taken after the grant)
            assert j - i <= 40 * (grants[j] - grants[i]) + 1 + 0.1 + 1


@pytest.mark.slow
def test_pipeline_on_worker_processes_respects_the_servers_limit(tmp_path: Path) -> None:
    """The server answers 429 above 12 requests/s; the source is limited to 10/s. With
    three worker processes that each had their own bucket, they would send about 30/s."""
    server = MarketServer(rate_limit=12, burst=2).start()
    try:
        source = get_source("yahoo", base_url=server.base_url, rate_limit=10, http_retry=FAST)
        tickers = [f"T{i:02d}" for i in range(24)]
        report = fetch_and_write(
            tickers,
            source,
            ParquetDB(tmp_path / "db"),
            start="2024-05-01",
            end="2024-05-31",
            scheduler="processes",
            n_workers=3,
        )
        assert report["failed"] == 0 and report["written"] == 24
        statuses = [r.status for r in server.requests]
        assert statuses.count(429) == 0, statuses
        times = sorted(r.at for r in server.requests)
        assert len(times) == 24
        assert times[-1] - times[0] >= 21 / 10
    finally:
        server.stop()


def test_unusable_state_file_falls_back_to_a_per_process_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    bucket = FileTokenBucket(
        RateLimit(per_second=10), clock=clock, path=tmp_path / "missing" / "x.bucket"
    )
    with caplog.at_level("WARNING", logger="tickvault.sources.machine_limit"):
        assert bucket.try_acquire() == 0.0
        assert bucket.try_acquire() == pytest.approx(0.09)  # still limited, in memory
        clock.now += 0.09
        assert bucket.try_acquire() == 0.0
    warnings = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(warnings) == 1
