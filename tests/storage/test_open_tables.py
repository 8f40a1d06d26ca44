"""Open tables: pyarrow datasets, DuckDB relations and Polars frames over a pinned version
return exactly the rows of ``read_arrow`` at that version, whatever mix of compacted and
overlapping files the table holds; filters skip files and row groups by statistics."""

from __future__ import annotations

import gc
import tempfile

import duckdb
import hypothesis.strategies as st
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from helpers.bars import arrow_bars, make_bars
from tickvault import ParquetDB
from tickvault.errors import VersionUnavailable
from tickvault.schema import get_schema
from tickvault.storage.readers import open_plan

KEY = ["ticker", "timestamp"]


def _sorted(t: pa.Table, key: list[str] = KEY) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in key])


def check_all_readers(db: ParquetDB, table: str = "prices", version: int | None = None) -> None:
    """Every open reader equals read_arrow at ``version`` (same rows, columns, types)."""
    key = list(get_schema(table).key)
    expected = _sorted(db.read_arrow(table, version=version), key)
    got = db.to_pyarrow_dataset(table, version=version).to_table()
    assert got.schema == expected.schema
    assert _sorted(got, key).equals(expected)
    assert "_tv_seq" not in got.column_names

    con = duckdb.connect()
    order = ", ".join(key)
    want = con.from_arrow(expected).order(order).to_arrow_table()
    rel = db.to_duckdb(table, version=version, connection=con)
    assert rel.columns == expected.column_names
    assert rel.order(order).to_arrow_table().equals(want)

    frame = db.to_polars(table, version=version).collect()
    assert frame.sort(key).equals(pl.from_arrow(expected))

    with tempfile.TemporaryDirectory() as out:
        db.export(out, table=table, version=version)
        assert _sorted(pq.read_table(out), key).equals(expected)


def test_overlapping_updates_on_compacted_history(tmp_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB", "CCC"], "2020-01-01", 300))
    db.compact()
    for k in range(6):  # daily updates that revise the last five bars (a lookback)
        db.upsert_prices(make_bars(["AAA", "BBB"], f"2021-02-{k + 1:02d}", 5, salt=k + 1))
    db.upsert_prices(make_bars("DDD", "2019-01-01", 800, salt=9))  # a ticker of its own
    assert len(db.snapshot().files) > 3
    for v in range(db.version + 1):
        check_all_readers(db, version=v)


def test_plan_sends_non_overlapping_files_whole(tmp_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2020-01-01", 200))
    db.compact()
    db.upsert_prices(make_bars(["AAA", "BBB"], "2021-01-01", 1))  # a new day: no overlap
    p = open_plan.plan(db.snapshot())
    assert len(p.whole) == len(db.snapshot().files) and not p.partial and p.merged is None
    db.upsert_prices(make_bars(["AAA"], "2020-06-01", 3, salt=5))  # revises three bars
    p = open_plan.plan(db.snapshot())
    assert [h.tickers for _, h in p.partial] == [frozenset({"AAA"})]
    assert p.merged is not None and p.merged.num_rows == 3  # the two copies of three bars
    check_all_readers(db)


def test_actions_table_key_includes_kind(tmp_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    acts = {
        "ticker": ["AAA", "AAA", "BBB"],
        "timestamp": ["2024-01-02", "2024-01-02", "2024-01-03"],
        "kind": ["dividend", "split", "dividend"],
        "value": [0.5, 2.0, 0.1],
    }
    db.upsert("actions", pd.DataFrame(acts))
    db.upsert("actions", pd.DataFrame({**acts, "value": [0.6, 3.0, 0.2]}))
    check_all_readers(db, "actions")
    assert sorted(db.to_polars("actions").collect()["value"].to_list()) == [0.2, 0.6, 3.0]


def test_empty_and_missing_tables(tmp_path):
    db = ParquetDB(tmp_path / "db")
    assert db.to_pyarrow_dataset().to_table().num_rows == 0
    assert db.to_duckdb().fetchall() == []
    assert db.to_polars().collect().height == 0


def test_object_store_in_memory(tmp_path):
    db = ParquetDB("memory://open-tables", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2020-01-01", 100))
    db.compact()
    db.upsert_prices(make_bars(["AAA"], "2020-05-01", 10, salt=3))
    check_all_readers(db)


def test_filters_skip_files_and_row_groups(tmp_path):
    """A ticker filter opens only the files whose log statistics hold that ticker, and
    reads only its row groups (one ticker-major layout for all time: period="none")."""
    db = ParquetDB(tmp_path / "db", auto_compact=False, target_file_rows=2000, period="none")
    tickers = [f"T{i:02d}" for i in range(20)]
    db.upsert_prices(make_bars(tickers, "2015-01-01", 1000))
    db.compact()
    files = db.snapshot().files
    assert len(files) >= 5
    dataset = db.to_pyarrow_dataset()
    since = pa.scalar(1_500_000_000 * 10**9, pa.timestamp("ns", tz="UTC"))  # 2017-07-14
    flt = (ds.field("ticker") == "T07") & (ds.field("timestamp") >= since)
    fragments = list(dataset.get_fragments(filter=flt))
    assert len(fragments) == 1  # skipped by the log's statistics, no footer opened
    row_groups = [rg for f in fragments for rg in f.split_by_row_group(flt)]
    total = sum(f.num_row_groups for f in dataset.get_fragments())
    assert 1 <= len(row_groups) <= 2 < total
    got = dataset.to_table(filter=flt)
    assert got.equals(db.read_arrow(tickers="T07", start=since.as_py()))


def test_filters_skip_files_in_a_bucket(tmp_path):
    """Through the store (memory://), DuckDB's filter reads one file, not all of them."""
    db = ParquetDB(
        "memory://open-pushdown", auto_compact=False, target_file_rows=2000, period="none"
    )
    db.upsert_prices(make_bars([f"T{i:02d}" for i in range(20)], "2015-01-01", 1000))
    db.compact()
    n_files = len(db.snapshot().files)
    assert db.wait_for_compaction(timeout=60)  # the background reclaim pass is done
    rel = db.to_duckdb()
    store = db.store
    before = sum(store.requests.values())  # type: ignore[attr-defined]
    got = rel.filter("ticker = 'T07'").order("timestamp").to_arrow_table()
    requests = sum(store.requests.values()) - before  # type: ignore[attr-defined]
    assert got.num_rows == 1000
    assert requests <= 3 < n_files  # one file's footer and row groups


def test_dataset_pins_its_files_against_vacuum(tmp_path):
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars(["AAA"], "2020-01-01", 50))
    db.upsert_prices(make_bars(["AAA"], "2020-02-01", 50, salt=1))
    old = db.version
    dataset = db.to_pyarrow_dataset(version=old)
    db.compact()
    report = db.vacuum(dry_run=False, retention=0)
    assert not report.files  # the dataset's files are pinned
    assert dataset.to_table().num_rows == db.read_arrow(version=old).num_rows
    del dataset
    gc.collect()
    assert db.vacuum(dry_run=False, retention=0).files  # released with the dataset


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("upsert"),
                st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=3),
                st.integers(0, 30),
                st.integers(1, 12),
            ),
            st.tuples(st.just("compact"), st.none(), st.none(), st.none()),
        ),
        min_size=1,
        max_size=7,
    )
)
def test_readers_equal_read_arrow_at_every_version(tmp_path_factory, steps):
    db = ParquetDB(tmp_path_factory.mktemp("db") / "db", auto_compact=False)
    salt = 0
    for op, tickers, first, n in steps:
        if op == "compact":
            db.compact()
            continue
        salt += 1
        names = [t for t in sorted(set(tickers)) for _ in range(n)]
        days = [19_000 + first + i for _ in sorted(set(tickers)) for i in range(n)]
        db.upsert_prices(arrow_bars(names, days, close=float(salt)))
    for v in range(db.version + 1):
        check_all_readers(db, version=v)


def test_a_reclaimed_version_is_unavailable_to_every_engine_and_export(tmp_path):
    """An old version whose files were reclaimed is VersionUnavailable naming the oldest
    readable version — for the engines and export as for read_table — never a raw
    FileNotFoundError or IOException from the engine (the CLI maps it to exit 3)."""
    db = ParquetDB(tmp_path / "db")
    v = db.upsert_prices(make_bars("AAA", "2024-01-02", 5)).version
    db.delete("prices", tickers=["AAA"], start="2024-01-03", end="2024-01-03", dry_run=False)
    db.vacuum(dry_run=False, retention=0)
    calls = {
        "read_table": lambda: db.read_table(version=v),
        "to_pyarrow_dataset": lambda: db.to_pyarrow_dataset(version=v).to_table(),
        "to_duckdb": lambda: db.to_duckdb(version=v).fetchall(),
        "to_polars": lambda: db.to_polars(version=v).collect(),
        "export": lambda: db.export(tmp_path / "out", version=v),
    }
    for name, call in calls.items():
        with pytest.raises(
            VersionUnavailable, match=f"oldest version still readable is {db.version}"
        ):
            call()
        assert not (tmp_path / "out").exists(), name
    check_all_readers(db, version=db.version)  # the newest version reads as ever


def test_missing_engine_names_the_pip_command(tmp_path):
    from tickvault.errors import MissingDependency
    from tickvault.storage.readers.engines import optional

    with pytest.raises(MissingDependency, match=r"pip install 'tickvault\[nope\]'"):
        optional("tickvault_no_such_engine", "nope")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from("ABC"), st.integers(0, 40), st.integers(0, 10)),
            min_size=1,
            max_size=3,
            unique_by=lambda s: s[0],
        ),
        min_size=1,
        max_size=6,
    )
)
def test_hot_regions_hold_every_shared_time(files_spans):
    """Wherever two files' spans of one ticker intersect, both files' hot parts hold it."""
    from tickvault.storage.core.state import FileInfo

    files = []
    for k, spans in enumerate(files_spans):
        spans = sorted(spans)
        files.append(
            FileInfo(
                path=f"f{k}",
                rows=len(spans),
                bytes=0,
                seq=k,
                seq_col=False,
                level=0,
                tickers=[t for t, _, _ in spans],
                min_ts=[lo * 1000 for _, lo, _ in spans],
                max_ts=[(lo + n) * 1000 for _, lo, n in spans],
                ticker_rows=[1 for _ in spans],
            )
        )
    hot = open_plan.hot_regions(files)
    for x in files:
        for y in files:
            if x is y:
                continue
            for t, lo, hi in zip(x.tickers, x.min_ts, x.max_ts, strict=True):
                if t not in y.tickers:
                    continue
                i = y.tickers.index(t)
                a, b = max(lo, y.min_ts[i]), min(hi, y.max_ts[i])
                if a > b:
                    continue
                h = hot[x.path]
                assert h.tickers is None or t in h.tickers
                assert h.start <= a and b < h.stop


def test_a_folder_named_like_a_glob_pattern(tmp_path):
    db = ParquetDB(tmp_path / "db[1]*", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB"], "2020-01-01", 50))
    db.compact()
    db.upsert_prices(make_bars(["AAA"], "2020-02-03", 5, salt=2))
    check_all_readers(db)


def test_narrowed_engines_hold_exactly_the_selected_rows(tmp_path):
    """to_duckdb/to_polars with tickers/start/end hold what read_arrow returns for the same
    selection — overlapping files resolved newest-wins, every version, names normalised —
    and ``version`` still pins."""
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars(["AAA", "BBB", "CCC"], "2020-01-01", 300))
    db.compact()
    db.upsert_prices(make_bars(["AAA", "BBB"], "2020-06-01", 5, salt=3))  # revises AAA, BBB
    v = db.version
    db.upsert_prices(make_bars(["AAA"], "2020-06-02", 1, salt=7))
    selections = [
        {"tickers": "aaa"},
        {"tickers": ["BBB", "CCC"], "start": "2020-05-30"},
        {"start": "2020-06-01", "end": "2020-06-03"},
        {"tickers": "AAA", "end": "2020-06-02"},
    ]
    con = duckdb.connect()
    for version in (v, None):
        for sel in selections:
            want = _sorted(db.read_arrow(version=version, **sel))
            assert want.num_rows > 0
            rel = db.to_duckdb(version=version, connection=con, **sel)
            assert rel.columns == want.column_names
            through = con.from_arrow(want).order("ticker, timestamp").to_arrow_table()
            assert rel.order("ticker, timestamp").to_arrow_table().equals(through)
            frame = db.to_polars(version=version, **sel).collect()
            assert frame.sort(KEY).equals(pl.from_arrow(want))
    # the selection is read when the relation is made: a later commit changes nothing
    rel = db.to_duckdb(tickers="AAA")
    before = rel.order("timestamp").to_arrow_table()
    db.upsert_prices(make_bars(["AAA"], "2020-06-03", 2, salt=11))
    assert rel.order("timestamp").to_arrow_table().equals(before)
    assert not db.to_duckdb(tickers="AAA").order("timestamp").to_arrow_table().equals(before)


def test_narrowed_engines_reject_bad_input_like_read_arrow(tmp_path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["AAA"], "2020-01-01", 10))
    with pytest.raises(ValueError, match="start"):
        db.to_duckdb(start="2020-13-45")
    with pytest.raises(ValueError, match="start"):
        db.to_polars(start="2021-01-01", end="2020-01-01")
    assert db.to_duckdb(tickers="ZZZ").fetchall() == []
