"""``update`` never fetches a ticker from a source its bars did not come from: without a
source, each ticker is fetched from its recorded source — several sources in one run with
one report — and a ticker with no recorded source (written with ``upsert_prices``) is an
error naming it and how to name a source, before anything is fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers.cli import one_clear_line, tv
from helpers.http_server import MarketServer
from tickvault import ConfigError, ParquetDB, fetch_and_write, get_source, update
from tickvault.sources import DemoSource

START, MID, END = "2024-06-03", "2024-06-14", "2024-06-28"


def demo_bars(ticker: str, start: str, end: str) -> pd.DataFrame:
    return DemoSource(as_of=END).fetch(ticker, start, end)


def write_csv(folder: Path, ticker: str, start: str, end: str) -> None:
    folder.mkdir(exist_ok=True)
    demo_bars(ticker, start, end).drop(columns="ticker").to_csv(
        folder / f"{ticker}.csv", index=False
    )


def two_source_db(tmp_path: Path, server: MarketServer) -> tuple[ParquetDB, Path]:
    """AAPL from the yahoo test server, MSFT from a csv folder, both up to MID."""
    db = ParquetDB(tmp_path / "db")
    yahoo = get_source("yahoo", base_url=server.base_url)
    assert fetch_and_write(["AAPL"], yahoo, db, start=START, end=MID)["written"] == 1
    folder = tmp_path / "csv"
    write_csv(folder, "MSFT", START, MID)
    csv = get_source("csv", path=folder)
    assert fetch_and_write(["MSFT"], csv, db, start=START, end=MID)["written"] == 1
    return db, folder


@pytest.mark.parametrize("parallel_write", [False, True])
def test_tickers_from_several_sources_are_updated_each_from_its_own_in_one_run(
    tmp_path: Path, market_server: MarketServer, parallel_write: bool
) -> None:
    db, folder = two_source_db(tmp_path, market_server)
    recorded = db.sources()
    write_csv(folder, "MSFT", START, END)  # the file grew: two more weeks
    requests, runs = market_server.count("AAPL"), len(db.runs())

    report = update(db=db, end=END, parallel_write=parallel_write, scheduler="synchronous")

    assert (report["total"], report["written"], report["failed"]) == (2, 2, 0), report["errors"]
    assert len(db.runs()) == runs + 1  # one run, one report
    assert "yahoo" in report["source"] and "csv" in report["source"]
    assert report["tickers"]["AAPL"]["source"].startswith("yahoo")
    assert report["tickers"]["MSFT"]["source"].startswith("csv")
    assert market_server.count("AAPL") == requests + 1  # AAPL from the server...
    assert market_server.count("MSFT") == 0  # ...and MSFT never asked of it
    stored = db.read_table(tickers=["MSFT"])
    expected = demo_bars("MSFT", START, END)
    pd.testing.assert_frame_equal(
        stored[expected.columns].reset_index(drop=True), expected, check_dtype=False
    )
    assert db.watermarks()["AAPL"] == pd.Timestamp(END, tz="UTC")
    assert db.sources() == recorded  # each still recorded from its own source


def test_a_ticker_without_a_recorded_source_is_an_error_naming_it(
    tmp_path: Path, market_server: MarketServer
) -> None:
    db = ParquetDB(tmp_path / "db")
    yahoo = get_source("yahoo", base_url=market_server.base_url)
    fetch_and_write(["AAPL"], yahoo, db, start=START, end=MID)
    db.upsert_prices(demo_bars("OLD", START, MID))  # no source recorded
    version, runs, requests = db.version, len(db.runs()), market_server.count()

    for tickers in (None, ["AAPL", "OLD"], ["OLD"]):
        with pytest.raises(ConfigError) as err:
            update(tickers, db=db, end=END)
        message = str(err.value)
        assert "OLD" in message and "no source is recorded" in message
        assert "--source" in message and "source=" in message  # how to name one
        assert "AAPL" not in message
    assert (db.version, len(db.runs()), market_server.count()) == (version, runs, requests)
    assert market_server.count("OLD") == 0  # never fetched from AAPL's source

    # naming the source works, and records it, even when every fetched bar was stored
    # already (else the next update without a source would fail again)
    again = update(["OLD"], "demo", db, end=END)
    assert again["failed"] == 0
    assert db.sources()["OLD"]["name"] == "demo"
    assert update(db=db, end=END)["failed"] == 0


def test_a_new_ticker_without_a_source_names_the_closest_stored_ones(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], DemoSource(as_of=END), db, start=START, end=END)
    with pytest.raises(ConfigError, match=r"APPL \(did you mean AAPL\?\)"):
        update(["APPL"], db=db, end=END)


def run_json(r: Any) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_cli_update_without_a_source_works_on_a_database_of_several_sources(
    tmp_path: Path, market_server: MarketServer
) -> None:
    db, folder = two_source_db(tmp_path, market_server)
    db_path = tmp_path / "db"
    write_csv(folder, "MSFT", START, END)
    runs = len(db.runs())

    report = run_json(tv("update", "--end", END, "--json", db=db_path))
    assert (report["total"], report["written"], report["failed"]) == (2, 2, 0)
    assert len(ParquetDB(db_path).runs()) == runs + 1

    ParquetDB(db_path).upsert_prices(demo_bars("OLD", START, MID))
    version = ParquetDB(db_path).version
    r = tv("update", "--end", END, db=db_path)
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r)
    assert "OLD" in line and "--source" in line
    assert ParquetDB(db_path).version == version

    r = tv("update", "OLD", "--source", "demo", "--end", END, "--quiet", db=db_path)
    assert r.returncode == 0, r.stderr
    assert run_json(tv("update", "--end", END, "--json", db=db_path))["failed"] == 0
