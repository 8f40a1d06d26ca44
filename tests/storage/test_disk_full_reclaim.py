"""A full disk that holds reclaimable space: a write reclaims superseded files and retries
once before it gives up, and a compaction that cannot fit does not start (issue 25 item 6)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.faulty_store import FaultyStore
from helpers.storage_model import Model, assert_same, bars
from tickvault import ParquetDB, StorageFull
from tickvault.storage import LocalStore

DAY = 86_400 * 10**9
MB = 1 << 20


def in_compactor() -> bool:
    return threading.current_thread().name.startswith("tickvault-compact")


def random_bars(rng: np.random.Generator, i: int, tickers: int = 20, days: int = 50):
    """Random prices (they do not compress away): ``days`` new days of ``tickers`` tickers,
    one of 25 groups of tickers in turn."""
    closes = rng.uniform(10, 1000, size=(tickers, days))
    group, block = i % 25, i // 25
    return bars(
        (f"T{group * tickers + t:03d}", (block * days + d) * DAY, float(closes[t, d]))
        for t in range(tickers)
        for d in range(days)
    )


def parquet_bytes(folder: Path, names: set[str] | None = None) -> int:
    return sum(
        p.stat().st_size for p in folder.glob("*.parquet") if names is None or p.name in names
    )


def small_disk(tmp_path: Path, size: str):
    """A tmpfs of ``size`` (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        why = " ".join(done.stderr.decode().split()) or f"mount exited {done.returncode}"
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def disk_40m(tmp_path):
    """A 40 MB tmpfs: the disk of the report."""
    yield from small_disk(tmp_path, "40m")


@pytest.fixture
def disk_16m(tmp_path):
    """A 16 MB tmpfs: fills in 40 % of the writes a 40 MB one takes, with the same share of
    live data when full (0.845-0.855 against 0.853-0.86 for 40 MB, measured at each pace)."""
    yield from small_disk(tmp_path, "16m")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 1.0])
def test_a_full_disk_is_mostly_live_data_whatever_the_compactors_pace(disk_16m, delay):
    """The compactor slowed as on a busy machine (each file it writes waits ``delay``): when
    StorageFull is first raised, at least 80 % of the disk holds live data."""
    store = FaultyStore(LocalStore(disk_16m / "db", fsync=False))
    store.on("writer", "prices/*.parquet", lambda: time.sleep(delay), times=None, when=in_compactor)
    db = ParquetDB(disk_16m / "db", store=store, retention=0, l0_max_files=2)
    model = Model()
    rng = np.random.default_rng(0)
    error = None
    for i in range(3000):
        df = random_bars(rng, i)
        try:
            model.add(db.upsert_prices(df).version, df)
        except StorageFull as exc:
            error = exc
            live = parquet_bytes(disk_16m / "db" / "prices", set(db.snapshot().files))
            break
    assert error is not None, "the disk never filled up"
    disk = shutil.disk_usage(disk_16m).total
    assert live >= 0.8 * disk, f"only {live / MB:.1f} MB of {disk / MB:.0f} MB live: {error}"
    db.close()
    assert db.verify().ok
    assert_same(db.read_table(), model.frame())  # every acknowledged upsert is there


def write_until_compacted(db: ParquetDB, model: Model, rng, start: int, n: int = 4) -> None:
    for i in range(start, start + n):
        df = random_bars(rng, i, tickers=4, days=5)
        model.add(db.upsert_prices(df).version, df)
    assert db.wait_for_compaction(timeout=60)


def test_a_write_on_a_full_disk_reclaims_superseded_files_and_retries_once(tmp_path):
    store = FaultyStore(LocalStore(tmp_path / "db", fsync=False))
    db = ParquetDB(tmp_path / "db", store=store, retention=0.5, l0_max_files=2)
    model, rng = Model(), np.random.default_rng(1)
    write_until_compacted(db, model, rng, 0)
    folder = tmp_path / "db" / "prices"
    superseded = {p.name for p in folder.glob("*.parquet")} - set(db.snapshot().files)
    assert superseded  # young: the retention keeps them
    time.sleep(0.6)  # now older than the retention, and no commit since to reclaim them
    full = store.fail("writer", "prices/*.parquet", times=1, when=lambda: not in_compactor())
    df = random_bars(rng, 99, tickers=4, days=5)
    model.add(db.upsert_prices(df).version, df)  # no StorageFull: space was reclaimed
    assert full.fired == 1
    assert not superseded & {p.name for p in folder.glob("*.parquet")}
    db.close()
    assert_same(db.read_table(), model.frame())


def test_a_write_on_a_full_disk_with_nothing_to_reclaim_is_tried_once(tmp_path):
    store = FaultyStore(LocalStore(tmp_path / "db", fsync=False))
    db = ParquetDB(tmp_path / "db", store=store, retention=3600, l0_max_files=2)
    model, rng = Model(), np.random.default_rng(2)
    write_until_compacted(db, model, rng, 0)
    full = store.fail("writer", "prices/*.parquet", times=None, when=lambda: not in_compactor())
    with pytest.raises(StorageFull):
        db.upsert_prices(random_bars(rng, 99, tickers=4, days=5))
    assert full.fired == 1  # superseded files within the retention stay: no retry
    store.heal()
    db.close()
    assert_same(db.read_table(), model.frame())


def test_a_compaction_that_cannot_fit_does_not_start_and_says_so_once(disk_40m, caplog):
    caplog.set_level(logging.INFO, logger="tickvault")
    db = ParquetDB(disk_40m / "db", retention=0, l0_max_files=2, auto_compact=False)
    model, rng = Model(), np.random.default_rng(3)
    for i in range(30):  # level 0 only: about 6 MB to compact
        df = random_bars(rng, i)
        model.add(db.upsert_prices(df).version, df)
    level0 = set(db.snapshot().files)
    free = shutil.disk_usage(disk_40m).free
    filler = disk_40m / "filler.bin"
    filler.write_bytes(b"\0" * (free - parquet_bytes(disk_40m / "db" / "prices") // 2))
    for _ in range(3):
        db.compact(wait=False)
        assert db.wait_for_compaction(timeout=60)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "not started" in said[0], said
    assert set(db.snapshot().files) == level0  # nothing was compacted ...
    assert db.verify().ok  # ... and no failure recorded
    filler.unlink()
    db.compact(wait=False)
    assert db.wait_for_compaction(timeout=60)
    assert set(db.snapshot().files).isdisjoint(level0)  # room again: it ran
    assert_same(db.read_table(), model.frame())
