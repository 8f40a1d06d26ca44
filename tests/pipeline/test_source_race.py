"""Two runs writing the same new tickers from two different sources at the same time: both
pass the check made before fetching, so the check is made again by each commit, atomically
with publishing it. The loser's tickers fail in its report; the winner's bars stay, and no
series mixes the two sources."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tickvault import ParquetDB, fetch_and_write
from tickvault.sources import DemoSource

END = "2024-06-28"
TICKERS = ["ACME", "BETA"]


def bars(ticker: str, start: Any, end: Any, factor: float = 1.0) -> pd.DataFrame:
    df = DemoSource(as_of=END).fetch(ticker, start, end)
    for c in ("open", "high", "low", "close"):
        df[c] *= factor
    return df


@pytest.mark.parametrize("parallel_write", [False, True])
def test_two_backfills_racing_from_two_sources_never_mix_a_series(
    tmp_path: Path, parallel_write: bool
) -> None:
    path = tmp_path / "db"
    ParquetDB(path).close()
    # both runs have checked the (still empty) database before either fetches: every
    # fetch waits until the other run is fetching too
    barrier = threading.Barrier(2, timeout=60)

    def vendor_a(ticker: str, start: Any, end: Any) -> pd.DataFrame:
        barrier.wait()
        return bars(ticker, start, end)

    def vendor_b(ticker: str, start: Any, end: Any) -> pd.DataFrame:
        barrier.wait()
        return bars(ticker, start, end, factor=10.0)

    reports: dict[str, Any] = {}

    def run(name: str, source: Any, start: str) -> None:
        db = ParquetDB(path)  # each run its own handle, as two processes would have
        try:
            reports[name] = fetch_and_write(
                TICKERS, source, db, start=start, end=END, scheduler="synchronous",
                parallel_write=parallel_write,
            )  # fmt: skip
        finally:
            db.close()

    threads = [
        threading.Thread(target=run, args=("a", vendor_a, "2024-01-02")),
        threading.Thread(target=run, args=("b", vendor_b, "2024-04-01")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(reports) == {"a", "b"}  # neither run crashed

    db = ParquetDB(path)
    recorded = db.sources()
    stored = db.read_table()
    for ticker in TICKERS:
        winner = recorded[ticker]["name"]
        loser = "vendor_b" if winner == "vendor_a" else "vendor_a"
        lost = reports[loser[-1]]["tickers"][ticker]
        assert lost["status"] == "failed", reports[loser[-1]]["tickers"]
        assert lost["error_type"] == "SourceConflict"
        assert "another run wrote" in lost["error"] and winner in lost["error"]
        assert reports[winner[-1]]["tickers"][ticker]["status"] == "written"
        # every stored bar is the winner's: the same series the winner alone would write
        series = stored[stored.ticker == ticker].reset_index(drop=True)
        start = "2024-01-02" if winner == "vendor_a" else "2024-04-01"
        expected = bars(ticker, start, END, 1.0 if winner == "vendor_a" else 10.0)
        pd.testing.assert_series_equal(
            series["close"], expected["close"], check_names=False, check_dtype=False
        )
    assert db.verify().ok


def test_a_commit_refuses_tickers_a_concurrent_commit_recorded_from_another_source(
    tmp_path: Path,
) -> None:
    """The storage half: two handles write their files, both pass every check made before
    committing (a barrier), then both commit with the guard; the commit protocol
    serialises them, and the second sees the first's record and is abandoned."""
    from tickvault.pipeline.guard import SourceConflict, SourceGuard

    path = tmp_path / "db"
    ParquetDB(path).close()
    barrier = threading.Barrier(2, timeout=60)
    results: dict[str, Any] = {}

    def commit(name: str, factor: float) -> None:
        db = ParquetDB(path)
        try:
            files = db.write_files("prices", bars("ACME", "2024-06-03", END, factor))
            mine = {"name": name, "options": {}, "kind": "callable", "qualname": f"m.{name}"}
            guard = SourceGuard(db.sources())  # nothing recorded yet
            barrier.wait()
            try:
                results[name] = db.commit_files(
                    "prices", files, info={"source": mine}, check_sources=guard.check(mine)
                ).version
            except SourceConflict as exc:
                results[name] = exc
        finally:
            db.close()

    threads = [threading.Thread(target=commit, args=(n, f)) for n, f in (("a", 1.0), ("b", 2.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    lost = [n for n, r in results.items() if isinstance(r, SourceConflict)]
    assert len(lost) == 1, results
    db = ParquetDB(path)
    winner = db.sources()["ACME"]["name"]
    assert winner != lost[0] and set(results[lost[0]].lost) == {"ACME"}
    assert db.verify().ok  # the loser's files were deleted, not left behind
    assert len(db.history()) == 2  # create + the winner's commit
