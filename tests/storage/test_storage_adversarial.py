"""Adversarial tests of the storage engine: try hard to make it lose or corrupt data.

Every test compares the database with a plain in-memory model (a dict from key to row)
built from what each writer was told it committed (``CommitResult.version``): for each key
the row of the highest committed version wins, and within one batch the last occurrence.

Four of these tests found real defects when they were written (repair losing compacted
rows' commit order, vacuum racing a commit, commit_files with files sharing keys, values
outside the storable range escaping ValidationError); they pass since the fixes.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.faulty_store import FaultyStore
from helpers.files import tree_snapshot
from helpers.storage_model import (
    NS_DAY,
    PRICE_COLS,
    TINY,
    Y2020,
    Model,
    assert_healthy,
    assert_same,
    bars,
    seed_db,
)
from tickvault import ParquetDB, ValidationError, VersionUnavailable
from tickvault.errors import StorageError, TickvaultError
from tickvault.storage import LocalStore
from tickvault.storage.core.log import entry_name
from tickvault.storage.upkeep import compaction

# -- helpers -------------------------------------------------------------------------------


def random_batch(rng: np.random.Generator, writer: int, i: int, tickers: list[str]) -> tuple:
    """A batch of overlapping keys with writer-specific values; some keys appear twice with
    different values (the later one must win). Returns (input frame, intended frame)."""
    n = int(rng.integers(1, 14))
    rows = []
    for j in range(n):
        t = tickers[int(rng.integers(0, len(tickers)))]
        ts = Y2020 + int(rng.integers(0, 30)) * NS_DAY
        rows.append((t, ts, 10.0 + writer + i / 100.0 + j / 100_000.0))
    df = bars(rows)
    return df, df  # the model applies rows in order, so the last occurrence wins


# -- 1. concurrent writers with overlapping keys, auto-compaction and a compactor ---------


@pytest.mark.slow
def test_threads_overlapping_keys_newest_commit_wins_under_compaction(tmp_path):
    path = tmp_path / "db"
    tickers = ["A", "B", "C", "D", "E"]
    model = Model()
    lock = threading.Lock()
    errors: list[BaseException] = []
    done = threading.Event()
    snapshots: list[tuple[int, pd.DataFrame]] = []

    def writer(w: int) -> None:
        try:
            db = ParquetDB(path, **TINY)
            rng = np.random.default_rng(1000 + w)
            for i in range(10):
                df, intended = random_batch(rng, w, i, tickers)
                r = db.upsert_prices(df)
                with lock:
                    model.add(r.version, intended)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def compactor() -> None:
        try:
            db = ParquetDB(path, **TINY)
            while not done.is_set():
                db.compact()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def reader() -> None:
        try:
            db = ParquetDB(path, **TINY)
            while not done.is_set() and len(snapshots) < 25:
                if db.version < 1:
                    continue
                snap = db.snapshot()
                snapshots.append((snap.version, snap.read_table()))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    ParquetDB(path, **TINY).upsert_prices(bars([("C", Y2020, 1.0 + 1.0)]))
    with lock:
        model.add(1, bars([("C", Y2020, 2.0)]))
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    others = [threading.Thread(target=compactor), threading.Thread(target=reader)]
    for t in writers + others:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in others:
        t.join()
    assert errors == []
    db = ParquetDB(path, **TINY)
    assert_same(db.read_table(), model.frame())
    # every version, read now, is exactly the model at that version
    history = db.history()
    assert [h["version"] for h in history] == list(range(db.version + 1))
    upserts = {h["version"] for h in history if h["operation"] == "upsert"}
    assert upserts == set(model.commits)
    assert sum(h["operation"] == "compact" for h in history) >= 3  # compactions really raced
    for h in history[1:]:
        assert_same(db.read_table(version=h["version"]), model.frame(h["version"]))
    # what the concurrent reader saw was exactly one whole version
    for v, df in snapshots:
        assert_same(df, model.frame(v))
    assert_healthy(path)


def process_writer(db: ParquetDB, w: int) -> list[tuple[int, list]]:
    """Runs in a spawned process with a *pickled* ParquetDB; upserts overlapping keys and
    compacts; returns (version, rows) of each commit it was acknowledged."""
    rng = np.random.default_rng(77 + w)
    out = []
    for i in range(8):
        df, intended = random_batch(rng, w, i, ["A", "B", "C"])
        r = db.upsert_prices(df)
        out.append((r.version, intended.to_dict("records")))
        if i % 3 == w % 3:
            db.compact()
    return out


@pytest.mark.slow
def test_processes_with_pickled_db_upsert_and_compact_concurrently(tmp_path):
    path = tmp_path / "db"
    db = ParquetDB(path, **TINY)
    r0 = db.upsert_prices(bars([("B", Y2020, 5.0)]))
    db.read_table()  # the instance has live tables, thread pools and caches; still picklable
    model = Model()
    model.add(r0.version, bars([("B", Y2020, 5.0)]))
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        results = list(pool.map(process_writer, [db] * 3, range(3)))
    for res in results:
        for v, recs in res:
            model.add(v, pd.DataFrame.from_records(recs))
    assert_same(db.read_table(), model.frame())
    for h in db.history()[1:]:
        assert_same(db.read_table(version=h["version"]), model.frame(h["version"]))
    assert_healthy(path)


# -- 2. deterministic races injected into compaction --------------------------------------


def _inject_during_compaction(store: FaultyStore, action) -> list:
    """Run ``action()`` once, in the middle of the next compaction through ``store`` (after
    it planned and read its inputs, before it writes its output and commits); returns the
    list that receives the action's result. The action works through another handle, whose
    store has no hook."""
    return store.on("writer", "prices/*.parquet", action).results


def _seed_through_a_hook(path: Path) -> tuple[ParquetDB, Model, FaultyStore]:
    store = FaultyStore(LocalStore(path, fsync=False))
    db, model = seed_db(path, store=store)
    return db, model, store


def test_upsert_of_same_keys_during_compaction_still_wins(tmp_path):
    path = tmp_path / "db"
    db, model, store = _seed_through_a_hook(path)
    other = ParquetDB(path, **{**TINY, "auto_compact": False})
    newer = bars((t, Y2020 + d * NS_DAY, 99.0) for t in ["A", "B", "C"] for d in (0, 3, 5))
    fired = _inject_during_compaction(store, lambda: other.upsert_prices(newer))
    r = db.compact()
    assert fired and r is not None
    model.add(fired[0].version, newer)
    assert_same(db.read_table(), model.frame())
    db.compact()
    assert_same(db.read_table(), model.frame())
    assert_healthy(path)


def test_level1_upsert_during_compaction_aborts_it_cleanly(tmp_path):
    path = tmp_path / "db"
    db, model, store = _seed_through_a_hook(path)
    other = ParquetDB(path, **{**TINY, "auto_compact": False})
    # a large batch of a ticker outside every level-1 range but inside the range the
    # compaction is about to write ([A..C]): it is published straight to level 1
    big = bars(("BB", Y2020 + d * NS_DAY, 55.0) for d in range(40))
    fired = _inject_during_compaction(store, lambda: other.upsert_prices(big))
    assert compaction.run(db._table("prices"), full=True) is None  # abandoned
    assert fired
    levels = {f.path: f.level for f in db._table("prices").refresh().files.values()}
    assert levels[fired[0].files[0]] == 1
    model.add(fired[0].version, big)
    assert_same(db.read_table(), model.frame())
    report = db.verify()
    assert report.ok and report.orphans == [], report  # an abandoned compaction cleans up
    assert_healthy(path)


def test_competing_compaction_wins_and_loser_leaves_nothing(tmp_path):
    path = tmp_path / "db"
    db, model, store = _seed_through_a_hook(path)
    other = ParquetDB(path, **{**TINY, "auto_compact": False})
    rival = _inject_during_compaction(store, other.compact)
    first = compaction.run(db._table("prices"), full=True)
    assert rival[0] is not None
    assert first is None  # lost the race: its inputs were removed
    assert_same(db.read_table(), model.frame())
    report = db.verify()
    assert report.ok and report.orphans == [], report


# -- 3. pinned snapshots, compaction and vacuum -------------------------------------------


def test_pinned_snapshot_vs_zero_retention_vacuum(tmp_path):
    """A snapshot open in this process reads exactly its version even through compactions
    and 0-retention vacuums (its files are kept while it is open); once it is closed, the
    vacuum takes them and reading that version by number raises VersionUnavailable, naming
    the oldest version still readable (never other data); the current version always reads
    exactly."""
    path = tmp_path / "db"
    db, model = seed_db(path)
    snap = db.snapshot()
    old_version = snap.version
    pinned = model.frame(snap.version)
    assert_same(snap.read_table(), pinned)
    rng = np.random.default_rng(5)
    for i in range(6):
        df, intended = random_batch(rng, 7, i, ["A", "B", "C", "D"])
        model.add(db.upsert_prices(df).version, intended)
        db.compact()
        if i % 2:
            db.vacuum(dry_run=False, retention=dt.timedelta(0))
        assert_same(db.read_table(), model.frame())
        for kwargs in ({}, {"tickers": ["A"]}, {"tickers": ["C", "B"], "columns": ["close"]}):
            got = snap.read_table(**kwargs)
            want = pinned
            if "tickers" in kwargs:
                want = pinned[pinned.ticker.isin(kwargs["tickers"])]
            assert_same(got, want)
    del snap, got
    assert db.vacuum(dry_run=False, retention=dt.timedelta(0)).files  # released: reclaimed
    with pytest.raises(VersionUnavailable) as err:
        db.read_table(version=old_version)
    assert err.value.oldest is not None and err.value.oldest > old_version
    assert_same(db.read_table(version=err.value.oldest), model.frame(err.value.oldest))
    assert_healthy(path)


def test_snapshot_reads_stay_exact_while_compacting_and_default_vacuum(tmp_path):
    path = tmp_path / "db"
    db, model = seed_db(path)
    snap = db.snapshot()
    pinned = model.frame(snap.version)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        try:
            d = ParquetDB(path, **TINY)
            rng = np.random.default_rng(9)
            for i in range(8):
                df, _ = random_batch(rng, 3, i, ["A", "B", "C"])
                d.upsert_prices(df)
                d.compact()
                d.vacuum(dry_run=False)  # default retention: nothing young is removed
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=churn)
    t.start()
    reads = 0
    while not stop.is_set() or reads < 3:
        assert_same(snap.read_table(), pinned)
        assert_same(snap.read_table(tickers=["B"]), pinned[pinned.ticker == "B"])
        reads += 1
    t.join()
    assert errors == []


def test_vacuum_never_deletes_a_file_committed_while_it_runs(tmp_path):
    path = tmp_path / "db"
    db, model, store = _seed_through_a_hook(path)
    other = ParquetDB(path, **{**TINY, "auto_compact": False})
    # a parallel-mode writer wrote its files two hours ago and publishes them now
    late = bars(("D", Y2020 + d * NS_DAY, 42.0) for d in range(5))
    files = other.write_files("prices", late)
    old = pd.Timestamp.now().timestamp() - 7200
    for f in files:
        os.utime(path / "prices" / f.path, (old, old))
    # when vacuum looks at a file's age, it has listed the folder and read the state: the
    # files look like old orphans; they are committed just then
    hook = store.on("stat", "prices/*.parquet", lambda: other.commit_files("prices", files))
    fired = hook.results
    db.vacuum(dry_run=False)  # default retention (1 h)
    assert hook.fired == 1 and ("list", "prices") in store.calls[: store.calls.index(hook.hits[0])]
    model.add(fired[0].version, late)
    report = db.verify()
    assert report.ok, report.problems
    assert_same(db.read_table(), model.frame())


# -- 4. reads: filters x layout x unusual tickers and timestamps ---------------------------

ODD_TICKERS = [  # symbols (printable, no whitespace) that sort around each other oddly
    "A",
    "A!B",
    "A#B",
    "!lead",
    "A!",
    "AA",
    "Ä",
    "a",
    "日本",
    "😀",
    "Z" * 300,
    "BRK.B",
    "B",
]

ODD_TIMES = [
    pd.Timestamp(s, tz="UTC").value
    for s in [
        "1899-12-31T23:59:59.999999999",
        "1900-01-01",
        "1969-12-31T23:59:59.999999999",
        "1970-01-01",
        "1970-01-01T00:00:00.000000001",
        "1999-12-31T23:59:59.999999999",
        "2000-01-01",
        "2001-12-31T23:00",
        "2002-01-01T00:00",
        "2023-12-31T22:30",
        "2024-01-01T04:00",
        "2024-02-29T12:00:00.123456789",
        "2024-03-10T07:00",
    ]
]


def _odd_history(path: Path) -> tuple[ParquetDB, Model]:
    """Level-0 and level-1 files with interleaving ticker ranges, built from timestamps
    given in several representations (naive, other time zones, ISO strings)."""
    opts = {**TINY, "target_file_rows": 24, "l0_max_files": 3, "checkpoint_interval": 5}
    db = ParquetDB(path, **opts)
    model = Model()
    rng = np.random.default_rng(11)
    for i in range(14):
        tks = list(rng.choice(ODD_TICKERS, size=int(rng.integers(1, 6)), replace=False))
        times = list(rng.choice(ODD_TIMES, size=int(rng.integers(1, 8)), replace=False))
        df = bars(
            (t, int(ts), 30.0 + i + k / 1000)
            for k, (t, ts) in enumerate([(t, ts) for t in tks for ts in times])
        )
        intended = df.copy()
        rep = i % 4
        if rep == 1:  # aware, in another zone
            df["timestamp"] = df["timestamp"].dt.tz_convert("Asia/Kolkata")
        elif rep == 2:  # naive (read as UTC)
            df["timestamp"] = df["timestamp"].dt.tz_localize(None)
        elif rep == 3:  # ISO strings with an offset
            df["timestamp"] = (
                df["timestamp"].dt.tz_convert("America/New_York").map(lambda x: x.isoformat())
            )
        model.add(db.upsert_prices(df).version, intended)
        if i == 6:
            db.compact()
    return db, model


def _bound(kind: int, ns: int) -> tuple[object, int]:
    """A read bound in one of several representations, and its meaning in ns."""
    ts = pd.Timestamp(ns, tz="UTC")
    if kind == 0:
        return ts, ns
    if kind == 1:
        local = ts.tz_convert("Asia/Tokyo")
        if ns % 1000 == 0:  # a plain datetime when it can hold the value exactly
            return local.to_pydatetime(), ns
        return local, ns
    return ts.isoformat(), ns


@pytest.mark.slow
def test_filtered_reads_match_model_over_mixed_layout(tmp_path):
    db, model = _odd_history(tmp_path / "db")
    st_ = db._table("prices").refresh()
    levels = {f.level for f in st_.files.values()}
    assert levels == {0, 1}, levels  # the reads below cross both levels
    full = model.frame()
    assert_same(db.read_table(), full)
    assert sorted(db.tickers()) == sorted(set(full.ticker))
    wm = db.watermarks()
    assert {t: v.value for t, v in wm.items()} == {
        t: int(g.timestamp.astype("int64").max())
        for t, g in full.assign(timestamp=full.timestamp.astype("int64")).groupby("ticker")
    }
    bounds = sorted(set(ODD_TIMES) | {t + d for t in ODD_TIMES for d in (-1, 1)})
    optional_cols = ["open", "high", "low", "close", "volume", "adj_close"]

    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        tickers=st.none() | st.lists(st.sampled_from([*ODD_TICKERS, "nope", "A "]), max_size=5),
        start=st.none() | st.tuples(st.integers(0, 2), st.sampled_from(bounds)),
        end=st.none() | st.tuples(st.integers(0, 2), st.sampled_from(bounds)),
        date_end=st.none() | st.sampled_from(["1969-12-31", "2001-12-31", "2023-12-31"]),
        columns=st.none() | st.lists(st.sampled_from(optional_cols), unique=True, max_size=3),
    )
    def check(tickers, start, end, date_end, columns):
        s_arg, s_ns = (None, None) if start is None else _bound(*start)
        e_arg, e_ns = (None, None) if end is None else _bound(*end)
        if date_end is not None:  # a bare date as end: the whole day is included
            e_arg = date_end
            e_ns = pd.Timestamp(date_end, tz="UTC").value + NS_DAY - 1
        if s_ns is not None and e_ns is not None and s_ns > e_ns:
            with pytest.raises(ValidationError):
                db.read_table(tickers=tickers, start=s_arg, end=e_arg)
            return
        got = db.read_table(tickers=tickers, start=s_arg, end=e_arg, columns=columns)
        want = full
        ts = want.timestamp.astype("int64")
        mask = np.ones(len(want), dtype=bool)
        if tickers is not None:
            mask &= want.ticker.isin([t.strip().upper() for t in tickers]).to_numpy()
        if s_ns is not None:
            mask &= (ts >= s_ns).to_numpy()
        if e_ns is not None:
            mask &= (ts <= e_ns).to_numpy()
        want = want[mask]
        optional = ["adj_close", "vwap", "trade_count"]  # null in these batches
        expected_cols = (
            [*PRICE_COLS, *optional]
            if columns is None
            else [c for c in [*PRICE_COLS, *optional] if c in {"ticker", "timestamp", *columns}]
        )
        assert list(got.columns) == expected_cols
        assert_same(got, want, [c for c in expected_cols if c not in optional])
        arrow = db.read_arrow(tickers=tickers, start=s_arg, end=e_arg, columns=columns)
        assert arrow.num_rows == len(want)
        assert arrow.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")

    check()


@pytest.mark.slow
def test_every_version_of_a_long_random_history_and_checkpoint_time_travel(tmp_path):
    path = tmp_path / "db"
    opts = {**TINY, "checkpoint_interval": 4, "l0_max_files": 3}
    db = ParquetDB(path, **opts)
    model = Model()
    rng = np.random.default_rng(2024)
    tickers = ["A", "AB", "B", "Ä", "a"]
    for i in range(45):
        op = rng.random()
        if op < 0.75:
            df, intended = random_batch(rng, int(rng.integers(0, 5)), i, tickers)
            model.add(db.upsert_prices(df).version, intended)
        elif op < 0.9:
            db.compact()
        else:
            db = ParquetDB(path, **opts)  # reopen
    fresh = ParquetDB(path, **opts)
    newest = fresh.version
    assert newest > 45
    for v in range(1, newest + 1):
        assert_same(fresh.read_table(version=v), model.frame(v))
    # prune every entry older than a checkpoint: newer versions still read exactly,
    # older ones raise a clear error or (at an older checkpoint) read exactly
    log_dir = path / "prices" / "_log"
    cps = sorted(int(p.name.split(".")[0]) for p in log_dir.glob("*.checkpoint.json"))
    cut = cps[len(cps) // 2]
    for v in range(cut):
        (log_dir / entry_name(v)).unlink()
    pruned = ParquetDB(path, **opts)
    assert_same(pruned.read_table(), model.frame())
    for v in range(cut, newest + 1):
        assert_same(pruned.read_table(version=v), model.frame(v))
    for v in range(cut):
        try:
            got = pruned.read_table(version=v)
        except StorageError:
            continue
        assert v in cps
        assert_same(got, model.frame(v))
    # and the pruned database keeps taking commits
    df, intended = random_batch(rng, 9, 99, tickers)
    model.add(pruned.upsert_prices(df).version, intended)
    pruned.compact()
    assert_same(ParquetDB(path, **opts).read_table(), model.frame())


def test_actions_three_column_key_under_compaction(tmp_path):
    path = tmp_path / "db"
    db = ParquetDB(path, **TINY)
    model = Model(("ticker", "timestamp", "kind"))
    rng = np.random.default_rng(3)
    for i in range(16):
        n = int(rng.integers(1, 10))
        recs = []
        for j in range(n):
            recs.append(
                {
                    "ticker": ["X", "Y", "Z"][int(rng.integers(0, 3))],
                    "timestamp": pd.Timestamp(Y2020 + int(rng.integers(0, 6)) * NS_DAY, tz="UTC"),
                    "kind": ["dividend", "split"][int(rng.integers(0, 2))],
                    "value": 0.5 + i + j / 1000,
                }
            )
        df = pd.DataFrame(recs)
        model.add(db.upsert("actions", df).version, df)
        if i % 5 == 4:
            db.compact("actions")
    got = db.read_table("actions")
    want = model.frame()
    assert got.columns.tolist() == ["ticker", "timestamp", "kind", "value"]
    assert_same(got, want, ["ticker", "timestamp", "kind", "value"])
    for h in db.history("actions")[1:]:
        assert_same(
            db.read_table("actions", version=h["version"]),
            model.frame(h["version"]),
            ["ticker", "timestamp", "kind", "value"],
        )
    assert_healthy(path, "actions")
    assert db.table_version("prices") == -1  # the other table is untouched


# -- 5. repair of a damaged compacted file ---------------------------------------------------


def _db_with_compacted_l0(path: Path) -> tuple[ParquetDB, Model, Path]:
    """A level-0 compaction that left a dominant newer file out: the compacted file holds
    rows older *and* newer than that file (seq 2 and 4 around the big file's 3)."""
    db = ParquetDB(path, fsync=False, l0_max_files=2, period="none")  # one level-1 slot
    model = Model()
    big = bars(
        ("M", pd.Timestamp("2000-01-01", tz="UTC").value + d * NS_DAY, 5.0) for d in range(3000)
    )
    model.add(db.upsert_prices(big).version, big)  # level 1
    a0 = pd.Timestamp("2024-01-01", tz="UTC").value
    for rows in (
        [("A", a0, 20.0)],
        [("A", a0 + d * NS_DAY, 30.0) for d in range(100)],
        [("A", a0 + 50 * NS_DAY, 40.0)],
    ):
        df = bars(rows)
        model.add(db.upsert_prices(df).version, df)
    assert db.wait_for_compaction(timeout=60)  # automatic compaction runs in the background
    state = db._table("prices").refresh()
    compacted = [f for f in state.files.values() if f.seq_col]
    assert len(compacted) == 1 and compacted[0].level == 0
    assert_same(db.read_table(), model.frame())
    return db, model, path / "prices" / compacted[0].path


def test_repair_of_unsorted_compacted_file_keeps_commit_order(tmp_path):
    db, model, p = _db_with_compacted_l0(tmp_path / "db")
    t = pq.read_table(p)
    pq.write_table(t.take(pa.array(np.arange(t.num_rows)[::-1])), p)  # same rows, reversed
    assert {x.kind for x in db.verify().problems} == {"unsorted"}
    db.repair(dry_run=False)
    assert db.verify().ok
    assert_same(db.read_table(), model.frame())


def test_repair_of_compacted_file_with_duplicate_rows_keeps_commit_order(tmp_path):
    db, model, p = _db_with_compacted_l0(tmp_path / "db")
    t = pq.read_table(p)
    pq.write_table(pa.concat_tables([t, t.slice(t.num_rows - 1)]), p)  # one duplicated row
    kinds = {x.kind for x in db.verify().problems}
    assert "duplicate_keys" in kinds
    db.repair(dry_run=False)
    assert db.verify().ok
    assert_same(db.read_table(), model.frame())


def test_repair_drops_unreadable_compacted_file_and_reports_rows(tmp_path):
    db, _model, p = _db_with_compacted_l0(tmp_path / "db")
    rows = pq.read_metadata(p).num_rows
    p.write_bytes(p.read_bytes()[:40])
    assert db.repair(dry_run=True).actions[0]["rows_lost"] == rows
    r = db.repair(dry_run=False)
    assert r.actions[0]["action"] == "drop" and r.actions[0]["rows_lost"] == rows
    assert db.verify().ok
    df = db.read_table(tickers="A")
    # only the big file's rows of A remain: all 30.0 (the 20 and 40 rows were lost)
    assert df.close.tolist() == [30.0] * 100


# -- 6. parallel-mode commits ------------------------------------------------------------------


def test_commit_files_with_overlapping_files_is_deterministic(tmp_path):
    db = ParquetDB(tmp_path / "db", fsync=False, auto_compact=False)
    ts = [Y2020 + d * NS_DAY for d in range(4)]
    f1 = db.write_files("prices", bars(("A", t, 11.0) for t in ts))
    f2 = db.write_files("prices", bars(("A", t, 12.0) for t in ts))
    try:
        db.commit_files("prices", [*f1, *f2])
    except (ValidationError, StorageError):
        return  # rejecting such a commit would be a fine fix
    # otherwise: like rows of one batch, the later file in the list must win, stably
    before = db.read_table().close.tolist()
    db.compact()
    after = db.read_table().close.tolist()
    assert before == after == [12.0] * 4


# -- 7. validation: everything that cannot be stored raises ValidationError -------------------

_BASE = {"ticker": ["A"], "open": [2.0], "high": [3.0], "low": [1.0], "close": [2.0]}


def _bad_inputs() -> dict[str, object]:
    def frame(ts, ticker=None):
        d = {**_BASE, "volume": [1.0], "timestamp": ts}
        if ticker is not None:
            d["ticker"] = pd.Series([ticker], dtype=object)
        return pd.DataFrame(d)

    def arrow(ts_array):
        return pa.table(
            {**{k: v for k, v in _BASE.items()}, "volume": [1.0], "timestamp": ts_array}
        )

    return {
        "string_year_3000": frame(["3000-01-01"]),
        "date_object_year_3000": frame([dt.date(3000, 1, 1)]),
        "datetime64_s_year_1500": frame(np.array(["1500-01-01"], dtype="datetime64[s]")),
        "aware_s_year_1500": frame(
            pd.Series(np.array(["1500-06-01"], dtype="datetime64[s]")).dt.tz_localize("UTC")
        ),
        "arrow_timestamp_s_year_3000": arrow(
            pa.array([np.datetime64("3000-01-01", "s")], pa.timestamp("s"))
        ),
        "arrow_date32_year_3000": arrow(pa.array([dt.date(3000, 1, 1)])),
        "ticker_lone_surrogate": frame(["2024-01-01"], ticker="A\ud800"),
    }


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_unstorable_values_raise_validation_error(tmp_path, case):
    path = tmp_path / "db"
    db = ParquetDB(path, fsync=False)
    db.upsert_prices(bars([("A", Y2020, 2.0)]))
    before = tree_snapshot(path)
    with pytest.raises(ValidationError) as info:
        db.upsert_prices(_bad_inputs()[case])
    assert info.value.column in ("timestamp", "ticker")
    assert tree_snapshot(path) == before


def test_storable_extremes_round_trip(tmp_path):
    # max_future=None: the engine stores the whole ns range once bars in the future are
    # allowed (by default they are refused, tickvault.future_bars)
    db = ParquetDB(
        tmp_path / "db", fsync=False, row_group_years=1, min_row_group_rows=2, max_future=None
    )
    edge = [
        pd.Timestamp("1677-09-21T00:12:43.145224193", tz="UTC").value,
        pd.Timestamp("1969-12-31T23:59:59.999999999", tz="UTC").value,
        0,
        1,
        pd.Timestamp("2262-04-11T23:47:16.854775807", tz="UTC").value,
    ]
    df = bars(("Q", t, 3.0) for t in edge)
    db.upsert_prices(df)
    db.upsert_prices(bars([("Q", edge[1], 4.0)]))
    db.compact()
    got = db.read_table()
    assert got.timestamp.astype("int64").tolist() == edge
    assert got.close.tolist() == [3.0, 4.0, 3.0, 3.0, 3.0]
    assert db.watermarks()["Q"].value == edge[-1]
    one = db.read_table(start=pd.Timestamp(edge[1], tz="UTC"), end=pd.Timestamp(1, tz="UTC"))
    assert one.timestamp.astype("int64").tolist() == [edge[1], 0, 1]


def test_errors_are_tickvault_errors_for_bad_reads(tmp_path):
    db = ParquetDB(tmp_path / "db", fsync=False)
    db.upsert_prices(bars([("A", Y2020, 2.0)]))
    with pytest.raises(StorageError):
        db.read_table(version=99)
    with pytest.raises(ValidationError):
        db.read_table(columns=["nope"])
    with pytest.raises(ValidationError):
        db.read_table(start="not a date")
    assert isinstance(ValidationError("x"), TickvaultError)
