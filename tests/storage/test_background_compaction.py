"""Writes never wait for compaction: it runs on a background thread of the process,
coalesced, one at a time per table, and stops cleanly on close, cancel and exit."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.bars import arrow_bars
from helpers.faulty_store import FaultyStore
from helpers.storage_model import Model, assert_healthy, assert_same, bars
from tickvault import ParquetDB
from tickvault.storage import LocalStore
from tickvault.storage.upkeep import compaction, compactor

OPTS = {"fsync": False, "l0_max_files": 2, "target_file_rows": 64}


def day_rows(ticker: str, day: int, close: float = 10.0):
    return [(ticker, day * 86_400 * 10**9, close)]


class BlockedCompaction:
    """Replaces compaction.run: records which thread called it and blocks until released
    (at most ``limit`` seconds, so a broken test fails instead of hanging)."""

    def __init__(self, real, limit: float = 30.0) -> None:
        self.real = real
        self.release = threading.Event()
        self.entered = threading.Event()
        self.threads: list[int] = []
        self.limit = limit

    def __call__(self, table, **kwargs):
        self.threads.append(threading.get_ident())
        self.entered.set()
        assert self.release.wait(self.limit), "the test never released the compaction"
        return self.real(table, **kwargs)


@pytest.fixture
def blocked(monkeypatch):
    b = BlockedCompaction(compaction.run)
    monkeypatch.setattr(compaction, "run", b)
    yield b
    b.release.set()


def test_upserts_return_while_a_compaction_is_due_and_blocked(tmp_path, blocked):
    db = ParquetDB(tmp_path / "db", **OPTS)
    model = Model()
    for day in range(8):  # more level-0 files than l0_max_files: compaction is due
        df = bars(day_rows("AAA", day))
        model.add(db.upsert_prices(df).version, df)
    assert blocked.entered.wait(10)  # the background compactor started ...
    for day in range(8, 12):  # ... and while it is stuck, writes and reads go on
        df = bars(day_rows("AAA", day))
        model.add(db.upsert_prices(df).version, df)
    files = db.write_files("prices", bars(day_rows("BBB", 1)))
    model.add(db.commit_files("prices", files).version, bars(day_rows("BBB", 1)))
    assert_same(db.read_table(), model.frame())
    assert threading.get_ident() not in blocked.threads
    blocked.release.set()
    assert db.wait_for_compaction(timeout=30)
    state = db._table("prices").refresh()
    assert sum(f.level == 0 for f in state.files.values()) <= OPTS["l0_max_files"]
    assert_same(db.read_table(), model.frame())
    assert_healthy(tmp_path / "db")


def test_many_commits_coalesce_into_few_compactions(tmp_path, blocked):
    db = ParquetDB(tmp_path / "db", **OPTS)
    for day in range(60):  # 60 commits, 57 of which find a compaction due
        db.upsert_prices(bars(day_rows("AAA", day)))
    assert blocked.entered.wait(10)
    blocked.release.set()
    assert db.wait_for_compaction(timeout=60)
    compactions = [e for e in db.history() if e["operation"] == "compact"]
    assert 1 <= len(compactions) <= 2  # the requests made meanwhile were coalesced
    assert len(blocked.threads) <= 5
    assert len(db.read_table()) == 60


def test_one_compactor_per_table_and_process_shared_by_handles(tmp_path, blocked):
    a = ParquetDB(tmp_path / "db", **OPTS)
    b = ParquetDB(tmp_path / "db", **OPTS)
    assert compactor.compactor_for(a._table("prices")) is compactor.compactor_for(
        b._table("prices")
    )
    for day in range(6):
        a.upsert_prices(bars(day_rows("AAA", day)))
    assert blocked.entered.wait(10)
    done = threading.Event()

    def sync_compact() -> None:
        b.compact()
        done.set()

    t = threading.Thread(target=sync_compact)
    t.start()
    # the synchronous compaction waits for the background one (one at a time per table)
    assert not done.wait(0.5)
    assert len(blocked.threads) == 1
    blocked.release.set()
    t.join(30)
    assert done.is_set()
    assert not any(f.level == 0 for f in b._table("prices").refresh().files.values())


def test_compact_without_waiting_returns_at_once_and_compacts_in_background(tmp_path, blocked):
    db = ParquetDB(tmp_path / "db", fsync=False, auto_compact=False)
    for day in range(3):
        db.upsert_prices(bars(day_rows("AAA", day)))
    assert db.compact(wait=False) is None
    assert blocked.entered.wait(10) and threading.get_ident() not in blocked.threads
    blocked.release.set()
    assert db.wait_for_compaction(timeout=30)
    assert all(f.level == 1 for f in db._table("prices").refresh().files.values())


def test_close_waits_and_close_cancel_abandons(tmp_path, blocked):
    db = ParquetDB(tmp_path / "db", **OPTS)
    for day in range(6):
        db.upsert_prices(bars(day_rows("AAA", day)))
    assert blocked.entered.wait(10)
    closer = threading.Thread(target=db.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive()  # close() waits for the running compaction
    blocked.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert db.verify().ok

    other = ParquetDB(tmp_path / "db2", **OPTS)
    blocked.release.clear()
    blocked.entered.clear()
    before = None
    for day in range(6):
        other.upsert_prices(bars(day_rows("BBB", day)))
    assert blocked.entered.wait(10)
    before = other.version
    threading.Timer(0.3, blocked.release.set).start()
    other.close(cancel=True)  # the compaction stops at its next check and commits nothing
    assert other.version == before
    assert ParquetDB(tmp_path / "db2").verify().ok
    assert len(ParquetDB(tmp_path / "db2").read_table()) == 6


def test_background_failure_is_logged_once_recorded_for_verify_and_retried(tmp_path, caplog):
    store = FaultyStore(LocalStore(tmp_path / "db", fsync=False))
    # the disk is full for the compactor's output (off the calling thread), not for upserts;
    # each compaction here writes one file, so every firing is one attempt
    full = store.fail(
        "writer",
        "prices/*.parquet",
        OSError(errno.ENOSPC, "No space left on device"),  # the same message every time
        times=None,
        when=lambda: threading.current_thread() is not threading.main_thread(),
    )
    db = ParquetDB(tmp_path / "db", store=store, **OPTS)
    with caplog.at_level(logging.WARNING, logger="tickvault"):
        for day in range(8):
            db.upsert_prices(bars(day_rows("AAA", day)))  # never raises
            db.wait_for_compaction(timeout=30)
    assert full.fired >= 2  # retried after later commits
    failures = [r for r in caplog.records if "background compaction failed" in r.getMessage()]
    assert len(failures) == 1  # the same error is logged once
    report = ParquetDB(tmp_path / "db").verify()  # another handle (as another process) sees it
    assert report.ok and len(report.warnings) == 1
    assert "No space left on device" in report.warnings[0]
    store.heal()  # the disk has space again
    db.upsert_prices(bars(day_rows("AAA", 99)))
    assert db.wait_for_compaction(timeout=30)
    assert db.verify().warnings == []
    assert len(db.read_table()) == 9


SLOW_EXIT = """
import sys, time
from tickvault import ParquetDB
from tickvault.storage.upkeep import compaction
import pandas as pd

real = compaction.run
def slow(table, *, full=False, stop=None):
    # a compaction that takes long, checking its stop flag like the real one does
    for _ in range(600):
        if stop is not None and stop():
            return None
        time.sleep(0.05)
    return real(table, full=full, stop=stop)
compaction.run = slow
db = ParquetDB(sys.argv[1], fsync=False, l0_max_files=2)
for d in range(6):
    db.upsert_prices(pd.DataFrame({"ticker": ["AAA"], "timestamp": [pd.Timestamp(2024, 1, 1 + d)],
        "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]}))
print("written", flush=True)
"""


def test_interpreter_exit_with_a_compaction_running_does_not_hang(tmp_path):
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", SLOW_EXIT, str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "written"
    assert elapsed < 15  # the slow compaction would take 30 s; exit stopped it
    db = ParquetDB(tmp_path / "db")
    assert db.verify().ok and len(db.read_table()) == 6


def test_upsert_does_not_compact_when_no_compaction_is_due(tmp_path):
    """(It checked that no thread started, which passed only after another test had left
    one running: the first commit of a process asks once for a sweep of orphans, decision
    019.) Nothing due: the file stays in level 0, and later commits ask for nothing."""
    db = ParquetDB(tmp_path / "db", fsync=False)
    version = db.upsert_prices(arrow_bars(["AAA", "BBB"], [1, 1])).version
    assert db.wait_for_compaction(timeout=30)
    t = db._table("prices")
    worker = compactor.existing_compactor(t)
    assert worker is None or worker.swept  # at most the one sweep
    version = db.upsert_prices(arrow_bars(["CCC"], [2])).version
    assert worker is None or not worker.busy  # a second commit asks for nothing
    assert db.wait_for_compaction(timeout=30)
    assert t.refresh().version == version  # no compaction committed


@pytest.mark.slow
def test_reads_right_after_many_small_upserts_see_everything(tmp_path: Path):
    db = ParquetDB(tmp_path / "db", fsync=False)
    model = Model()
    for day in range(200):
        df = bars(day_rows(f"T{day % 7}", day, close=float(day + 1)))
        model.add(db.upsert_prices(df).version, df)
        if day % 50 == 0:
            assert_same(db.read_table(), model.frame())  # never waits for compaction
    assert_same(db.read_table(), model.frame())
    db.close()
    assert_healthy(tmp_path / "db")


def test_auto_compact_off_is_never_compacted_by_a_sweep(tmp_path: Path):
    """The first commit of a process asks for a sweep of orphans (decision 019); the sweep
    ran a compaction when one was due, so a table opened with ``auto_compact=False`` was
    compacted after all."""
    db = ParquetDB(tmp_path / "db", fsync=False, auto_compact=False)
    for day in range(10):
        db.upsert_prices(bars(day_rows("AAA", day)))
    db.close()
    script = (
        "import sys; sys.path[:0] = sys.argv[2:]\n"
        "from tickvault import ParquetDB\n"
        "from helpers.storage_model import bars\n"
        "db = ParquetDB(sys.argv[1], fsync=False, auto_compact=False)\n"
        "db.upsert_prices(bars([('BBB', 0, 1.0)]))\n"
        "db.close()\n"  # waits for the sweep
    )
    tests = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "db"), tests], check=True)
    history = ParquetDB(tmp_path / "db", auto_compact=False).history()
    assert [h["operation"] for h in history].count("compact") == 0
    assert len(history) == 12  # create, ten upserts, the new process's upsert


def test_a_cancelled_compaction_request_is_not_run_by_a_later_sweep(tmp_path: Path):
    db = ParquetDB(tmp_path / "db", fsync=False, auto_compact=False)
    for day in range(6):
        db.upsert_prices(bars(day_rows("AAA", day)))
    t = db._table("prices")
    version = t.refresh().version
    worker = compactor.compactor_for(t)
    with worker._cond:  # the worker cannot take the request before it is cancelled
        worker.request(full=True)
        worker.cancel()
    worker.request(reclaim=True)
    assert worker.wait(timeout=30)
    assert t.refresh().version == version  # nothing compacted
