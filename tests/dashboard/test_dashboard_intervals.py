"""Issue 23 item 6: the ticker page switches between the intervals a ticker has, and shows
intraday times in the exchange's time zone with the zone named."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from helpers.dashboard import get_json, local_client
from tickvault import ParquetDB, fetch_and_write
from tickvault.dashboard import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[ParquetDB, TestClient]]:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL", "MSFT"], "demo", db, start="2024-01-02", end="2024-06-07")
    fetch_and_write(["AAPL"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-06")
    with local_client(create_app(db.path), raise_server_exceptions=False) as c:
        yield db, c
        c.get("/api/overview?wait_verify=1")
    db.close()


def test_the_ticker_page_lists_and_switches_intervals(client) -> None:
    db, c = client
    daily = get_json(c, "/api/tickers/AAPL")
    assert daily["interval"] == "1d" and daily["intervals"] == ["5m", "1d"]
    assert get_json(c, "/api/tickers/MSFT")["intervals"] == ["1d"]
    five = get_json(c, "/api/tickers/AAPL?interval=5m&latest=3")
    assert five["interval"] == "5m"
    stored = db.read_table("prices", interval="5m", tickers="AAPL")
    assert five["count"] == len(stored) == 4 * 78
    assert five["last"] == stored["timestamp"].iloc[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert five["freshness"]["age_unit"] == "minutes"
    # newest first, in New York time with the zone's abbreviation
    assert [b["local_time"] for b in five["latest"]] == [
        "2024-06-06 15:55 EDT",
        "2024-06-06 15:50 EDT",
        "2024-06-06 15:45 EDT",
    ]
    assert five["time_zone"] == {"calendar": "XNYS", "name": "America/New_York"}
    # the chart's candles carry their New York times too (axis and tooltip)
    assert five["bars"]["timestamp_local"][0] == "2024-06-03 09:30 EDT"
    assert len(five["bars"]["timestamp_local"]) == len(five["bars"]["timestamp"])
    html = c.get("/tickers/AAPL?interval=5m").text
    assert 'id="interval-switch"' in html and 'data-interval="5m"' in html
    assert "times in America/New_York" in html and "15:55 EDT" in html


def test_intraday_downloads_and_pages_follow_the_interval(client) -> None:
    _, c = client
    r = c.get("/api/tickers/AAPL/bars.csv?interval=5m&start=2024-06-06")
    assert r.status_code == 200
    lines = r.text.strip().splitlines()
    assert len(lines) == 1 + 78 and lines[1].startswith("AAPL,2024-06-06T13:30:00Z")
    page = get_json(c, "/api/tickers/AAPL/bars.json?interval=5m&limit=100")
    assert page["count"] == 100 and "interval=5m" in page["next"]


def test_a_bad_interval_or_one_the_ticker_lacks(client) -> None:
    _, c = client
    r = c.get("/api/tickers/AAPL?interval=3m")
    assert r.status_code == 400 and "1m, 2m, 5m, 15m, 30m, 1h, 1d" in r.json()["message"]
    r = c.get("/api/tickers/MSFT?interval=5m")
    assert r.status_code == 404 and "with 5m bars" in r.text
    assert pd.Timestamp(get_json(c, "/api/tickers/MSFT")["last"]).hour == 0


def test_utc_is_one_click_away(client) -> None:
    """Intraday times show the exchange's clock; ``?tz=utc`` (any case) shows UTC, the
    page links each clock to the other, and a bad ``tz`` is a 400 naming it."""
    _, c = client
    utc = get_json(c, "/api/tickers/AAPL?interval=5m&latest=1&tz=UTC")
    assert utc["clock"] == "utc" and utc["time_zone"]["name"] == "UTC"
    assert [b["local_time"] for b in utc["latest"]] == ["2024-06-06 19:55 UTC"]
    assert utc["bars"]["timestamp_local"][0] == "2024-06-03 13:30 UTC"
    page = c.get("/tickers/AAPL?interval=5m").text
    assert 'id="clock-switch"' in page and "tz=utc" in page
    back = c.get("/tickers/AAPL?interval=5m&tz=utc").text
    assert "exchange time" in back and "19:55 UTC" in back
    bad = get_json(c, "/api/tickers/AAPL?interval=5m&tz=mars", status=400)
    assert "tz='mars'" in bad["message"] and "exchange, utc" in bad["message"]
