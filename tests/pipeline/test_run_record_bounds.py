"""Run records stay small however many tickers a run has (issue 26 item 4): beyond a bound
the per-ticker detail is summarised (counts per status, the failures up to a bound, a
sample), the overview never embeds per-ticker detail, and pages stay fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from helpers.cli import tv
from helpers.serve import serve
from tickvault import ParquetDB, fetch_and_write
from tickvault.sources import DemoSource
from tickvault.storage.core.runs import MAX_DETAIL, MAX_ERRORS, RUNS_DIR
from tickvault.times import now_iso

N = 20_000


def _big_run() -> dict:
    tickers = {}
    errors = {}
    for i in range(N):
        t = f"T{i:05d}"
        failed = i % 4 == 0
        tickers[t] = {"ticker": t, "status": "failed" if failed else "written",
                      "rows": 0 if failed else 250, "fetched": 250, "attempts": 1,
                      "error": "TickerNotFound: unknown" if failed else None,
                      "error_type": "TickerNotFound" if failed else None, "seconds": 0.01,
                      "version": None if failed else 1, "source": "demo"}  # fmt: skip
        if failed:
            errors[t] = "TickerNotFound: unknown"
    return {"run_id": "big000000001", "kind": "backfill", "source": "demo",
            "started": now_iso(), "finished": now_iso(),  # the newest run
            "total": N, "written": N - len(errors), "failed": len(errors), "skipped": 0,
            "unchanged": 0, "rows": 250 * (N - len(errors)), "seconds": 3600.0,
            "errors": errors, "tickers": tickers}  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs-bound") / "db"
    fetch_and_write(["AAPL"], DemoSource(as_of="2024-06-28"), str(path), start="2024-06-01")
    store = ParquetDB(path)
    store.record_run(_big_run())
    store.close()
    return path


def test_a_huge_run_is_stored_summarised(db: Path) -> None:
    (record,) = [p for p in (db / RUNS_DIR).iterdir() if "big000000001" in p.name]
    assert record.stat().st_size < 200_000, record.stat().st_size
    stored = ParquetDB(db, create=False).runs(limit=1)[0]
    assert stored["total"] == N and stored["failed"] == N // 4  # the counts are exact
    assert len(stored["tickers"]) <= MAX_DETAIL and len(stored["errors"]) <= MAX_ERRORS
    assert stored["tickers_omitted"] == N - len(stored["tickers"])
    assert stored["errors_omitted"] == N // 4 - len(stored["errors"])
    assert stored["ticker_counts"] == {"failed": N // 4, "written": N - N // 4}
    failed_kept = [t for t, r in stored["tickers"].items() if r["status"] == "failed"]
    assert failed_kept and all(t in stored["errors"] for t in failed_kept)  # failures first


def test_a_small_run_keeps_every_detail(tmp_path: Path) -> None:
    report = fetch_and_write(["AAPL", "MSFT"], DemoSource(as_of="2024-06-28"),
                             str(tmp_path / "db"), start="2024-06-01")  # fmt: skip
    stored = ParquetDB(tmp_path / "db").runs(limit=1)[0]
    assert set(stored["tickers"]) == {"AAPL", "MSFT"} and "tickers_omitted" not in stored
    assert stored["tickers"]["AAPL"]["rows"] == report["tickers"]["AAPL"]["rows"]


@pytest.mark.slow
def test_overview_and_runs_never_embed_per_ticker_detail_and_stay_fast(db: Path) -> None:
    with serve(db) as site:
        for url in ("/api/overview", "/", "/runs", "/api/runs"):
            site.get(url)  # warm
            t0 = time.perf_counter()
            r = site.get(url)
            took = time.perf_counter() - t0
            assert r.status_code == 200, r.text[:300]
            assert took < 1.0, (url, took)
            assert len(r.content) < 400_000, (url, len(r.content))
        overview = site.get("/api/overview").json()
    assert "tickers" not in overview["last_run"], list(overview["last_run"])
    assert overview["last_run"]["failed"] == N // 4
    r = tv("runs", "--json", db=db)
    assert r.returncode == 0 and len(r.stdout) < 400_000
    assert json.loads(r.stdout)[0]["failed"] == N // 4


def test_the_number_of_records_is_bounded_too(tmp_path: Path, monkeypatch) -> None:
    """A nightly job adds a record a day forever: beyond MAX_RUNS the oldest are deleted
    as a new one is stored (the newest kept, in order)."""
    from tickvault.storage.core import runs

    monkeypatch.setattr(runs, "MAX_RUNS", 5)
    db = ParquetDB(tmp_path / "db")
    ids = [
        db.record_run({"kind": "update", "started": f"2026-01-{d:02d}T22:30:00Z"})
        for d in range(1, 13)
    ]
    kept = [r["run_id"] for r in db.runs()]
    assert kept == ids[::-1][:5]
    assert len(list((tmp_path / "db" / RUNS_DIR).iterdir())) == 5
