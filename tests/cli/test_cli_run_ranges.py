"""The ranges ``backfill`` and ``update`` fetch, on the command line: a bare ``--end`` date
includes that whole day (minute bars too, demo and csv sources), and ``update`` never
fetches before a ticker's first stored bar (deleted oldest bars stay deleted)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.cli import tv
from tickvault import ParquetDB

NY = "America/New_York"


def days(db: Path, interval: str) -> dict[str, int]:
    ts = ParquetDB(db, create=False).read_table("prices", interval=interval)["timestamp"]
    return ts.dt.date.astype(str).value_counts().sort_index().to_dict()


def test_backfill_and_update_include_a_bare_end_day(tmp_path: Path) -> None:
    db = tmp_path / "db"
    r = tv("--json", "backfill", "AAPL", "--interval", "1m", "--start", "2024-06-03",
           "--end", "2024-06-04", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == 780
    assert days(db, "1m") == {"2024-06-03": 390, "2024-06-04": 390}
    r = tv("update", "--interval", "1m", "--end", "2024-06-05", db=db)
    assert r.returncode == 0, r.stderr
    last = ParquetDB(db, create=False).watermarks(interval="1m")["AAPL"]
    assert last == pd.Timestamp("2024-06-05 15:59", tz=NY).tz_convert("UTC")
    daily = tmp_path / "daily"
    r = tv("backfill", "AAPL", "--start", "2024-06-03", "--end", "2024-06-04", db=daily)
    assert r.returncode == 0, r.stderr
    assert days(daily, "1d") == {"2024-06-03": 1, "2024-06-04": 1}


def test_a_one_day_csv_backfill_is_not_reported_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "OK.csv").write_text(
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-06-04 09:30:00-04:00,10,11,9,10.5,100\n"
        "2024-06-04 09:31:00-04:00,10,11,9,10.5,100\n"
    )
    db = tmp_path / "db"
    r = tv("--json", "backfill", "OK", "--source", "csv", "--source-option", f"path={folder}",
           "--interval", "1m", "--start", "2024-06-04", "--end", "2024-06-04", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["written"], got["unchanged"], got["rows"]) == (1, 0, 2)
    assert days(db, "1m") == {"2024-06-04": 2}


def test_update_does_not_bring_back_deleted_oldest_bars(tmp_path: Path) -> None:
    db = tmp_path / "db"
    r = tv("backfill", "AAPL", "--interval", "1m", "--start", "2024-06-03", "--end",
           "2024-06-05", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = tv("delete", "AAPL", "--interval", "1m", "--end", "2024-06-03", "--apply", db=db)
    assert r.returncode == 0, r.stderr
    r = tv("update", "--interval", "1m", "--end", "2024-06-07", db=db)
    assert r.returncode == 0, r.stderr
    got = days(db, "1m")
    assert got == {d: 390 for d in ("2024-06-04", "2024-06-05", "2024-06-06", "2024-06-07")}
