"""The dashboard on a database that holds only minute bars: the overview and the tickers
table judge the minute table (labelled, with the library's note) instead of saying "Empty",
and a ticker page without ``?interval=`` is a 404 that names the interval holding it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import flat_bars
from helpers.dashboard import get_html, get_json, local_client
from tickvault import ParquetDB
from tickvault.dashboard import create_app
from tickvault.data_freshness import get_price_data_freshness

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def minutes(ticker: str, first: str, last: str) -> pd.DataFrame:
    return flat_bars(ticker, first, last)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[ParquetDB, TestClient]]:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        pd.concat(
            [
                minutes("AAPL", "2024-06-05 14:00", "2024-06-05 14:58"),
                minutes("MSFT", "2024-06-05 14:00", "2024-06-05 14:30"),
            ]
        ),
        interval="1m",
    )
    with local_client(create_app(db.path), raise_server_exceptions=False) as c:
        yield db, c
        c.get("/api/overview?wait_verify=1")
    db.close()


def test_the_overview_judges_the_minute_table(client) -> None:
    db, c = client
    data = get_json(c, "/api/overview")
    f = data["freshness"]
    assert f["status"] != "⚪ Empty" and f["level"] != "empty"
    assert f["interval"] == data["interval"] == "1m" and f["age_unit"] == "minutes"
    assert f["tickers"] == data["tickers"] == 2 and data["table"] == "prices_1m"
    assert data["stored_rows"] == 59 + 31
    assert f["note"].startswith("no daily bars: judged the 1m bars")
    # the headline is the library's verdict on the minute table (the dashboard's XNYS)
    lib = get_price_data_freshness(db, now=f["now"], interval="1m", calendar="XNYS")
    assert (f["status"], f["days_old"], f["stale_tickers"]) == (
        lib["status"],
        lib["days_old"],
        lib["stale_tickers"],
    )
    assert [r["freshness"]["status"] for r in data["intervals"]] == [f["status"]]
    html = get_html(c, "/")
    assert 'id="judged-interval" data-interval="1m"' in html and 'id="freshness-note"' in html
    assert "Tickers (1m bars)" in html and "./tickers/MSFT?interval=1m" in html


def test_the_tickers_table_lists_the_minute_tickers_and_links_their_pages(client) -> None:
    _, c = client
    data = get_json(c, "/api/tickers")
    assert data["total"] == 2 and data["interval"] == "1m" and data["age_unit"] == "minutes"
    assert [r["ticker"] for r in data["rows"]] == ["AAPL", "MSFT"]
    assert data["rows"][0]["last_timestamp"] == "2024-06-05T14:58:00Z"
    html = get_html(c, "/tickers")
    assert './tickers/AAPL?interval=1m"' in html and 'id="tickers-note"' in html
    page = get_json(c, "/api/tickers/AAPL?interval=1m")
    assert page["interval"] == "1m" and page["count"] == 59


def test_a_ticker_page_without_its_interval_names_the_interval(client) -> None:
    _, c = client
    message = get_json(c, "/api/tickers/AAPL", status=404)["message"]
    assert message.startswith("no ticker 'AAPL' with daily bars in the database")
    assert "it has bars of the interval 1m (?interval=1m)" in message
    assert "?interval=1m" in get_html(c, "/tickers/AAPL", status=404)
    message = get_json(c, "/api/tickers/AAPL?interval=5m", status=404)["message"]
    assert "with 5m bars" in message and "(?interval=1m)" in message
    assert "did you mean" in get_json(c, "/api/tickers/AAPX?interval=1m", status=404)["message"]
