"""Text output looks like the data: whole volumes print as integers, timestamps are ISO 8601
with Z in CSV as in JSON, and the dashboard rounds seconds."""

from __future__ import annotations

import json

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from helpers.dashboard import local_client
from tickvault import ParquetDB
from tickvault.dashboard import create_app


@pytest.mark.slow
def test_volumes_and_timestamps(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    bars = make_bars("AAPL", periods=2)
    bars.loc[0, "volume"] = 2641907.0
    db.upsert_prices(bars)
    csv = tv("query", "AAPL", "--format", "csv", db=tmp_path / "db").stdout
    assert "2641907.0" not in csv and ",2641907," in csv
    assert "2024-01-01T00:00:00Z" in csv and "+0000" not in csv
    records = json.loads(tv("query", "AAPL", "--format", "json", db=tmp_path / "db").stdout)
    assert records[0]["volume"] == 2641907 and records[0]["timestamp"] == "2024-01-01T00:00:00Z"
    table = tv("query", "AAPL", db=tmp_path / "db").stdout
    assert "2641907" in table and "2641907.0" not in table


def test_dashboard_rounds_seconds(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("AAPL", periods=2))
    db.record_run({"run_id": "r1", "started": "2024-01-01T00:00:00Z", "seconds": 0.011594,
                   "total": 1, "written": 1, "failed": 0, "rows": 2})  # fmt: skip
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        client.get("/api/overview?wait_verify=1")
        page = client.get("/").text
    assert "0.011594" not in page and "0.01 s" in page
