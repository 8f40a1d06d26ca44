"""The csv/parquet source records where its files are as an absolute, resolved path, so
``update`` (cron) finds them from any directory, and the same folder spelled another way
(``in/``, ``./in``, ``/abs/in``, a symlink) is the same source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers.cli import tv
from tickvault import ConfigError, ParquetDB, fetch_and_write, get_source
from tickvault.schema import PRICES
from tickvault.sources import DemoSource

START, MID, END = "2024-06-03", "2024-06-14", "2024-06-28"


def write_csv(folder: Path, ticker: str, end: str) -> None:
    folder.mkdir(exist_ok=True)
    bars = DemoSource(as_of=END).fetch(ticker, START, end)
    bars.drop(columns="ticker").to_csv(folder / f"{ticker}.csv", index=False)


def test_a_relative_path_is_recorded_absolute_and_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "in", "AAPL", MID)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], get_source("csv", path="in/"), db, start=START, end=MID)
    recorded = db.sources()["AAPL"]
    assert recorded == {"name": "csv", "options": {"path": str((tmp_path / "in").resolve())}}

    # the same folder, spelled another way: the same source, not refused
    for spelling in ("./in", str(tmp_path / "in"), "link", f"{tmp_path}/in/../in"):
        report = fetch_and_write(["AAPL"], get_source("csv", path=spelling), db, start=START)
        assert report["failed"] == 0, spelling
    assert db.sources()["AAPL"] == recorded  # still recorded as one resolved place

    write_csv(tmp_path / "other", "AAPL", MID)
    with pytest.raises(ConfigError, match="came from csv"):
        fetch_and_write(["AAPL"], get_source("csv", path="other"), db, start=START)


def test_an_actions_file_is_recorded_absolute_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "in", "AAPL", MID)
    pd.DataFrame({"date": ["2024-06-10"], "kind": ["dividend"], "value": [0.25]}).to_csv(
        tmp_path / "actions.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    src = get_source("csv", path="in", actions="actions.csv")
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], src, db, start=START, end=MID)
    options = db.sources()["AAPL"]["options"]
    assert options["actions"] == str((tmp_path / "actions.csv").resolve())


@pytest.mark.slow
def test_cli_update_works_from_any_directory(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    write_csv(home / "in", "AAPL", MID)
    r = tv("backfill", "AAPL", "--source", "csv", "--source-option", "path=in/",
           "--start", START, "--end", MID, "--quiet", "--db", "db", cwd=home)  # fmt: skip
    assert r.returncode == 0, r.stderr
    write_csv(home / "in", "AAPL", END)  # the file grew

    r = tv("update", "--end", END, "--json", db=home / "db", cwd=elsewhere)  # cron's cwd
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["written"], report["failed"]) == (1, 0)
    assert ParquetDB(home / "db").watermarks()["AAPL"] == pd.Timestamp(END, tz="UTC")


def test_a_relative_path_recorded_by_an_older_version_is_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "in", "AAPL", MID)
    monkeypatch.chdir(tmp_path)
    db = ParquetDB(tmp_path / "db")
    bars = DemoSource(as_of=END).fetch("AAPL", START, MID)
    files = db.write_files("prices", PRICES.validated(bars))
    db.commit_files("prices", files, info={"source": {"name": "csv", "options": {"path": "in/"}}})
    src = get_source("csv", path=str(tmp_path / "in"))
    assert fetch_and_write(["AAPL"], src, db, start=START, end=MID)["failed"] == 0
