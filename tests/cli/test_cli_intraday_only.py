"""`tickvault freshness` and `tickvault update` on a database that holds only minute
bars: freshness judges the minute table (labelled, with a note; exit 0/1 as for any
table), update points at `--interval 1m`; a ticker without bars is null in JSON, never
"NaTZ"."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.bars import flat_bars
from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB

NOW = "2024-06-05T15:00:00Z"


def minutes(ticker: str, first: str, last: str) -> pd.DataFrame:
    return flat_bars(ticker, first, last)


@pytest.fixture
def minute_only(tmp_path):
    path = tmp_path / "db"
    with ParquetDB(path) as db:
        db.upsert_prices(
            pd.concat(
                [
                    minutes("AAPL", "2024-06-05 14:00", "2024-06-05 14:58"),
                    minutes("MSFT", "2024-06-05 14:00", "2024-06-05 14:57"),
                ]
            ),
            interval="1m",
        )
    return path


def test_freshness_judges_the_minute_bars_of_a_minute_only_database(minute_only) -> None:
    r = tv("freshness", "--now", NOW, "--calendar", "none", db=minute_only)
    assert r.returncode == 0, r.stderr  # fresh minute bars: nothing stale
    assert r.stdout.startswith("🟢 Fresh  2 tickers of 1m bars: 2 fresh"), r.stdout
    assert "age in minutes" in r.stdout
    assert one_clear_line(r).startswith("note: no daily bars: judged the 1m bars (prices_1m")
    assert "--interval 1m" in r.stderr
    late = tv("freshness", "--now", "2024-06-05T16:00:00Z", "--json", db=minute_only)
    assert late.returncode == 1, late.stderr  # exit 1 still means stale
    summary = json.loads(late.stdout)["summary"]
    assert summary["interval"] == "1m" and summary["tickers"] == 2
    assert summary["status"].startswith("🔴 STALE") and "no daily bars" in summary["note"]
    named = tv("freshness", "AAPL", "--now", NOW, "-q", db=minute_only)
    assert named.returncode == 0, named.stderr  # looked up in the judged table, not exit 3


def test_an_empty_database_is_still_empty(tmp_path) -> None:
    ParquetDB(tmp_path / "db").close()
    r = tv("freshness", db=tmp_path / "db")
    assert r.returncode == 1 and r.stdout.startswith("⚪ Empty"), r.stdout + r.stderr
    assert "note:" not in r.stderr


def test_update_points_at_the_interval_that_holds_the_tickers(minute_only) -> None:
    r = tv("update", db=minute_only)
    line = one_clear_line(r)
    assert r.returncode == 1, r.stderr
    assert "has no daily bars to update" in line
    assert "1m bars of 2 tickers (AAPL, MSFT) are in prices_1m" in line
    assert "`tickvault update --interval 1m` updates them" in line
    r = tv("update", "aapl", db=minute_only)
    line = one_clear_line(r)
    assert r.returncode == 2, r.stderr
    assert "AAPL has no daily bars to update" in line
    assert "`tickvault update --interval 1m AAPL` updates them" in line
    assert "`tickvault update --source yahoo AAPL`" in line  # to start daily bars instead
    with ParquetDB(minute_only) as db:
        assert db.tables() == ["prices_1m"]  # nothing written, no daily table started


def test_a_ticker_without_bars_has_a_null_last_timestamp(minute_only) -> None:
    """A ticker without minute bars: the command line refuses it (exit 3, pointing at the
    table that holds it); the library judges it "No data", and its JSON time is null."""
    from tickvault.cli.output import json_default
    from tickvault.data_freshness import freshness, freshness_summary

    with ParquetDB(minute_only) as db:
        db.upsert_prices(
            minutes("NVDA", "2024-06-04", "2024-06-04").assign(
                timestamp=pd.Timestamp("2024-06-04", tz="UTC")
            )
        )
        frame = freshness(db, tickers=["NVDA"], interval="1m", now=NOW)
    r = tv("freshness", "NVDA", "--interval", "1m", "--now", NOW, "--json", db=minute_only)
    assert r.returncode == 3 and "--interval 1d" in r.stderr, r.stderr
    doc = json.loads(
        json.dumps(
            {"summary": freshness_summary(frame), "tickers": frame.to_dict("records")},
            default=json_default,
        )
    )
    assert doc["tickers"][0]["last_timestamp"] is None
    assert doc["tickers"][0]["status"].endswith("No data")
    assert doc["summary"]["worst"][0]["last_timestamp"] is None
