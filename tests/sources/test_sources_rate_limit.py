"""Many threads fetching through one HTTP source hold its rate limit, measured server-side."""

from __future__ import annotations

import concurrent.futures

import pytest

from helpers.http_server import MarketServer, max_in_window
from tickvault.sources import RateLimit, RetryPolicy
from tickvault.sources.yahoo import YahooSource


def _fetch_all(source: YahooSource, tickers: list[str], threads: int) -> list[int]:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda t: len(source.fetch(t, "2024-06-24", "2024-06-28")), tickers))


def _excess(times: list[float], rate: float) -> float:
    """The burst a server would need to accept ``times`` at ``rate``: the largest
    ``count - rate * duration`` over any run of consecutive requests."""
    t = sorted(times)
    return max((j - i + 1) - rate * (t[j] - t[i]) for i in range(len(t)) for j in range(i, len(t)))


@pytest.mark.slow
@pytest.mark.parametrize(("rate", "burst"), [(20.0, 1), (25.0, 3)])
def test_threads_never_exceed_the_rate(rate: float, burst: int) -> None:
    server = MarketServer().start()
    try:
        source = YahooSource(
            base_url=server.base_url, rate_limit=RateLimit(per_second=rate, burst=burst)
        )
        tickers = [f"T{i % 4}" for i in range(int(rate * 3))]
        assert _fetch_all(source, tickers, threads=16) == [5] * len(tickers)
        times = server.times()
    finally:
        server.stop()
    assert len(times) == len(tickers)
    # The client grants at most rate * t + burst (+ SLACK) in any t seconds; the server's
    # arrival times add scheduling jitter on top (two threads of a busy 2-core machine),
    # so allow two more requests than that in the server's measure.
    assert _excess(times, rate) <= burst + 2
    assert max_in_window(times, 1.0) <= rate + burst + 2
    # How close to the limit the threads get is measured by benchmarks/bench_rate_limit.py
    # (within 1-2 % on a quiet machine), not asserted here: on a shared 2-core machine late
    # wake-ups cost rate. That a saturated bucket grants exactly the rate is tested on a
    # fake clock in test_sources_registry.py.


@pytest.mark.slow
def test_without_a_client_limit_the_server_throttles_and_retry_after_recovers() -> None:
    server = MarketServer(rate_limit=10.0, burst=2).start()
    try:
        source = YahooSource(
            base_url=server.base_url,
            rate_limit=None,
            http_retry=RetryPolicy(attempts=8, backoff=0.1, max_backoff=5),
        )
        tickers = [f"T{i:03d}" for i in range(16)]
        assert _fetch_all(source, tickers, threads=8) == [5] * 16
    finally:
        server.stop()
    assert server.count(status=429) > 0  # what tickvault's own rate limit avoids
    assert server.count(status=200) == 16
