"""db.delete (issue 24, decision 016): a preview by default, applied one atomic commit that
rewrites only the files holding deleted rows; no older copy resurfaces; time travel still
shows the rows; concurrent upserts lose nothing they committed; bad input changes nothing."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.files import tree_snapshot
from tickvault import ParquetDB
from tickvault.errors import ConfigError, UnknownTicker


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "db")
    return f"memory://undo-delete-{uuid.uuid4().hex[:12]}"


def _in(df: pd.DataFrame, ticker: str, start: str, end: str) -> pd.DataFrame:
    ts = df["timestamp"]
    lo = pd.Timestamp(start, tz="UTC")
    hi = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    return df[(df["ticker"] == ticker) & (ts >= lo) & (ts < hi)]


def _layered(where: str) -> ParquetDB:
    """A database whose AAA rows sit in a level-1 file (year periods) AND in level-0
    files with newer copies of some of the same keys, BBB only in level 1."""
    db = ParquetDB(where, auto_compact=False, target_file_rows=10_000)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2023-12-01", 60))  # two periods
    db.compact()
    db.upsert_prices(make_bars("AAA", "2024-01-08", 5, salt=1))  # newer copies
    db.upsert_prices(make_bars("AAA", "2024-01-10", 5, salt=2))  # and newer still
    return db


def test_preview_by_default_changes_nothing(where: str) -> None:
    db = _layered(where)
    before = db.version
    rep = db.delete(tickers=["aaa"], start="2024-01-09", end="2024-01-12")
    assert rep.dry_run and rep.version is None and rep.base_version == before
    assert rep.rows == 4
    assert rep.tickers == [
        {
            "ticker": "AAA",
            "rows": 4,
            "first": "2024-01-09T00:00:00Z",
            "last": "2024-01-12T00:00:00Z",
        }
    ]
    assert db.version == before
    assert len(_in(db.read_table(), "AAA", "2024-01-09", "2024-01-12")) == 4


def test_applied_is_one_commit_and_no_older_copy_resurfaces(where: str) -> None:
    db = _layered(where)
    before_v = db.version
    before = db.read_table()
    levels = {p: f.level for p, f in db._table("prices").refresh().files.items()}
    assert sorted(set(levels.values())) == [0, 1]

    rep = db.delete(tickers="AAA", start="2024-01-09", end="2024-01-12", dry_run=False)

    assert rep.version == before_v + 1 and db.version == before_v + 1
    last = db.history()[-1]
    assert last["operation"] == "delete" and last["rows"] == 4
    after = db.read_table()
    # the three copies of those keys (level 1, two level-0 files) are all gone
    assert _in(after, "AAA", "2024-01-09", "2024-01-12").empty
    expected = before.drop(_in(before, "AAA", "2024-01-09", "2024-01-12").index)
    pd.testing.assert_frame_equal(after, expected.reset_index(drop=True))
    # every other open reader sees the same
    assert db.to_pyarrow_dataset().to_table().num_rows == len(after)
    # time travel still shows the rows
    pd.testing.assert_frame_equal(db.read_table(version=before_v), before)
    assert db.verify().ok
    # compaction afterwards keeps the answer (commit order was kept in rewritten files)
    db.compact()
    pd.testing.assert_frame_equal(db.read_table(), after)


def test_only_files_holding_deleted_rows_are_rewritten_keeping_level_and_period(
    where: str,
) -> None:
    db = ParquetDB(where, auto_compact=False, target_file_rows=10_000)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2023-11-01", 120))  # 2023 and 2024 files
    db.compact()
    t = db._table("prices")
    files = dict(t.refresh().files)
    assert all(f.level == 1 and f.period is not None for f in files.values())
    year_2024 = [p for p, f in files.items() if f.start >= pd.Timestamp("2024-01-01").value]

    db.delete(tickers="BBB", start="2024-02-01", end="2024-02-29", dry_run=False)

    now = t.refresh().files
    untouched = set(files) - set(year_2024)
    assert untouched and untouched <= set(now)  # 2023 files are the same files
    new = [f for p, f in now.items() if p not in files]
    assert len(new) == len(year_2024)
    for f in new:
        old = files[year_2024[0]]
        assert f.level == old.level and f.period == old.period and f.seq == old.seq
    assert db.verify().ok


def test_a_file_left_empty_is_dropped(where: str) -> None:
    db = ParquetDB(where, auto_compact=False)
    db.upsert_prices(make_bars("AAA", "2024-01-01", 10))
    db.upsert_prices(make_bars("BBB", "2024-01-01", 10))
    rep = db.delete(tickers=["BBB"], dry_run=False)
    assert rep.files_rewritten == 0 and rep.files_dropped == 1
    assert db.tickers() == ["AAA"]
    assert len(db.read_table(version=rep.base_version)) == 20


def test_all_tickers_in_a_date_range(where: str) -> None:
    db = ParquetDB(where, auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2024-01-01", 10))
    rep = db.delete(start="2024-01-08", dry_run=False)
    assert [d["ticker"] for d in rep.tickers] == ["AAA", "BBB"] and rep.rows == 10
    assert db.read_table()["timestamp"].max() == pd.Timestamp("2024-01-05", tz="UTC")


def test_nothing_matching_commits_nothing(where: str) -> None:
    db = ParquetDB(where)
    db.upsert_prices(make_bars("AAA", "2024-01-01", 5))
    v = db.version
    rep = db.delete(tickers="AAA", start="2025-01-01", dry_run=False)
    assert rep.rows == 0 and rep.version is None and db.version == v


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, ConfigError, ["needs a filter", "tickers="]),
        ({"tickers": []}, ConfigError, ["empty list", "tickers=['AAPL']"]),
        ({"tickers": ["AAA", "ZZZZ"]}, UnknownTicker, ["ZZZZ"]),
        ({"tickers": "AAA", "start": "2024-02-01", "end": "2024-01-01"}, ConfigError, ["after"]),
        ({"tickers": "AAA", "start": "01/02/2024"}, ConfigError, ["start="]),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, kwargs: dict, error: type, words: list[str]
) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("AAA", "2024-01-01", 5))
    before = tree_snapshot(tmp_path / "db")
    with pytest.raises(error) as exc:
        db.delete(dry_run=False, **kwargs)
    for w in words:
        assert w in str(exc.value)
    assert tree_snapshot(tmp_path / "db") == before


def test_concurrent_upserts_during_deletes_lose_nothing(tmp_path: Path) -> None:
    """Writers upsert other tickers (and later bars of the deleted one) while deletes and
    compactions run: every row an upsert committed is there at the end, except those a
    delete that came after it removed."""
    path = tmp_path / "db"
    db = ParquetDB(path, l0_max_files=1)  # background compaction on: more races
    db.upsert_prices(make_bars(["DEL", "KEEP"], "2023-01-02", 250))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(name: str) -> None:
        w = ParquetDB(path, l0_max_files=1)
        try:
            for i in range(12):
                w.upsert_prices(make_bars(name, "2024-06-03", 5 + i, salt=i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()

    def deleter() -> None:
        d = ParquetDB(path, l0_max_files=1)
        try:
            k = 0
            while not stop.is_set():
                day = pd.Timestamp("2023-01-02") + pd.Timedelta(days=7 * k)
                d.delete(tickers="DEL", start=day, end=day + pd.Timedelta(days=6), dry_run=False)
                k += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            d.close()

    threads = [threading.Thread(target=writer, args=(f"W{i}",)) for i in range(3)]
    dt = threading.Thread(target=deleter)
    dt.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    dt.join()
    assert not errors, errors
    db.wait_for_compaction()
    df = db.read_table()
    for i in range(3):  # each writer's last commit is complete
        got = df[df["ticker"] == f"W{i}"].reset_index(drop=True)
        want = make_bars(f"W{i}", "2024-06-03", 16, salt=11)
        assert len(got) == 16
        assert got["close"].tolist() == pytest.approx(want["close"].tolist())
    assert len(df[df["ticker"] == "KEEP"]) == 250
    deletes = [h for h in db.history(limit=None) if h["operation"] == "delete"]
    assert deletes and len(df[df["ticker"] == "DEL"]) == 250 - sum(h["rows"] for h in deletes)
    for h in deletes:  # right after each delete, nothing of its range is left
        left = db.read_table(
            tickers="DEL", start=h["info"]["start"], end=h["info"]["end"], version=h["version"]
        )
        assert left.empty, (h, left)
    assert db.verify().ok
    db.close()


def test_a_delete_planned_before_an_upsert_of_its_rows_is_planned_again(tmp_path: Path) -> None:
    """An upsert that commits rows the delete selects after the delete counted them: the
    delete must not publish its stale plan (the upsert's rows would survive a delete that
    claims to have removed that range, or the count would be wrong)."""
    from tickvault.storage.upkeep import undo

    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars("AAA", "2024-01-01", 10))
    t = db._table("prices")
    other = ParquetDB(tmp_path / "db", auto_compact=False)
    real_read = t.read
    calls = {"n": 0}

    def read_then_race(*args, **kwargs):  # a real second writer, between plan and commit
        out = real_read(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            other.upsert_prices(make_bars("AAA", "2024-01-15", 3, salt=5))
        return out

    t.read = read_then_race  # type: ignore[method-assign]
    try:
        rep = undo.delete(t, tickers=["AAA"], start=None, end=None, dry_run=False)
    finally:
        del t.read
    assert rep.rows == 13  # counted again on the newer version
    assert db.read_table().empty
    other.close()


def test_a_delete_whose_inputs_a_compaction_replaced_is_planned_again(tmp_path: Path) -> None:
    """A compaction (by another handle) replaces the delete's input files between its plan
    and its commit: publishing the stale plan would leave the deleted rows alive in the
    compaction's output. The delete notices, plans again and removes them there."""
    from tickvault.storage.upkeep import undo

    db = ParquetDB(tmp_path / "db", auto_compact=False)
    for i in range(3):
        db.upsert_prices(make_bars(["AAA", "BBB"], "2024-01-01", 10 + i, salt=i))
    t = db._table("prices")
    other = ParquetDB(tmp_path / "db", auto_compact=False)
    real_read = t.read
    calls = {"n": 0}

    def read_then_compact(*args, **kwargs):
        out = real_read(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            assert other.compact() is not None
        return out

    t.read = read_then_compact  # type: ignore[method-assign]
    try:
        rep = undo.delete(t, tickers=["AAA"], start=None, end=None, dry_run=False)
    finally:
        del t.read
    assert rep.version is not None and calls["n"] >= 2
    df = db.read_table()
    assert df["ticker"].unique().tolist() == ["BBB"] and len(df) == 12
    assert db.verify().ok
    other.close()


def test_a_file_whose_statistics_overlap_but_rows_do_not_is_left_alone(where: str) -> None:
    """AAA's file spans the range by its min/max but has no bar inside it: not rewritten."""
    db = ParquetDB(where, auto_compact=False)
    db.upsert_prices(make_bars("AAA", "2024-01-01", 5))
    db.upsert_prices(make_bars("AAA", "2024-03-01", 5))
    db.upsert_prices(make_bars("AAA", "2024-02-01", 3))
    db.compact()  # one file: January, February and March
    db.delete(tickers="AAA", start="2024-02-01", end="2024-02-05", dry_run=False)
    rep = db.delete(tickers="AAA", start="2024-02-01", end="2024-02-20", dry_run=False)
    assert rep.rows == 0 and rep.version is None
    db.upsert_prices(make_bars("BBB", "2024-02-10", 1))
    files = set(db.snapshot().files)
    rep = db.delete(tickers=["AAA", "BBB"], start="2024-02-01", end="2024-02-20", dry_run=False)
    assert rep.rows == 1 and rep.files_dropped == 1 and rep.files_rewritten == 0
    assert set(db.snapshot().files) < files  # the AAA file is the same file
