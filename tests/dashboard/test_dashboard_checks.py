"""The data checks on a real ``tickvault serve``: the ticker page lists the ticker's gaps
(missing sessions of the dashboard's calendar, XNYS if none) and suspicious moves, bounded,
with their totals; the overview has one freshness summary per intraday interval table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.serve import serve
from tickvault import ParquetDB
from tickvault.dashboard.views import MAX_CHECK_ROWS
from tickvault.data_freshness import freshness, verdict
from tickvault.sessions import exchange_sessions

#: sessions with no bar: every other one of the first 2 * RUNS (one gap each), then one run
#: of three
RUNS = MAX_CHECK_ROWS + 5


def _sessions(calendar: str, n: int) -> pd.DatetimeIndex:
    sessions = exchange_sessions(calendar)
    labels = sessions.labels[sessions.between("2023-01-03", "2024-12-31")]
    return pd.DatetimeIndex(labels[:n]).tz_localize("UTC")


def _bars(ticker: str, stamps: pd.DatetimeIndex, close: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": stamps,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 100.0,
        }
    )


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("checks") / "db"
    db = ParquetDB(path)
    stamps = _sessions("XNYS", 2 * RUNS + 40)
    keep = np.ones(len(stamps), bool)
    keep[1 : 2 * RUNS : 2] = False  # RUNS one-session gaps
    keep[2 * RUNS + 10 : 2 * RUNS + 13] = False  # and one of three sessions
    close = np.full(len(stamps), 100.0)
    close[2 * RUNS + 20] = 300.0  # up 200 %, then down to a third: two moves
    db.upsert_prices(_bars("AAPL", stamps[keep], close[keep]))
    db.upsert_prices(_bars("MSFT", stamps, np.full(len(stamps), 50.0)))
    minutes = pd.date_range("2024-06-03 13:30", periods=60, freq="1min", tz="UTC")
    db.upsert_prices(_bars("AAPL", minutes, np.full(60, 10.0)), interval="1m")
    db.upsert_prices(_bars("MSFT", minutes[:30], np.full(30, 10.0)), interval="1m")
    fives = pd.date_range("2024-06-03 13:30", periods=12, freq="5min", tz="UTC")
    db.upsert_prices(_bars("AAPL", fives, np.full(12, 10.0)), interval="5m")
    db.close()
    yield path


def test_ticker_page_lists_gaps_and_suspicious_moves(db_path: Path) -> None:
    db = ParquetDB(db_path, create=False)
    want_gaps = db.gaps(calendar="XNYS", tickers=["AAPL"])
    want_moves = db.suspicious_moves(threshold=0.5, tickers=["AAPL"])
    assert len(want_gaps) == RUNS + 1 and len(want_moves) == 2
    with serve(db_path) as site:
        data = site.get("/api/tickers/AAPL").json()
        html = site.get("/tickers/AAPL").text
        clean = site.get("/api/tickers/MSFT").json()
    gaps, moves = data["gaps"], data["suspicious_moves"]
    assert gaps["total"] == RUNS + 1 and gaps["calendar"] == "XNYS"
    assert gaps["rows"] == want_gaps[:MAX_CHECK_ROWS]
    assert moves["total"] == 2 and moves["threshold"] == 0.5
    assert moves["rows"] == want_moves and moves["rows"][0]["close"] == 300.0
    assert (clean["gaps"]["total"], clean["gaps"]["rows"]) == (0, [])
    assert clean["suspicious_moves"]["total"] == 0
    assert 'id="gaps"' in html and f"{RUNS + 1} runs of missing sessions" in html
    assert html.count('class="gap-row"') == MAX_CHECK_ROWS
    assert f"first {MAX_CHECK_ROWS} shown" in html
    assert 'id="suspicious-moves"' in html and html.count('class="move-row"') == 2
    first = want_gaps[0]
    assert f"{first['first']}" in html


def test_gaps_follow_the_dashboards_calendar(db_path: Path) -> None:
    db = ParquetDB(db_path, create=False)
    want = db.gaps(calendar="XLON", tickers=["MSFT"])
    assert want  # New York sessions are not London's
    with serve(db_path, "--calendar", "XLON") as site:
        gaps = site.get("/api/tickers/MSFT").json()["gaps"]
    assert gaps["calendar"] == "XLON" and gaps["total"] == len(want)
    assert gaps["rows"] == want[:MAX_CHECK_ROWS]


def test_overview_lists_each_intraday_intervals_freshness(db_path: Path) -> None:
    with serve(db_path) as site:
        data = site.get("/api/overview").json()
        html = site.get("/").text
    rows = {r["interval"]: r for r in data["intervals"]}
    assert list(rows) == ["1m", "5m"]
    db = ParquetDB(db_path, create=False)
    for iv, table, tickers in (("1m", "prices_1m", 2), ("5m", "prices_5m", 1)):
        want = verdict(freshness(db, interval=iv, calendar="XNYS"))
        got = rows[iv]
        assert got["table"] == table and got["tickers"] == tickers
        assert got["freshness"]["latest"] == want["latest"]
        assert got["freshness"]["level"] == want["level"]
        assert got["freshness"]["age_unit"] == "minutes"
    assert 'id="intervals"' in html
    assert html.count('class="interval-row"') == 2 and "prices_5m" in html
