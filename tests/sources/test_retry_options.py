"""Retry options given as plain values (what ``--source-option`` and JSON config give):
an int is the number of attempts, a mapping the policy's fields, anything else a
ConfigError naming the option when it is given, never an AttributeError per ticker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers.http_server import MarketServer, Reply
from tickvault import fetch_and_write
from tickvault.errors import ConfigError
from tickvault.sources import RetryPolicy, get_source


def test_an_int_is_the_number_of_attempts_and_a_mapping_the_fields() -> None:
    assert RetryPolicy.coerce(3, "retry") == RetryPolicy(attempts=3)
    assert RetryPolicy.coerce({"attempts": 2, "backoff": 1, "jitter": False}, "retry") == (
        RetryPolicy(attempts=2, backoff=1, jitter=False)
    )
    policy = RetryPolicy(attempts=5)
    assert RetryPolicy.coerce(policy, "retry") is policy
    assert RetryPolicy.coerce(None, "retry") is None


@pytest.mark.parametrize(
    "value, problem",
    [
        (0, "retry_policy=0: the number of attempts must be >= 1"),
        (True, "got True (bool)"),
        ("3", "got '3' (str)"),
        (2.5, "got 2.5 (float)"),
        ({"attempt": 3}, "unknown field(s) ['attempt']"),
        ({"retry_on": "x"}, "retry_on takes exception classes"),
        ({"attempts": 0}, "retry_policy: RetryPolicy.attempts must be >= 1"),
        ({"backoff": "1s"}, "RetryPolicy.backoff must be a number of seconds"),
        ({"jitter": "no"}, "RetryPolicy.jitter must be true or false"),
    ],
)
def test_a_bad_retry_option_is_a_config_error_naming_it(value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_source("demo", retry_policy=value)
    assert problem in str(info.value)
    assert 'retry_policy=3 (attempts) or retry_policy={"attempts": 3' in str(info.value)


@pytest.mark.parametrize("name", ["demo", "csv", "yahoo"])
def test_every_source_takes_retry_policy_as_an_int(name: str, tmp_path: Path) -> None:
    options: dict[str, Any] = {"path": str(tmp_path)} if name == "csv" else {}
    source = get_source(name, retry_policy=3, **options)
    assert source.retry_policy == RetryPolicy(attempts=3)
    source = get_source(name, retry_policy={"attempts": 2, "backoff": 5}, **options)
    assert source.retry_policy == RetryPolicy(attempts=2, backoff=5)


def test_http_retry_as_an_int_retries_each_request(market_server: MarketServer) -> None:
    market_server.script("AAA", Reply(status=500), Reply(status=503))
    source = get_source(
        "yahoo",
        base_url=market_server.base_url,
        rate_limit=None,
        http_retry={"attempts": 3, "backoff": 0.01},
    )
    assert source.http_retry == RetryPolicy(attempts=3, backoff=0.01)
    assert len(source.fetch("AAA", "2024-06-03", "2024-06-05")) == 3
    assert market_server.count("AAA") == 3
    assert get_source("yahoo", http_retry=3).http_retry == RetryPolicy(attempts=3)
    with pytest.raises(ConfigError, match="http_retry=0: the number of attempts"):
        get_source("yahoo", http_retry=0)


@pytest.mark.parametrize("option", ["timeout", "connect_timeout"])
@pytest.mark.parametrize("value", ["abc", None, 0, -1])
def test_a_bad_timeout_is_a_config_error_naming_it(option: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"yahoo: {option} must be a number of seconds > 0"):
        get_source("yahoo", **{option: value})


def test_fetch_and_write_retry_as_an_int(tmp_path: Path) -> None:
    source = get_source("demo", transient_failures=1, retry_policy=1)
    report = fetch_and_write(["AAA"], source, tmp_path / "db", start="2026-11-01", retry=3)
    assert report["failed"] == 0 and report["tickers"]["AAA"]["attempts"] == 2


def test_fetch_and_write_refuses_a_bad_retry_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="retry must be a number of attempts"):
        fetch_and_write(["AAA"], "demo", tmp_path / "db", start="2026-11-01", retry="3")
    assert not (tmp_path / "db").exists()
