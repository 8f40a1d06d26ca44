"""`tickvault actions` and `tickvault query --adjust`, run as real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import one_clear_line, tv


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-actions") / "db"
    r = tv(
        "backfill", "AAPL", "NVDA", "--start", "2024-01-01", "--end", "2024-06-28",
        "--source-option", "as_of=2024-06-28", db=path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return path


@pytest.mark.slow
def test_actions_json_lists_the_stored_actions(db: Path):
    r = tv("actions", "AAPL", "--json", db=db)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and {row["ticker"] for row in rows} == {"AAPL"}
    assert {row["kind"] for row in rows} == {"dividend"}
    assert rows[0]["timestamp"].endswith("Z") and rows[0]["value"] > 0
    r = tv("actions", "NVDA", db=db)
    assert r.returncode == 0 and "split" in r.stdout and "10" in r.stdout


@pytest.mark.slow
def test_query_adjust_all_and_splits(db: Path):
    raw = json.loads(tv("query", "NVDA", "--format", "json", db=db).stdout)
    r = tv("query", "NVDA", "--format", "json", "--adjust", "splits", db=db)
    assert r.returncode == 0, r.stderr
    split = json.loads(r.stdout)
    assert split[0]["close"] == pytest.approx(raw[0]["close"] / 10, rel=1e-12)
    assert split[-1]["close"] == raw[-1]["close"]
    r = tv("query", "NVDA", "--format", "json", "--adjust", "all", db=db)
    everything = json.loads(r.stdout)
    assert everything[0]["close"] < split[0]["close"]  # dividends after it adjust it too
    shouted = tv("query", "nvda", "--format", "json", "--adjust", "ALL", db=db)
    assert shouted.returncode == 0, shouted.stderr  # careless case, as for tickers
    assert json.loads(shouted.stdout) == everything


def test_bad_adjust_value_is_a_usage_error_naming_the_option(db: Path):
    r = tv("query", "AAPL", "--adjust", "rw", db=db)
    assert r.returncode == 2
    line = one_clear_line(r)
    assert "--adjust" in line and "'rw'" in line and "--adjust all" in line
