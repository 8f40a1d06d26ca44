"""Issue 23 item 2: Yahoo's chart API with interval=, within its per-interval history
limits, against the local HTTP fixture server (which refuses what Yahoo refuses)."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.http_server import MarketServer
from tickvault import ParquetDB, fetch_and_write, get_source
from tickvault.errors import ConfigError
from tickvault.sources.demo import DemoSource


def yahoo(server: MarketServer, interval: str):
    return get_source("yahoo", base_url=server.base_url, interval=interval, rate_limit=None)


def test_minute_bars_come_in_requests_yahoo_allows(market_server: MarketServer) -> None:
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=20)).floor("D")
    got = yahoo(market_server, "1m").fetch("AAPL", start)
    want = DemoSource(interval="1m").fetch("AAPL", start)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want[list(got.columns)], check_dtype=False)
    requests = [r for r in market_server.requests if r.api == "yahoo"]
    assert all(r.status == 200 for r in requests)
    assert len(requests) == 3  # 20 days to now in spans of at most 7 days
    for r in requests:
        assert r.params["interval"] == "1m"
        assert int(r.params["period2"]) - int(r.params["period1"]) <= 8 * 86400
    # the live bar Yahoo appends (stamped with the current second) is not stored
    assert (got["timestamp"].dt.second == 0).all()


def test_hourly_bars_are_yahoos_60m(market_server: MarketServer) -> None:
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=10)).floor("D")
    got = yahoo(market_server, "1h").fetch("MSFT", start)
    assert market_server.requests[0].params["interval"] == "60m"
    assert len(market_server.requests) == 1
    want = DemoSource(interval="1h").fetch("MSFT", start)
    assert list(got["timestamp"]) == list(want["timestamp"])


@pytest.mark.parametrize(("interval", "days", "limit"), [("1m", 31, 30), ("5m", 61, 60)])
def test_a_start_beyond_yahoos_history_is_refused_naming_the_limit(
    market_server: MarketServer, interval: str, days: int, limit: int
) -> None:
    start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=days)
    with pytest.raises(ConfigError) as info:
        yahoo(market_server, interval).fetch("AAPL", start)
    msg = str(info.value)
    assert f"Yahoo keeps {interval} bars for about {limit} days" in msg and "start=" in msg
    assert market_server.requests == []  # refused before asking


def test_backfill_of_five_minute_bars_from_yahoo(market_server: MarketServer, tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=15)).floor("D")
    source = get_source("yahoo", base_url=market_server.base_url, rate_limit=None)
    with pytest.raises(ConfigError, match="gives 1d bars, but this run writes 5m bars"):
        fetch_and_write(["AAPL"], source, db, interval="5m", start=start)
    report = fetch_and_write(["AAPL"], yahoo(market_server, "5m"), db, interval="5m", start=start)
    assert report.results["AAPL"].status == "written", report.results["AAPL"]
    stored = db.read_table("prices", interval="5m")
    want = DemoSource(interval="5m").fetch("AAPL", start)
    assert list(stored["timestamp"]) == list(want["timestamp"])
    assert db.tables() == ["prices_5m"]
