"""Strict input on the command line: reversed or future date ranges, dates in another format
and impossible ports are usage errors (exit 2) that record nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB, fetch_and_write, update
from tickvault.errors import BadTimeBound
from tickvault.times import parse_strict

FUTURE = str((pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=40)).date())


@pytest.mark.slow
@pytest.mark.parametrize(
    "dates",
    [["--start", "2025-06-01", "--end", "2025-01-01"], ["--start", FUTURE]],
    ids=["reversed", "future"],
)
def test_backfill_with_an_impossible_range_is_exit_2_and_records_nothing(tmp_path, dates) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", "--start", "2025-01-02", "--end", "2025-01-31", "-q",
              db=db).returncode == 0  # fmt: skip
    r = tv("backfill", "AAPL", *dates, db=db)
    assert r.returncode == 2, r.stderr
    assert "start" in one_clear_line(r)
    assert len(ParquetDB(db).runs()) == 1


def test_library_rejects_a_future_start_but_update_with_nothing_new_is_fine(tmp_path) -> None:
    with pytest.raises(BadTimeBound, match="in the future"):
        fetch_and_write(["AAPL"], "demo", tmp_path / "db", start=FUTURE)
    fetch_and_write(["AAPL"], "demo", tmp_path / "db", start="2025-01-02", end="2025-01-31")
    report = update(db=tmp_path / "db", end="2025-01-31")
    assert report["failed"] == 0 and report["rows"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "value", ["01/02/2024", "2024/01/02", "Jan 2 2024", "20240102", "2024-1-2"]
)
def test_only_iso_dates_on_the_command_line(tmp_path, value) -> None:
    r = tv("backfill", "AAPL", "--start", value, db=tmp_path / "db")
    assert r.returncode == 2
    assert "YYYY-MM-DD" in one_clear_line(r)
    assert not (tmp_path / "db").exists()


ISO = ["2024-03-01", "2024-03-01T14:30Z", "2024-03-01T14:30:00+01:00", "2024-03-01 14:30:00.5"]


@pytest.mark.parametrize("value", [*ISO, "2024-03-01T14:30:00.123456789Z"])
def test_iso_forms_are_accepted(value) -> None:
    assert parse_strict(value).tzinfo is not None


@pytest.mark.slow
@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_impossible_port_is_exit_2(tmp_path, port) -> None:
    r = tv("serve", "--port", port, db=tmp_path / "db")
    assert r.returncode == 2
    assert "--port" in one_clear_line(r)
