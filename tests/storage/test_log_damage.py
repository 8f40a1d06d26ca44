"""A commit log damaged by hand (decision 001, gaps): an entry deleted in the middle is an
error, never a silent rollback, and a writer never fills the gap; an empty or garbage newest
entry leaves the versions before it readable; ``repair`` (a dry run unless told) says which
commit is lost and sets the damage aside or bridges the gap, so the advice leads somewhere."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.bars import arrow_bars
from helpers.cli import tv
from tickvault import CorruptDatabaseError, ParquetDB
from tickvault.storage.core.log import entry_name
from tickvault.storage.core.object_store import ObjectStore


def bars(ticker: str, n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": pd.bdate_range("2026-10-01", periods=n),
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 1000.0,
        }
    )


def entry(db_path, version: int):
    return db_path / "prices" / "_log" / entry_name(version)


def three_commits(db_path) -> tuple[int, int, int]:
    """AAA, then ZZZ, then YYY: the versions of the three upserts."""
    db = ParquetDB(db_path, auto_compact=False)
    out = tuple(db.upsert_prices(bars(t)).version for t in ("AAA", "ZZZ", "YYY"))
    db.close()
    return out  # type: ignore[return-value]


def test_a_deleted_middle_entry_is_an_error_not_a_silent_rollback(db_path):
    a, z, y = three_commits(db_path)
    entry(db_path, z).unlink()
    db = ParquetDB(db_path, auto_compact=False)
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(z)} is missing"):
        db.read_table()
    with pytest.raises(CorruptDatabaseError, match="tickvault repair"):
        db.upsert_prices(bars("XXX"))
    assert not entry(db_path, z).exists()  # the writer did not fill the gap
    # the versions before the gap stay readable, pinned
    assert set(db.read_table(version=a)["ticker"]) == {"AAA"}
    with pytest.raises(CorruptDatabaseError, match="missing"):
        db.read_table(version=y)


def test_a_handle_opened_before_the_deletion_sees_the_gap_too(db_path):
    db = ParquetDB(db_path, auto_compact=False)
    db.upsert_prices(bars("AAA"))
    other = ParquetDB(db_path, auto_compact=False)
    z = other.upsert_prices(bars("ZZZ")).version
    other.upsert_prices(bars("YYY"))
    entry(db_path, z).unlink()
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(z)} is missing"):
        db.read_table()  # a warm refresh: the probe of version z ends, the stat of z+1 finds it


def test_a_writer_never_fills_a_wider_gap(db_path):
    """Two entries deleted: the read path's single stat does not see it; the writer's
    listing before publishing does."""
    db = ParquetDB(db_path, auto_compact=False)
    db.upsert_prices(bars("AAA"))
    fresh = ParquetDB(db_path, auto_compact=False)
    assert fresh.version == 1  # warm: its next refresh probes 2, then stats 3 (gone too)
    z1 = db.upsert_prices(bars("ZZZ")).version
    z2 = db.upsert_prices(bars("ZZY")).version
    db.upsert_prices(bars("YYY"))
    entry(db_path, z1).unlink()
    entry(db_path, z2).unlink()
    before = sorted(p.name for p in (db_path / "prices" / "_log").iterdir())
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(z1)} is missing"):
        fresh.upsert_prices(bars("XXX"))
    assert sorted(p.name for p in (db_path / "prices" / "_log").iterdir()) == before
    assert not fresh.verify().ok


def test_on_an_object_store_a_new_handle_sees_the_gap_in_its_listing():
    store = ObjectStore("memory://log-damage-gap")
    db = ParquetDB(store=store, checkpoint_interval=5, auto_compact=False, auto_vacuum=False)
    for i in range(8):  # checkpoint 5, then entries 6, 7, 8
        db.upsert_prices(arrow_bars(["AAA"], [i], float(i + 1)))
        if i == 5:
            old = ParquetDB(store=store, auto_compact=False, auto_vacuum=False)
            assert old.version == 6
    store.delete(f"prices/_log/{entry_name(7)}")
    fresh = ParquetDB(store=store, auto_compact=False, auto_vacuum=False)
    store.requests.clear()
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(7)} is missing"):
        fresh.read_table()
    # the listing told: only a check that the missing entry is still missing was added
    assert store.requests["list"] == 1
    # a new handle cannot commit over it either (its load lists the tail). A handle warm
    # at version 6 on a bucket is not checked: a request per commit (decision 001, gaps)
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(7)} is missing"):
        ParquetDB(store=store, auto_compact=False).upsert_prices(arrow_bars(["X"], [0], 1.0))
    assert not store.exists(f"prices/_log/{entry_name(7)}")
    del old
    assert fresh.read_table(version=6)["close"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_repair_bridges_a_gap_only_when_applied_and_says_what_is_lost(db_path):
    _a, z, y = three_commits(db_path)
    entry(db_path, z).unlink()
    db = ParquetDB(db_path, auto_compact=False)
    plan = db.repair()
    assert plan.dry_run and plan.unrepairable == []
    (action,) = plan.actions
    assert action["action"] == "bridge" and action["lost_version"] == z
    assert "commit" in action["detail"] and "backup" in action["detail"]
    # the data files are not checked past the damage: the dry run says to look again
    assert "run this dry run again after --apply" in action["detail"]
    assert [u["tickers"] for u in action["unnamed_files"]] == [["ZZZ"]]
    assert not entry(db_path, z).exists()  # a dry run changed nothing
    done = db.repair(dry_run=False)
    assert done.versions == [z]
    bridge = json.loads(entry(db_path, z).read_text())
    assert bridge["operation"] == "repair" and bridge["add"] == []
    assert bridge["info"]["lost_commit"] == z
    assert db.verify().ok
    assert set(db.read_table()["ticker"]) == {"AAA", "YYY"}
    # what the lost commit probably wrote (the file no entry names) is what
    # `backfill --tickers-from-repair` re-fetches
    assert db.lost_in_repairs() == {"ZZZ": ("2026-10-01T00:00:00Z", "2026-10-07T00:00:00Z")}
    assert db.upsert_prices(bars("XXX")).version == y + 1


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]"])
def test_a_damaged_newest_entry_leaves_older_versions_readable(db_path, damage):
    _a, z, y = three_commits(db_path)
    entry(db_path, y).write_bytes(damage)
    db = ParquetDB(db_path, auto_compact=False)
    with pytest.raises(CorruptDatabaseError, match="tickvault repair"):
        db.read_table()
    assert set(db.read_table(version=z)["ticker"]) == {"AAA", "ZZZ"}
    assert not db.verify().ok
    plan = db.repair()
    (action,) = plan.actions
    assert action["action"] == "set_aside" and action["lost_version"] == y
    assert [u["tickers"] for u in action["unnamed_files"]] == [["YYY"]]
    assert entry(db_path, y).read_bytes() == damage  # a dry run
    db.repair(dry_run=False)
    aside = db_path / "prices" / "_log" / "damaged" / entry_name(y)
    assert aside.read_bytes() == damage and not entry(db_path, y).exists()
    assert db.verify().ok
    assert set(db.read_table()["ticker"]) == {"AAA", "ZZZ"}
    assert db.upsert_prices(bars("XXX")).version == y


def test_a_set_aside_entry_that_still_parses_names_what_it_held(db_path):
    _a, _z, y = three_commits(db_path)
    held = json.loads(entry(db_path, y).read_text())
    held["format"] = "one"  # not a format: the entry is refused, its adds still readable
    entry(db_path, y).write_text(json.dumps(held))
    (action,) = ParquetDB(db_path).repair().actions
    assert {lost["ticker"] for lost in action["lost"]} == {"YYY"}


def test_the_cli_advice_leads_forward_to_a_way_out(db_path):
    _a, _z, y = three_commits(db_path)
    entry(db_path, y).write_bytes(b"")
    q = tv("query", "AAA", db=db_path)
    assert q.returncode == 4 and "tickvault repair" in q.stderr
    v = tv("verify", db=db_path)
    assert v.returncode == 1 and "tickvault repair" in v.stdout + v.stderr
    r = tv("repair", db=db_path)
    assert "cannot repair" not in r.stderr
    assert f"would set_aside prices/_log/{entry_name(y)}" in r.stdout
    assert f"commit {y} is lost" in r.stdout and "YYY" in r.stdout
    assert tv("repair", "--apply", db=db_path).returncode == 1  # problems were found
    assert tv("verify", db=db_path).returncode == 0
    assert tv("query", "ZZZ", db=db_path).returncode == 0


def test_a_wider_gap_after_a_checkpoint_is_refused_by_a_new_handle(db_path):
    """Three entries deleted after a checkpoint: a new handle (no listing: the checkpoint
    hint said where to start) looks a few entries ahead as it opens, so it refuses the
    gap instead of reading the rolled-back table (review: only V+2 was looked at)."""
    db = ParquetDB(db_path, checkpoint_interval=5, auto_compact=False)
    while db.version < 19:  # a checkpoint at 15, then entries 16 .. 19
        db.upsert_prices(bars(f"T{db.version:02d}"))
    newest = db.version
    db.close()
    assert (db_path / "prices" / "_log" / f"{newest - 4:020d}.checkpoint.json").exists()
    for v in (newest - 3, newest - 2, newest - 1):
        entry(db_path, v).unlink()
    fresh = ParquetDB(db_path, checkpoint_interval=5, auto_compact=False)
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(newest - 3)} is missing"):
        fresh.read_table()
    with pytest.raises(CorruptDatabaseError, match="is missing"):
        fresh.upsert_prices(bars("NEW"))
    assert not entry(db_path, newest - 3).exists()
