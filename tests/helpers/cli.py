"""Running the real command line as a process, for the CLI test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def tv(
    *args: str,
    db: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
):
    """Run ``python -m tickvault ARGS`` (in ``cwd``, default this one) and return the
    CompletedProcess (text mode)."""
    argv = [sys.executable, "-m", "tickvault", *args]
    if db is not None:
        argv += ["--db", str(db)]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("TICKVAULT_DB", None)
    if env and "TICKVAULT_DB" in env:
        full_env["TICKVAULT_DB"] = env["TICKVAULT_DB"]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        encoding="utf-8",
        cwd=cwd,
    )


def tv_many(*commands: Sequence[str], db: Path | None = None) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda a: tv(*a, db=db), commands))


def one_clear_line(r: subprocess.CompletedProcess) -> str:
    """stderr is exactly one line, no traceback; returns it."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]
