"""Review of the write/read fast paths (runs, numpy sorted check, searchsorted row groups,
native output stream, parallel writes with cleanup, tail-only single-ticker merge).

The first group pins defects a review found (all fixed); the others pin edge cases that
were checked and found correct."""

from __future__ import annotations

import errno
import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import arrow_bars
from tickvault import ParquetDB
from tickvault.schema import (
    ACTIONS,
    PRICES,
    TIMESTAMP_TYPE,
    Column,
    TableSchema,
    column_runs,
    is_sorted_unique,
)
from tickvault.storage import LocalStore
from tickvault.storage import files as files_mod
from tickvault.storage import table as table_mod
from tickvault.storage.files import SEQ_COLUMN, WriteOptions, _row_groups, split_by_rows
from tickvault.storage.reads import _int64
from tickvault.storage.reads import merge_one_series as _merge_one_series
from tickvault.storage.state import FileInfo

DAY = 86_400 * 10**9


def _files(db_dir) -> list[str]:
    return sorted(p.name for p in (db_dir / "prices").iterdir() if p.is_file())


# =========================================================================================
# Defects found in review (fixed)
# =========================================================================================

TICKS = TableSchema(
    name="ticks",
    columns=(
        Column("ticker", pa.string(), example="'AAPL'"),
        Column("timestamp", TIMESTAMP_TYPE, example="'2024-03-01'"),
        Column("trade_id", pa.uint64(), example="7"),
        Column("price", pa.float64(), example="1.5"),
    ),
    key=("ticker", "timestamp", "trade_id"),
)


@pytest.mark.parametrize("ids", [[2**63 + 1, 5], [5, 2**63 + 1]])
def test_uint64_key_above_int64_max_is_sorted_correctly(ids):
    # schema.py is_sorted_unique: the numpy path casts every integer key column to int64
    # (safe cast) -> ArrowInvalid for uint64 values >= 2**63. The row-by-row path it
    # replaced compared them fine.
    t = pa.table(
        {
            "ticker": ["A", "A"],
            "timestamp": pa.array([0, 0], pa.int64()).cast(TIMESTAMP_TYPE),
            "trade_id": pa.array(ids, pa.uint64()),
            "price": [1.0, 2.0],
        }
    )
    assert is_sorted_unique(t, TICKS.key) is (ids[0] < ids[1])
    clean = TICKS.validate(t)
    assert clean.column("trade_id").to_pylist() == sorted(ids)


def test_null_series_value_is_not_sorted_by_the_runs_check():
    # schema.py is_sorted_unique, runs path: comparing run values gives null next to a
    # null run and pc.any skips nulls, so a null ticker in the middle counts as sorted.
    # Arrow sorts nulls last (keep_highest), so the claim is wrong. Reachable only with a
    # custom schema whose series column is nullable (register_table allows it).
    t = arrow_bars(["A", "B", "C"], [0, 0, 0]).set_column(
        0, "ticker", pa.array(["A", None, "B"], pa.string())
    )
    assert not is_sorted_unique(t, PRICES.key, column_runs(t, "ticker"))


class _DiskFullWriter(pq.ParquetWriter):
    def write_table(self, table, row_group_size=None):
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["writer_fails", "disk_full"])
@pytest.mark.parametrize("target", [1_000_000, 500])  # one file / parallel files
def test_failed_file_write_leaves_no_tmp_file(tmp_path, monkeypatch, failure, target):
    # a ParquetWriter that fails (being created, or while writing) must not leave
    # ``.part-*.tmp`` in the table folder, on the one-file and the parallel path
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=target)
    (tmp_path / "db" / "prices").mkdir(parents=True)
    if failure == "disk_full":
        monkeypatch.setattr(files_mod.pq, "ParquetWriter", _DiskFullWriter)
    else:
        real = files_mod.pq.ParquetWriter

        def broken(*args, **kwargs):
            return real(*args, **{**kwargs, "compression": "no-such-codec"})

        monkeypatch.setattr(files_mod.pq, "ParquetWriter", broken)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises((OSError, pa.ArrowException)):
        db.upsert_prices(big)
    assert _files(tmp_path / "db") == []


def test_unknown_compression_is_rejected_when_the_database_is_opened(tmp_path):
    from tickvault.errors import ConfigError

    with pytest.raises(ConfigError, match="compression='no-such-codec'"):
        ParquetDB(tmp_path / "db", compression="no-such-codec")
    with pytest.raises(ConfigError, match="target_file_rows=0"):
        ParquetDB(tmp_path / "db", target_file_rows=0)
    with pytest.raises(ConfigError, match="fsync"):
        ParquetDB(tmp_path / "db", fsync="yes")


def test_interrupt_while_waiting_for_parallel_writes_leaves_no_files(tmp_path, monkeypatch):
    # table.py write_files: cleanup only covers exceptions raised *inside* a worker. A
    # KeyboardInterrupt (or any BaseException) in the calling thread while it waits for
    # the pool leaves every finished file behind as an orphan .parquet.
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=500)
    db.upsert_prices(arrow_bars(["A"], [0]))
    before = _files(tmp_path / "db")

    class InterruptedPool(ThreadPoolExecutor):
        def __exit__(self, *exc):
            super().__exit__(*exc)  # all pieces written by now
            raise KeyboardInterrupt  # Ctrl-C arrives while the caller waits

    monkeypatch.setattr(table_mod, "ThreadPoolExecutor", InterruptedPool)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises(KeyboardInterrupt):
        db.upsert_prices(big)
    monkeypatch.undo()
    assert _files(tmp_path / "db") == before


# =========================================================================================
# Edge cases checked: correct
# =========================================================================================


def test_worker_raising_base_exception_discards_written_files(tmp_path, monkeypatch):
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=500)
    db.upsert_prices(arrow_bars(["A"], [0]))
    before = _files(tmp_path / "db")
    real = table_mod.write_data_file
    calls = itertools.count()

    def flaky(*args, **kwargs):
        if next(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(table_mod, "write_data_file", flaky)
    big = arrow_bars([f"T{i:02d}" for i in range(8) for _ in range(300)], list(range(300)) * 8)
    with pytest.raises(KeyboardInterrupt):
        db.upsert_prices(big)
    assert _files(tmp_path / "db") == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_sink_closed_when_parquet_writer_construction_fails(tmp_path):
    opts = WriteOptions(compression="no-such-codec", fsync=False)
    fds = len(os.listdir("/proc/self/fd"))
    t = PRICES.validate(arrow_bars(["A", "B", "C"] * 4, [0] * 4 + [1] * 4 + [2] * 4))
    for _ in range(5):
        with pytest.raises(pa.ArrowException):
            files_mod.write_data_file(LocalStore(tmp_path), "prices", t, PRICES, opts)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert list((tmp_path / "prices").iterdir()) == []  # no temporary file left


def _chunked(t: pa.Table, cuts: list[int]) -> pa.Table:
    bounds = [0, *cuts, t.num_rows]
    return pa.concat_tables([t.slice(a, b - a) for a, b in itertools.pairwise(bounds)])


@pytest.mark.parametrize("shape", ["plain", "chunked", "sliced", "pandas"])
@pytest.mark.parametrize("schema", [PRICES, ACTIONS])
def test_validate_runs_on_chunked_sliced_and_noncontiguous_input(shape, schema):
    rng = np.random.default_rng(3)
    n = 41
    tk = rng.choice(["A", "B", "BB", "C"], n).tolist()  # runs not contiguous
    days = rng.integers(-5, 5, n).tolist()  # before and after 1970, duplicates
    kinds = rng.choice(["dividend", "split"], n).tolist()
    vals = rng.uniform(1, 5, n).round(3).tolist()
    if schema is PRICES:
        t = arrow_bars(tk, days, vals)
        keyof = list(zip(tk, days, strict=True))
    else:
        t = pa.table(
            {
                "ticker": tk,
                "timestamp": pa.array(np.asarray(days) * DAY).cast(TIMESTAMP_TYPE),
                "kind": kinds,
                "value": vals,
            }
        )
        keyof = list(zip(tk, days, kinds, strict=True))
    rows = list(range(n))
    if shape == "chunked":
        t = _chunked(t, [1, 7, 20])
    elif shape == "sliced":
        t, rows = t.slice(3, 30), rows[3:33]
    elif shape == "pandas":
        t = t.to_pandas()
    clean, runs = schema.validate_runs(t)
    model = {keyof[i]: vals[i] for i in rows}  # last occurrence wins
    want = sorted(model.items())
    vcol = "close" if schema is PRICES else "value"
    got_keys = list(
        zip(
            clean.column("ticker").to_pylist(),
            (clean.column("timestamp").cast(pa.int64()).to_numpy() // DAY).tolist(),
            *([clean.column("kind").to_pylist()] if schema is ACTIONS else []),
            strict=True,
        )
    )
    assert got_keys == [k for k, _ in want]
    assert clean.column(vcol).to_pylist() == [v for _, v in want]
    ref = column_runs(clean, "ticker")
    assert runs.values.to_pylist() == ref.values.to_pylist()
    assert runs.starts.tolist() == ref.starts.tolist()
    assert runs.ends.tolist() == ref.ends.tolist()


def test_sorted_check_small_and_degenerate_tables():
    one = arrow_bars(["A"], [0])
    empty = one.slice(0, 0)
    assert is_sorted_unique(empty, PRICES.key, column_runs(empty, "ticker"))
    assert is_sorted_unique(one, PRICES.key, column_runs(one, "ticker"))
    same = arrow_bars(["A", "A"], [1, 1])
    assert not is_sorted_unique(same, PRICES.key, column_runs(same, "ticker"))
    back = _chunked(arrow_bars(["A", "B", "A"], [1, 2, 3]), [1, 2])
    assert not is_sorted_unique(back, PRICES.key, column_runs(back, "ticker"))
    assert PRICES.validate_runs(empty)[1].starts.size == 0


def test_blank_kind_in_actions_reports_the_first_row():
    t = pa.table(
        {
            "ticker": ["B", "A", "A", "B"],
            "timestamp": pa.array([0, 0, DAY, DAY]).cast(TIMESTAMP_TYPE),
            "kind": ["split", "dividend", " ", " "],
            "value": [1.0, 1.0, 1.0, 1.0],
        }
    )
    with pytest.raises(Exception, match=r"'kind' has 2 empty values, first at row 2 \(A, "):
        ACTIONS.validate(t)


def test_int64_view_of_sliced_and_chunked_columns():
    a = pa.array(np.arange(10) * DAY).cast(TIMESTAMP_TYPE)
    assert _int64(a.slice(3, 4)).tolist() == [3 * DAY, 4 * DAY, 5 * DAY, 6 * DAY]
    c = pa.chunked_array([a.slice(1, 2), a.slice(7)])
    assert _int64(c).tolist() == [d * DAY for d in (1, 2, 7, 8, 9)]
    assert _int64(pa.chunked_array([], TIMESTAMP_TYPE)).tolist() == []


def _old_row_groups(starts, ends, ts, opts):
    """The calendar-conversion algorithm the searchsorted version replaced."""
    groups, cur = [], None
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < opts.min_row_group_rows:
            cur = s if cur is None else cur
            if e - cur >= opts.min_row_group_rows:
                groups.append((cur, e))
                cur = None
            continue
        if cur is not None:
            groups.append((cur, s))
            cur = None
        cuts = [s, e]
        if opts.row_group_years > 0:
            y = ts[s:e].astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64)
            p = y // opts.row_group_years
            cuts = [s, *(np.flatnonzero(p[1:] != p[:-1]) + 1 + s).tolist(), e]
        for a, b in itertools.pairwise(cuts):
            for off in range(a, b, opts.max_row_group_rows):
                groups.append((off, min(b, off + opts.max_row_group_rows)))
    if cur is not None:
        groups.append((cur, int(ends[-1])))
    return groups


@pytest.mark.parametrize("years", [1, 2, 3, 7, 400])
def test_row_groups_match_calendar_periods_near_ns_limits(years):
    rng = np.random.default_rng(years)
    lo, hi = pd.Timestamp.min.value, pd.Timestamp.max.value
    anchors = [lo, hi, 0, -1, pd.Timestamp("1679-01-01").value, pd.Timestamp("2261-01-01").value]
    for _ in range(300):
        lens = rng.integers(1, 30, rng.integers(1, 4))
        ends = np.cumsum(lens)
        starts = ends - lens
        ts = []
        for n in lens.tolist():
            c = anchors[rng.integers(len(anchors))]
            spread = 10**17 if rng.random() < 0.5 else 5
            ts += sorted(np.clip(c + rng.integers(-spread, spread, n), lo, hi).tolist())
        ts = np.asarray(ts, dtype=np.int64)
        opts = WriteOptions(
            min_row_group_rows=int(rng.choice([1, 5, 20])),
            max_row_group_rows=int(rng.choice([3, 100])),
            row_group_years=years,
        )
        assert _row_groups(starts, ends, ts, opts) == _old_row_groups(starts, ends, ts, opts)


def _part(days: list[int], seq: int | list[int], tag: float):
    t = arrow_bars(["X"] * len(days), days, tag)
    if isinstance(seq, list):
        t = t.append_column(SEQ_COLUMN, pa.array(seq, pa.int64()))
    f = FileInfo(
        path=f"p{tag}",
        rows=len(days),
        bytes=0,
        seq=seq if isinstance(seq, int) else -1,
        seq_col=isinstance(seq, list),
        level=0,
        tickers=["X"],
        min_ts=[],
        max_ts=[],
        ticker_rows=[len(days)],
    )
    return t, f


@pytest.mark.parametrize(
    "specs",
    [
        # others all older than the big part (a backfill): nothing is final up front
        [(list(range(10, 20)), 1), ([0, 1, 15], 2)],
        # others all newer than the big part: all of it is final
        [(list(range(10)), 1), ([20, 21], 2)],
        # a tie on the big part's first row, and an empty part
        [(list(range(5)), 3), ([0], 2), ([], 9)],
        # per-row seq in the big part: the newer file wins only where its seq is higher
        [(list(range(6)), [1, 1, 1, 9, 9, 9]), ([3, 4], 5)],
        # the big part is not the first one, and two small parts overlap each other
        [([7, 8], 4), (list(range(12)), 1), ([8, 9], 3)],
    ],
)
def test_single_series_merge_edge_cases(specs):
    parts, files, model = [], [], {}
    for i, (days, seq) in enumerate(specs):
        t, f = _part(days, seq, float(i + 1))
        parts.append(t)
        files.append(f)
        for j, d in enumerate(days):
            s = seq[j] if isinstance(seq, list) else seq
            if d not in model or s > model[d][0]:
                model[d] = (s, float(i + 1))
    out = _merge_one_series(parts, files, "timestamp")
    got = dict(
        zip(
            (out.column("timestamp").cast(pa.int64()).to_numpy() // DAY).tolist(),
            out.column("close").to_pylist(),
            strict=True,
        )
    )
    assert list(got) == sorted(model)
    assert got == {d: v for d, (_, v) in model.items()}
    assert SEQ_COLUMN not in out.column_names


def test_split_by_rows_runs_line_up_with_pieces():
    t = _chunked(arrow_bars(["A"] * 3 + ["B"] * 5 + ["C"] + ["D"] * 4, list(range(13))), [2, 9])
    pieces = split_by_rows(t, "ticker", 4, column_runs(t, "ticker"))
    assert sum(p.num_rows for p, _ in pieces) == 13
    for piece, runs in pieces:
        ref = column_runs(piece, "ticker")
        assert runs.values.to_pylist() == ref.values.to_pylist()
        assert runs.starts.tolist() == ref.starts.tolist()
        assert runs.ends.tolist() == ref.ends.tolist()


def test_reads_after_overlapping_daily_upserts_match_a_pandas_model(tmp_path):
    rng = np.random.default_rng(11)
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=3000)
    tickers = [f"T{i}" for i in range(6)]
    base = -400  # history starts before 1970
    model = pd.DataFrame(columns=["ticker", "day", "close"])

    def put(tk: list[str], days: list[int]) -> None:
        nonlocal model
        closes = rng.uniform(5, 50, len(tk)).round(2)
        db.upsert_prices(arrow_bars(tk, days, closes))
        new = pd.DataFrame({"ticker": tk, "day": days, "close": closes})
        model = pd.concat([model, new]).drop_duplicates(["ticker", "day"], keep="last")

    put([t for t in tickers for _ in range(1500)], [base + d for _ in tickers for d in range(1500)])
    for day in range(1500, 1515):
        tk, dd = list(tickers), [base + day] * len(tickers)
        for t in rng.choice(tickers, 2, replace=False).tolist():
            # revise recent and old days, and backfill before the history
            tk += [t] * 3
            dd += [
                base + day - 3,
                base + int(rng.integers(0, 1500)),
                base - int(rng.integers(1, 9)),
            ]
        put(tk, dd)
    model = model.sort_values(["ticker", "day"]).reset_index(drop=True)
    for _ in range(40):
        pick = rng.choice(tickers, int(rng.integers(1, 3)), replace=False).tolist()
        lo = int(rng.integers(base - 10, base + 1515))
        hi = int(rng.integers(lo, base + 1520))
        kw = {"start": pd.Timestamp(lo * DAY, tz="UTC") if rng.random() < 0.7 else None}
        kw["end"] = pd.Timestamp(hi * DAY, tz="UTC") if rng.random() < 0.7 else None
        df = db.read_table(tickers=pick, columns=["close"], **kw)
        m = model[model["ticker"].isin(pick)]
        if kw["start"] is not None:
            m = m[m["day"] >= lo]
        if kw["end"] is not None:
            m = m[m["day"] <= hi]
        assert list(df.columns) == ["ticker", "timestamp", "close"]
        assert df["ticker"].tolist() == m["ticker"].tolist()
        assert (df["timestamp"].astype("int64") // DAY).tolist() == m["day"].tolist()
        assert df["close"].tolist() == m["close"].tolist()
    assert db.verify().ok
