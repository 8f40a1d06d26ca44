"""`tickvault repair`: a dry run by default that lists which tickers and date ranges each fix
loses; `--apply` repairs; `backfill --tickers-from-repair` re-fetches exactly what was lost;
`verify` points to it."""

from __future__ import annotations

import json

import pytest

from helpers.cli import tv
from tickvault import ParquetDB

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-28"]


@pytest.mark.slow
def test_repair_previews_applies_and_refetches(tmp_path) -> None:
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "-q", db=db).returncode == 0
    assert tv("backfill", "MSFT", *WINDOW, "-q", db=db).returncode == 0
    handle = ParquetDB(db)
    victim = next(f for f in (db / "prices").glob("*.parquet") if b"MSFT" in f.read_bytes())
    victim.write_bytes(victim.read_bytes()[:100])  # damaged

    r = tv("verify", db=db)
    assert r.returncode == 1 and "tickvault repair" in r.stderr

    preview = tv("repair", db=db)
    assert preview.returncode == 1, preview.stderr
    assert "would drop" in preview.stdout and "MSFT: 2024-06-03 .. 2024-06-28" in preview.stdout
    assert "--apply" in preview.stderr
    version = handle.version
    assert ParquetDB(db).version == version  # a dry run changes nothing

    applied = tv("repair", "--apply", "--json", db=db)
    assert applied.returncode == 1
    [action] = json.loads(applied.stdout)["actions"]
    assert (
        action["lost"][0]["ticker"] == "MSFT" and action["lost"][0]["rows"] == 19
    )  # June 2024 sessions
    assert ParquetDB(db).tickers() == ["AAPL"]
    assert tv("verify", db=db).returncode == 0

    r = tv("backfill", "--tickers-from-repair", "--end", "2024-06-28", "--json", db=db)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["total"] == 1 and report["rows"] == 19
    assert report["start"].startswith("2024-06-03")
    assert len(ParquetDB(db).read_table("prices", tickers=["MSFT"])) == 19
    assert tv("repair", db=db).stdout.strip() == "nothing to repair"
