"""`--tickers-file` as editors write it: a UTF-8 byte-order mark (Windows Notepad, Excel's
"CSV UTF-8") at the start of the file, or of standard input, is not part of the first ticker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.cli import tv

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-14"]


@pytest.mark.slow
def test_a_byte_order_mark_does_not_fail_the_first_ticker(tmp_path) -> None:
    path = tmp_path / "tickers.txt"
    path.write_bytes("\ufeffAAPL\r\nMSFT\r\n".encode())
    db = tmp_path / "db"
    r = tv("backfill", "--tickers-file", str(path), *WINDOW, "--json", db=db)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["failed"] == 0 and report["written"] == 2, report
    r = tv("query", "--tickers-file", str(path), "--format", "csv", db=db)
    assert r.returncode == 0, r.stderr
    assert {line.split(",")[0] for line in r.stdout.splitlines()[1:]} == {"AAPL", "MSFT"}


@pytest.mark.slow
def test_a_byte_order_mark_on_standard_input_is_stripped_too(tmp_path) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    r = subprocess.run(
        [sys.executable, "-m", "tickvault", "freshness", "--tickers-file", "-", "--db", str(db),
         "--now", "2024-06-15", "--json"],
        input="\ufeffAAPL\n".encode(), capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert [t["ticker"] for t in json.loads(r.stdout)["tickers"]] == ["AAPL"]


def test_one_argument_may_list_several_tickers(tmp_path) -> None:
    """``backfill AAPL,MSFT`` stored one ticker named "AAPL,MSFT" (new-user trial)."""
    db = tmp_path / "db"
    r = tv("backfill", "AAPL,msft", "IBM;", *WINDOW, "--json", db=db)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["written"] == 3 and report["failed"] == 0, report
    from tickvault import ParquetDB

    assert sorted(ParquetDB(db, create=False).tickers()) == ["AAPL", "IBM", "MSFT"]


def test_an_empty_tickers_file_is_refused_not_read_as_every_ticker(tmp_path) -> None:
    """For commands whose tickers are optional, none means all: an empty list from a
    script's generator must not make ``update`` fetch, or ``restore`` roll back, every
    ticker."""
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", "MSFT", *WINDOW, "--quiet", db=db).returncode == 0
    empty = tmp_path / "none.txt"
    empty.write_text("# generated: nothing today\n\n", encoding="utf-8")
    for command in (["update"], ["query"], ["restore", "--version", "0"]):
        r = tv(*command, "--tickers-file", str(empty), db=db)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "names no tickers" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = tv("update", ",", db=db)  # an argument of separators only: no ticker either
    assert r.returncode == 2 and "no ticker in [','" in r.stderr, r.stderr
    from tickvault import ParquetDB

    assert ParquetDB(db, create=False).version == 1  # nothing was written
