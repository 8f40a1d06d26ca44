"""db.restore (issue 24, decision 016): a preview by default; applied, a new commit whose rows
(all tickers, or the named ones) equal those of version N; history is kept, so a restore
can itself be undone; a reclaimed version is VersionUnavailable naming the oldest left."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.files import tree_snapshot
from tickvault import ParquetDB
from tickvault.errors import ConfigError, UnknownTicker, VersionNotFound, VersionUnavailable


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "db")
    return f"memory://undo-restore-{uuid.uuid4().hex[:12]}"


def _history(where: str) -> tuple[ParquetDB, int]:
    """AAA and BBB loaded (version returned), then a bad update of AAA, a delete of BBB's
    tail, a compaction and a new ticker CCC."""
    db = ParquetDB(where, auto_compact=False, target_file_rows=10_000)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2023-12-01", 40))
    good = db.version
    db.upsert_prices(make_bars("AAA", "2024-01-02", 10, salt=50))  # "bad" values
    db.delete(tickers="BBB", start="2024-01-15", dry_run=False)
    db.compact()
    db.upsert_prices(make_bars("CCC", "2024-01-02", 5))
    return db, good


def test_preview_lists_what_differs_and_changes_nothing(where: str) -> None:
    db, good = _history(where)
    v = db.version
    rep = db.restore(version=good)
    assert rep.dry_run and rep.version is None and rep.target == good and db.version == v
    by = {d["ticker"]: d for d in rep.tickers}
    assert set(by) == {"AAA", "BBB", "CCC"}
    assert by["AAA"]["change"] == 10 and by["AAA"]["come_back"] == 0 and by["AAA"]["go"] == 0
    assert by["BBB"]["come_back"] == by["BBB"]["rows_then"] - by["BBB"]["rows_now"] > 0
    assert by["CCC"] == {
        "ticker": "CCC",
        "rows_now": 5,
        "rows_then": 0,
        "come_back": 0,
        "go": 5,
        "change": 0,
    }


def test_restore_all_equals_version_n_and_can_itself_be_undone(where: str) -> None:
    db, good = _history(where)
    before_v, before = db.version, db.read_table()

    rep = db.restore(version=good, dry_run=False)

    assert rep.version == before_v + 1 and db.history()[-1]["operation"] == "restore"
    pd.testing.assert_frame_equal(db.read_table(), db.read_table(version=good))
    assert db.tickers() == ["AAA", "BBB"]
    # history is kept: the versions in between still read as they were
    pd.testing.assert_frame_equal(db.read_table(version=before_v), before)
    assert db.verify().ok
    # undo the restore
    db.restore(version=before_v, dry_run=False)
    pd.testing.assert_frame_equal(db.read_table(), before)
    assert db.verify().ok
    # a restore to what is already there commits nothing
    v = db.version
    assert not db.restore(version=before_v, dry_run=False).changed
    assert db.version == v


def test_restore_named_tickers_leaves_the_others(where: str) -> None:
    db, good = _history(where)
    now = db.read_table()

    db.restore(version=good, tickers=["aaa"], dry_run=False)

    after = db.read_table()
    pd.testing.assert_frame_equal(
        after[after.ticker == "AAA"].reset_index(drop=True),
        db.read_table(version=good, tickers="AAA"),
    )
    for t in ("BBB", "CCC"):  # untouched
        pd.testing.assert_frame_equal(
            after[after.ticker == t].reset_index(drop=True),
            now[now.ticker == t].reset_index(drop=True),
        )
    # newer writes win over the restored rows as usual, and compaction keeps the answer
    db.upsert_prices(make_bars("AAA", "2024-01-05", 1, salt=99))
    expected = db.read_table()
    db.compact()
    pd.testing.assert_frame_equal(db.read_table(), expected)
    assert db.verify().ok


def test_restore_a_ticker_that_did_not_exist_then_removes_it(where: str) -> None:
    db, good = _history(where)
    rep = db.restore(version=good, tickers=["CCC"], dry_run=False)
    assert rep.tickers[0]["go"] == 5 and "CCC" not in db.tickers()


def test_restore_as_of_a_time(where: str) -> None:
    db = ParquetDB(where)
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5))
    time.sleep(0.01)
    moment = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5, salt=7))
    rep = db.restore(as_of=moment, dry_run=False)
    assert rep.target == 1
    pd.testing.assert_frame_equal(db.read_table(), db.read_table(version=1))


def test_a_reclaimed_version_names_the_oldest_left(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db", auto_compact=False, auto_vacuum=False)
    for i in range(3):
        db.upsert_prices(make_bars("AAA", "2024-01-02", 5, salt=i))
    db.compact()
    db.vacuum(dry_run=False, retention=0)
    with pytest.raises(VersionUnavailable) as exc:
        db.restore(version=2, dry_run=False)
    oldest = db._table("prices").oldest_readable()
    assert exc.value.oldest == oldest == db.version
    assert f"oldest version still readable is {oldest}" in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, ConfigError, ["version=", "as_of="]),
        ({"version": 99}, VersionNotFound, ["does not exist", "newest version"]),
        ({"version": -1}, ConfigError, ["negative"]),
        ({"version": 1, "as_of": "2026-01-01"}, ConfigError, ["both given"]),
        ({"as_of": "2000-01-01"}, ConfigError, ["before table 'prices' existed"]),
        ({"as_of": "30/11/2026"}, ConfigError, ["as_of=", "ISO 8601"]),
        ({"version": 1, "tickers": ["NOPE"]}, UnknownTicker, ["NOPE"]),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, kwargs: dict, error: type, words: list[str]
) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5))
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5, salt=1))
    before = tree_snapshot(tmp_path / "db")
    with pytest.raises(error) as exc:
        db.restore(dry_run=False, **kwargs)
    for w in words:
        assert w in str(exc.value)
    assert tree_snapshot(tmp_path / "db") == before


def test_a_whole_table_restore_is_planned_again_after_a_concurrent_commit(tmp_path: Path) -> None:
    """Another writer commits between the restore's plan and its commit: publishing the
    stale plan would keep that writer's file live, so the rows would not equal version N."""
    from tickvault.storage.upkeep import undo

    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5))
    db.upsert_prices(make_bars("AAA", "2024-01-02", 5, salt=3))
    t = db._table("prices")
    other = ParquetDB(tmp_path / "db", auto_compact=False)
    real_read = t.read
    calls = {"n": 0}

    def read_then_race(*args, **kwargs):
        out = real_read(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            other.upsert_prices(make_bars("ZZZ", "2024-01-02", 5))
        return out

    t.read = read_then_race  # type: ignore[method-assign]
    try:
        rep = undo.restore(t, version=1, tickers=None, dry_run=False)
    finally:
        del t.read
    assert rep.base_version == 3 and rep.version == 4
    pd.testing.assert_frame_equal(db.read_table(), db.read_table(version=1))
    other.close()
