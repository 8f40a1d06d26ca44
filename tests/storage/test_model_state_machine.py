"""Property test: the database always equals a plain in-memory model.

Random sequences of upserts with overlapping keys, compactions, reads by ticker / date /
columns, reopens and time travel, on tiny file sizes so that every compaction path (level-0
merges, level-0 into several level-1 files, level-1 splits) is exercised.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from tickvault import ParquetDB

pytestmark = pytest.mark.slow

TICKERS = ["A", "B", "C", "D", "E", "F"]
DAYS = pd.date_range("2024-01-01", periods=12, freq="D", tz="UTC")
COLUMNS = ["open", "high", "low", "close", "volume"]

row = st.tuples(
    st.sampled_from(TICKERS),
    st.integers(0, len(DAYS) - 1),
    st.integers(1, 1000),
)


class DatabaseMatchesModel(RuleBasedStateMachine):
    versions = Bundle("versions")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tv-model-"))
        self.opts = {
            "fsync": False,
            "target_file_rows": 8,
            "l0_max_files": 2,
            "min_row_group_rows": 3,
            "checkpoint_interval": 5,
        }
        self.db = ParquetDB(self.tmp / "db", **self.opts)
        self.model: dict[tuple[str, pd.Timestamp], float] = {}
        self.snapshots: dict[int, dict[tuple[str, pd.Timestamp], float]] = {}

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(target=versions, rows=st.lists(row, min_size=0, max_size=15))
    def upsert(self, rows):
        df = pd.DataFrame(
            [
                {
                    "ticker": t,
                    "timestamp": DAYS[d],
                    "open": float(v),
                    "high": float(v) + 1,
                    "low": float(v) - 0.5,
                    "close": float(v),
                    "volume": float(v),
                }
                for t, d, v in rows
            ],
            columns=["ticker", "timestamp", *COLUMNS],
        )
        result = self.db.upsert_prices(df)
        for t, d, v in rows:  # last occurrence in the batch wins
            self.model[(t, DAYS[d])] = float(v)
        if rows:
            self.snapshots[result.version] = dict(self.model)
        return result.version

    @rule()
    def compact(self):
        self.db.compact()

    @rule()
    def reopen(self):
        self.db.close()
        self.db = ParquetDB(self.tmp / "db", **self.opts)

    @rule(
        tickers=st.none() | st.lists(st.sampled_from([*TICKERS, "ZZ"]), max_size=3),
        lo=st.none() | st.integers(0, len(DAYS) - 1),
        hi=st.none() | st.integers(0, len(DAYS) - 1),
        cols=st.none() | st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=2, unique=True),
    )
    def read(self, tickers, lo, hi, cols):
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        df = self.db.read_table(
            tickers=tickers,
            start=None if lo is None else DAYS[lo],
            end=None if hi is None else DAYS[hi],
            columns=cols,
        )
        expected = {
            k: v
            for k, v in self.model.items()
            if (tickers is None or k[0] in tickers)
            and (lo is None or k[1] >= DAYS[lo])
            and (hi is None or k[1] <= DAYS[hi])
        }
        keys = list(zip(df.ticker, df.timestamp, strict=True))
        assert keys == sorted(expected)
        if cols is None or "close" in cols:
            assert dict(zip(keys, df.close, strict=True)) == expected
        all_cols = [*COLUMNS, "adj_close", "vwap", "trade_count"]
        want_cols = ["ticker", "timestamp", *[c for c in all_cols if cols is None or c in cols]]
        assert list(df.columns) == want_cols

    @precondition(lambda self: bool(self.snapshots))
    @rule(data=st.data())
    def time_travel(self, data):
        v = data.draw(st.sampled_from(sorted(self.snapshots)))
        df = self.db.read_table(version=v)
        got = dict(zip(zip(df.ticker, df.timestamp, strict=True), df.close, strict=True))
        assert got == self.snapshots[v]

    @invariant()
    def metadata_matches(self):
        wm = self.db.watermarks()
        expected: dict[str, pd.Timestamp] = {}
        for t, ts in self.model:
            expected[t] = max(expected.get(t, ts), ts)
        assert wm == expected
        assert self.db.tickers() == sorted(expected)


DatabaseMatchesModel.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDatabaseMatchesModel = DatabaseMatchesModel.TestCase


def test_verify_clean_after_random_history(tmp_path):
    db = ParquetDB(tmp_path / "db", target_file_rows=8, l0_max_files=2, fsync=False)
    for i in range(30):
        t = TICKERS[i % len(TICKERS)]
        db.upsert_prices(
            pd.DataFrame(
                {
                    "ticker": [t, TICKERS[(i * 7) % 6]],
                    "timestamp": [DAYS[i % 12], DAYS[(i * 5) % 12]],
                    "open": 1.0,
                    "high": 2.0,
                    "low": 0.5,
                    "close": 1.5,
                    "volume": 1.0,
                }
            )
        )
    db.compact()
    assert db.verify().ok
