"""A write that fails — an encoder error, a full disk, Ctrl-C while parallel file writes
wait, a worker raising — leaves no file behind and no descriptor open."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from helpers.bars import arrow_bars
from helpers.faulty_store import FaultyStore
from tickvault import ParquetDB
from tickvault.schema import (
    PRICES,
)
from tickvault.storage import LocalStore
from tickvault.storage.core import file_writer as files_mod
from tickvault.storage.core import table as table_mod
from tickvault.storage.core.file_writer import WriteOptions

DAY = 86_400 * 10**9


def _files(db_dir) -> list[str]:
    return sorted(p.name for p in (db_dir / "prices").iterdir() if p.is_file())


@pytest.mark.parametrize("failure", ["writer_fails", "disk_full"])
@pytest.mark.parametrize("target", [1_000_000, 500])  # one file / parallel files
def test_failed_file_write_leaves_no_tmp_file(tmp_path, monkeypatch, failure, target):
    # a ParquetWriter that fails (being created, or the disk filling while it writes) must
    # not leave ``.part-*.tmp`` in the table folder, on the one-file and the parallel path
    store = FaultyStore(LocalStore(tmp_path / "db", fsync=False))
    db = ParquetDB(tmp_path / "db", store=store, target_file_rows=target)
    (tmp_path / "db" / "prices").mkdir(parents=True)
    if failure == "disk_full":
        full = store.fail("write", "prices/*.parquet", times=None)
    else:  # an encoder error, not an I/O fault
        real = files_mod.pq.ParquetWriter

        def broken(*args, **kwargs):
            return real(*args, **{**kwargs, "compression": "no-such-codec"})

        monkeypatch.setattr(files_mod.pq, "ParquetWriter", broken)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises((OSError, pa.ArrowException)):
        db.upsert_prices(big)
    assert failure != "disk_full" or full.fired > 0
    assert _files(tmp_path / "db") == []


def test_interrupt_while_waiting_for_parallel_writes_leaves_no_files(tmp_path, monkeypatch):
    # table.py write_files: cleanup only covers exceptions raised *inside* a worker. A
    # KeyboardInterrupt (or any BaseException) in the calling thread while it waits for
    # the pool leaves every finished file behind as an orphan .parquet.
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=500)
    db.upsert_prices(arrow_bars(["A"], [0]))
    before = _files(tmp_path / "db")

    class InterruptedPool(ThreadPoolExecutor):
        def __exit__(self, *exc):
            super().__exit__(*exc)  # all pieces written by now
            raise KeyboardInterrupt  # Ctrl-C arrives while the caller waits

    monkeypatch.setattr(table_mod, "ThreadPoolExecutor", InterruptedPool)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises(KeyboardInterrupt):
        db.upsert_prices(big)
    monkeypatch.undo()
    assert _files(tmp_path / "db") == before


def test_worker_raising_base_exception_discards_written_files(tmp_path):
    store = FaultyStore(LocalStore(tmp_path / "db", fsync=False))
    db = ParquetDB(tmp_path / "db", store=store, target_file_rows=500)
    db.upsert_prices(arrow_bars(["A"], [0]))
    before = _files(tmp_path / "db")
    interrupt = store.fail("writer", "prices/*.parquet", KeyboardInterrupt, after=2)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises(KeyboardInterrupt):
        db.upsert_prices(big)
    assert interrupt.fired == 1
    assert _files(tmp_path / "db") == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_sink_closed_when_parquet_writer_construction_fails(tmp_path):
    opts = WriteOptions(compression="no-such-codec", fsync=False)

    def open_here() -> list[str]:
        """This process's open files under tmp_path (other tests' background threads may
        open and close files of their own meanwhile: a count of all fds was flaky)."""
        out = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(tmp_path)):
                out.append(target)
        return out

    t = PRICES.validate(arrow_bars(["A", "B", "C"] * 4, [0] * 4 + [1] * 4 + [2] * 4))
    for _ in range(5):
        with pytest.raises(pa.ArrowException):
            files_mod.write_data_file(LocalStore(tmp_path), "prices", t, PRICES, opts)
    assert open_here() == []
    assert list((tmp_path / "prices").iterdir()) == []  # no temporary file left
