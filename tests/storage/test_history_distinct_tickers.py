"""``history()``'s ``info.tickers`` of an upsert counts distinct tickers: one write of 3
tickers spread over yearly files is 3 tickers, not 3 per file."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import ParquetDB


def test_an_upsert_over_several_files_counts_each_ticker_once(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = ParquetDB(path, auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB", "CCC"], "2022-12-01", 300))  # 2022 .. 2024
    entry = db.history()[-1]
    assert entry["files_added"] >= 3  # one file per year: the case that was summed
    assert entry["info"]["tickers"] == 3 and entry["rows"] == 900
    db.upsert_prices(make_bars(["AAA"], "2023-06-01", 2, salt=1))
    assert db.history()[-1]["info"]["tickers"] == 1
    r = tv("history", "--json", db=path)
    assert r.returncode == 0, r.stderr
    assert [e["info"].get("tickers") for e in json.loads(r.stdout)][-2:] == [3, 1]


def test_the_log_entry_itself_records_distinct_tickers(tmp_path: Path) -> None:
    """The count is right where it is written (the log's ``info``), not only as history()
    corrects it: readers of the log (other tools, older tickvault) see 3, not 9."""
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    v = db.upsert_prices(make_bars(["AAA", "BBB", "CCC"], "2022-12-01", 300)).version
    entry = json.loads((tmp_path / "db" / "prices" / "_log" / f"{v:020d}.json").read_text())
    assert len(entry["add"]) >= 3 and entry["info"]["tickers"] == 3
