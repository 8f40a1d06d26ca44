"""One rule for tickers the database does not hold: every command that names tickers exits
3 naming them and the closest stored ones, and writes nothing; the library logs a warning
naming them and the closest matches, and ``strict=True`` raises ``UnknownTicker``."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB, TickerNotFound, UnknownTicker, fetch_and_write
from tickvault.sources import DemoSource

START, END = "2024-06-03", "2024-06-28"


@pytest.fixture
def db(tmp_path: Path) -> ParquetDB:
    """AAPL (with a dividend) and MSFT (no actions) from the demo source."""
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL", "MSFT"], DemoSource(as_of=END), db, start=START, end=END)
    db.upsert_actions(
        pd.DataFrame(
            {"ticker": ["AAPL"], "timestamp": ["2024-06-10"], "kind": ["dividend"], "value": [0.25]}
        )
    )
    return db


@pytest.mark.parametrize(
    "command",
    [
        ["query", "APPL"],
        ["query", "AAPL", "APPL"],
        ["export", "OUT", "--tickers", "APPL"],
        ["export", "OUT", "--tickers", "AAPL", "APPL"],
        ["export", "OUT", "--table", "actions", "--tickers", "APPL"],
        ["actions", "APPL"],
        ["freshness", "APPL"],
        ["freshness", "AAPL", "APPL", "--json"],
    ],
)
def test_every_command_naming_an_unknown_ticker_exits_3_with_the_closest(
    db: ParquetDB, tmp_path: Path, command: list[str]
) -> None:
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in command]
    r = tv(*args, db=db.path)  # type: ignore[arg-type]
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    line = one_clear_line(r)
    assert "APPL (did you mean AAPL?)" in line and "not in the database" in line
    assert "MSFT (" not in line  # only the unknown one is named
    assert not out.exists()  # nothing written


def test_known_tickers_still_work_and_a_ticker_without_actions_is_known(
    db: ParquetDB, tmp_path: Path
) -> None:
    r = tv("actions", "MSFT", db=db.path)  # type: ignore[arg-type]
    assert r.returncode == 0, r.stderr
    assert "no actions stored for MSFT" in r.stderr
    r = tv("export", str(tmp_path / "out"), "--tickers", "msft", db=db.path)  # type: ignore[arg-type]
    assert r.returncode == 0, r.stderr
    assert pd.read_parquet(tmp_path / "out")["ticker"].unique().tolist() == ["MSFT"]


def unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "not in the database" in r.getMessage()
    ]


@pytest.mark.parametrize("adjust", [None, "all"])
def test_the_library_warns_naming_the_unknown_ticker_and_the_closest(
    db: ParquetDB, caplog: pytest.LogCaptureFixture, adjust: str | None
) -> None:
    with caplog.at_level(logging.WARNING):
        frame = db.read_table(tickers=["APPL", "MSFT"], adjust=adjust)
    assert frame["ticker"].unique().tolist() == ["MSFT"]  # the known ones are read
    (message,) = unknown_warnings(caplog)
    assert "APPL (did you mean AAPL?)" in message and "MSFT" not in message.split(" not in")[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert db.read_arrow(tickers="APPL", adjust=adjust).num_rows == 0
    assert len(unknown_warnings(caplog)) == 1


def test_strict_raises_a_clear_error(db: ParquetDB) -> None:
    with pytest.raises(UnknownTicker) as err:
        db.read_table(tickers=["APPL", "AAPL", "ZZZZ"], strict=True)
    exc = err.value
    assert isinstance(exc, TickerNotFound)  # what code catching the old error gets
    assert exc.tickers == ["APPL", "ZZZZ"]
    assert exc.suggestions == {"APPL": ["AAPL"], "ZZZZ": []}
    assert "APPL (did you mean AAPL?)" in str(exc) and "ZZZZ" in str(exc)
    with pytest.raises(UnknownTicker):
        db.read_arrow("actions", tickers=["APPL"], strict=True)
    assert len(db.read_table(tickers=["aapl", "MSFT"], strict=True)) > 0  # case folds


def test_known_tickers_and_tickers_without_actions_do_not_warn(
    db: ParquetDB, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING):
        db.read_table(tickers=["aapl", "MSFT"])
        db.read_table("actions", tickers=["MSFT"], strict=True)
        db.read_table()
        # a backfill of new tickers compares with what is stored: no warning either
        report = fetch_and_write(["NVDA", "JPM"], DemoSource(as_of=END), db, start=START)
        assert report["written"] == 2
    assert unknown_warnings(caplog) == []
