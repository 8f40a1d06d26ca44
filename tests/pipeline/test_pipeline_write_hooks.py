"""ParquetDB.write_files / commit_files: the parallel-write hooks the pipeline uses."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd

from tickvault import ParquetDB


def test_written_files_are_invisible_until_committed(db: ParquetDB, bars):
    db.upsert_prices(bars(["AAA"], periods=5))
    files = db.write_files("prices", bars(["BBB", "CCC"], periods=5))
    assert len(files) == 1 and files[0].tickers == ["BBB", "CCC"]
    assert db.tickers() == ["AAA"]
    assert db.verify().orphans == [f"prices/{files[0].path}"]
    copy = pickle.loads(pickle.dumps(files))  # they travel from workers to the client
    result = db.commit_files("prices", copy, info={"run_id": "r1"})
    assert result.rows == 10 and result.files == (files[0].path,)
    assert db.tickers() == ["AAA", "BBB", "CCC"]
    assert db.history()[-1]["info"]["run_id"] == "r1"
    check = db.verify()
    assert check.ok and check.orphans == []


def test_commit_files_upserts_like_upsert(db: ParquetDB, bars):
    db.upsert_prices(bars(["AAA", "BBB"], periods=5, salt=0))
    newer = bars(["AAA"], periods=5, salt=7)
    db.commit_files("prices", db.write_files("prices", newer))
    got = db.read_table(tickers="AAA")
    pd.testing.assert_series_equal(got["close"], newer["close"], check_names=False)
    assert len(db.read_table()) == 10


def test_files_from_separate_writers_commit_together(tmp_path: Path, bars):
    path = tmp_path / "db"
    a = ParquetDB(path).write_files("prices", bars(["AAA", "CCC"], periods=4))
    b = ParquetDB(path).write_files("prices", bars(["BBB"], periods=4, salt=1))
    db = ParquetDB(path)
    db.commit_files("prices", [*a, *b])  # overlapping ticker ranges -> level 0
    levels = {f.level for f in db._table("prices").refresh().files.values()}
    assert levels == {0}
    expected = pd.concat([bars(["AAA", "CCC"], periods=4), bars(["BBB"], periods=4, salt=1)])
    expected = expected.sort_values(["ticker", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        db.read_table()[list(expected.columns)], expected, check_dtype=False
    )
    assert db.verify().ok
    db.compact()
    pd.testing.assert_frame_equal(
        db.read_table()[list(expected.columns)], expected, check_dtype=False
    )


def test_empty_inputs_commit_nothing(db: ParquetDB, bars):
    assert db.write_files("prices", bars(["AAA"], periods=0)) == []
    assert db.commit_files("prices", []).rows == 0
    assert db.version <= 0
