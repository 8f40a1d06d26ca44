"""`info` shows the rows a read returns under "rows" (stored copies separately), and an
identical backfill run again writes nothing, like `update`."""

from __future__ import annotations

import json

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import ParquetDB, fetch_and_write

WINDOW = dict(start="2024-06-03", end="2024-06-28")


@pytest.mark.slow
def test_info_rows_are_live_rows(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["A", "B"], periods=10))
    db.upsert_prices(make_bars("A", periods=5, salt=1))  # supersedes 5 of A's rows
    db.upsert_prices(make_bars("B", start="2024-03-01", periods=5, salt=1))  # no overlap
    t = db.info()["tables"]["prices"]
    assert t["rows"] == len(db.read_table("prices")) == 25
    assert t["stored_rows"] == 30
    doc = json.loads(tv("info", "--json", db=tmp_path / "db").stdout)
    assert doc["tables"]["prices"]["rows"] == 25
    text = tv("info", db=tmp_path / "db").stdout
    assert "25" in text and "30" in text and "stored" in text
    db.compact()
    assert db.info()["tables"]["prices"]["rows"] == 25


def test_rerunning_an_identical_backfill_writes_nothing(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    first = fetch_and_write(["AAPL", "MSFT"], "demo", db, **WINDOW)
    assert first["written"] == 2
    version = db.version
    again = fetch_and_write(["AAPL", "MSFT"], "demo", db, **WINDOW)
    assert again["written"] == 0 and again["unchanged"] == 2 and again["rows"] == 0
    assert db.version == version
    r = tv("backfill", "AAPL", "--start", WINDOW["start"], "--end", WINDOW["end"], "--json",
           db=tmp_path / "db")  # fmt: skip
    assert json.loads(r.stdout)["unchanged"] == 1
