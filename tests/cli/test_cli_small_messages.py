"""Small message bugs a new-user trial found: each message says what is true."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB
from tickvault.cli.output import json_default


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("messages") / "db"
    db = ParquetDB(p)
    db.upsert_prices(make_bars("AAA", "2024-06-03", 5))
    db.record_run({"run_id": "r1", "kind": "backfill", "source": "demo",
                   "started": "2024-06-10T00:00:00Z", "finished": "2024-06-10T00:00:01Z",
                   "seconds": 1.0, "total": 1, "written": 1, "failed": 0, "rows": 5})  # fmt: skip
    db.close()
    return p


def test_runs_limit_0_lists_none_without_claiming_there_are_none(path: Path) -> None:
    """--limit 0 means none, as for query and history (documented): an empty list, not
    "no runs recorded yet" when runs are recorded."""
    r = tv("runs", "--limit", "0", db=path)
    assert r.returncode == 0, r.stderr
    assert "no runs recorded yet" not in r.stdout and "r1" not in r.stdout
    assert "run" in r.stdout  # the table's header
    assert json.loads(tv("runs", "--limit", "0", "--json", db=path).stdout) == []
    assert "r1" in tv("runs", db=path).stdout


def test_resampling_the_daily_table_says_to_read_an_intraday_one(path: Path) -> None:
    r = tv("query", "AAA", "--resample", "5m", db=path)
    assert r.returncode == 2
    line = one_clear_line(r)
    assert "(none)" not in line and "1d bars are the coarsest there are" in line, line
    assert "--interval 1m --resample 5m" in line, line


def test_a_missing_time_is_null_in_json_not_natz() -> None:
    assert json_default(pd.NaT) is None
    assert json_default(pd.Timestamp("2024-06-03", tz="UTC")) == "2024-06-03T00:00:00Z"


def test_runs_lists_a_record_other_code_wrote_without_kind_or_source(tmp_path: Path) -> None:
    """``db.record_run`` takes any JSON dict: ``tickvault runs`` lists a minimal one with
    dashes for what it lacks (it was an internal error, exit 70)."""
    db = ParquetDB(tmp_path / "db")
    run_id = db.record_run({"note": "nightly job of my own"})
    db.close()
    r = tv("runs", db=tmp_path / "db")
    assert r.returncode == 0, r.stderr
    assert run_id in r.stdout
