"""Code written against the original pattern names no path and no source:
``ParquetDB()``, ``fetch_and_write(tickers, n_workers=8)``. Without a path the library
keeps the database where the command line does (``$TICKVAULT_DB``, else ``./db``), and the
default source's synthetic bars are said in the log every time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from tickvault import ParquetDB, fetch_and_write, get_price_data_freshness


def test_no_path_means_tickvault_db_else_db_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TICKVAULT_DB", raising=False)
    assert Path(ParquetDB().path).resolve() == (tmp_path / "db").resolve()
    monkeypatch.setenv("TICKVAULT_DB", str(tmp_path / "prices"))
    report = fetch_and_write(["AAA"], n_workers=2, start="2024-06-03", end="2024-06-07")
    assert report["written"] == 1
    db = ParquetDB()
    assert Path(db.path) == tmp_path / "prices" and db.tickers() == ["AAA"]
    assert "status" in get_price_data_freshness(db)
    db.close()


def test_the_default_source_says_it_is_synthetic(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tickvault")
    fetch_and_write(["AAA"], db=tmp_path / "db", start="2024-06-03", end="2024-06-07")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'demo' source is synthetic" in m for m in said), said


def test_a_script_of_the_original_pattern_under_cron_uses_the_variable(tmp_path):
    """``TICKVAULT_DB=/x python script.py`` from another folder: the data goes to /x."""
    script = tmp_path / "job.py"
    script.write_text(
        "from tickvault import ParquetDB, fetch_and_write\n"
        "fetch_and_write(['AAA', 'BBB'], n_workers=2, start='2024-06-03', end='2024-06-07')\n"
        "print(ParquetDB().tickers())\n"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**os.environ, "TICKVAULT_DB": str(tmp_path / "srv" / "prices")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=elsewhere, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['AAA', 'BBB']"
    assert (tmp_path / "srv" / "prices" / "tickvault.json").exists()
    assert not (elsewhere / "db").exists()
    assert "synthetic" in done.stderr  # the log's warning reaches a script without logging
