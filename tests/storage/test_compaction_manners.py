"""A background compaction yields to this process's writes (issue 25 item 7): it pauses at
its safe points while a write is in progress — never longer than MAX_PAUSE_SECONDS at a
time, and not while a writer gives way to it — and when it falls behind, writes give way
(back pressure), so a tight loop of upserts still keeps level 0 bounded."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.storage_model import Model, assert_healthy, assert_same, bars
from tickvault import ParquetDB
from tickvault.storage.upkeep import compactor

OPTS = {"fsync": False, "l0_max_files": 2, "target_file_rows": 64}
NS_DAY = 86_400 * 10**9


def day_rows(ticker: str, day: int, close: float = 10.0):
    return [(ticker, day * NS_DAY, close)]


def level0(db: ParquetDB) -> int:
    return sum(f.level == 0 for f in db._table("prices").refresh().files.values())


def test_a_compaction_waits_while_a_write_is_in_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(compactor, "MAX_PAUSE_SECONDS", 30.0)
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    model = Model()
    for day in range(6):
        df = bars(day_rows("AAA", day))
        model.add(db.upsert_prices(df).version, df)
    n0 = level0(db)
    assert n0 >= 4
    with compactor.foreground_write():  # a write of this process is in progress
        db.compact(wait=False)
        time.sleep(0.5)
        assert level0(db) == n0  # the compaction waits at its first safe point
        worker = compactor.existing_compactor(db._table("prices"))
        assert worker is not None and worker.busy
    assert db.wait_for_compaction(timeout=30)  # the write ended: it went on
    assert level0(db) == 0
    assert worker.pauses >= 1 and worker.paused >= 0.4
    assert_same(db.read_table(), model.frame())
    db.close()
    assert_healthy(tmp_path / "db")


def test_a_pause_is_bounded_so_a_long_write_does_not_stop_compaction(tmp_path, monkeypatch):
    monkeypatch.setattr(compactor, "MAX_PAUSE_SECONDS", 0.05)
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    for day in range(6):
        db.upsert_prices(bars(day_rows("AAA", day)))
    with compactor.foreground_write():  # a write that never ends (for the compaction)
        db.compact(wait=False)
        assert db.wait_for_compaction(timeout=30)
    assert level0(db) == 0


def test_close_cancel_stops_a_paused_compaction_promptly(tmp_path, monkeypatch):
    monkeypatch.setattr(compactor, "MAX_PAUSE_SECONDS", 30.0)
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    for day in range(6):
        db.upsert_prices(bars(day_rows("AAA", day)))
    before = db.version
    with compactor.foreground_write():
        db.compact(wait=False)
        time.sleep(0.2)
        t0 = time.monotonic()
        db.close(cancel=True)
        assert time.monotonic() - t0 < 5.0
    assert ParquetDB(tmp_path / "db").version == before  # nothing committed
    assert ParquetDB(tmp_path / "db").verify().ok


def test_a_writer_giving_way_lets_paused_compactions_run(tmp_path, monkeypatch):
    """While another thread's write is in progress the compaction would pause; a writer
    giving way to it (the compaction is behind) lets it run meanwhile."""
    monkeypatch.setattr(compactor, "MAX_PAUSE_SECONDS", 30.0)
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    for day in range(6):
        db.upsert_prices(bars(day_rows("AAA", day)))
    worker = compactor.compactor_for(db._table("prices"))
    n0 = level0(db)
    with compactor.foreground_write():
        db.compact(wait=False)
        time.sleep(0.3)
        assert level0(db) == n0
        worker.backlog = worker.bound + 1  # behind
        monkeypatch.setattr(compactor, "MAX_ROOM_SECONDS", 30.0)
        monkeypatch.setattr(compactor, "ROOM_SECONDS", 30.0)
        done = threading.Event()

        def giving_way() -> None:
            worker.make_room()
            done.set()

        threading.Thread(target=giving_way).start()
        assert done.wait(20)  # returned when the compaction committed, not after 30 s
        assert level0(db) == 0
    db.close()


@pytest.mark.parametrize("writers", [1, 3])
def test_a_tight_loop_of_upserts_keeps_level0_bounded(tmp_path, writers):
    """Writes pause the compaction, and give way to it once level 0 is behind: level 0
    stays near its bound in a loop with no gap between writes, one thread or several."""
    db = ParquetDB(tmp_path / "db", **OPTS)
    model, lock = Model(), threading.Lock()

    def loop(w: int) -> None:
        for i in range(60):
            df = bars([(f"T{w}{i:03d}", d * NS_DAY, 1.0 + w) for d in range(3)])
            r = db.upsert_prices(df)
            with lock:
                model.add(r.version, df)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bound = compactor.BEHIND_FACTOR * OPTS["l0_max_files"]
    assert level0(db) <= 2 * bound + writers
    assert db.wait_for_compaction(timeout=60)
    assert_same(db.read_table(), model.frame())
    db.close()
    assert_healthy(tmp_path / "db")
