"""Cron must tell an outage from a few bad tickers: when the source is unreachable for every
ticker, `backfill`/`update` exit 5 ("a data source failed"); some failed tickers are exit 1."""

from __future__ import annotations

import json
import socket
import time

import pytest

from helpers.cli import tv
from helpers.http_server import MarketServer, Reply


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


@pytest.mark.slow
def test_network_down_for_every_ticker_is_exit_5(tmp_path) -> None:
    t0 = time.monotonic()
    r = tv("backfill", "AAPL", "MSFT", "--source", "yahoo", "--source-option",
           f"base_url={dead_url()}", "--start", "2024-06-03", "--json",
           db=tmp_path / "db")  # fmt: skip
    assert r.returncode == 5, r.stderr
    report = json.loads(r.stdout)
    assert report["failed"] == 2 and report["source_down"] is True
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_a_few_bad_tickers_are_exit_1(tmp_path, market_server: MarketServer) -> None:
    market_server.script("BAD", Reply(status=404, body=b"not found"))
    r = tv("backfill", "AAPL", "BAD", "--source", "yahoo", "--source-option",
           f"base_url={market_server.base_url}", "--start", "2024-06-03", "--end",
           "2024-06-28", "--json", db=tmp_path / "db")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["source_down"] is False
