"""Disk space comes back by itself, a full disk is a clear typed error, and time travel says
honestly when an old version's files are gone."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.storage_model import Model, assert_healthy, assert_same, bars
from tickvault import ConfigError, ParquetDB, StorageFull, VersionUnavailable
from tickvault.cli.errors import exit_code

FAST = {"fsync": False, "l0_max_files": 2, "target_file_rows": 64}
DAY = 86_400 * 10**9


def rows(ticker: str, first: int, n: int = 1, close: float = 10.0):
    return [(ticker, (first + d) * DAY, close) for d in range(n)]


def parquet_files(path: Path) -> set[str]:
    return {p.name for p in (path / "prices").glob("*.parquet")}


def live_files(db: ParquetDB) -> set[str]:
    return set(db.snapshot().files)


def write_until_compacted(db: ParquetDB, model: Model, start: int = 0, n: int = 8) -> None:
    for d in range(start, start + n):
        df = bars(rows(f"T{d % 3}", d))
        model.add(db.upsert_prices(df).version, df)
    assert db.wait_for_compaction(timeout=60)
    assert any(e["operation"] == "compact" for e in db.history())


def test_files_superseded_by_compaction_are_reclaimed_automatically(tmp_path):
    db = ParquetDB(tmp_path / "db", retention=0, **FAST)
    model = Model()
    write_until_compacted(db, model)
    write_until_compacted(db, model, start=8)
    assert parquet_files(tmp_path / "db") == live_files(db)  # nothing but live files left
    report = db.verify()
    assert report.ok and report.unreferenced == [] and report.orphans == []
    assert_same(db.read_table(), model.frame())


@pytest.mark.slow
def test_superseded_files_are_kept_for_the_retention_then_go_at_a_later_commit(tmp_path):
    db = ParquetDB(tmp_path / "db", retention=1.5, **FAST)
    model = Model()
    write_until_compacted(db, model)
    first = db.history()[1]["version"]
    kept = parquet_files(tmp_path / "db") - live_files(db)
    assert kept  # young: an old version may still be read
    assert len(db.read_table(version=first)) == 1
    time.sleep(1.6)
    df = bars(rows("ZZZ", 500))  # a commit that needs no compaction ...
    model.add(db.upsert_prices(df).version, df)
    assert db.wait_for_compaction(timeout=30)
    assert not (kept & parquet_files(tmp_path / "db"))  # ... reclaims what has aged
    assert_same(db.read_table(), model.frame())
    assert_healthy(tmp_path / "db")


def test_reclamation_never_takes_files_an_open_snapshot_reads(tmp_path):
    db = ParquetDB(tmp_path / "db", retention=0, **FAST)
    model = Model()
    df = bars(rows("AAA", 0, n=5))
    model.add(db.upsert_prices(df).version, df)
    snap = db.snapshot()
    pinned = set(snap.files)
    before = snap.read_table()
    write_until_compacted(db, model, start=10)
    db.compact()
    assert pinned <= parquet_files(tmp_path / "db")  # automatic reclamation kept them
    db.vacuum(dry_run=False, retention=0)
    assert pinned <= parquet_files(tmp_path / "db")  # and so does vacuum
    assert not pinned <= live_files(db)  # although no live version needs them
    assert snap.read_table().equals(before)  # still readable
    del snap
    db.vacuum(dry_run=False, retention=0)
    assert parquet_files(tmp_path / "db") == live_files(db)


def test_auto_vacuum_off_keeps_every_version(tmp_path):
    db = ParquetDB(tmp_path / "db", retention=0, auto_vacuum=False, **FAST)
    model = Model()
    write_until_compacted(db, model)
    db.compact()
    assert parquet_files(tmp_path / "db") - live_files(db)  # old versions' files stay
    for entry in db.history():
        db.read_table(version=entry["version"])  # time travel to every version works


def test_reading_a_reclaimed_version_names_the_oldest_readable_one(tmp_path):
    db = ParquetDB(tmp_path / "db", retention=0, **FAST)
    model = Model()
    df = bars(rows("AAA", 0, n=3))
    v1 = db.upsert_prices(df).version
    model.add(v1, df)
    write_until_compacted(db, model, start=10)
    db.compact()
    with pytest.raises(VersionUnavailable, match=r"oldest version still readable is (\d+)") as e:
        db.read_table(version=v1)
    oldest = e.value.oldest
    assert oldest is not None and v1 < oldest <= db.version
    assert_same(db.read_table(version=db.version), model.frame())
    db.read_table(version=oldest)  # the one it names is readable


@pytest.mark.parametrize(
    "value, seconds",
    [(0, 0.0), (90, 90.0), (1.5, 1.5), (dt.timedelta(minutes=2), 120.0)],
)
def test_retention_takes_seconds_or_a_timedelta(tmp_path, value, seconds):
    db = ParquetDB(tmp_path / "db", retention=value)
    assert db.options.retention_seconds == seconds
    db.vacuum(dry_run=False, retention=value)  # once raised AttributeError for an int


@pytest.mark.parametrize("value", [-1, "1h", float("nan"), True])
def test_a_bad_retention_is_a_config_error_naming_it(tmp_path, value):
    with pytest.raises(ConfigError, match="retention="):
        ParquetDB(tmp_path / "db", retention=value)
    with pytest.raises(ConfigError, match="retention="):
        ParquetDB(tmp_path / "db2").vacuum(retention=value)


def test_a_full_disk_is_exit_code_6_on_the_command_line():
    code, message = exit_code(StorageFull("no space left on the disk holding ...", path="/x"))
    assert code == 6 and message.startswith("no space left")


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs (root only): the disk that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        why = " ".join(done.stderr.decode().split()) or f"mount exited {done.returncode}"
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_full_disk_is_typed_loses_nothing_and_recovers_by_itself(small_disk):
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * (18 << 20))  # someone else's 18 MB on the same disk
    db = ParquetDB(small_disk / "db", retention=0, l0_max_files=2)
    model = Model()
    error = None
    rng = np.random.default_rng(0)
    for i in range(3000):  # random prices: they do not compress away
        closes = rng.uniform(10, 1000, size=(20, 50))
        df = bars(
            (f"T{t:02d}", (i * 50 + d) * DAY, float(closes[t, d]))
            for t in range(20)
            for d in range(50)
        )
        try:
            model.add(db.upsert_prices(df).version, df)
        except StorageFull as exc:
            error = exc
            break
    assert error is not None, "the disk never filled up"
    assert isinstance(error, OSError)  # code that caught OSError keeps working
    message = str(error)
    assert str(small_disk / "db") in message and "no space left" in message
    assert "nothing of this write was committed" in message
    db.wait_for_compaction(timeout=60)
    report = db.verify()
    assert report.ok, report.problems
    assert_same(db.read_table(), model.frame())  # every acknowledged upsert is there
    filler.unlink()  # space comes back: no manual step needed
    df = bars(rows("NEW", 1, n=3))
    model.add(db.upsert_prices(df).version, df)
    assert db.wait_for_compaction(timeout=60)
    assert_same(db.read_table(), model.frame())
    assert db.verify().ok
    assert not [p for p in (small_disk / "db" / "prices").iterdir() if p.name.endswith(".tmp")]
