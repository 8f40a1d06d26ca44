"""One meaning of ``limit``: None (CLI: ``all``) is everything, 0 is nothing, negatives are
errors — for history, runs and query alike."""

from __future__ import annotations

import json

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import ParquetDB
from tickvault.errors import ConfigError


@pytest.mark.slow
def test_limit_means_the_same_in_the_library_and_the_cli(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    for salt in range(3):
        db.upsert_prices(make_bars("AAPL", salt=salt))
        db.record_run({"run_id": f"r{salt}", "started": f"2024-01-0{salt + 1}T00:00:00Z"})
    assert db.history(limit=0) == [] and db.runs(limit=0) == []
    assert len(db.history(limit=None)) == 4 and len(db.runs(limit=None)) == 3
    assert len(db.history(limit=2)) == 2 and len(db.runs(limit=2)) == 2
    for call in (lambda: db.history(limit=-1), lambda: db.runs(limit=-1)):
        with pytest.raises(ConfigError, match="limit"):
            call()

    path = tmp_path / "db"
    assert json.loads(tv("runs", "--limit", "0", "--json", db=path).stdout) == []
    assert json.loads(tv("history", "--limit", "0", "--json", db=path).stdout) == []
    assert len(json.loads(tv("runs", "--limit", "all", "--json", db=path).stdout)) == 3
    assert len(json.loads(tv("history", "--limit", "all", "--json", db=path).stdout)) == 4
    assert json.loads(tv("query", "--limit", "0", "--format", "json", db=path).stdout) == []
    assert tv("runs", "--limit", "-1", db=path).returncode == 2
