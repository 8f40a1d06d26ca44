"""One ticker rule everywhere: tickers are upper case on input (punctuation kept), and an
unknown ticker is reported with the stored tickers that look like it."""

from __future__ import annotations

import pytest

from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from helpers.dashboard import get_json, local_client
from tickvault import ParquetDB, fetch_and_write
from tickvault.dashboard import create_app
from tickvault.data_freshness import freshness
from tickvault.tickers import close_matches


def test_upsert_and_reads_fold_case_and_keep_punctuation(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["msft", "brk.b", "^gspc", "eurusd=x"], periods=3))
    db.upsert_prices(make_bars("MSFT", periods=3, salt=1))
    assert db.tickers() == ["BRK.B", "EURUSD=X", "MSFT", "^GSPC"]
    df = db.read_table("prices", tickers=["msft", "Brk.B"])
    assert sorted(set(df["ticker"])) == ["BRK.B", "MSFT"]
    assert len(df[df["ticker"] == "MSFT"]) == 3  # one series, the newest write won
    assert list(freshness(db, tickers=["msft"])["ticker"]) == ["MSFT"]


def test_pipeline_folds_case(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["MSFT"], "demo", db, start="2024-06-03", end="2024-06-28")
    report = fetch_and_write(["msft", "Msft"], "demo", db, start="2024-06-03", end="2024-06-28")
    assert report["total"] == 1 and report["failed"] == 0
    assert db.tickers() == ["MSFT"]


def test_close_matches() -> None:
    known = ["AAPL", "MSFT", "BRK.B", "GOOG", "GOOGL"]
    assert close_matches("APPL", known)[0] == "AAPL"
    assert "BRK.B" in close_matches("brk", known)
    assert close_matches("ZZZZZZ", known) == []


@pytest.mark.slow
def test_cli_query_folds_case_and_suggests_close_matches(tmp_path) -> None:
    db = tmp_path / "db"
    r = tv("backfill", "aapl", "MSFT", "--start", "2024-06-03", "--end", "2024-06-28",
           "--quiet", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = tv("backfill", "msft", "--start", "2024-06-03", "--end", "2024-06-28", "--quiet", db=db)
    assert r.returncode == 0, r.stderr
    r = tv("query", "aapl", "--format", "csv", db=db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("AAPL") == 19  # June 2024 sessions
    r = tv("info", "--json", db=db)
    assert '"tickers": 2' in r.stdout
    r = tv("query", "APPL", db=db)
    assert r.returncode == 3
    assert "did you mean AAPL" in one_clear_line(r)


def test_dashboard_urls_fold_case_and_suggest(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["AAPL", "MSFT"], periods=3))
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        assert get_json(client, "/api/tickers/aapl")["ticker"] == "AAPL"
        r = client.get("/api/tickers/aapl/bars.csv")
        assert r.status_code == 200 and "AAPL" in r.text
        missing = get_json(client, "/api/tickers/APPL", status=404)
        assert "did you mean AAPL" in str(missing)
        client.get("/api/overview?wait_verify=1")


@pytest.mark.slow
@pytest.mark.parametrize("ticker", ["aapl", " AAPL "])
def test_freshness_cli_folds_case(tmp_path, ticker: str) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("AAPL", periods=3))
    r = tv("freshness", ticker, "--json", "--now", "2024-01-04", db=tmp_path / "db")
    assert r.returncode == 0, r.stderr
    assert '"ticker": "AAPL"' in r.stdout
