"""pandas input is stored exactly like the same rows given as Arrow, in every shape users pass.

The pandas conversion has vectorised fast paths per shape (datetime64 of any unit, tz-aware,
``date`` objects, ISO strings, object or string ticker columns, int or float volume); these
tests pin that each one stores the same rows as the Arrow path, that a bad value in each
shape is still reported precisely (column, count, first row, the value), and that a batch
without rows is a no-op whatever dtypes pandas gave its empty columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.files import tree_snapshot
from tickvault import ParquetDB, ValidationError
from tickvault.schema import PRICES

TS = pa.timestamp("ns", tz="UTC")
TICKERS = ["AAA", "BBB", "CCC"]
DAYS = 100  # rows per ticker: enough for the run-based ticker conversion to apply
NY = "America/New_York"


def reference() -> tuple[pd.DataFrame, pa.Table]:
    """The base rows as a pandas frame (naive datetime64[ns] read as UTC, float volume,
    ``str`` tickers) and the same rows as the Arrow table users would pass instead."""
    dates = pd.bdate_range("2023-01-02", periods=DAYS).as_unit("ns")
    n = len(TICKERS) * DAYS
    close = 100.0 + np.arange(n) % 17
    df = pd.DataFrame(
        {
            "ticker": np.repeat(TICKERS, DAYS),
            # a time of day on some rows, so conversions cannot drop it unnoticed
            "timestamp": np.tile(dates.values, len(TICKERS))
            + (np.arange(n) % 3 == 1) * np.timedelta64(34_200_123_456_789, "ns"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": (np.arange(n) * 10 + 5).astype("float64"),
        }
    )
    table = pa.table(
        {
            "ticker": pa.array(df["ticker"].tolist(), pa.string()),
            "timestamp": pa.array(df["timestamp"].to_numpy().view("int64")).cast(TS),
            **{c: pa.array(df[c].to_numpy()) for c in ("open", "high", "low", "close", "volume")},
        }
    )
    return df, table


def at_midnight(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(timestamp=df["timestamp"].dt.normalize())


def arrow_at_midnight(t: pa.Table) -> pa.Table:
    ns = np.asarray(t.column("timestamp").cast(pa.int64()).to_numpy())
    day = 86_400 * 10**9
    return t.set_column(1, "timestamp", pa.array(ns - ns % day).cast(TS))


# (name, pandas frame from the base frame, Arrow table from the base table)
Shape = tuple[str, Callable[[pd.DataFrame], pd.DataFrame], Callable[[pa.Table], pa.Table]]
SAME: Callable[[pa.Table], pa.Table] = lambda t: t  # noqa: E731

SHAPES: list[Shape] = [
    ("naive datetime64[ns]", lambda d: d, SAME),
    (
        "naive datetime64[us]",
        lambda d: d.assign(timestamp=d["timestamp"].dt.floor("us").astype("datetime64[us]")),
        lambda t: t.set_column(
            1, "timestamp", t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False)
        ),
    ),
    (
        "naive datetime64[s]",
        lambda d: d.assign(timestamp=d["timestamp"].dt.floor("s").astype("datetime64[s]")),
        lambda t: t.set_column(
            1, "timestamp", t.column("timestamp").cast(pa.timestamp("s", "UTC"), safe=False)
        ),
    ),
    (
        "tz-aware New York",
        lambda d: d.assign(timestamp=d["timestamp"].dt.tz_localize("UTC").dt.tz_convert(NY)),
        SAME,
    ),
    (
        "tz-aware New York, datetime64[us]",
        lambda d: d.assign(
            timestamp=d["timestamp"]
            .dt.floor("us")
            .astype("datetime64[us]")
            .dt.tz_localize("UTC")
            .dt.tz_convert(NY)
        ),
        lambda t: t.set_column(
            1, "timestamp", t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False)
        ),
    ),
    (
        "date objects",
        lambda d: d.assign(timestamp=d["timestamp"].dt.date),
        arrow_at_midnight,
    ),
    (
        "ISO date strings (str)",
        lambda d: d.assign(timestamp=d["timestamp"].dt.strftime("%Y-%m-%d")),
        arrow_at_midnight,
    ),
    (
        "ISO date strings (object)",
        lambda d: d.assign(timestamp=d["timestamp"].dt.strftime("%Y-%m-%d").astype(object)),
        arrow_at_midnight,
    ),
    (
        "ISO datetime strings with nanoseconds",
        lambda d: d.assign(timestamp=d["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")),
        lambda t: t.set_column(
            1,
            "timestamp",
            t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False).cast(TS),
        ),
    ),
    (
        "ISO strings with zone offsets",
        lambda d: d.assign(
            timestamp=d["timestamp"]
            .dt.tz_localize("UTC")
            .dt.tz_convert(NY)
            .dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
        ),
        lambda t: t.set_column(
            1,
            "timestamp",
            t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False).cast(TS),
        ),
    ),
    (
        "ISO strings, some naive, some with a zone",
        lambda d: d.assign(
            timestamp=[
                s + ("Z" if i % 2 else "")
                for i, s in enumerate(d["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
            ]
        ),
        lambda t: t.set_column(
            1,
            "timestamp",
            t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False).cast(TS),
        ),
    ),
    (
        "ISO strings, pyarrow-backed",
        lambda d: d.assign(
            timestamp=d["timestamp"].dt.strftime("%Y-%m-%d").astype("string[pyarrow]")
        ),
        arrow_at_midnight,
    ),
    (
        "datetime objects, naive",
        lambda d: d.assign(timestamp=pd.Series(d["timestamp"].dt.floor("us").dt.to_pydatetime())),
        lambda t: t.set_column(
            1,
            "timestamp",
            t.column("timestamp").cast(pa.timestamp("us", "UTC"), safe=False).cast(TS),
        ),
    ),
    ("int64 volume", lambda d: d.assign(volume=d["volume"].astype("int64")), SAME),
    ("Int64 volume", lambda d: d.assign(volume=d["volume"].astype("Int64")), SAME),
    ("object ticker", lambda d: d.assign(ticker=d["ticker"].astype(object)), SAME),
    (
        "object ticker, one string object per row",
        lambda d: d.assign(ticker=pd.Series(["".join(list(t)) for t in d["ticker"]], dtype=object)),
        SAME,
    ),
    (
        "object ticker, rows not sorted",
        lambda d: d.iloc[::-1].assign(ticker=lambda x: x["ticker"].astype(object)),
        SAME,
    ),
    ("str ticker", lambda d: d.assign(ticker=d["ticker"].astype("str")), SAME),
    (
        "string[pyarrow] ticker",
        lambda d: d.assign(ticker=d["ticker"].astype("string[pyarrow]")),
        SAME,
    ),
    (
        "string[python] ticker",
        lambda d: d.assign(ticker=d["ticker"].astype("string[python]")),
        SAME,
    ),
    ("category ticker", lambda d: d.assign(ticker=d["ticker"].astype("category")), SAME),
    (
        "pyarrow-backed timestamps with a zone",
        lambda d: d.assign(
            timestamp=d["timestamp"]
            .dt.tz_localize("UTC")
            .dt.tz_convert("Asia/Tokyo")
            .astype(pd.ArrowDtype(pa.timestamp("ns", "Asia/Tokyo")))
        ),
        SAME,
    ),
    (
        "pyarrow-backed dates",
        lambda d: d.assign(
            timestamp=pd.Series(
                pa.array(d["timestamp"].dt.date, pa.date32()), dtype=pd.ArrowDtype(pa.date32())
            )
        ),
        arrow_at_midnight,
    ),
    (
        "timestamp as the index",
        lambda d: d.set_index("timestamp"),
        SAME,
    ),
]


@pytest.mark.parametrize(("name", "to_pandas", "to_arrow"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_pandas_shape_stores_the_rows_the_arrow_path_stores(
    tmp_path, name, to_pandas, to_arrow
):
    df, table = reference()
    frame, want = to_pandas(df), to_arrow(table)
    from_pandas = ParquetDB(tmp_path / "pandas", fsync=False)
    from_arrow = ParquetDB(tmp_path / "arrow", fsync=False)
    r1 = from_pandas.upsert_prices(frame)
    r2 = from_arrow.upsert_prices(want)
    assert r1.rows == r2.rows == len(df)
    got, ref = from_pandas.read_arrow(), from_arrow.read_arrow()
    assert got.schema == ref.schema
    assert got.equals(ref), name
    assert PRICES.validate(frame).equals(PRICES.validate(want))


def test_date_column_holding_datetimes_keeps_their_time():
    """``date`` and ``datetime`` objects mixed (a datetime is a date subclass): the datetime
    keeps its time of day and its zone, it is not cut to its date."""
    n = 80
    values: list[object] = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    values[5] = dt.datetime(2024, 1, 6, 15, 30)
    values[9] = dt.datetime(2024, 1, 10, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    df = pd.DataFrame(
        {
            "ticker": "A",
            "timestamp": pd.Series(values, dtype=object),
            "open": 2.0,
            "high": 3.0,
            "low": 1.0,
            "close": 2.0,
            "volume": 1.0,
        }
    )
    ts = PRICES.validate(df).column("timestamp").to_pylist()
    assert ts[5] == pd.Timestamp("2024-01-06 15:30", tz="UTC")
    assert ts[9] == pd.Timestamp("2024-01-09 19:00", tz="UTC")
    assert ts[0] == pd.Timestamp("2024-01-01", tz="UTC")


# -- bad values: the same precise error in every shape -----------------------------------------

BAD_ROW = 137  # in the middle of ticker BBB's run


def _bad_cases() -> list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str, str, int]]:
    """(name, make frame, column, message part, count)"""
    df, _ = reference()
    ts = df["timestamp"]
    us = ts.dt.floor("us").astype("datetime64[us]")
    sec = ts.dt.floor("s").astype("datetime64[s]")
    iso = ts.dt.strftime("%Y-%m-%d")
    dates = ts.dt.date.astype(object)
    range_msg = "outside the storable range 1677-09-21 .. 2262-04-11 (nanoseconds since 1970)"
    not_ts = "that are not timestamps"

    def put(s: pd.Series, *values: tuple[int, object]) -> pd.Series:
        s = s.copy()
        for row, v in values:
            s.iloc[row] = v
        return s

    def ts_case(series: pd.Series) -> Callable[[pd.DataFrame], pd.DataFrame]:
        return lambda d: d.assign(timestamp=series)

    late = BAD_ROW + 50
    return [
        (
            "datetime64[us] before 1677",
            ts_case(
                put(us, (BAD_ROW, pd.Timestamp("1500-03-04")), (late, pd.Timestamp("1400-01-01")))
            ),
            "timestamp",
            f"2 value(s) {range_msg}, first at row {BAD_ROW}: Timestamp('1500-03-04 00:00:00')",
            2,
        ),
        (
            "datetime64[s] after 2262",
            ts_case(put(sec, (BAD_ROW, pd.Timestamp("3000-03-01")))),
            "timestamp",
            f"1 value(s) {range_msg}, first at row {BAD_ROW}: Timestamp('3000-03-01 00:00:00')",
            1,
        ),
        (
            "datetime64[us] one microsecond past the end",
            ts_case(put(us, (BAD_ROW, pd.Timestamp("2262-04-11 23:47:16.854776")))),
            "timestamp",
            f"first at row {BAD_ROW}: Timestamp('2262-04-11 23:47:16.854776')",
            1,
        ),
        (
            "datetime64[ns] NaT",
            ts_case(put(ts, (BAD_ROW, pd.NaT))),
            "timestamp",
            f"1 null value, first at row {BAD_ROW} (BBB, None)",
            1,
        ),
        (
            "tz-aware datetime64[s] before 1677",
            ts_case(
                put(sec, (BAD_ROW, pd.Timestamp("1500-06-01")))
                .dt.tz_localize("UTC")
                .dt.tz_convert(NY)
            ),
            "timestamp",
            f"{range_msg}, first at row {BAD_ROW}: Timestamp('1500-05-31 19:03:58-045602', "
            f"tz='America/New_York')",
            1,
        ),
        (
            "tz-aware NaT",
            ts_case(put(ts, (BAD_ROW, pd.NaT)).dt.tz_localize(NY)),
            "timestamp",
            f"1 null value, first at row {BAD_ROW} (BBB, None)",
            1,
        ),
        (
            "date object after 2262",
            ts_case(put(dates, (BAD_ROW, dt.date(3000, 1, 1)), (late, dt.date(2262, 4, 12)))),
            "timestamp",
            f"2 value(s) {range_msg}, first at row {BAD_ROW}: datetime.date(3000, 1, 1)",
            2,
        ),
        (
            "date object 1677-09-21 (midnight is before the first storable instant)",
            ts_case(put(dates, (BAD_ROW, dt.date(1677, 9, 21)))),
            "timestamp",
            f"{range_msg}, first at row {BAD_ROW}: datetime.date(1677, 9, 21)",
            1,
        ),
        (
            "date object None",
            ts_case(put(dates, (BAD_ROW, None))),
            "timestamp",
            f"1 null value, first at row {BAD_ROW} (BBB, None)",
            1,
        ),
        (
            "date objects and a word",
            ts_case(put(dates, (BAD_ROW, "soon"))),
            "timestamp",
            f"1 value(s) {not_ts}, first at row {BAD_ROW}: 'soon'",
            1,
        ),
        (
            "ISO string that is not a date",
            ts_case(put(iso, (BAD_ROW, "soon"), (late, "2023-02-29"))),
            "timestamp",
            f"2 value(s) {not_ts}, first at row {BAD_ROW}: 'soon'",
            2,
        ),
        (
            "ISO string, empty",
            ts_case(put(iso.astype(object), (BAD_ROW, ""))),
            "timestamp",
            f"1 value(s) {not_ts}, first at row {BAD_ROW}: ''",
            1,
        ),
        (
            "ISO string after 2262",
            ts_case(put(iso, (BAD_ROW, "3000-01-01"))),
            "timestamp",
            f"1 value(s) {range_msg}, first at row {BAD_ROW}: '3000-01-01'",
            1,
        ),
        (
            "ISO string, pyarrow-backed, before 1677",
            ts_case(put(iso, (BAD_ROW, "1500-01-01")).astype("string[pyarrow]")),
            "timestamp",
            f"1 value(s) {range_msg}, first at row {BAD_ROW}: '1500-01-01'",
            1,
        ),
        (
            "ISO string missing",
            ts_case(put(iso, (BAD_ROW, None))),
            "timestamp",
            f"1 null value, first at row {BAD_ROW} (BBB, None)",
            1,
        ),
        (
            "object volume with a word",
            lambda d: d.assign(volume=put(d["volume"].astype(object), (BAD_ROW, "abc"))),
            "volume",
            f"1 value(s) that cannot be cast to double, first at row {BAD_ROW} (BBB, "
            f"2023-02-22): 'abc'",
            1,
        ),
        (
            "float volume NaN",
            lambda d: d.assign(volume=put(d["volume"], (BAD_ROW, np.nan))),
            "volume",
            f"1 null value, first at row {BAD_ROW} (BBB, 2023-02-22)",
            1,
        ),
        (
            "Int64 volume NA",
            lambda d: d.assign(volume=put(d["volume"].astype("Int64"), (BAD_ROW, pd.NA))),
            "volume",
            f"1 null value, first at row {BAD_ROW}",
            1,
        ),
        (
            "object ticker None",
            lambda d: d.assign(ticker=put(d["ticker"].astype(object), (BAD_ROW, None))),
            "ticker",
            f"1 null value, first at row {BAD_ROW} (None, 2023-02-22)",
            1,
        ),
        (
            "object ticker NaN",
            lambda d: d.assign(ticker=put(d["ticker"].astype(object), (BAD_ROW, np.nan))),
            "ticker",
            f"1 null value, first at row {BAD_ROW}",
            1,
        ),
        (
            "object ticker pd.NA",
            lambda d: d.assign(ticker=put(d["ticker"].astype(object), (BAD_ROW, pd.NA))),
            "ticker",
            f"1 null value, first at row {BAD_ROW}",
            1,
        ),
        (
            "object ticker blank",
            lambda d: d.assign(ticker=put(d["ticker"].astype(object), (BAD_ROW, " "))),
            "ticker",
            f"1 empty value, first at row {BAD_ROW}",
            1,
        ),
        (
            "object ticker not UTF-8",
            lambda d: d.assign(ticker=put(d["ticker"].astype(object), (BAD_ROW, "B\ud800"))),
            "ticker",
            f"1 value(s) that are not valid UTF-8 text, first at row {BAD_ROW}: 'B\\ud800'",
            1,
        ),
        (
            "str ticker missing",
            lambda d: d.assign(ticker=put(d["ticker"].astype("str"), (BAD_ROW, None))),
            "ticker",
            f"1 null value, first at row {BAD_ROW}",
            1,
        ),
        (
            "string[pyarrow] ticker missing",
            lambda d: d.assign(ticker=put(d["ticker"].astype("string[pyarrow]"), (BAD_ROW, pd.NA))),
            "ticker",
            f"1 null value, first at row {BAD_ROW}",
            1,
        ),
    ]


BAD = _bad_cases()


@pytest.mark.parametrize(
    ("name", "make", "column", "message", "count"), BAD, ids=[c[0] for c in BAD]
)
def test_bad_value_in_each_shape_is_named_precisely(tmp_path, name, make, column, message, count):
    df, _ = reference()
    db = ParquetDB(tmp_path / "db", fsync=False)
    db.upsert_prices(df.iloc[:3])
    before = tree_snapshot(tmp_path / "db")
    with pytest.raises(ValidationError) as info:
        db.upsert_prices(make(df))
    err = info.value
    assert f"column {column!r} has " in str(err)
    assert message in str(err), str(err)
    assert (err.column, err.count) == (column, count)
    assert err.row == BAD_ROW
    assert tree_snapshot(tmp_path / "db") == before


@pytest.mark.parametrize(
    "ts",
    [
        pa.array([dt.date(1677, 9, 21)], pa.date32()),
        pa.array([-9_223_372_037], pa.timestamp("s", "Asia/Tokyo")),
    ],
    ids=["date32 1677-09-21", "timestamp[s] one second before the first instant"],
)
def test_arrow_values_just_below_the_range_are_validation_errors(ts):
    t = pa.table(
        {
            "ticker": ["A"],
            "timestamp": ts,
            "open": [2.0],
            "high": [3.0],
            "low": [1.0],
            "close": [2.0],
            "volume": [1.0],
        }
    )
    with pytest.raises(ValidationError, match="outside the storable range") as info:
        PRICES.validate(t)
    assert (info.value.column, info.value.row) == ("timestamp", 0)


# -- batches without rows ----------------------------------------------------------------------

COLUMNS = ["ticker", "timestamp", "open", "high", "low", "close", "volume"]

EMPTY = {
    "pandas 3 default (float64 columns)": lambda: pd.DataFrame({c: [] for c in COLUMNS}),
    "object columns": lambda: pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS}),
    "with adj_close": lambda: pd.DataFrame({c: [] for c in [*COLUMNS, "adj_close"]}),
    "int and bool columns": lambda: pd.DataFrame(
        {c: pd.Series([], dtype="int64" if i % 2 else "bool") for i, c in enumerate(COLUMNS)}
    ),
    "typed columns": lambda: pd.DataFrame(
        {
            "ticker": pd.Series([], dtype="str"),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{c: pd.Series([], dtype="float64") for c in COLUMNS[2:]},
        }
    ),
    "rows filtered away": lambda: pd.DataFrame(
        {
            "ticker": ["A"],
            "timestamp": ["2024-01-02"],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
        }
    ).iloc[:0],
    "Arrow table with double columns": lambda: pa.table(
        {c: pa.array([], pa.float64()) for c in COLUMNS}
    ),
}


@pytest.mark.parametrize("make", EMPTY.values(), ids=list(EMPTY))
def test_batch_without_rows_is_a_no_op_whatever_its_dtypes(tmp_path, make):
    path = tmp_path / "db"
    db = ParquetDB(path, fsync=False)
    r = db.upsert_prices(make())
    assert (r.rows, r.version, r.files) == (0, -1, ())
    assert db.version == -1 and not list(path.rglob("*.parquet"))
    df, _ = reference()
    version = db.upsert_prices(df.iloc[:5]).version
    before = tree_snapshot(path)
    r = db.upsert_prices(make())
    assert (r.rows, r.version) == (0, version)
    assert db.version == version and tree_snapshot(path) == before
    assert db.write_files("prices", make()) == []
    assert PRICES.validate(make()).schema == PRICES.arrow_schema


def test_batch_without_rows_still_names_an_unknown_column(db):
    with pytest.raises(ValidationError, match="unknown column"):
        db.upsert_prices(pd.DataFrame({c: [] for c in [*COLUMNS, "vwapp"]}))


FAST = ["naive datetime64[ns]", "naive datetime64[us]", "tz-aware New York", "date objects"]
FAST += ["ISO date strings (str)", "ISO date strings (object)", "ISO strings with zone offsets"]


@pytest.mark.parametrize("name", FAST)
def test_common_shapes_are_converted_without_the_per_value_parser(monkeypatch, name):
    """The exact pandas parser is the fallback for odd input; the shapes users pass never
    reach it (it is what made a pandas load 10x slower than Arrow)."""
    import tickvault.convert as convert

    def per_value(*args: object) -> None:
        raise AssertionError("took the per-value path")

    monkeypatch.setattr(convert, "_parse_timestamp_objects", per_value)
    to_pandas = {s[0]: s[1] for s in SHAPES}[name]
    df, _ = reference()
    assert PRICES.validate(to_pandas(df)).num_rows == len(df)


# -- the pipeline hand-over reads a source's frame like upsert_prices --------------------------


def test_pipeline_reads_a_pandas_source_like_upsert_prices(tmp_path):
    from tickvault.pipeline import fetch_and_write
    from tickvault.sources import RetryPolicy

    df, _ = reference()

    def frame(ticker: str) -> pd.DataFrame:
        one = df[df["ticker"] == ticker].reset_index(drop=True)
        if ticker == "AAA":  # date objects, one of them a datetime with a time and a zone
            ts: list[object] = list(one["timestamp"].dt.date)
            ts[7] = dt.datetime(2023, 1, 11, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
            return one.assign(timestamp=pd.Series(ts, dtype=object))
        if ticker == "BBB":  # the timestamps as the index, no ticker column
            return one.drop(columns="ticker").set_index("timestamp")
        return one.assign(timestamp=one["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))

    class Frames:
        name = "frames"
        retry_policy = RetryPolicy(attempts=1, backoff=0.0, jitter=False)

        def fetch(self, ticker: str, start: object = None, end: object = None) -> pd.DataFrame:
            return frame(ticker)

    report = fetch_and_write(TICKERS, Frames(), tmp_path / "pipeline", scheduler="synchronous")
    assert (report["written"], report["failed"]) == (3, 0)
    direct = ParquetDB(tmp_path / "direct", fsync=False)
    for t in TICKERS:
        direct.upsert_prices(frame(t).assign(ticker=t))
    got = ParquetDB(tmp_path / "pipeline").read_arrow()
    assert got.equals(direct.read_arrow())
    assert got.column("timestamp")[7].as_py() == dt.datetime(2023, 1, 11, 20, 30, tzinfo=dt.UTC)


# -- the fast parsers agree with pandas' per-value parser, value for value ---------------------


def _nn(hi: int) -> st.SearchStrategy[str]:
    return st.integers(0, hi).map(lambda i: f"{i:02d}")


def _iso(
    zones: st.SearchStrategy[str], *, valid: bool = False, timed: bool = False
) -> st.SearchStrategy[str]:
    """ISO 8601 strings (``timed``: always with a time of day); unless ``valid``, also near
    misses (month 13, day 31 of short months, hour 24, minute 99, years outside the
    storable range)."""
    sixty = _nn(59 if valid else 99)
    time = st.builds(
        lambda sep, h, rest: f"{sep}{h}{rest}",
        st.sampled_from(["T", " "]),
        _nn(23 if valid else 24),
        st.one_of(
            st.just(""),
            st.builds(lambda m: f":{m}", sixty),
            st.builds(
                lambda m, s, f: f":{m}:{s}{f}",
                sixty,
                sixty,
                st.one_of(
                    st.just(""),
                    st.text("0123456789", min_size=1, max_size=9 if valid else 10).map(
                        lambda f: f".{f}"
                    ),
                ),
            ),
        ),
    )
    return st.builds(
        lambda y, m, d, t, zone: f"{y:04d}-{m:02d}-{d:02d}{t}{zone}",
        st.integers(1700, 2200) if valid else st.integers(1600, 2300),
        st.integers(1, 12 if valid else 13),
        st.integers(1, 28 if valid else 31),
        time if timed else st.one_of(st.just(""), time),
        zones,
    )


_ZONES = ["", "Z", "+05:00", "-0330", "+01", "-23:59"]
#: columns as they come: one zone style for the whole column (the fast path), or anything
_iso_columns = st.one_of(
    st.sampled_from(_ZONES).flatmap(
        lambda z: st.lists(_iso(st.just(z), valid=True, timed=bool(z)), min_size=1, max_size=12)
    ),
    st.lists(st.one_of(_iso(st.sampled_from(_ZONES)), st.sampled_from(["soon", ""])), max_size=12),
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(_iso_columns)
def test_iso_strings_parse_like_the_pandas_parser(values):
    import tickvault.convert as convert

    def outcome(parse: Callable[[], object]) -> object:
        try:
            got = parse()
        except ValidationError as exc:
            return ("error", str(exc), exc.row, exc.count)
        return pa.chunked_array([got]).cast(pa.int64()).to_pylist()  # type: ignore[list-item]

    objects = np.array(values, dtype=object)
    want = outcome(lambda: convert._parse_timestamp_objects("timestamp", objects, PRICES.key))
    for series in (pd.Series(values, dtype=object), pd.Series(values, dtype="str")):
        got = outcome(lambda s=series: convert._timestamps_to_arrow("timestamp", s, PRICES.key))
        assert got == want


_day = st.dates(dt.date(1677, 9, 20), dt.date(2262, 4, 12))
_moment = st.datetimes(
    dt.datetime(1677, 9, 22),
    dt.datetime(2262, 4, 10),
    timezones=st.one_of(st.none(), st.just(dt.UTC), st.just(dt.timezone(dt.timedelta(hours=-5)))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_day, _day, _moment, st.none()), max_size=12))
def test_date_and_datetime_objects_convert_like_the_pandas_parser(values):
    import tickvault.convert as convert

    def outcome(parse: Callable[[], object]) -> object:
        try:
            got = parse()
        except ValidationError as exc:
            return ("error", str(exc), exc.row, exc.count)
        return pa.chunked_array([got]).cast(pa.int64()).to_pylist()  # type: ignore[list-item]

    objects = np.array(values, dtype=object)
    want = outcome(lambda: convert._parse_timestamp_objects("timestamp", objects, PRICES.key))
    got = outcome(
        lambda: convert._timestamps_to_arrow(
            "timestamp", pd.Series(values, dtype=object), PRICES.key
        )
    )
    assert got == want


def test_times_in_the_index_are_named_or_refused_with_the_fix(tmp_path):
    """A yfinance-style frame (times in a ``Date`` index) is refused naming the index and
    the one-line fix, and the fix stores it; an index named like a column becomes it, but
    a name that is both the index and a column is refused, not a pandas ValueError. The
    database is unchanged by each refusal."""
    db = ParquetDB(tmp_path / "db")
    days = pd.DatetimeIndex(["2026-11-02", "2026-11-03"], name="Date")
    df = pd.DataFrame(
        {"ticker": "ACME", "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 9},
        index=days,
    )
    before = tree_snapshot(tmp_path / "db")
    with pytest.raises(ValidationError, match=r"index \('Date'\) holds times") as exc:
        db.upsert_prices(df)
    assert "df.rename_axis('timestamp')" in str(exc.value) and exc.value.column == "timestamp"
    stacked = df.set_index("ticker", append=True).swaplevel()
    with pytest.raises(ValidationError, match=r"rename\(columns=\{'Date': 'timestamp'\}\)"):
        db.upsert_prices(stacked)
    both = df.rename_axis("timestamp").assign(timestamp=days)
    with pytest.raises(ValidationError, match="both the frame's index and a column"):
        db.upsert_prices(both)
    assert tree_snapshot(tmp_path / "db") == before
    db.upsert_prices(df.rename_axis("timestamp"))
    db.upsert_prices(stacked.reset_index().rename(columns={"Date": "timestamp"}))
    got = db.read_table("prices")
    assert got["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2026-11-02", "2026-11-03"]
