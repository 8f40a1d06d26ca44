"""fetch_and_write on the local schedulers: same contents everywhere, reports, progress."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dask
import pandas as pd
import pytest

from tickvault import ConfigError, ParquetDB
from tickvault.pipeline import Progress, RunReport, fetch_and_write
from tickvault.sources import DemoSource

START, END = "2023-01-02", "2024-06-28"
TICKERS = [f"T{i:03d}" for i in range(24)]


def demo() -> DemoSource:
    return DemoSource(as_of=END)


def expected_table(tickers: list[str], source: DemoSource | None = None) -> pd.DataFrame:
    """What a correct backfill stores: the source's bars, through ParquetDB's own reader."""
    src = source or demo()
    frames = [src.fetch(t, START, END) for t in sorted(tickers)]
    return pd.concat(frames, ignore_index=True)


def assert_same_prices(db: ParquetDB, expected: pd.DataFrame) -> None:
    got = db.read_table("prices")
    cols = list(expected.columns)
    exp = expected.sort_values(["ticker", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), exp, check_dtype=False, check_categorical=False
    )
    assert not got.duplicated(["ticker", "timestamp"]).any()


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes"])
def test_each_local_scheduler_stores_exactly_the_source_bars(tmp_path: Path, scheduler: str):
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        TICKERS,
        demo(),
        db,
        start=START,
        end=END,
        scheduler=scheduler,
        n_workers=2,
        batch_rows=2000,  # several commits
    )
    expected = expected_table(TICKERS)
    assert_same_prices(db, expected)
    assert (report["total"], report["written"], report["failed"]) == (24, 24, 0)
    assert report["errors"] == {}
    assert report["rows"] == len(expected)
    assert report["fetched_rows"] == len(expected)
    assert report["attempts"] == 24 and report["retries"] == 0
    assert report.scheduler == scheduler
    assert len(report.versions) >= 3
    assert report.versions == sorted(report.versions)
    assert report.verify["ok"] is True
    assert report.verify["rows"] == len(expected)
    per_ticker = report["tickers"]
    assert set(per_ticker) == set(TICKERS)
    for t in TICKERS:
        d = per_ticker[t]
        assert d["status"] == "written"
        assert d["rows"] == d["fetched"] == int((expected["ticker"] == t).sum())
        assert d["attempts"] == 1 and d["error"] is None
        assert d["version"] in report.versions
    check = db.verify()
    assert check.ok and check.orphans == []


def test_report_is_stored_and_dict_compatible(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["AAA", "BBB"], demo(), db, start=START, end=END)
    assert isinstance(report, RunReport)
    d = dict(report)
    assert {"total", "written", "failed", "errors", "rows", "seconds", "versions"} <= set(d)
    assert d == report.to_dict()
    stored = db.runs()
    assert len(stored) == 1
    who = {k: stored[0].pop(k) for k in ("user", "host", "pid")}  # added by record_run
    assert who["pid"] == os.getpid() and who["host"] and who["user"]
    assert stored[0] == json.loads(json.dumps(report.to_dict()))
    assert stored[0]["run_id"] == report.run_id
    again = RunReport.from_dict(stored[0])
    assert again.to_dict() == report.to_dict()
    assert report.kind == "backfill" and report.source == "demo"
    assert report.start == "2023-01-02T00:00:00Z"
    assert report.started is not None and report.finished is not None
    assert report.ok
    with pytest.raises(KeyError):
        report["nope"]


def test_database_given_as_path_and_source_by_name(tmp_path: Path):
    report = fetch_and_write(["AAA"], "demo", tmp_path / "db", start="2024-01-02", end="2024-01-05")
    assert report["written"] == 1 and report["rows"] == 4
    assert len(ParquetDB(tmp_path / "db").read_table()) == 4


def test_plain_callable_source_gets_a_default_retry_policy(tmp_path: Path):
    src = demo()

    def fetch(ticker: str, start: object, end: object) -> pd.DataFrame:
        return src.fetch(ticker, start, end)

    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["AAA", "BBB"], fetch, db, start=START, end=END)
    assert report.source == "fetch"
    assert report["written"] == 2
    assert_same_prices(db, expected_table(["AAA", "BBB"]))


def test_progress_callback_sees_every_ticker_and_commit(tmp_path: Path):
    events: list[Progress] = []
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        TICKERS[:10],
        DemoSource(as_of=END, unknown_tickers=["T003"]),
        db,
        start=START,
        end=END,
        batch_rows=1500,
        on_progress=events.append,
        progress=True,
    )
    ticks = [e for e in events if e.status != "commit"]
    commits = [e for e in events if e.status == "commit"]
    assert sorted(e.ticker for e in ticks if e.ticker) == TICKERS[:10]
    assert [e.done for e in ticks] == list(range(1, 11))
    assert all(e.total == 10 for e in events)
    assert [e.version for e in commits] == report.versions
    assert [e.rows for e in commits] == sorted(e.rows for e in commits)
    assert commits[-1].rows == report.rows
    assert ticks[-1].failed == 1 and ticks[-1].fraction == 1.0
    assert any(e.ticker == "T003" and e.status == "failed" for e in ticks)
    assert all(e.rate >= 0 for e in events)


def test_unknown_scheduler_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown scheduler 'fibers'"):
        fetch_and_write(["AAA"], demo(), tmp_path / "db", scheduler="fibers")
    with pytest.raises(ConfigError, match="batch_rows"):
        fetch_and_write(["AAA"], demo(), tmp_path / "db", batch_rows=0)


def test_duplicate_tickers_are_fetched_once(tmp_path: Path):
    report = fetch_and_write(["AAA", "AAA", "BBB"], demo(), tmp_path / "db", start=START, end=END)
    assert report["total"] == 2 and report["attempts"] == 2


def test_seed_template_delayed_fetch_then_sequential_upserts_still_works(tmp_path: Path):
    """The original two-phase pattern, unchanged: @delayed fetch, dask.compute, then a
    sequential loop of db.upsert_prices."""
    source = demo()
    db = ParquetDB(str(tmp_path / "db"))

    @dask.delayed
    def fetch_price_data(ticker):  # type: ignore[no-untyped-def]
        return source.fetch(ticker, START, END)

    tasks = [fetch_price_data(t) for t in TICKERS[:8]]
    results = dask.compute(*tasks, scheduler="threads")
    written = 0
    for df in results:
        if df is not None and not df.empty:
            db.upsert_prices(df)
            written += 1
    assert written == 8
    assert_same_prices(db, expected_table(TICKERS[:8]))
    assert db.verify().ok


def test_post_run_verify_reports_a_damaged_file(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["AAA", "BBB"], demo(), db, start=START, end=END)
    n_files = len(db.snapshot().files)  # one per calendar year the bars span
    assert n_files == len({d.year for d in db.read_table()["timestamp"]})
    assert report.verify == {"ok": True, "files": n_files, "rows": report.rows, "problems": []}
    files = list(db._table("prices").refresh().files.values())
    path = db.path / "prices" / files[0].path
    path.write_bytes(path.read_bytes()[:100])  # simulate a torn file
    problems = db.check_files("prices", files)
    assert [p.kind for p in problems] == ["unreadable"]
    assert problems[0].path == files[0].path
