"""A command whose reader went away (``tickvault freshness 2>&1 | head``) exits with its
own code: rich answers a broken pipe with ``SystemExit(1)``, which for ``freshness`` is the
"something is stale" alarm a cron job acts on (new-user trial)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.cli import tv

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-14"]


def exit_code_with_closed_pipe(db, *args: str) -> int:
    """Run ``tickvault ARGS`` with stdout and stderr on a pipe whose reading end is
    closed before the command writes (what ``| head`` does once it has its lines)."""
    read, write = os.pipe()
    os.close(read)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "tickvault", *args, "--db", str(db)],
            stdout=write, stderr=write, timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    finally:
        os.close(write)
    return p.returncode


def test_freshness_exit_code_survives_a_closed_pipe(tmp_path) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", "MSFT", *WINDOW, "--quiet", db=db).returncode == 0
    fresh, stale = ["--now", "2024-06-15"], ["--now", "2024-09-01"]
    assert tv("freshness", *fresh, db=db).returncode == 0  # the codes on a terminal
    assert tv("freshness", *stale, db=db).returncode == 1
    assert exit_code_with_closed_pipe(db, "freshness", *fresh) == 0
    assert exit_code_with_closed_pipe(db, "freshness", *stale) == 1
    assert exit_code_with_closed_pipe(db, "query", "AAPL") == 0
