"""Object storage, fault tier: a real SeaweedFS S3 server behind a real fault-injecting HTTP
proxy on 127.0.0.1 (tests/fault_proxy.py) — cut-off bodies, 500s after a write landed,
403s, a server that stops for a while (issue 26 items 12-15). Nothing of tickvault is
mocked: the faults are on the wire.

What is asserted: a flaky network costs time, not failed calls (reads and writes are
retried with backoff for ``retry_timeout`` seconds); a refusal fails at once as a permission
error naming the object and the operation; a writer whose commit did not happen leaves no
files; what a crash leaves is reclaimed automatically once older than the retention.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.bars import arrow_bars
from helpers.fault_proxy import Fault, FaultProxy
from helpers.seaweed import BUCKET
from tickvault import ParquetDB
from tickvault.errors import (
    ConfigError,
    ObjectStorePermissionError,
    ObjectStoreUnavailable,
)
from tickvault.storage.core.object_store import DEFAULT_RETRY_TIMEOUT, ObjectStore

pytestmark = [pytest.mark.s3, pytest.mark.slow]

LOG_ENTRY = r"/_log/\d+\.json"


@pytest.fixture
def proxy(seaweed: dict[str, str]) -> Iterator[FaultProxy]:
    with FaultProxy(seaweed["endpoint"]) as p:
        yield p


def through(proxy: FaultProxy, seaweed: dict[str, str], **extra: object) -> dict[str, object]:
    """Storage options that reach the server through the proxy."""
    return {**seaweed, "endpoint": proxy.endpoint, **extra}


def new_url() -> str:
    return f"s3://{BUCKET}/faults-{uuid.uuid4().hex[:8]}"


def orphans(db: ParquetDB) -> list[str]:
    return list(db.verify().orphans)


# -- item 12: retryable read failures are retried inside the library ----------------------


def test_cut_off_log_entry_bodies_cost_time_not_failed_calls(seaweed, proxy):
    """More cut-off answers in a row for a log entry than the HTTP client retries by
    itself (10): the library keeps retrying with backoff, and the call succeeds."""
    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed), auto_compact=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    proxy.faults = [Fault("truncate", method="GET", path=LOG_ENTRY, times=15)]
    other = ParquetDB(url, storage_options=through(proxy, seaweed), auto_compact=False)
    other.upsert_prices(arrow_bars(["BBB"], [0], 2.0))  # reads the log: cut off 15 times
    assert proxy.faults[0].hits == 15
    assert sorted(other.read_table()["ticker"]) == ["AAA", "BBB"]


def test_ten_percent_cut_off_bodies_and_500s_fail_no_call(seaweed, proxy):
    url = new_url()
    opts = through(proxy, seaweed)
    db = ParquetDB(url, storage_options=opts, auto_compact=False)
    proxy.faults = [
        Fault("truncate", method="GET", rate=0.1),
        Fault("500", rate=0.05),
        Fault("drop", rate=0.03),
    ]
    for i in range(30):
        db.upsert_prices(arrow_bars(["AAA", f"T{i:02d}"], [i, 0], float(i + 1)))
    assert proxy.hits["truncate"] and proxy.hits["500"]
    proxy.faults = []
    fresh = ParquetDB(url, storage_options=opts, create=False)
    assert len(fresh.read_table()) == 60 and fresh.verify().ok
    upserts = [h for h in fresh.history() if h["operation"] == "upsert"]
    assert len(upserts) == 30  # each published once
    assert orphans(fresh) == []


# -- item 15: a refusal is not a lost race --------------------------------------------------


@pytest.mark.timeout(120)
def test_a_403_on_the_commit_fails_at_once_as_a_permission_error(seaweed, proxy):
    url = new_url()
    opts = through(proxy, seaweed)
    db = ParquetDB(url, storage_options=opts, auto_compact=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    proxy.faults = [Fault("403", method="PUT", path=LOG_ENTRY)]
    started = time.monotonic()
    with pytest.raises(ObjectStorePermissionError) as info:
        db.upsert_prices(arrow_bars(["BBB"], [0], 2.0))
    assert time.monotonic() - started < 10
    err = info.value
    assert err.operation == "conditional PUT" and not err.retryable and not err.ambiguous
    assert "_log/00000000000000000002.json" in str(err) and "AccessDenied" in str(err)
    assert "permission denied" in str(err) and "<" not in str(err)
    proxy.faults = []
    assert orphans(db) == []  # the refused writer deleted its data file
    assert db.version == 1


def test_another_4xx_fails_at_once_and_is_not_retryable(seaweed, proxy):
    from tickvault.errors import ObjectStoreError

    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed), auto_vacuum=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    db.wait_for_compaction()
    # once: a retry of the refused GET would succeed, so an error means none was made
    # (a new handle fetches the log's entries in parallel; only the first is refused)
    proxy.faults = [Fault("400", method="GET", path=LOG_ENTRY, times=1)]
    reader = ParquetDB(url, storage_options=through(proxy, seaweed), create=False)
    started = time.monotonic()
    with pytest.raises(ObjectStoreError) as info:
        reader.read_table()
    assert time.monotonic() - started < 10 and proxy.faults[0].hits == 1
    assert not info.value.retryable and not isinstance(info.value, ObjectStoreUnavailable)
    assert "HTTP 400 InvalidRequest" in str(info.value)


# -- item 13: a writer whose commit did not happen leaves no files --------------------------


def test_a_data_file_put_that_lands_but_fails_leaves_no_orphan(seaweed, proxy):
    url = new_url()
    opts = through(proxy, seaweed, retry_timeout=1)
    db = ParquetDB(url, storage_options=opts, auto_compact=False, target_file_rows=2)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    # every PUT of a data file lands, and is answered 500: the call fails after 1 s
    proxy.faults = [Fault("500-after", method="PUT", path=r"\.parquet")]
    with pytest.raises(ObjectStoreUnavailable) as info:
        db.upsert_prices(arrow_bars(["B", "C", "D", "E"] * 2, [0, 0, 0, 0, 1, 1, 1, 1], 2.0))
    assert "retry_timeout=1s" in str(info.value) and proxy.hits["500-after"] >= 2
    proxy.faults = []
    assert orphans(db) == [] and db.version == 1


def test_a_failed_read_during_the_commit_deletes_the_writers_files(seaweed, proxy):
    url = new_url()
    opts = through(proxy, seaweed, retry_timeout=1)
    db = ParquetDB(url, storage_options=opts, auto_compact=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    proxy.faults = [Fault("503", method="GET", path=LOG_ENTRY)]
    with pytest.raises(ObjectStoreUnavailable):
        db.upsert_prices(arrow_bars(["BBB", "CCC"], [0, 0], 2.0))
    proxy.faults = []
    assert orphans(db) == [] and db.version == 1


#: an earlier run that committed once, then wrote two files and died before committing
CRASHED_RUN = r"""
import json, os, sys
sys.path.insert(0, sys.argv[2])
from helpers.bars import arrow_bars
from tickvault import ParquetDB
db = ParquetDB(sys.argv[1], auto_compact=False)
db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
files = [db.write_files("prices", arrow_bars([t], [0], 1.0))[0].path for t in ("OLD", "NEW")]
print(json.dumps(files), flush=True)
os._exit(9)  # killed: no cleanup
"""


def test_what_a_crash_leaves_is_reclaimed_once_older_than_the_retention(tmp_path):
    """A killed writer cannot clean up: its files are orphans. A later run's process
    reclaims them automatically once older than the retention (no vacuum needed), and
    never touches a young one (an in-flight writer may be about to commit it)."""
    import json
    import subprocess
    import sys

    root = tmp_path / "db"
    tests_root = str(Path(__file__).resolve().parents[1])  # where the helpers package is
    argv = [sys.executable, "-c", CRASHED_RUN, str(root), tests_root]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 9, run.stderr
    old_name, young_name = json.loads(run.stdout)
    old = root / "prices" / old_name
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    db = ParquetDB(root, auto_compact=False)
    assert len(orphans(db)) == 2
    db.upsert_prices(arrow_bars(["BBB"], [0], 2.0))  # the next run
    db.wait_for_compaction()
    assert not old.exists()
    assert orphans(db) == [f"prices/{young_name}"]
    assert sorted(db.read_table()["ticker"]) == ["AAA", "BBB"] and db.verify().ok


# -- item 14: the retry budget is a time ------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_server_stopped_for_ten_seconds_costs_time_not_a_failed_call(seaweed, proxy):
    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed), auto_compact=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    restarted = proxy.stop_for(10)
    started = time.monotonic()
    db.upsert_prices(arrow_bars(["BBB"], [0], 2.0))
    assert time.monotonic() - started >= 9
    restarted.join()
    assert db.version == 2 and orphans(db) == []


def test_the_retry_budget_is_an_option(seaweed, proxy):
    url = new_url()
    assert ObjectStore(url, seaweed).retry_timeout == DEFAULT_RETRY_TIMEOUT == 60
    db = ParquetDB(url, storage_options=through(proxy, seaweed, retry_timeout=2))
    restarted = proxy.stop_for(8)
    started = time.monotonic()
    with pytest.raises(ObjectStoreUnavailable) as info:
        db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    assert 1.5 < time.monotonic() - started < 15  # not the 60 s default
    assert info.value.retryable and "retry_timeout=2s" in str(info.value)
    restarted.join()
    import pickle

    assert pickle.loads(pickle.dumps(db)).store.retry_timeout == 2  # workers get it
    with pytest.raises(ConfigError, match="retry_timeout"):
        ObjectStore(url, {**seaweed, "retry_timeout": "soon"})


def test_a_refused_pipeline_commit_leaves_no_files_of_any_batch(seaweed, proxy):
    """Parallel writes: workers write files, one writer commits batch after batch. When a
    commit is refused, the batch being committed and every batch queued behind it are
    deleted — none will ever be committed."""
    from tickvault import fetch_and_write

    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed), auto_compact=False)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    proxy.faults = [
        Fault("latency", method="GET", path=LOG_ENTRY, latency=0.3),  # slow commits...
        Fault("403", method="PUT", path=LOG_ENTRY),  # ...that are refused
    ]
    with pytest.raises(ObjectStorePermissionError):
        fetch_and_write(
            [f"P{i:02d}" for i in range(16)], db=db, start="2024-01-02", end="2024-01-31",
            parallel_write=True, batch_rows=1, chunk_size=1, n_workers=4,
        )  # fmt: skip
    proxy.faults = []
    assert orphans(db) == [] and db.version == 1


def test_a_data_file_the_store_cannot_serve_is_unavailable_not_damaged(seaweed, proxy):
    """A read of a data file that fails for the whole retry budget is the store's
    problem (exit 75), not a damaged database (exit 4); verify does not call the file
    unreadable either."""
    from tickvault.errors import CorruptDatabaseError

    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed, retry_timeout=1))
    db.upsert_prices(arrow_bars(["AAA", "BBB"], [0, 0], 1.0))
    reader = ParquetDB(url, storage_options=through(proxy, seaweed, retry_timeout=1))
    proxy.faults = [Fault("503", method="GET", path=r"\.parquet")]
    with pytest.raises(ObjectStoreUnavailable) as info:
        reader.read_table()
    assert not isinstance(info.value, CorruptDatabaseError)
    with pytest.raises(ObjectStoreUnavailable):
        reader.verify()
    proxy.faults = []
    assert len(reader.read_table()) == 2 and reader.verify().ok


def test_a_run_whose_read_back_the_store_cannot_serve_says_unchecked_not_damaged(seaweed, proxy):
    from tickvault import fetch_and_write

    url = new_url()
    db = ParquetDB(url, storage_options=through(proxy, seaweed, retry_timeout=1))
    proxy.faults = [Fault("503", method="GET", path=r"\.parquet")]  # reading files back
    report = fetch_and_write(["AAA", "BBB"], db=db, start="2024-01-02", end="2024-01-31")
    assert report["written"] == 2
    problems = report.verify["problems"]
    assert problems and all(": unchecked: could not be read back" in p for p in problems)
    proxy.faults = []
    assert db.verify().ok and len(db.runs()) == 1
