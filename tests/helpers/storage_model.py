"""A plain in-memory model of the prices table and helpers to compare a database with it,
shared by the storage tests (adversarial writers, compaction races, maintenance)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tickvault import ParquetDB
from tickvault.schema import get_schema
from tickvault.storage import Store

PRICE_COLS = ["ticker", "timestamp", "open", "high", "low", "close", "volume"]


TINY = {
    "fsync": False,
    "target_file_rows": 48,
    "l0_max_files": 2,
    "min_row_group_rows": 4,
    "max_row_group_rows": 8,
    "row_group_years": 1,
    "checkpoint_interval": 7,
}


def bars(rows: Iterable[tuple[str, int, float]]) -> pd.DataFrame:
    """Valid bars from (ticker, timestamp ns UTC, close); the close identifies the writer."""
    rows = list(rows)
    close = np.array([r[2] for r in rows], dtype="float64")
    return pd.DataFrame(
        {
            "ticker": pd.Series([r[0] for r in rows], dtype=object),
            "timestamp": pd.to_datetime(np.array([r[1] for r in rows], dtype="int64"), utc=True),
            "open": close,
            "high": close + 1.0,
            "low": close - 0.5,
            "close": close,
            "volume": np.arange(len(rows), dtype="float64"),
        }
    )


class Model:
    """Key -> row; batches applied in commit order, the last occurrence in a batch wins."""

    def __init__(self, key: tuple[str, ...] = ("ticker", "timestamp")) -> None:
        self.key = key
        self.commits: dict[int, pd.DataFrame] = {}

    def add(self, version: int, df: pd.DataFrame) -> None:
        assert version not in self.commits, f"two commits got version {version}"
        self.commits[version] = df.assign(ticker=df["ticker"].str.upper())  # the ticker rule

    def frame(self, upto: int | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        rows: dict[tuple, dict] = {}
        for v in sorted(self.commits):
            if upto is not None and v > upto:
                break
            for rec in self.commits[v].to_dict("records"):
                k = tuple(
                    pd.Timestamp(rec[c]).value if c == "timestamp" else rec[c] for c in self.key
                )
                rows[k] = rec
        cols = columns or list(next(iter(self.commits.values())).columns)
        if not rows:
            return pd.DataFrame(columns=cols)
        out = pd.DataFrame([rows[k] for k in sorted(rows)], columns=cols)
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[ns, UTC]")
        return out.reset_index(drop=True)


def assert_same(got: pd.DataFrame, want: pd.DataFrame, cols: list[str] | None = None) -> None:
    cols = cols or [c for c in want.columns if c in got.columns]
    g = got[cols].reset_index(drop=True)
    w = want[cols].reset_index(drop=True)
    assert len(g) == len(w), (len(g), len(w))
    if len(w) == 0:
        return
    for c in cols:
        if c in ("ticker", "kind"):
            assert g[c].astype(object).tolist() == w[c].astype(object).tolist()
        elif c == "timestamp":
            gi = g[c].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
            wi = w[c].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
            assert gi.tolist() == wi.tolist()
        else:
            assert g[c].astype("float64").tolist() == w[c].astype("float64").tolist(), c


def assert_healthy(path: Path, table: str = "prices") -> None:
    db = ParquetDB(path, create=False)
    report = db.verify()
    assert report.ok, report.problems
    for f in (path / table).glob("*.parquet"):
        pq.read_table(f)
    df = db.read_table(table)
    key = list(get_schema(table).key)
    assert not df.duplicated(key).any()


NS_DAY = 86_400 * 10**9


Y2020 = pd.Timestamp("2019-12-20", tz="UTC").value  # the batches straddle a year boundary


def seed_db(path: Path, store: Store | None = None, **opts) -> tuple[ParquetDB, Model]:
    """Three overlapping upserts (tiny options, no automatic compaction), and their model;
    ``store``: the store to reach ``path`` through (a FaultyStore, say)."""
    db = ParquetDB(path, store=store, **{**TINY, "auto_compact": False, **opts})
    model = Model()
    for i, tks in enumerate([["A", "B"], ["B", "C"], ["A", "C"]]):
        df = bars((t, Y2020 + d * NS_DAY, 20.0 + i) for t in tks for d in range(6))
        model.add(db.upsert_prices(df).version, df)
    return db, model
