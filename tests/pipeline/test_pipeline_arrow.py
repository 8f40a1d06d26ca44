"""Sources that hand over Arrow: ``fetch_arrow`` is preferred, with the same results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from tickvault import ParquetDB
from tickvault.pipeline import fetch_and_write
from tickvault.pipeline.tasks import fetcher
from tickvault.sources import DemoSource, RetryPolicy

START, END = "2023-01-02", "2024-03-28"
NO_WAIT = RetryPolicy(attempts=1, backoff=0.0, jitter=False)


class PandasOnly:
    """The demo bars through ``fetch`` only (no ``fetch_arrow``)."""

    name = "pandas-only"
    retry_policy = NO_WAIT

    def __init__(self) -> None:
        self.inner = DemoSource(as_of=END)

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        return self.inner.fetch(ticker, start, end)


class CountingDemo(DemoSource):
    def __init__(self) -> None:
        super().__init__(as_of=END)
        self.calls = {"fetch": 0, "fetch_arrow": 0}

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        self.calls["fetch"] += 1
        return super().fetch(ticker, start, end)

    def fetch_arrow(self, ticker: str, start: Any = None, end: Any = None) -> pa.Table:
        self.calls["fetch_arrow"] += 1
        return super().fetch_arrow(ticker, start, end)


class OverridesFetch(DemoSource):
    """A subclass that changes ``fetch`` only: the pipeline must keep calling it."""

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        df = super().fetch(ticker, start, end)
        return df.assign(volume=df["volume"] + 1.0)


def test_fetch_arrow_is_used_and_gives_the_same_database(tmp_path: Path) -> None:
    tickers = [f"T{i:03d}" for i in range(40)]
    source = CountingDemo()
    arrow_db = ParquetDB(tmp_path / "arrow")
    r1 = fetch_and_write(tickers, source, arrow_db, start=START, end=END, batch_rows=2000)
    assert source.calls == {"fetch": 0, "fetch_arrow": 40}
    pandas_db = ParquetDB(tmp_path / "pandas")
    r2 = fetch_and_write(tickers, PandasOnly(), pandas_db, start=START, end=END, batch_rows=2000)
    assert r1["written"] == r2["written"] == 40 and r1["rows"] == r2["rows"]
    pd.testing.assert_frame_equal(arrow_db.read_table(), pandas_db.read_table())
    assert r1.verify["ok"] and r1.verify["rows"] == r1["rows"]
    assert r1.verify["files"] >= len(r1.versions) > 1  # checked commit by commit


def test_a_subclass_overriding_only_fetch_is_called_through_fetch(tmp_path: Path) -> None:
    source = OverridesFetch(as_of=END)
    assert fetcher(source) == source.fetch
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAA"], source, db, start="2024-03-01", end=END)
    expected = DemoSource(as_of=END).fetch("AAA", "2024-03-01", END)["volume"] + 1.0
    assert db.read_table()["volume"].tolist() == expected.tolist()


def test_fetch_replaced_on_the_instance_is_called() -> None:
    source = DemoSource(as_of=END)
    # the demo delivers actions too; fetch_with_actions builds its bars with fetch_arrow
    assert fetcher(source) == source.fetch_with_actions
    source.fetch = lambda *a: None  # type: ignore[method-assign]
    assert fetcher(source) == source.fetch


class ArrowTables:
    """A source returning Arrow tables, one of them for the wrong ticker."""

    name = "arrow-tables"
    retry_policy = NO_WAIT

    def __init__(self) -> None:
        self.inner = DemoSource(as_of=END)

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pa.Table:
        table = self.inner.fetch_arrow(ticker, start, end)
        if ticker == "WRONG":
            return self.inner.fetch_arrow("OTHER", start, end)
        if ticker == "NOTICKER":
            return table.drop_columns(["ticker"])
        return table


def test_arrow_answers_are_checked_like_frames(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        ["AAA", "NOTICKER", "WRONG"], ArrowTables(), db, start="2024-03-01", end=END
    )
    assert report["written"] == 2 and report["failed"] == 1
    assert report["errors"]["WRONG"].startswith("BadSourceData: ")
    assert "'OTHER'" in report["errors"]["WRONG"]
    assert db.tickers() == ["AAA", "NOTICKER"]
