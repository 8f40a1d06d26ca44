"""Kill a process that deletes and restores, with SIGKILL at random instants (issue 24):
the table is always exactly one of its two states (never a half-applied delete), every
acknowledged commit is in the log, verify is ok, and a new process carries on."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB

pytestmark = [pytest.mark.crash, pytest.mark.slow]

KILLS = 12
RANGE = ("2024-01-08", "2024-02-09")


def undoer(path: str, base: int, conn: Connection) -> None:
    db = ParquetDB(path, checkpoint_interval=7, target_file_rows=40, l0_max_files=2)
    while True:
        r = db.delete(tickers=["AAA", "CCC"], start=RANGE[0], end=RANGE[1], dry_run=False)
        if r.version is not None:
            conn.send(("delete", r.version))
        s = db.restore(version=base, dry_run=False)
        if s.version is not None:
            conn.send(("restore", s.version))


def test_sigkill_during_deletes_and_restores(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = ParquetDB(path, checkpoint_interval=7, target_file_rows=40, auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB", "CCC", "DDD"], "2023-12-01", 60))
    for i in range(3):  # level-0 files with newer copies of keys in the range
        db.upsert_prices(make_bars(["AAA", "CCC"], "2024-01-15", 5 + i, salt=i + 1))
    base = db.version
    full = db.read_table()
    ts = full["timestamp"]
    hit = full["ticker"].isin(["AAA", "CCC"]) & (ts >= RANGE[0]) & (ts <= RANGE[1])
    without = full[~hit].reset_index(drop=True)
    assert hit.sum() > 0

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tickvault", "pandas", "pyarrow.parquet"])
    rng = random.Random(24)
    acked: list[tuple[str, int]] = []
    for _ in range(KILLS):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=undoer, args=(str(path), base, send))
        p.start()
        send.close()
        time.sleep(rng.uniform(0.3, 1.5))
        p.kill()
        p.join()
        while recv.poll():
            try:
                acked.append(recv.recv())
            except EOFError:
                break
        recv.close()

        db = ParquetDB(path, create=False)
        now = db.read_table()
        assert now.equals(full) or now.equals(without), "a half-applied undo is visible"
        ops = {h["version"]: h["operation"] for h in db.history(limit=None)}
        for op, v in acked:
            assert ops.get(v) == op, (op, v)
        report = db.verify()
        assert report.ok, report.problems
        db.close()
    assert any(op == "delete" for op, _ in acked) and any(op == "restore" for op, _ in acked)
    # orphans of killed undos are vacuum's to remove; the table reads the same afterwards
    db = ParquetDB(path, create=False)
    before = db.read_table()
    db.vacuum(dry_run=False, retention=0)
    pd.testing.assert_frame_equal(db.read_table(), before)
