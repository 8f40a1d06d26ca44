"""Property test: with deletes and restores among the upserts, compactions, reopens and time
travel, the database still equals a plain in-memory model (issue 24, decision 016).

The model is a dictionary: a delete removes its keys, a restore puts back the dictionary
of that version (for all tickers, or the named tickers' entries). Tiny files make every
rewrite path run: level-0 and level-1 files holding deleted keys, superseded copies in
older files that must not resurface, restored tickers merged by later compactions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tickvault import ParquetDB

pytestmark = [pytest.mark.slow]

TICKERS = ["A", "B", "C", "D", "E", "F"]
DAYS = pd.date_range("2024-01-01", periods=12, freq="D", tz="UTC")

days = st.none() | st.integers(0, len(DAYS) - 1)
row = st.tuples(st.sampled_from(TICKERS), st.integers(0, len(DAYS) - 1), st.integers(1, 1000))


class UndoMatchesModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tv-undo-model-"))
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

    def _rows(self, version: int | None = None) -> dict[tuple[str, pd.Timestamp], float]:
        df = self.db.read_table(version=version)
        return dict(zip(zip(df.ticker, df.timestamp, strict=True), df.close, strict=True))

    @rule(rows=st.lists(row, min_size=1, max_size=12))
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
            ]
        )
        result = self.db.upsert_prices(df)
        for t, d, v in rows:  # last occurrence in the batch wins
            self.model[(t, DAYS[d])] = float(v)
        self.snapshots[result.version] = dict(self.model)

    @rule()
    def compact(self):
        self.db.compact()

    @rule()
    def reopen(self):
        self.db.close()
        self.db = ParquetDB(self.tmp / "db", **self.opts)

    @precondition(lambda self: bool(self.snapshots))
    @rule(data=st.data())
    def time_travel(self, data):
        v = data.draw(st.sampled_from(sorted(self.snapshots)))
        assert self._rows(v) == self.snapshots[v]

    @invariant()
    def equals_the_model(self):
        assert self._rows() == self.model

    @rule(
        tickers=st.none() | st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3),
        lo=days,
        hi=days,
    )
    def delete(self, tickers, lo, hi):
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        stored = {t for t, _ in self.model}
        if tickers is not None:
            tickers = [t for t in tickers if t in stored]
            if not tickers:
                return
        elif lo is None and hi is None:
            lo = 0  # a delete without a filter is refused; tested elsewhere
        gone = [
            k
            for k in self.model
            if (tickers is None or k[0] in tickers)
            and (lo is None or k[1] >= DAYS[lo])
            and (hi is None or k[1] <= DAYS[hi])
        ]
        rep = self.db.delete(
            tickers=tickers,
            start=None if lo is None else DAYS[lo],
            end=None if hi is None else DAYS[hi],
            dry_run=False,
        )
        assert rep.rows == len(gone)
        for k in gone:
            del self.model[k]
        assert (rep.version is None) == (not gone)
        if rep.version is not None:
            self.snapshots[rep.version] = dict(self.model)

    @precondition(lambda self: bool(self.snapshots))
    @rule(data=st.data(), tickers=st.none() | st.lists(st.sampled_from(TICKERS), max_size=3))
    def restore(self, data, tickers):
        v = data.draw(st.sampled_from(sorted(self.snapshots)))
        then = self.snapshots[v]
        if tickers is not None:
            known = {t for t, _ in self.model} | {t for t, _ in then}
            tickers = sorted({t for t in tickers if t in known})
            if not tickers:
                return
        rep = self.db.restore(version=v, tickers=tickers, dry_run=False)
        if tickers is None:
            new = dict(then)
        else:
            new = {k: x for k, x in self.model.items() if k[0] not in tickers}
            new.update({k: x for k, x in then.items() if k[0] in tickers})
        assert (rep.version is None) == (new == self.model)
        self.model = new
        if rep.version is not None:
            self.snapshots[rep.version] = dict(self.model)


UndoMatchesModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestUndoMatchesModel = UndoMatchesModel.TestCase
