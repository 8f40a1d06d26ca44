"""``$TICKVAULT_<NAME>_BASE_URL`` and ``base_url=`` are two ways to say the same thing, so
both are recorded: a later update goes to the recorded server, and one the environment
points at another server is refused like ``base_url=`` of another server is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import tv
from helpers.http_server import MarketServer
from tickvault import ConfigError, ParquetDB, fetch_and_write, get_source, update

START, MID, END = "2024-05-01", "2024-06-03", "2024-06-20"
ENV = "TICKVAULT_STOOQ_BASE_URL"
ELSEWHERE = "http://127.0.0.1:9"  # never contacted


def test_the_environment_base_url_is_recorded_and_checked(
    tmp_path: Path, market_server: MarketServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ParquetDB(tmp_path / "db")
    monkeypatch.setenv(ENV, market_server.base_url)
    assert fetch_and_write(["AAPL"], "stooq", db, start=START, end=MID)["written"] == 1
    recorded = db.sources()["AAPL"]
    assert recorded == {"name": "stooq", "options": {"base_url": market_server.base_url}}
    # the same as saying it with base_url=
    explicit = get_source("stooq", base_url=market_server.base_url)
    assert update(["AAPL"], explicit, db, end=END)["failed"] == 0

    # same URL in the environment: updated from it
    before = market_server.count()
    assert update(db=db, end=END)["failed"] == 0
    assert market_server.count() == before + 1
    # no variable (cron): the recorded server, not stooq.com
    monkeypatch.delenv(ENV)
    assert update(db=db, end=END)["failed"] == 0
    assert market_server.count() == before + 2

    # another server in the environment: refused, like base_url= of another server
    monkeypatch.setenv(ENV, ELSEWHERE)
    version = db.version
    report = update(db=db, end=END)
    assert report["failed"] == 1
    error = report["tickers"]["AAPL"]["error"]
    assert ELSEWHERE in error and ENV in error and "replace-source" in error
    with pytest.raises(ConfigError, match="came from stooq"):
        update(["AAPL"], "stooq", db, end=END)
    assert db.version == version and db.sources()["AAPL"] == recorded


def test_a_default_url_record_is_not_updated_from_a_server_the_environment_names(
    tmp_path: Path, market_server: MarketServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bars recorded from the provider's own URL (no ``base_url``) are not updated from
    the server an environment variable names."""
    db = ParquetDB(tmp_path / "db")
    files = db.write_files("prices", get_source("demo").fetch("AAPL", START, MID))
    db.commit_files("prices", files, info={"source": {"name": "stooq", "options": {}}})
    monkeypatch.setenv(ENV, market_server.base_url)
    report = update(db=db, end=END)
    assert report["failed"] == 1 and "the provider's own URL" in report["errors"]["AAPL"]
    assert market_server.count() == 0


@pytest.mark.slow
def test_cli_backfill_with_the_environment_url_records_it(
    tmp_path: Path, market_server: MarketServer
) -> None:
    db = tmp_path / "db"
    env = {ENV: market_server.base_url}
    r = tv("backfill", "AAPL", "--source", "stooq", "--start", START, "--end", MID, "--quiet",
           db=db, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert ParquetDB(db).sources()["AAPL"]["options"] == {"base_url": market_server.base_url}
    before = market_server.count()
    r = tv("update", "--end", END, "--json", db=db)  # cron: no variable
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["failed"] == 0 and market_server.count() == before + 1
    r = tv("update", "--end", END, "--json", db=db, env={ENV: ELSEWHERE})
    assert r.returncode == 1, r.stderr
    assert ELSEWHERE in json.loads(r.stdout)["errors"]["AAPL"]
