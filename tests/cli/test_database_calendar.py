"""A database remembers its exchange calendar (issue 25 item 14): set once (`tickvault
calendar XNYS`, or `backfill --calendar`), shown by `info`, used by `freshness`, `gaps` and
`serve` when no `--calendar` is given, overridable per command (`--calendar none`: calendar
days)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import tv
from helpers.serve import serve
from tickvault import ParquetDB
from tickvault.errors import ConfigError

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-14"]  # last bar: Friday 2024-06-14
MONDAY = "2024-06-17T12:00Z"  # before Monday's close: 0 sessions, but 3 calendar days


def _unit(db: Path, *args: str) -> str:
    r = tv("freshness", "--now", MONDAY, "--json", *args, db=db)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)["summary"]["age_unit"]


@pytest.mark.slow
def test_calendar_command_sets_shows_and_clears(tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    assert _unit(db) == "days"
    shown = tv("calendar", "--json", db=db)
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"calendar": None}
    r = tv("calendar", "xnys", db=db)
    assert r.returncode == 0, r.stderr
    assert json.loads(tv("calendar", "--json", db=db).stdout) == {"calendar": "XNYS"}
    assert _unit(db) == "sessions"  # freshness uses the database's calendar
    assert _unit(db, "--calendar", "none") == "days"  # overridden per command
    info = tv("info", db=db)
    assert "calendar XNYS" in info.stdout, info.stdout
    assert json.loads(tv("info", "--json", db=db).stdout)["calendar"] == "XNYS"
    gaps = tv("gaps", "--json", db=db)  # no --calendar needed any more
    assert gaps.returncode == 0, gaps.stderr
    assert json.loads(gaps.stdout)["calendar"] == "XNYS"
    assert tv("calendar", "--unset", db=db).returncode == 0
    assert _unit(db) == "days"
    assert ParquetDB(db, create=False).calendar is None


@pytest.mark.slow
def test_an_unknown_calendar_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    r = tv("calendar", "XNYZ", db=db)
    assert r.returncode == 2 and "unknown calendar" in r.stderr, r.stderr
    r = tv("backfill", "MSFT", *WINDOW, "--calendar", "XNYZ", db=db)
    assert r.returncode == 2 and "unknown calendar" in r.stderr, r.stderr
    assert ParquetDB(db, create=False).calendar is None
    assert "MSFT" not in ParquetDB(db, create=False).tickers()  # refused before any work
    with pytest.raises(ConfigError):
        ParquetDB(db).set_calendar("XNYZ")
    assert tv("calendar", "XNYS", db=tmp_path / "nothing").returncode == 3


@pytest.mark.slow
def test_backfill_calendar_stores_it_and_serve_uses_it(tmp_path: Path) -> None:
    db = tmp_path / "db"
    r = tv("backfill", "AAPL", *WINDOW, "--calendar", "XLON", "--quiet", db=db)
    assert r.returncode == 0, r.stderr
    assert ParquetDB(db, create=False).calendar == "XLON"
    with serve(db) as site:
        overview = site.get("/api/overview").json()
    assert "XLON" in json.dumps(overview), overview
    with serve(db, "--calendar", "none") as site:
        overview = site.get("/api/overview").json()
    assert "XLON" not in json.dumps(overview)
