"""A damaged data file does not stop an update: the pipeline's check for unchanged bars
reads the stored bars back, and a file that cannot be read made the whole run raise (no
ticker updated, not even those the file does not hold). Now every fetched row is written
(the new commit wins over the damaged file's rows) and the damage is logged for verify."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write, update


def test_an_update_writes_over_a_damaged_file_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "db"
    for t in ("AAPL", "MSFT"):
        fetch_and_write([t], "demo", db_path, start="2024-01-01", end="2024-06-28")
    db = ParquetDB(db_path)
    (damaged,) = [f for f in db._table("prices").refresh().files.values() if "AAPL" in f.tickers]
    path = db_path / "prices" / damaged.path
    data = bytearray(path.read_bytes())
    data[200:260] = b"x" * 60  # inside AAPL's column chunks
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="tickvault.pipeline"):
        report = update(["AAPL", "MSFT"], source="demo", db=db_path, end="2024-07-31")
    assert report["failed"] == 0 and report["written"] == 2
    assert any("cannot be read back" in r.getMessage() for r in caplog.records)
    # July's bars are stored for both; MSFT reads whole, AAPL's new bars read on their own
    fresh = ParquetDB(db_path)
    july = fresh.read_table(tickers=["MSFT"], start="2024-07-01", end="2024-07-31")
    assert len(july) == 22  # the sessions of July 2024
    aapl = fresh.read_table(tickers=["AAPL"], start="2024-07-01", end="2024-07-31")
    assert len(aapl) == 22 and aapl.timestamp.max() == pd.Timestamp("2024-07-31", tz="UTC")
    assert not fresh.verify().ok  # the damage is still there for verify and repair
