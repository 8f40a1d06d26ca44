"""One format per column and one way to write a time, everywhere (issue 25 item 12): the
volume column prints as integers whatever else the result holds, the dashboard's CSV
download prints it as the CLI does, and every timestamp in JSON (CLI and dashboard API)
ends in `Z`."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers.cli import tv
from helpers.serve import serve
from tickvault import ParquetDB

HUGE = 1e17  # > 2**53: no float64 neighbour is fractional


def _bars(ticker: str, volume: float, days: int = 5) -> pd.DataFrame:
    ts = pd.date_range("2024-06-03", periods=days, freq="B", tz="UTC")
    return pd.DataFrame({"ticker": ticker, "timestamp": ts, "open": 10.0, "high": 11.0,
                         "low": 9.0, "close": 10.5, "volume": np.full(days, volume)})  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("one-format") / "db"
    store = ParquetDB(path)
    store.upsert_prices(_bars("AAPL", 1000.0))
    store.upsert_prices(_bars("MSFT", 3218785.0))
    store.upsert_prices(_bars("HUGE", HUGE))
    store.upsert_prices(_bars("SMALL", 500.0))
    store.close()
    return path


def _volumes(csv_text: str) -> dict[str, set[str]]:
    lines = csv_text.strip().splitlines()
    at = lines[0].split(",").index("volume")
    out: dict[str, set[str]] = {}
    for line in lines[1:]:
        cells = line.split(",")
        out.setdefault(cells[0], set()).add(cells[at])
    return out


def test_volume_prints_as_integers_beside_a_huge_volume(db: Path) -> None:
    alone = tv("query", "AAPL", "--format", "csv", db=db)
    mixed = tv("query", "--format", "csv", db=db)
    assert alone.returncode == 0 and mixed.returncode == 0, alone.stderr + mixed.stderr
    assert _volumes(alone.stdout)["AAPL"] == {"1000"}
    got = _volumes(mixed.stdout)
    assert got["AAPL"] == {"1000"} and got["MSFT"] == {"3218785"}, got
    assert got["HUGE"] == {"100000000000000000"}, got


def test_the_table_prints_one_format_per_column(db: Path) -> None:
    r = tv("query", "--columns", "ticker,timestamp,close,volume", db=db)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "AAPL" in line]
    assert rows and all(re.search(r"\b1000\b", line) for line in rows), r.stdout
    assert not any("1000.0" in line for line in rows), r.stdout
    small = [line for line in r.stdout.splitlines() if "SMALL" in line]
    assert small and all(re.search(r"\b500\b", line) for line in small), r.stdout
    assert not any("500.00" in line for line in small), r.stdout


def test_json_volumes_and_times(db: Path) -> None:
    r = tv("query", "--format", "json", db=db)
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    aapl = [rec for rec in records if rec["ticker"] == "AAPL"]
    assert {rec["volume"] for rec in aapl} == {1000} and all(
        isinstance(rec["volume"], int) for rec in aapl
    )
    assert all(rec["timestamp"].endswith("Z") for rec in records)


def _iso_strings(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _iso_strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _iso_strings(v)]
    if isinstance(doc, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", doc):
        return [doc]
    return []


@pytest.mark.slow
def test_every_json_time_ends_in_z(db: Path) -> None:
    for argv in (["freshness", "--json"], ["info", "--json"], ["history", "--json"]):
        r = tv(*argv, db=db)
        stamps = _iso_strings(json.loads(r.stdout))
        assert stamps and all(s.endswith("Z") for s in stamps), (argv, stamps)
    with serve(db) as site:
        for url in ("/api/overview", "/api/tickers", "/api/tickers/AAPL?range=all"):
            r = site.get(url)
            assert r.status_code == 200, r.text[:300]
            stamps = _iso_strings(r.json())
            assert stamps and all(s.endswith("Z") for s in stamps), (url, stamps[:5])


@pytest.mark.slow
def test_dashboard_csv_download_prints_what_the_cli_prints(db: Path) -> None:
    cli = tv("query", "MSFT", "--format", "csv", db=db)
    with serve(db) as site:
        r = site.get("/api/tickers/MSFT/bars.csv?range=all")
    assert r.status_code == 200, r.text[:300]
    web = pd.read_csv(io.StringIO(r.text), dtype=str)
    mine = pd.read_csv(io.StringIO(cli.stdout), dtype=str)
    assert list(web["timestamp"]) == list(mine["timestamp"])
    assert list(web["volume"]) == list(mine["volume"]) == ["3218785"] * 5
