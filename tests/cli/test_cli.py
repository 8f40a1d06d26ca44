"""The `tickvault` command, run as a real subprocess on a real demo database.

One database is backfilled once for the module (by the command itself); tests that damage
a database work on a copy. Independent commands run concurrently to keep the time down.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from helpers.cli import one_clear_line, tv, tv_many

TICKERS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA"]
START, END = "2024-01-02", "2024-06-28"  # END is a Friday


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A demo database made by `tickvault backfill` (one ticker the source does not know)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "tickers.txt").write_text("# universe\nNVDA, AMZN\nBAD\n")
    db = root / "db"
    r = tv(
        "backfill",
        *TICKERS[:3],
        "--tickers-file",
        str(root / "tickers.txt"),
        "--source",
        "demo",
        "--source-option",
        'unknown_tickers=["BAD"]',
        "--start",
        START,
        "--end",
        END,
        "--workers",
        "2",
        "--json",
        db=db,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return db, {"returncode": r.returncode, "report": json.loads(r.stdout), "stderr": r.stderr}


def test_backfill_reports_and_exits_1_when_a_ticker_failed(demo):
    _, made = demo
    report = made["report"]
    assert made["returncode"] == 1
    assert report["total"] == 6 and report["written"] == 5 and report["failed"] == 1
    assert set(report["errors"]) == {"BAD"}
    assert report["rows"] == 5 * 124  # NYSE sessions 2024-01-02 .. 2024-06-28
    assert made["stderr"] == ""  # --json: nothing but the document


@pytest.mark.slow
def test_read_commands(demo):
    db, _ = demo
    info, info_h, verify, history, runs, compact, vacuum = tv_many(
        ["info", "--json"],
        ["info"],
        ["verify"],
        ["history", "--json"],
        ["runs", "--json"],
        ["compact", "--json"],
        ["vacuum", "--json"],
        db=db,
    )
    for r in (info, info_h, verify, history, runs, compact, vacuum):
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    doc = json.loads(info.stdout)
    prices = doc["tables"]["prices"]
    assert prices["tickers"] == 5 and prices["stored_rows"] == 620
    assert prices["first"].startswith(START) and prices["last"].startswith(END)
    assert doc["last_run"]["kind"] == "backfill" and doc["last_run"]["failed"] == 1
    assert "prices" in info_h.stdout and "620" in info_h.stdout and "last run" in info_h.stdout
    assert verify.stdout.startswith("OK:")
    versions = json.loads(history.stdout)
    assert versions[-1]["operation"] in {"upsert", "compact"}
    assert sum(v["rows"] for v in versions if v["operation"] == "upsert") == 620
    (run,) = json.loads(runs.stdout)
    assert run["kind"] == "backfill" and run["written"] == 5
    assert json.loads(compact.stdout)["table"] == "prices"
    assert json.loads(vacuum.stdout)["dry_run"] is True


@pytest.mark.slow
def test_query_formats(demo, tmp_path):
    db, _ = demo
    out = tmp_path / "aapl.parquet"
    table, csv, js, parquet = tv_many(
        ["query", "AAPL", "MSFT", "--start", "2024-03-01", "--end", "2024-03-05"],
        ["query", "AAPL", "--columns", "close", "--format", "csv", "--limit", "3"],
        ["query", "GOOG", "--start", "2024-06-27", "--json"],
        ["query", "AAPL", "--format", "parquet", "--output", str(out)],
        db=db,
    )
    for r in (table, csv, js, parquet):
        assert r.returncode == 0, r.stderr
    assert table.stdout.count("AAPL") == 3 and table.stdout.count("MSFT") == 3
    assert "2024-03-05" in table.stdout and "2024-03-06" not in table.stdout
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == "ticker,timestamp,close" and len(lines) == 4
    assert lines[1].startswith("AAPL,2024-01-02T00:00:00")
    rows = json.loads(js.stdout)
    assert [r["timestamp"][:10] for r in rows] == ["2024-06-27", "2024-06-28"]
    assert rows[0]["ticker"] == "GOOG" and rows[0]["close"] > 0
    assert pq.read_table(out).num_rows == 124
    assert "124 rows" in parquet.stderr


@pytest.mark.slow
def test_freshness_exit_codes_and_calendar(demo):
    db, _ = demo
    monday, after_july_4th, stale, weekday_days = tv_many(
        ["freshness", "--calendar", "XNYS", "--now", "2024-07-01T15:00Z", "--json"],
        ["freshness", "--calendar", "xnys", "--now", "2024-07-05T21:00Z"],
        ["freshness", "--now", "2024-07-15", "--all"],
        ["freshness", "--now", "2024-07-01T15:00Z", "--json", "AAPL", "BAD"],
        db=db,
    )
    assert monday.returncode == 0, monday.stderr
    doc = json.loads(monday.stdout)
    assert doc["summary"]["status"] == "🟢 Fresh" and doc["summary"]["age_unit"] == "sessions"
    assert {t["ticker"]: t["age"] for t in doc["tickers"]} == dict.fromkeys(TICKERS, 0)
    # Friday 28 June -> Monday 1, Tuesday 2, Wednesday 3, (4th closed), Friday 5 July
    assert after_july_4th.returncode == 0
    assert "🟡 4 sessions old" in after_july_4th.stdout
    assert stale.returncode == 1
    assert "🔴 STALE (17 days)" in stale.stdout and all(t in stale.stdout for t in TICKERS)
    # BAD is not in the database: the one rule for unknown tickers (exit 3, tests/
    # test_unknown_tickers.py); the library still reports it as "missing"
    assert weekday_days.returncode == 3
    assert "BAD" in weekday_days.stderr and "not in the database" in weekday_days.stderr
    weekday_days = tv("freshness", "--now", "2024-07-01T15:00Z", "--json", "AAPL", db=db)
    doc = json.loads(weekday_days.stdout)
    by = {t["ticker"]: t for t in doc["tickers"]}
    assert by["AAPL"]["status"] == "🟡 3 days old"


@pytest.mark.slow
def test_update_progress_and_summary(demo, tmp_path):
    db, _ = demo
    copy = tmp_path / "db"
    shutil.copytree(db, copy)
    r = tv("update", "--end", "2024-07-03", "--lookback", "2", db=copy)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for word in ("total", "written", "failed", "rows", "seconds"):
        assert word in r.stdout
    assert "update" in r.stderr  # the progress bar
    bad = tv(
        "update",
        "AAPL",
        "BAD",
        "--end",
        "2024-07-03",
        "--source",
        "demo",
        "--source-option",
        "unknown_tickers=BAD",
        db=copy,
    )
    assert bad.returncode == 1
    assert "1 ticker(s) failed" in bad.stderr and "BAD: TickerNotFound" in bad.stderr
    wm = json.loads(tv("info", "--json", db=copy).stdout)["tables"]["prices"]["last"]
    assert wm.startswith("2024-07-03")


@pytest.mark.slow
def test_default_db_from_environment(demo, tmp_path):
    db, _ = demo
    r = tv("info", "--json", env={"TICKVAULT_DB": str(db)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(db)


@pytest.mark.slow
def test_bad_input_gives_one_clear_line_and_the_documented_code(demo, tmp_path):
    db, _ = demo
    nowhere = tmp_path / "nowhere"
    cases = {
        "missing db": (["info", "--db", str(nowhere)], 3, "no tickvault database"),
        "missing db (freshness)": (["freshness", "--db", str(nowhere)], 3, "no tickvault"),
        "bad date": (["query", "AAPL", "--start", "2024-13-45", "--db", str(db)], 2, "not a date"),
        "bad format": (["query", "--format", "xml", "--db", str(db)], 2, "'table', 'csv'"),
        "unknown ticker": (["query", "ZZZZ", "--db", str(db)], 3, "ZZZZ not in the database"),
        "unknown column": (["query", "AAPL", "--columns", "nope", "--db", str(db)], 2, "nope"),
        "unknown source": (
            ["backfill", "AAPL", "--source", "nope", "--db", str(tmp_path / "new")],
            2,
            "available sources",
        ),
        "unknown calendar": (["freshness", "--calendar", "MOON", "--db", str(db)], 2, "XNYS"),
        "unknown command": (["frobnicate"], 2, "choose from"),
        "no tickers": (["backfill", "--db", str(tmp_path / "new")], 2, "no tickers"),
        "parquet to stdout": (["query", "--format", "parquet", "--db", str(db)], 2, "--output"),
        "bad workers": (["backfill", "A", "--workers", "0", "--db", str(db)], 2, "at least 1"),
    }
    results = tv_many(*(argv for argv, _, _ in cases.values()))
    for (name, (_, code, text)), r in zip(cases.items(), results, strict=True):
        line = one_clear_line(r)
        assert r.returncode == code, (name, r.returncode, line)
        assert text in line, (name, line)
        assert line.startswith("tickvault"), (name, line)
    assert not nowhere.exists()  # read commands never create a database
    assert not (tmp_path / "new").exists()  # a bad source fails before anything is created


@pytest.mark.slow
def test_corrupt_data_file(demo, tmp_path):
    db, _ = demo
    copy = tmp_path / "db"
    shutil.copytree(db, copy)
    victim = sorted((copy / "prices").glob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not parquet")
    query, verify, verify_json = tv_many(
        ["query", "AAPL"], ["verify"], ["verify", "--json"], db=copy
    )
    assert query.returncode == 4
    assert "tickvault verify" in one_clear_line(query)
    assert verify.returncode == 1
    assert "Traceback" not in verify.stderr
    assert f"prices/{victim.name}: unreadable" in verify.stderr
    doc = json.loads(verify_json.stdout)
    assert doc["ok"] is False and doc["problems"][0]["path"] == victim.name
    rows_lost = pq.ParquetFile(db / "prices" / victim.name).metadata.num_rows
    repaired = tv("verify", "--repair", db=copy)
    # problems were found (and rows lost): exit 1 like fsck, though the result verifies clean
    assert repaired.returncode == 1, repaired.stderr + repaired.stdout
    assert f"repaired prices/{victim.name}: drop ({rows_lost:,} rows lost)" in repaired.stderr
    assert repaired.stdout.startswith("OK:")
    again, again_json = tv_many(["verify", "--repair"], ["verify", "--repair", "--json"], db=copy)
    assert again.returncode == 0, again.stderr + again.stdout  # nothing left to repair
    assert again.stdout.startswith("OK:") and "repaired" not in again.stderr
    assert again_json.returncode == 0
    assert json.loads(again_json.stdout)["repair"]["actions"] == []


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    r = tv("info", "--debug", db=tmp_path / "nowhere")
    assert r.returncode == 3
    assert "Traceback" in r.stderr and "DatabaseNotFound" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_runs_the_dashboard(demo):
    db, _ = demo
    port = _free_port()
    argv = [sys.executable, "-m", "tickvault", "serve", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
