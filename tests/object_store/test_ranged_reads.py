"""Reads on an object store fetch exact byte ranges (issue 22): a footer is one ranged GET of
a file's end (the log knows its size), a one-ticker read fetches exactly the column chunks
of the row groups holding the ticker (one GET per file, nothing read ahead), a small file
is one GET, and the rows are the same as on a local disk. Counted at a byte-counting proxy
in front of a real SeaweedFS, and on obstore's in-memory store."""

from __future__ import annotations

import io
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.bars import make_bars
from helpers.byte_proxy import ByteProxy, Exchange
from helpers.seaweed import BUCKET
from tickvault import ParquetDB
from tickvault.errors import CorruptDatabaseError
from tickvault.storage.core import file_reader
from tickvault.storage.core.file_reader import coalesce

TICKERS = [f"T{i:02d}" for i in range(24)]
#: five years of daily bars, one file per year and ticker range: 10 files
OPTS = {"target_file_rows": 3000, "min_row_group_rows": 512, "auto_compact": False}


def _bars() -> pd.DataFrame:
    return make_bars(TICKERS, "2015-01-01", periods=5 * 261)


def _data(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if e.target.split("?")[0].endswith(".parquet")]


def _row_group_bytes(raw: bytes, rows: tuple[int, int], skip: tuple[str, ...] = ()) -> int:
    """The compressed bytes of the row groups of a file holding the rows [a, b), without
    the column chunks of the columns ``skip``."""
    md = pq.ParquetFile(io.BytesIO(raw)).metadata
    total, first = 0, 0
    for r in range(md.num_row_groups):
        g = md.row_group(r)
        if first < rows[1] and first + g.num_rows > rows[0]:
            total += sum(
                g.column(c).total_compressed_size
                for c in range(g.num_columns)
                if g.column(c).path_in_schema not in skip
            )
        first += g.num_rows
    return total


@pytest.fixture
def no_whole_files(monkeypatch):
    """Files as large as a real table's: read by footer and row groups, never whole."""
    monkeypatch.setattr(file_reader, "SMALL_FETCH_BYTES", 0)


@pytest.mark.s3
def test_one_ticker_fetches_its_row_groups_once_per_file(seaweed, no_whole_files):
    url = f"s3://{BUCKET}/ranged-{uuid.uuid4().hex[:8]}"
    with ByteProxy(seaweed["endpoint"]) as proxy:
        opts = {**seaweed, "endpoint": proxy.endpoint}
        db = ParquetDB(url, storage_options=opts, **OPTS)
        bars = _bars()
        db.upsert_prices(bars)
        # the writer's background reclaim pass probes the log too: let it finish first, so
        # that what the proxy counts below is the reads' own requests
        assert db.wait_for_compaction(timeout=60)
        state = db._table("prices").refresh()
        files = {f.path: f for f in state.files.values()}
        assert len(files) >= 10 and all(f.level == 1 for f in files.values())

        # a new handle: per file holding the ticker, one GET of its end (the footer, as the
        # log knows the file's size) and one GET of exactly its row group's column chunks
        fresh = ParquetDB(url, storage_options=opts, **OPTS)
        mark = proxy.mark()
        got = fresh.read_table(tickers="T01")
        expected = bars[bars.ticker == "T01"].reset_index(drop=True)
        assert got["close"].tolist() == expected["close"].tolist()
        data = _data(proxy.since(mark))
        holding = [f for f in files.values() if "T01" in f.index()]
        assert len(holding) == len({f.period for f in holding}) >= 5  # one per year
        for f in holding:
            mine = [e for e in data if e.target.endswith(f.path)]
            if f.bytes <= file_reader.FIRST_TAIL_GUESS:  # a small file: all of it at once
                assert [e.range for e in mine] == [f"bytes=0-{f.bytes - 1}"]
                continue
            tail, rows = mine  # the footer (the file's end), then the row group
            assert tail.range.endswith(f"-{f.bytes - 1}")
            raw = db.store.get(f"prices/{f.path}")
            i = f.index()["T01"]
            a = int(f.offsets()[i])
            # every column but the ticker's: a one-ticker read knows the name
            want = _row_group_bytes(raw, (a, a + f.ticker_rows[i]), skip=("ticker",))
            assert rows.down_body == want
        assert sum(f.bytes > file_reader.FIRST_TAIL_GUESS for f in holding) >= 5

        # the same handle again: footers (and small files) are cached, one GET per large
        # file, nothing else
        mark = proxy.mark()
        got = fresh.read_table(tickers="T02")  # in the files of T01
        assert len(got) == 5 * 261
        exchanges = proxy.since(mark)
        data = _data(exchanges)
        assert {f.path for f in files.values() if "T02" in f.index()} == {f.path for f in holding}
        assert len(data) == sum(f.bytes > file_reader.FIRST_TAIL_GUESS for f in holding)
        assert len(exchanges) <= len(data) + 2  # + the probes for a newer log entry
        assert all(e.range and not e.range.startswith("bytes=-") for e in data)

        # one month of every ticker: its year's files, each fetched once
        mark = proxy.mark()
        month = fresh.read_table(start="2017-03-01", end="2017-03-31")
        assert len(month) == len(TICKERS) * len(pd.bdate_range("2017-03-01", "2017-03-31"))
        data = _data(proxy.since(mark))
        in_2017 = {f.path for f in files.values() if pd.Timestamp(f.start).year == 2017}
        assert {e.target.rsplit("/", 1)[-1] for e in data} == in_2017
        assert sum(e.down_body for e in data) <= sum(files[p].bytes for p in in_2017)


def _memory_db(name: str) -> ParquetDB:
    return ParquetDB(f"memory://{name}-{uuid.uuid4().hex[:6]}", **OPTS)


def _fresh(db: ParquetDB) -> ParquetDB:
    """A new handle on the same in-memory bucket (nothing cached)."""
    return ParquetDB(db.path, store=db.store, **OPTS)


def _spy(monkeypatch: pytest.MonkeyPatch, db: ParquetDB) -> list[tuple[str, object]]:
    """Every GET of a data file through ``db.store``: (key, its options)."""
    store = db.store
    seen: list[tuple[str, object]] = []
    real = store._get  # type: ignore[attr-defined]

    def get(key: str, options: object = None) -> object:
        if key.endswith(".parquet"):
            seen.append((key, options))
        return real(key, options)

    monkeypatch.setattr(store, "_get", get)
    return seen


@pytest.mark.parametrize("whole", [True, False], ids=["small-files-whole", "row-groups"])
@pytest.mark.parametrize(
    "read",
    [
        {"tickers": "T03"},
        {"tickers": ["T01", "T02", "T07", "T22"]},
        {"tickers": ["T04", "T19"], "columns": ["close"]},
        {"start": "2016-06-01", "end": "2016-06-30"},
        {"start": "2016-12-20", "end": "2017-01-10", "tickers": ["T00", "T23"]},
        {"start": "2019-11-01", "columns": ["ticker", "volume"]},
        {},
    ],
)
def test_ranged_reads_return_what_a_local_disk_returns(tmp_path, monkeypatch, read, whole):
    if not whole:
        monkeypatch.setattr(file_reader, "SMALL_FETCH_BYTES", 0)
    bars = _bars()
    local = ParquetDB(tmp_path / "db", **OPTS)
    remote = _memory_db("same")
    for db in (local, remote):
        db.upsert_prices(bars)
        db.upsert_prices(make_bars(TICKERS[::3], "2019-12-02", periods=5, salt=7))  # level 0
    pd.testing.assert_frame_equal(_fresh(remote).read_table(**read), local.read_table(**read))


def test_a_footer_larger_than_the_guess_is_two_gets_then_the_guess_learns(
    monkeypatch, no_whole_files
):
    monkeypatch.setattr(file_reader, "FIRST_TAIL_GUESS", 1024)
    monkeypatch.setattr(file_reader, "_LEARN_ROWS", 1000)
    monkeypatch.setattr(file_reader, "_footer_per_row", {})
    db = _memory_db("guess")
    db.upsert_prices(_bars())
    fresh = _fresh(db)
    gets = _spy(monkeypatch, fresh)
    fresh.read_table(tickers="T01", start="2015-01-01", end="2015-12-31")  # one file
    assert len(gets) == 3  # the end (1 KB: too short), the rest of the footer, a row group
    sizes = {f"prices/{f.path}": f.bytes for f in db._table("prices").refresh().files.values()}
    ends = [o["range"][1] for _, o in gets]  # type: ignore[index]
    assert ends[0] == sizes[gets[0][0]]  # the first GET is the file's end
    del gets[:]
    fresh.read_table(tickers="T01", start="2016-01-01", end="2016-12-31")  # another file
    assert len(gets) == 2  # its footer in one GET (the guess learnt), a row group


@pytest.mark.parametrize("whole", [True, False], ids=["small-files-whole", "row-groups"])
def test_a_damaged_file_on_a_bucket_is_reported_as_damage(monkeypatch, whole):
    if not whole:
        monkeypatch.setattr(file_reader, "SMALL_FETCH_BYTES", 0)
    db = _memory_db("damaged")
    db.upsert_prices(_bars())
    f = next(iter(db._table("prices").refresh().files.values()))
    db.store.put(f"prices/{f.path}", b"not parquet " * (f.bytes // 12 + 1))  # as long
    with pytest.raises(CorruptDatabaseError, match=f.path):
        _fresh(db).read_table()


@pytest.mark.s3
def test_a_truncated_file_on_a_bucket_is_reported_as_damage(seaweed, no_whole_files):
    url = f"s3://{BUCKET}/cut-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(url, storage_options=seaweed, **OPTS)
    db.upsert_prices(make_bars(TICKERS, "2024-01-01", periods=20))
    (f,) = db._table("prices").refresh().files.values()
    db.store.put(f"prices/{f.path}", b"PAR1")  # shorter than the log says: S3 answers 416
    fresh = ParquetDB(url, storage_options=seaweed, **OPTS)
    with pytest.raises(CorruptDatabaseError, match=f.path):
        fresh.read_table()


def test_small_files_are_one_get_whatever_the_read(monkeypatch):
    db = _memory_db("small")
    db.upsert_prices(make_bars(TICKERS, "2024-01-01", periods=20))  # one small file
    (f,) = db._table("prices").refresh().files.values()
    assert f.bytes <= file_reader.SMALL_FETCH_BYTES
    fresh = _fresh(db)
    gets = _spy(monkeypatch, fresh)
    fresh.read_table(start="2024-01-10", end="2024-01-20")
    fresh.read_table(tickers="T01")  # kept decoded: no more requests
    fresh.read_table(start="2024-01-03")
    assert gets == [(f"prices/{f.path}", None)]  # one GET of the whole file


def test_one_ticker_of_small_level1_files_fetches_row_groups_not_the_files(monkeypatch):
    """Month files of many tickers are small (under 1 MiB, 65,536 rows): one ticker's
    history fetched every one whole — a 1,000-ticker table's ten years were 99 MB for a
    ticker, the whole table. A small level-1 file is taken whole only for a good share of
    its rows (``WHOLE_SHARE``); a file an earlier read kept decoded is still sliced."""
    db = _memory_db("monthly")
    bars = make_bars(TICKERS, "2015-01-01", periods=130)  # six months
    db = ParquetDB(db.path, store=db.store, **{**OPTS, "period": "month"})
    db.upsert_prices(bars)
    files = [f for f in db._table("prices").refresh().files.values() if f.level == 1]
    assert len(files) >= 6 and all(0 < f.bytes <= file_reader.SMALL_FETCH_BYTES for f in files)
    fresh = ParquetDB(db.path, store=db.store, **{**OPTS, "period": "month"})
    gets = _spy(monkeypatch, fresh)
    got = fresh.read_table(tickers="T05")
    want = bars[bars.ticker == "T05"].reset_index(drop=True)
    assert got["close"].tolist() == want["close"].tolist()
    assert all(opts is not None for _, opts in gets)  # ranges only: no file came whole
    half = fresh.read_table(tickers=TICKERS[:12])  # half of every file's rows: whole files
    assert len(half) == len(bars[bars.ticker.isin(TICKERS[:12])])
    gets.clear()
    assert fresh.read_table(tickers="T07")["close"].tolist() == (
        bars[bars.ticker == "T07"]["close"].tolist()
    )
    assert gets == []  # sliced from the files the read before kept decoded
    # read again, a file is kept decoded if it fits without evicting another
    again = ParquetDB(db.path, store=db.store, **{**OPTS, "period": "month"})
    footers = again._table("prices").footers
    gets = _spy(monkeypatch, again)
    for _ in range(3):
        again.read_table(tickers="T05")
    whole = [k for k, opts in gets if opts is None]
    assert len(whole) == len(files) and len(gets) - len(whole) <= 2 * len(files)
    # (first read: footer and row groups of each file, one ranged GET for files this
    # small; second: each whole, kept decoded; third: none)
    assert gets[-len(files) :] == [(k, None) for k, _ in gets[-len(files) :]]
    tight = ParquetDB(db.path, store=db.store, **{**OPTS, "period": "month"})
    tight._table("prices").footers.small_bytes = 1  # nothing fits: row groups every time
    gets = _spy(monkeypatch, tight)
    for _ in range(3):
        tight.read_table(tickers="T05")
    assert all(opts is not None for _, opts in gets) and footers is not None


def test_a_read_of_many_tickers_is_at_most_max_ranges_gets_per_file(monkeypatch, no_whole_files):
    def small_gaps_and_tails() -> None:
        monkeypatch.setattr(file_reader, "HOLE_BYTES", 0)
        monkeypatch.setattr(file_reader, "SMALL_FETCH_BYTES", 0)
        monkeypatch.setattr(file_reader, "FIRST_TAIL_GUESS", 1024)  # no data with footers
        monkeypatch.setattr(file_reader, "_LEARN_ROWS", 10**9)

    small_gaps_and_tails()
    db = _memory_db("many")
    bars = _bars()
    db.upsert_prices(bars)
    # row groups of two tickers: these are every other row group of each file
    some = ["T00", "T04", "T08", "T12", "T16", "T20"]
    expected = bars[bars.ticker.isin(some)]
    gets_per_file = []
    for most in (100, 2):
        monkeypatch.setattr(file_reader, "MAX_RANGES", most)
        fresh = _fresh(db)
        fresh.read_table(tickers=["T00", "T12"])  # the footers: cached
        gets = _spy(monkeypatch, fresh)
        assert len(fresh.read_table(tickers=some)) == len(expected)
        per_file: dict[str, int] = {}
        for key, _ in gets:
            per_file[key] = per_file.get(key, 0) + 1
        gets_per_file.append(max(per_file.values()))
        monkeypatch.undo()
        small_gaps_and_tails()
    assert gets_per_file == [3, 2]


def test_pieces_serve_reads_across_adjacent_pieces_and_fetch_only_gaps():
    data = bytes(range(256)) * 4
    asked: list[tuple[int, int]] = []

    def fetch(a: int, n: int) -> bytes:
        asked.append((a, n))
        return data[a : a + n]

    f = file_reader._Pieces(len(data), [(10, data[10:50]), (50, data[50:90])], fetch)
    for a, n in [(10, 40), (20, 60), (49, 2), (10, 80)]:  # in one piece, across two
        f.seek(a)
        assert bytes(f.read(n)) == data[a : a + n]
    assert asked == []
    f.seek(85)
    assert bytes(f.read(10)) == data[85:95]  # runs past the pieces: fetched, exactly
    f.seek(0)
    assert bytes(f.read(12)) == data[:12]
    assert asked == [(85, 10), (0, 12)] and f.misses == 2


def test_coalesce_merges_adjacent_and_near_ranges():
    spans = pa.array([0, 10, 10, 20, 100, 120, 40_000, 40_010]).to_numpy().reshape(-1, 2)
    assert coalesce(spans, hole=100) == [(0, 120), (40_000, 40_010)]
    assert coalesce(spans, hole=0) == [(0, 20), (100, 120), (40_000, 40_010)]
    assert coalesce(spans, hole=50_000) == [(0, 40_010)]
    # at most two: the smallest gap (20 -> 100) is merged first
    assert coalesce(spans, hole=0, most=2) == [(0, 120), (40_000, 40_010)]
    assert coalesce(spans, hole=0, most=1) == [(0, 40_010)]
