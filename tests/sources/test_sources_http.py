"""Yahoo and Stooq sources against a real local HTTP server: formats, errors, retries."""

from __future__ import annotations

import concurrent.futures
import email.utils
import logging
import multiprocessing
import pickle
import socket
import threading
import time
from typing import Any

import pandas as pd
import pytest

from helpers.http_server import AS_OF, MarketServer, Reply, gaps
from tickvault.errors import (
    BadSourceData,
    ConfigError,
    RateLimited,
    SourceUnavailable,
    TickerNotFound,
)
from tickvault.sources import DemoSource, RetryPolicy, get_source
from tickvault.sources.http import parse_retry_after
from tickvault.sources.stooq import StooqSource
from tickvault.sources.testing import check_source_contract
from tickvault.sources.yahoo import YahooSource

FAST = RetryPolicy(attempts=3, backoff=0.1, max_backoff=2.0, jitter=False)


@pytest.fixture
def planned(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the retry layer chose before each retry, as they are logged (exact values,
    unlike the server's arrival gaps, which a busy machine stretches)."""
    caplog.set_level(logging.INFO, logger="tickvault.sources.http")
    delays: list[float] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retrying in" in record.msg:
                delays.append(float(record.args[-1]))  # type: ignore[index]

    handler = Collect()
    logger = logging.getLogger("tickvault.sources.http")
    logger.addHandler(handler)
    yield delays  # type: ignore[misc]
    logger.removeHandler(handler)


def demo(ticker: str, start: str, end: str) -> pd.DataFrame:
    return DemoSource(as_of=AS_OF).fetch(ticker, start, end)


def yahoo(server: MarketServer, **options: Any) -> YahooSource:
    options = {"rate_limit": None, "http_retry": FAST, **options}
    source = get_source("yahoo", base_url=server.base_url, **options)
    assert isinstance(source, YahooSource)
    return source


def stooq(server: MarketServer, **options: Any) -> StooqSource:
    options = {"rate_limit": None, "http_retry": FAST, **options}
    source = get_source("stooq", base_url=server.base_url, **options)
    assert isinstance(source, StooqSource)
    return source


# -- formats -------------------------------------------------------------------------------


def test_yahoo_keeps_the_contract_and_returns_the_served_bars(market_server: MarketServer) -> None:
    source = yahoo(market_server)
    df = check_source_contract(source, "AAPL", "NOPE", "2024-01-02", "2024-03-28")
    expected = demo("AAPL", "2024-01-02", "2024-03-28")
    pd.testing.assert_frame_equal(df.drop(columns="adj_close"), expected)
    assert (df["adj_close"] == (expected["close"] * 0.99).round(4)).all()
    assert source.retry_policy.attempts == 1  # it retries per request instead


def test_stooq_keeps_the_contract_and_returns_the_served_bars(market_server: MarketServer) -> None:
    source = stooq(market_server)
    df = check_source_contract(source, "AAPL", "NOPE", "2024-01-02", "2024-03-28")
    pd.testing.assert_frame_equal(df, demo("AAPL", "2024-01-02", "2024-03-28"))
    assert market_server.requests[0].params == {
        "s": "aapl",
        "i": "d",
        "d1": "20240102",
        "d2": "20240328",
    }


def test_yahoo_daily_bars_keep_their_exchange_session_date(market_server: MarketServer) -> None:
    # Auckland sessions open at 10:00 local = 22:00 UTC on the previous calendar day
    df = yahoo(market_server).fetch("AIR.NZ", "2024-06-24", "2024-06-28")
    assert [d.strftime("%Y-%m-%d") for d in df["timestamp"]] == [
        "2024-06-24",
        "2024-06-25",
        "2024-06-26",
        "2024-06-27",
        "2024-06-28",
    ]
    pd.testing.assert_frame_equal(
        df.drop(columns="adj_close"), demo("AIR.NZ", "2024-06-24", "2024-06-28")
    )


def test_yahoo_gmtoffset_is_used_without_a_time_zone_name() -> None:
    source = YahooSource(base_url="http://127.0.0.1:9")
    payload = {
        "chart": {
            "result": [
                {
                    "meta": {"gmtoffset": 43200},
                    "timestamp": [1719180000],  # 2024-06-23 22:00 UTC = 06-24 10:00 +12:00
                    "indicators": {
                        "quote": [
                            {
                                "open": [1.0],
                                "high": [2.0],
                                "low": [0.5],
                                "close": [1.5],
                                "volume": [None],
                            }
                        ],
                    },
                }
            ],
            "error": None,
        }
    }
    df = source.parse(payload, "X")
    assert df["timestamp"].tolist() == [pd.Timestamp("2024-06-24", tz="UTC")]
    assert df["volume"].tolist() == [0.0] and df["adj_close"].isna().all()


def test_yahoo_null_bars_are_dropped(market_server: MarketServer) -> None:
    df = yahoo(market_server).fetch("NULLS", "2024-06-03", "2024-06-28")
    full = demo("NULLS", "2024-06-03", "2024-06-28")
    # the server nulls every third bar of its answer, starting with the second (its answer
    # starts at the first bar here: 3 June is a Monday, the widened period adds no bar)
    kept = full[full.index % 3 != 1].reset_index(drop=True)
    assert len(kept) == 13 < len(full) == 19  # June 2024 sessions
    pd.testing.assert_frame_equal(df.drop(columns="adj_close"), kept)
    assert not df.drop(columns="ticker").isna().any().any()


def test_empty_result_is_an_empty_frame_after_one_request(market_server: MarketServer) -> None:
    df = yahoo(market_server).fetch("EMPTY", "2024-06-03", "2024-06-28")
    assert len(df) == 0 and "adj_close" in df.columns
    assert market_server.count("EMPTY") == 1


def test_unknown_symbol_is_permanent_and_not_retried(market_server: MarketServer) -> None:
    with pytest.raises(TickerNotFound, match="unknown symbol 'NOPE'") as info:
        yahoo(market_server).fetch("NOPE")
    assert info.value.ticker == "NOPE" and info.value.source == "yahoo"
    with pytest.raises(TickerNotFound, match=r"no data for symbol 'nope\.us'"):
        stooq(market_server, symbol_suffix=".us").fetch("NOPE")
    assert market_server.count("NOPE") == 1 and market_server.count("nope.us") == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"chart": 3}',
        b'{"chart": {"result": [{"timestamp": [1], '
        b'"indicators": {"quote": [{"open": [1, 2]}]}}], "error": null}}',
    ],
)
def test_malformed_json_is_bad_source_data_without_retry(
    market_server: MarketServer, body: bytes
) -> None:
    market_server.script("AAPL", Reply(body=body))
    with pytest.raises(BadSourceData, match="yahoo: ") as info:
        yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert info.value.ticker == "AAPL"
    assert market_server.count("AAPL") == 1


def test_stooq_bad_csv_names_the_line_and_column(market_server: MarketServer) -> None:
    market_server.script(
        "msft",
        Reply(
            body=b"Date,Open,High,Low,Close,Volume\r\n2024-06-03,1,2,0.5,1,10\r\n"
            b"2024-06-04,1,2,0.5,oops,10\r\n"
        ),
    )
    with pytest.raises(BadSourceData, match=r"line 3, column 'Close': 'oops' is not a number"):
        stooq(market_server).fetch("MSFT", "2024-06-03", "2024-06-07")


def test_unexpected_client_error_is_bad_source_data(market_server: MarketServer) -> None:
    market_server.script("AAPL", Reply(status=403, body=b"forbidden"))
    with pytest.raises(BadSourceData, match="HTTP 403"):
        yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert market_server.count("AAPL") == 1


# -- retries and backoff -------------------------------------------------------------------


def test_server_errors_that_recover_are_retried_with_backoff(
    market_server: MarketServer, planned: list[float]
) -> None:
    market_server.script("AAPL", Reply(status=500), Reply(status=502))
    df = yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert len(df) == 5
    assert [r.status for r in market_server.requests] == [500, 502, 200]
    assert planned == [0.1, 0.2]  # exponential, no jitter
    first, second = gaps(market_server.times("AAPL"))
    assert first >= 0.1 and second >= 0.2  # honoured, as the server saw it


def test_jittered_backoff_stays_in_the_upper_half(
    market_server: MarketServer, planned: list[float]
) -> None:
    policy = RetryPolicy(attempts=3, backoff=0.4, jitter=True)
    market_server.script("AAPL", Reply(status=503), Reply(status=503))
    yahoo(market_server, http_retry=policy).fetch("AAPL", "2024-06-03", "2024-06-07")
    d1, d2 = planned
    assert 0.2 <= d1 <= 0.4 and 0.4 <= d2 <= 0.8
    first, second = gaps(market_server.times("AAPL"))
    assert first >= d1 - 0.01 and second >= d2 - 0.01  # (the log rounds to 10 ms)


def test_retry_after_seconds_is_honoured(market_server: MarketServer, planned: list[float]) -> None:
    market_server.script("AAPL", Reply(status=429, headers={"Retry-After": "1"}))
    df = yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert len(df) == 5
    assert planned == [1.0]  # exactly Retry-After, not the 0.1 s backoff
    (gap,) = gaps(market_server.times("AAPL"))
    assert gap >= 1.0


@pytest.mark.slow
def test_retry_after_http_date_is_honoured(
    market_server: MarketServer, planned: list[float]
) -> None:
    date = int(time.time()) + 2  # an HTTP date has whole seconds
    when = email.utils.formatdate(date, usegmt=True)
    market_server.script("MSFT", Reply(status=503, headers={"Retry-After": when}))
    df = yahoo(market_server).fetch("MSFT", "2024-06-03", "2024-06-07")
    assert len(df) == 5
    assert len(planned) == 1 and 0.0 < planned[0] <= 2.0 and planned[0] != FAST.backoff
    # the retry reached the server no earlier than the date (monotonic -> wall clock)
    retried_at = market_server.times("MSFT")[1] + (time.time() - time.monotonic())
    assert retried_at >= date - 0.01
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after("soon") is None


def test_exhausted_retries_raise_the_transient_error(market_server: MarketServer) -> None:
    market_server.script("AAPL", *[Reply(status=503)] * 5)
    with pytest.raises(SourceUnavailable, match="HTTP 503") as info:
        yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert info.value.retryable
    assert market_server.count("AAPL") == 3  # FAST.attempts
    market_server.script("msft", *[Reply(status=429, headers={"Retry-After": "0.2"})] * 5)
    with pytest.raises(RateLimited) as limited:
        stooq(market_server).fetch("MSFT", "2024-06-03", "2024-06-07")
    assert limited.value.retry_after == pytest.approx(0.2)
    assert market_server.count("msft") == 3
    assert all(g >= 0.2 for g in gaps(market_server.times("msft")))
    copy = pickle.loads(pickle.dumps(limited.value))
    assert copy.retry_after == pytest.approx(0.2) and copy.ticker == "MSFT"


def test_retry_after_longer_than_max_backoff_is_raised_at_once(market_server: MarketServer) -> None:
    market_server.script("AAPL", Reply(status=429, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimited) as info:
        yahoo(market_server).fetch("AAPL", "2024-06-03", "2024-06-07")
    assert info.value.retry_after == 120
    assert market_server.count("AAPL") == 1


def test_slow_responses_time_out_and_are_retried(market_server: MarketServer) -> None:
    market_server.script("AAPL", Reply(delay=1.0), Reply(delay=1.0))
    source = yahoo(market_server, timeout=0.3, http_retry=RetryPolicy(attempts=2, backoff=0.05))
    with pytest.raises(SourceUnavailable, match="ReadTimeout"):  # not the 1 s answer
        source.fetch("AAPL", "2024-06-03", "2024-06-07")
    assert market_server.count("AAPL") == 2
    market_server.script("MSFT", Reply(delay=1.0))
    assert len(source.fetch("MSFT", "2024-06-03", "2024-06-07")) == 5
    assert market_server.count("MSFT") == 2


def test_connection_errors_are_retried_then_source_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = YahooSource(base_url=f"http://127.0.0.1:{port}", rate_limit=None, http_retry=FAST)
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        source.fetch("AAPL")
    assert time.monotonic() - t0 >= 0.1 + 0.2  # two backoffs: three attempts


def test_retry_after_pauses_every_thread_of_the_source(market_server: MarketServer) -> None:
    source = yahoo(market_server, rate_limit=50)
    market_server.script("AAPL", Reply(status=429, headers={"Retry-After": "1"}))
    bucket = source.bucket
    assert bucket is not None and bucket.paused_until == float("-inf")
    first = threading.Thread(target=source.fetch, args=("AAPL", "2024-06-03", "2024-06-07"))
    first.start()
    deadline = time.monotonic() + 30  # liveness only: wait for the 429 to pause the source
    while bucket.paused_until == float("-inf"):
        assert time.monotonic() < deadline, "the 429 never paused the source"
        first.join(0.01)
    source.fetch("MSFT", "2024-06-03", "2024-06-07")
    first.join()
    limited_at = market_server.requests[0].at
    assert market_server.requests[0].status == 429
    assert market_server.times("MSFT")[0] - limited_at >= 0.95


# -- configuration, pickling, processes ----------------------------------------------------


def test_base_url_from_environment(
    market_server: MarketServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert YahooSource().base_url == "https://query1.finance.yahoo.com"
    assert StooqSource().base_url == "https://stooq.com"
    monkeypatch.setenv("TICKVAULT_YAHOO_BASE_URL", market_server.base_url + "/")
    monkeypatch.setenv("TICKVAULT_STOOQ_BASE_URL", market_server.base_url)
    y = get_source("yahoo", rate_limit=None)
    assert y.base_url == market_server.base_url  # type: ignore[attr-defined]
    assert len(y.fetch("AAPL", "2024-06-03", "2024-06-07")) == 5
    assert len(get_source("stooq", rate_limit=None).fetch("AAPL", "2024-06-03", "2024-06-07")) == 5
    assert get_source("yahoo", base_url="http://other:1").base_url == "http://other:1"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="must start with http"):
        get_source("yahoo", base_url="ftp://x")
    with pytest.raises(ConfigError, match="timeout must be a number of seconds > 0"):
        get_source("yahoo", timeout=0)
    assert get_source("yahoo").rate_limit.per_second == 2.0  # type: ignore[attr-defined]
    assert get_source("stooq").rate_limit.per_second == 1.0  # type: ignore[attr-defined]


def test_pickled_copies_share_the_rate_limit_within_a_process(market_server: MarketServer) -> None:
    source = yahoo(market_server, rate_limit=5)
    copy = pickle.loads(pickle.dumps(source))
    assert copy.bucket is source.bucket
    assert YahooSource(rate_limit=5).bucket is not source.bucket
    assert copy.http_retry == source.http_retry and copy.base_url == source.base_url


def _fetch_in_child(blob: bytes) -> int:
    source = pickle.loads(blob)
    return len(source.fetch("AAPL", "2024-06-03", "2024-06-28"))


def test_sources_work_after_pickling_to_other_processes(market_server: MarketServer) -> None:
    blobs = [pickle.dumps(yahoo(market_server)), pickle.dumps(stooq(market_server))]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert list(pool.map(_fetch_in_child, blobs)) == [19, 19]
    assert {r.api for r in market_server.requests} == {"yahoo", "stooq"}
