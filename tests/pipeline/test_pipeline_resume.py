"""A backfill killed with SIGKILL and resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tickvault import ParquetDB
from tickvault.pipeline import completed_tickers, fetch_and_write, resume_key
from tickvault.sources import DemoSource
from tickvault.times import parse_end, parse_time

START, END = "2022-01-03", "2024-06-28"
TICKERS = [f"K{i:03d}" for i in range(60)]

SCRIPT = textwrap.dedent(
    """
    import sys
    from tickvault.pipeline import fetch_and_write
    from tickvault.sources import DemoSource

    tickers = [f"K{i:03d}" for i in range(60)]
    fetch_and_write(tickers, DemoSource(as_of="2024-06-28", latency=0.05), sys.argv[1],
                    start="2022-01-03", end="2024-06-28", scheduler="threads", n_workers=2,
                    batch_rows=1, resume=True)
    """
)


def _table(db: ParquetDB) -> pd.DataFrame:
    return db.read_table().reset_index(drop=True)


@pytest.mark.crash
def test_sigkill_midway_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    path = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path)])
    try:
        deadline = time.monotonic() + 60
        log_dir = path / "prices" / "_log"
        while time.monotonic() < deadline:
            entries = list(log_dir.glob("*.json")) if log_dir.exists() else []
            if len(entries) >= 8:  # create + several batch commits
                break
            assert proc.poll() is None, "the backfill finished before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    db = ParquetDB(path)
    committed = set(db.tickers())
    assert 5 <= len(committed) < len(TICKERS)
    assert db.runs() == []  # the killed run never finished
    source = DemoSource(as_of=END)
    assert (
        completed_tickers(
            db,
            resume_key(source, parse_time(START), parse_end(END)),  # END: its whole day
        )
        >= committed
    )

    report = fetch_and_write(TICKERS, source, db, start=START, end=END, resume=True)
    assert report["skipped"] == len(committed)
    assert report["written"] == len(TICKERS) - len(committed)
    assert report["failed"] == 0
    assert report["total"] == report["skipped"] + report["written"]
    assert {t for t, r in report["tickers"].items() if r["status"] == "skipped"} == committed

    reference = ParquetDB(tmp_path / "reference")
    fetch_and_write(TICKERS, source, reference, start=START, end=END)
    pd.testing.assert_frame_equal(_table(db), _table(reference))
    check = db.verify()
    assert check.ok, check.problems  # orphans of the killed writer are allowed, not problems


def test_resume_skips_a_completed_backfill_but_not_a_different_range(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    source = DemoSource(as_of=END, unknown_tickers=["NOPE"])
    first = fetch_and_write(["AAA", "BBB", "NOPE"], source, db, start=START, end=END)
    assert first["failed"] == 1
    again = fetch_and_write(
        ["AAA", "BBB", "NOPE", "CCC"], source, db, start=START, end=END, resume=True
    )
    assert again["skipped"] == 2  # AAA, BBB
    assert again["tickers"]["NOPE"]["status"] == "failed"  # failures are tried again
    assert again["tickers"]["CCC"]["status"] == "written"
    other = fetch_and_write(["AAA"], source, db, start="2023-01-02", end=END, resume=True)
    assert other["skipped"] == 0 and other["tickers"]["AAA"]["attempts"] == 1  # fetched
    no_resume = fetch_and_write(["AAA"], source, db, start=START, end=END)
    # fetched again (not skipped); its bars are stored identically, so nothing is written
    assert no_resume["skipped"] == 0 and no_resume["unchanged"] == 1
