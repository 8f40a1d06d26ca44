"""SIGTERM (cron, systemd, containers) is handled like Ctrl-C: commits already made stay,
one line on stderr, exit 143 (130 for SIGINT), and the run is recorded as ``interrupted``
with the tickers it finished, so ``--resume`` and ``tickvault runs`` show it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import tv
from helpers.dashboard import local_client
from tickvault import ParquetDB
from tickvault.dashboard import create_app

TICKERS = [f"T{i:03d}" for i in range(400)]


def start_backfill(db: Path, root: Path) -> subprocess.Popen:
    (root / "tickers.txt").write_text("\n".join(TICKERS))
    argv = [sys.executable, "-m", "tickvault", "backfill", "--tickers-file",
            str(root / "tickers.txt"), "--source-option", "latency=0.03", "--start",
            "2015-01-01", "--end", "2024-12-31", "--workers", "2", "--quiet",
            "--db", str(db)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TICKVAULT_DB"}
    return subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_first_commit(db: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    entry = db / "prices" / "_log" / f"{1:020d}.json"
    while not entry.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no commit"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_ends_the_run_cleanly_and_it_is_recorded(tmp_path, sig, code, word) -> None:
    db = tmp_path / "db"
    proc = start_backfill(db, tmp_path)
    wait_for_first_commit(db, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in err, err

    handle = ParquetDB(db)
    assert handle.verify().ok
    [run] = handle.runs()
    assert run["status"] == "interrupted"
    # what it says it finished is stored: every ticker it counts as written (a run of
    # more tickers than a record details keeps a sample of them: storage/core/runs.py)
    sample = {t for t, r in run["tickers"].items() if r["status"] == "written"}
    assert sample and sample <= set(handle.tickers())
    assert run["written"] == len(handle.tickers())
    if "tickers_omitted" not in run:
        assert sample == set(handle.tickers())
    done = set(handle.tickers())

    listed = json.loads(tv("runs", "--json", db=db).stdout)
    assert listed[0]["status"] == "interrupted"
    with local_client(create_app(db), raise_server_exceptions=False) as client:
        assert client.get("/api/runs").json()["runs"][0]["status"] == "interrupted"
        assert "run-interrupted" in client.get("/runs").text
        client.get("/api/overview?wait_verify=1")

    r = tv("backfill", "--tickers-file", str(tmp_path / "tickers.txt"), "--start",
           "2015-01-01", "--end", "2024-12-31", "--resume", "--json", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["skipped"] == len(done) and report["status"] == "finished"
