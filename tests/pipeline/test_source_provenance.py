"""The database remembers where each ticker's bars came from, and never mixes sources
silently: ``update`` without a source uses the recorded one; another source is refused
unless asked for (``replace_source=True`` / ``--replace-source``). Secrets are never stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.cli import one_clear_line, tv
from helpers.http_server import MarketServer
from tickvault import ParquetDB, fetch_and_write, get_source, register_source, update
from tickvault.errors import ConfigError
from tickvault.sources import DemoSource, unregister_source

START, END = "2024-06-03", "2024-06-28"


def yahoo(server: MarketServer) -> Any:
    return get_source("yahoo", base_url=server.base_url)


def test_commits_record_the_source_and_update_without_a_source_uses_it(
    tmp_path, market_server: MarketServer
) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL", "MSFT"], yahoo(market_server), db, start=START, end=END)
    recorded = {"name": "yahoo", "options": {"base_url": market_server.base_url}}
    assert db.sources() == {"AAPL": recorded, "MSFT": recorded}
    before = market_server.count()

    report = update(db=db, end=END)  # no source: the recorded one
    assert report["source"] == "yahoo" and report["failed"] == 0
    assert market_server.count() == before + 2
    assert db.sources()["AAPL"] == recorded


def test_another_source_is_refused_and_changes_nothing(
    tmp_path, market_server: MarketServer
) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], yahoo(market_server), db, start=START, end=END)
    version, runs = db.version, len(db.runs())
    for call in (
        lambda: update(["AAPL"], "demo", db, end=END),
        lambda: fetch_and_write(["AAPL"], DemoSource(), db, start=START, end=END),
        # same name, another place: another source
        lambda: update(["AAPL"], get_source("yahoo", base_url="http://127.0.0.1:9"), db),
    ):
        with pytest.raises(ConfigError, match=r"came from yahoo.*replace-source"):
            call()
        assert db.version == version and len(db.runs()) == runs

    report = update(["AAPL"], "demo", db, end=END, replace_source=True, skip_unchanged=False)
    assert report["written"] == 1
    assert db.sources()["AAPL"]["name"] == "demo"


def test_unrecorded_sources_need_an_explicit_source_and_mixed_ones_do_not(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(DemoSource(as_of=END).fetch("OLD", START, END))  # no provenance
    with pytest.raises(ConfigError, match=r"no source is recorded for OLD"):
        update(db=db)
    fetch_and_write(["AAPL"], "demo", db, start=START, end=END)
    DemoSource(as_of=END).fetch("MSFT", START, END).to_csv(tmp_path / "MSFT.csv", index=False)
    fetch_and_write(["MSFT"], get_source("csv", path=str(tmp_path)), db, start=START, end=END)
    report = update(["AAPL", "MSFT"], db=db, end=END)  # each from its own source
    assert (report["total"], report["failed"]) == (2, 0)
    assert update(["AAPL"], db=db, end=END)["failed"] == 0


class Keyed(DemoSource):
    def __init__(self, api_key: str = "", base_url: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.name = "keyed"


def test_secrets_are_never_stored(tmp_path) -> None:
    register_source("keyed", Keyed, replace=True)
    try:
        src = get_source(
            "keyed", api_key="s3cret-key", base_url="https://bob:pa55@example.com/v8?token=t0k"
        )
        db = ParquetDB(tmp_path / "db")
        fetch_and_write(["AAPL"], src, db, start=START, end=END)
        assert db.sources()["AAPL"] == {
            "name": "keyed",
            "options": {"base_url": "https://example.com/v8"},
        }
        stored = b"".join(
            p.read_bytes() for p in (tmp_path / "db").rglob("*") if p.suffix == ".json"
        )
        for secret in (b"s3cret-key", b"pa55", b"bob", b"t0k"):
            assert secret not in stored
    finally:
        unregister_source("keyed")


@pytest.mark.slow
def test_cli_update_uses_the_recorded_source_and_refuses_another(
    tmp_path, market_server: MarketServer
) -> None:
    db = tmp_path / "db"
    opt = f"base_url={market_server.base_url}"
    r = tv("backfill", "AAPL", "--source", "yahoo", "--source-option", opt,
           "--start", START, "--end", END, "--quiet", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = market_server.count()

    r = tv("update", "--end", END, "--json", db=db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["source"] == "yahoo"
    assert market_server.count() == before + 1

    version = ParquetDB(db).version
    for args in (["update", "--source", "demo"], ["backfill", "AAPL", "--start", START]):
        r = tv(*args, db=db)
        assert r.returncode == 2, r.stderr
        assert "--replace-source" in one_clear_line(r)
    assert ParquetDB(db).version == version

    r = tv("update", "--source", "demo", "--replace-source", "--end", END, "--quiet", db=db)
    assert r.returncode == 0, r.stderr
    assert ParquetDB(db).sources()["AAPL"]["name"] == "demo"
