"""What an HTTP source checks in an answer before trusting it, against the real local
market server: the symbol the answer says it is for, empty bodies, and errors that say
what went wrong (the HTTP status, the header Stooq's download has)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers.http_server import MarketServer, Reply
from tickvault import ParquetDB, fetch_and_write
from tickvault.errors import BadSourceData
from tickvault.sources import RetryPolicy, get_source

FAST = RetryPolicy(attempts=2, backoff=0.01, jitter=False)
# period1/period2 around June 2024: the server answers the bars between them
JUNE = {
    "period1": str(int(pd.Timestamp("2024-06-01", tz="UTC").timestamp())),
    "period2": str(int(pd.Timestamp("2024-07-01", tz="UTC").timestamp())),
}


def _yahoo(server: MarketServer, **options: Any) -> Any:
    return get_source(
        "yahoo", base_url=server.base_url, rate_limit=None, http_retry=FAST, **options
    )


def _stooq(server: MarketServer, **options: Any) -> Any:
    return get_source(
        "stooq", base_url=server.base_url, rate_limit=None, http_retry=FAST, **options
    )


def _chart_of(server: MarketServer, symbol: str) -> bytes:
    """The server's own Yahoo answer for ``symbol`` (meta.symbol names it)."""
    status, body = server.yahoo_body(symbol, JUNE)
    assert status == 200 and json.loads(body)["chart"]["result"][0]["meta"]["symbol"] == symbol
    return body


def test_yahoo_answer_for_another_symbol_is_bad_source_data(market_server: MarketServer) -> None:
    market_server.script("AAPL", Reply(body=_chart_of(market_server, "MSFT")))
    with pytest.raises(BadSourceData) as info:
        _yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-28")
    message = str(info.value)
    assert "'MSFT'" in message and "'AAPL'" in message and "meta.symbol" in message
    assert info.value.ticker == "AAPL"


def test_a_mixed_up_yahoo_answer_is_never_stored(
    market_server: MarketServer, tmp_path: Path
) -> None:
    market_server.script("AAPL", Reply(body=_chart_of(market_server, "MSFT")))
    report = fetch_and_write(
        ["AAPL", "KO"],
        _yahoo(market_server),
        tmp_path / "db",
        start="2024-06-03",
        end="2024-06-28",
    )
    assert report["tickers"]["AAPL"]["status"] == "failed"
    assert "'MSFT'" in report["errors"]["AAPL"]
    stored = ParquetDB(tmp_path / "db").read_table("prices")
    assert set(stored["ticker"]) == {"KO"}


@pytest.mark.parametrize(
    "asked, answered",
    [("brk-b", "BRK-B"), ("^gspc", "^GSPC"), ("eurusd=x", "EURUSD=X"), ("BRK-B", "BRK-B")],
)
def test_yahoo_symbols_compare_case_insensitively(
    market_server: MarketServer, asked: str, answered: str
) -> None:
    market_server.script(asked, Reply(body=_chart_of(market_server, answered)))
    df = _yahoo(market_server).fetch(asked, "2024-06-03", "2024-06-28")
    assert len(df) == 19 and set(df["ticker"]) == {asked.upper()}


def test_yahoo_answer_without_a_symbol_has_nothing_to_check(market_server: MarketServer) -> None:
    payload = json.loads(_chart_of(market_server, "AAPL"))
    del payload["chart"]["result"][0]["meta"]["symbol"]
    market_server.script("AAPL", Reply(body=json.dumps(payload).encode()))
    assert len(_yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-28")) == 19


@pytest.mark.parametrize("body", [b"", b" \r\n"])
@pytest.mark.parametrize("provider, ticker", [("yahoo", "AAPL"), ("stooq", "aapl")])
def test_an_empty_body_is_bad_source_data_for_every_http_source(
    market_server: MarketServer, provider: str, ticker: str, body: bytes
) -> None:
    market_server.script(ticker, Reply(body=body))
    source = (_yahoo if provider == "yahoo" else _stooq)(market_server)
    with pytest.raises(BadSourceData, match="HTTP 200 with an empty body for 'AAPL'"):
        source.fetch("AAPL", "2024-06-03", "2024-06-28")
    assert market_server.count() == 1  # permanent: not retried


def test_an_empty_stooq_body_fails_the_ticker_in_a_run(
    market_server: MarketServer, tmp_path: Path
) -> None:
    market_server.script("aapl", Reply(body=b""))
    report = fetch_and_write(
        ["AAPL"], _stooq(market_server), tmp_path / "db", start="2024-06-03", end="2024-06-28"
    )
    assert report["tickers"]["AAPL"]["status"] == "failed" and report["failed"] == 1
    assert "empty body" in report["errors"]["AAPL"]


def test_a_yahoo_404_that_is_not_json_names_the_status(market_server: MarketServer) -> None:
    market_server.script("AAPL", Reply(status=404, body=b"<html>Not Found</html>"))
    with pytest.raises(BadSourceData, match="HTTP 404 response is not JSON"):
        _yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-28")


def test_a_stooq_body_in_another_layout_says_what_stooq_sends(market_server: MarketServer) -> None:
    market_server.script("aapl", Reply(body=b"day,price\r\n2024-06-03,1.5\r\n"))
    source = _stooq(market_server)
    with pytest.raises(BadSourceData) as info:
        source.fetch("AAPL", "2024-06-03", "2024-06-28")
    message = str(info.value)
    assert "Date,Open,High,Low,Close,Volume" in message and market_server.base_url in message
    assert "Map them with" not in message  # the stooq source has no columns= option
    with pytest.raises(Exception, match="columns"):
        get_source("stooq", columns={"day": "timestamp"})


def test_a_stooq_body_naming_another_symbol_is_bad_source_data(
    market_server: MarketServer,
) -> None:
    rows = "Symbol,Date,Open,High,Low,Close,Volume\r\n{},2024-06-03,10,11,9,10.5,100\r\n"
    market_server.script("aapl.us", Reply(body=rows.format("MSFT.US").encode()))
    source = _stooq(market_server, symbol_suffix=".us")
    with pytest.raises(BadSourceData, match=r"line 2: the response is for symbol 'MSFT.US'"):
        source.fetch("AAPL", "2024-06-03", "2024-06-28")
    market_server.script("aapl.us", Reply(body=rows.format("AAPL.US").encode()))
    df = source.fetch("AAPL", "2024-06-03", "2024-06-28")
    assert df["ticker"].tolist() == ["AAPL"] and df["close"].tolist() == [10.5]
