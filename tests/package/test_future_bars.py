"""A bar in the future freezes its ticker (``update`` starts from the last stored bar), so
bars later than now + ``max_future`` (default one day) are refused by ``upsert_prices``,
the sources and the pipeline, naming the first such row; tickers that hold such bars
anyway (written before the rule, or with a larger ``max_future``) are flagged by verify,
freshness and the dashboard; and a ``now`` in the future, or a clock behind the data, is
said, never clamped silently."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from helpers.cli import tv
from helpers.dashboard import daily_bars, get_json, local_client, today
from tickvault import (
    BadSourceData,
    ConfigError,
    ParquetDB,
    ValidationError,
    fetch_and_write,
    get_source,
    update,
)
from tickvault.dashboard import create_app
from tickvault.data_freshness import freshness, freshness_summary, get_price_data_freshness
from tickvault.schema import PRICES
from tickvault.sources import DemoSource, as_source

FUTURE = today() + pd.Timedelta(days=10)


def bars_until(ticker: str, last: pd.Timestamp, periods: int = 5) -> pd.DataFrame:
    return daily_bars(ticker, last, periods)


# -- upsert_prices ---------------------------------------------------------------------------


def test_upsert_refuses_a_bar_beyond_now_plus_a_day_naming_the_first_row(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(bars_until("AAPL", today()))
    version = db.version
    bad = pd.concat([bars_until("MSFT", today()), bars_until("AAPL", FUTURE, 12)])
    with pytest.raises(ValidationError) as err:
        db.upsert_prices(bad)
    message = str(err.value)
    assert err.value.column == "timestamp"
    first = (today() + pd.Timedelta(days=2)).date().isoformat()  # FUTURE - 11 days + 2 later
    assert "in the future" in message and f"(AAPL, {first})" in message
    assert "max_future" in message  # how to allow more
    assert db.version == version  # nothing written
    assert list(db.tickers()) == ["AAPL"]


def test_a_bar_stamped_within_the_allowance_is_accepted(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=12)
    db.upsert_prices(bars_until("AAPL", soon))
    assert db.watermarks()["AAPL"] == soon.as_unit("ns")


def test_max_future_is_a_database_option(tmp_path: Path) -> None:
    wide = ParquetDB(tmp_path / "db", max_future=dt.timedelta(days=30))
    wide.upsert_prices(bars_until("AAPL", FUTURE))
    strict = ParquetDB(tmp_path / "db", max_future=0)
    with pytest.raises(ValidationError, match="in the future"):
        strict.upsert_prices(bars_until("MSFT", pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)))
    ParquetDB(tmp_path / "db", max_future=None).upsert_prices(bars_until("XOM", FUTURE))
    for bad in (-1, "tomorrow", True):
        with pytest.raises(ConfigError, match="max_future"):
            ParquetDB(tmp_path / "db", max_future=bad)


def test_validation_of_a_batch_takes_the_limit_too() -> None:
    table = pa.Table.from_pandas(bars_until("AAPL", FUTURE), preserve_index=False)
    with pytest.raises(ValidationError, match="in the future"):
        PRICES.validate(table)
    assert PRICES.validate(table, max_future=None).num_rows == 5


# -- sources -----------------------------------------------------------------------------


def test_csv_source_end_none_means_now_and_a_future_end_refuses_future_rows(
    tmp_path: Path,
) -> None:
    frame = bars_until("AAPL", FUTURE, 20).drop(columns="ticker")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "AAPL.csv", index=False)
    src = get_source("csv", path=tmp_path)
    got = src.fetch("AAPL")
    assert got["timestamp"].max() == today()  # up to now: the future rows are not asked for
    assert len(got) == 10
    with pytest.raises(BadSourceData, match=r"AAPL\.csv line 13.*in the future"):
        src.fetch("AAPL", end=FUTURE + pd.Timedelta(days=5))


def test_demo_source_refuses_bars_of_a_future_as_of() -> None:
    src = DemoSource(as_of=(today() + pd.Timedelta(days=40)).date())
    with pytest.raises(BadSourceData, match="in the future"):
        src.fetch("AAPL", start=today() - pd.Timedelta(days=10))
    with pytest.raises(BadSourceData, match="in the future"):
        src.fetch_arrow("AAPL", start=today() - pd.Timedelta(days=10))


def test_a_callable_source_returning_future_bars_fails() -> None:
    src = as_source(lambda t, s, e: bars_until(t, FUTURE), name="mine")
    with pytest.raises(BadSourceData, match=r"'mine'.*'AAPL'.*in the future"):
        src.fetch("AAPL")


# -- the pipeline --------------------------------------------------------------------------


class Raw:
    """A source that returns whatever it is given, unvalidated, through fetch_arrow."""

    name = "raw"

    def __init__(self) -> None:
        from tickvault.sources import RetryPolicy

        self.retry_policy = RetryPolicy(attempts=1)

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        last = FUTURE if ticker == "BAD" else today()
        return bars_until(ticker, last)

    def fetch_arrow(self, ticker: str, start: Any = None, end: Any = None) -> pa.Table:
        return pa.Table.from_pandas(self.fetch(ticker, start, end), preserve_index=False)


@pytest.mark.parametrize("parallel_write", [False, True])
def test_the_pipeline_fails_only_the_ticker_with_future_bars(
    tmp_path: Path, parallel_write: bool
) -> None:
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        ["AAPL", "BAD", "MSFT"], Raw(), db, parallel_write=parallel_write, scheduler="synchronous"
    )
    assert (report["written"], report["failed"]) == (2, 1)
    assert report["tickers"]["BAD"]["error_type"] == "BadSourceData"
    assert "in the future" in report["errors"]["BAD"] and "BAD" in report["errors"]["BAD"]
    assert sorted(db.tickers()) == ["AAPL", "MSFT"]

    wide = ParquetDB(tmp_path / "db", max_future=dt.timedelta(days=30))
    assert fetch_and_write(["BAD"], Raw(), wide, parallel_write=parallel_write)["written"] == 1


# -- what flags tickers that hold future bars ----------------------------------------------


def db_with_a_future_bar(path: Path) -> ParquetDB:
    db = ParquetDB(path, max_future=None)  # e.g. written before the rule existed
    db.upsert_prices(pd.concat([bars_until("AAPL", today()), bars_until("BAD", FUTURE)]))
    return ParquetDB(path)


def test_verify_flags_tickers_with_future_bars(tmp_path: Path) -> None:
    db = db_with_a_future_bar(tmp_path / "db")
    report = db.verify()
    assert report.ok  # the files are sound
    flagged = [w for w in report.warnings if "BAD" in w]
    assert len(flagged) == 1 and "future" in flagged[0] and "AAPL" not in flagged[0]

    r = tv("verify", db=tmp_path / "db")
    assert "BAD" in r.stderr and "future" in r.stderr
    r = tv("verify", "--json", db=tmp_path / "db")
    assert any("BAD" in w for w in json.loads(r.stdout)["warnings"])


def test_update_fails_a_ticker_frozen_by_a_future_bar_instead_of_calling_it_unchanged(
    tmp_path: Path,
) -> None:
    db = db_with_a_future_bar(tmp_path / "db")
    report = update(source=DemoSource(), db=db, scheduler="synchronous")
    assert report["failed"] == 1 and report["tickers"]["BAD"]["status"] == "failed"
    error = report["errors"]["BAD"]
    assert "in the future" in error and FUTURE.date().isoformat() in error
    assert report["tickers"]["BAD"]["attempts"] == 0  # never fetched
    assert report["tickers"]["AAPL"]["status"] != "failed"


def test_freshness_flags_a_future_bar_and_never_calls_it_fresh(tmp_path: Path) -> None:
    db = db_with_a_future_bar(tmp_path / "db")
    frame = freshness(db).set_index("ticker")
    assert frame.loc["BAD", "level"] == "future"
    assert frame.loc["BAD", "age"] == -10  # not clamped to 0
    assert "future" in frame.loc["BAD", "status"].lower()
    assert bool(frame.loc["BAD", "is_stale"])
    assert frame.loc["AAPL", "level"] == "fresh"
    verdict = get_price_data_freshness(db)
    assert verdict["level"] == "future" and verdict["is_stale"] is True
    assert "🟢" not in verdict["status"]
    summary = freshness_summary(db)
    assert summary["counts"]["future"] == 1
    assert any("BAD" in w for w in summary["warnings"])

    r = tv("freshness", db=tmp_path / "db")
    assert r.returncode == 1
    assert "BAD" in r.stdout and "future" in (r.stdout + r.stderr).lower()


def test_a_future_now_and_a_clock_behind_the_data_are_said(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(bars_until("AAPL", pd.Timestamp("2024-06-28", tz="UTC")))
    ahead = freshness_summary(db, now=today() + pd.Timedelta(days=3))
    assert any("now=" in w and "future" in w for w in ahead["warnings"])
    plain = freshness_summary(db)
    assert plain["warnings"] == []

    behind = freshness(db, now="2024-06-20").set_index("ticker")  # before the data
    assert behind.loc["AAPL", "level"] == "future" and behind.loc["AAPL", "age"] == -8
    said = freshness_summary(db, now="2024-06-20")["warnings"]
    assert any("AAPL" in w and "after now" in w for w in said)

    r = tv("freshness", "--now", (today() + pd.Timedelta(days=3)).date().isoformat(),
           db=tmp_path / "db")  # fmt: skip
    assert "warning" in r.stderr and "future" in r.stderr
    r = tv("freshness", "--now", "2024-06-20", "--json", db=tmp_path / "db")
    assert r.returncode == 1
    assert json.loads(r.stdout)["summary"]["warnings"]


def test_the_dashboard_flags_future_bars(tmp_path: Path) -> None:
    db = db_with_a_future_bar(tmp_path / "db")
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        overview = get_json(client, "/api/overview?wait_verify=1")
        assert overview["freshness"]["level"] == "future"
        assert any("BAD" in w for w in overview["freshness"]["warnings"])
        assert any("BAD" in w for w in overview["verify"]["result"]["warnings"])
        rows = get_json(client, "/api/tickers?level=future")["rows"]
        assert [r["ticker"] for r in rows] == ["BAD"]
        assert get_json(client, "/api/tickers/BAD")["freshness"]["level"] == "future"
        page = client.get("/").text
        assert "lvl-future" in page and "BAD" in page
