"""Adjusted reads match an independent, row-by-row implementation of the two formulas."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault import ParquetDB
from tickvault.adjust import adjust_prices
from tickvault.errors import ConfigError, ValidationError

DAYS = pd.bdate_range("2024-01-01", periods=40, tz="UTC")


def reference(bars: pd.DataFrame, actions: pd.DataFrame, how: str) -> pd.DataFrame:
    """The formulas of the issue, one bar and one action at a time (full history)."""
    out = bars.copy()
    for i, bar in bars.iterrows():
        mine = actions[actions["ticker"] == bar["ticker"]]
        split = 1.0
        div = 1.0
        for _, act in mine.iterrows():
            if not act["timestamp"] > bar["timestamp"]:
                continue
            if act["kind"] == "split":
                split *= act["value"]
            elif how == "all":
                before = bars[
                    (bars["ticker"] == bar["ticker"]) & (bars["timestamp"] < act["timestamp"])
                ]
                last_close = before.sort_values("timestamp")["close"].iloc[-1]
                div *= 1.0 - act["value"] / last_close
        for c in ("open", "high", "low", "close"):
            out.at[i, c] = bar[c] / split * div
        out.at[i, "volume"] = bar["volume"] * split
    return out


@st.composite
def histories(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    tickers = draw(st.lists(st.sampled_from(["AAA", "BBB", "CCC"]), min_size=1, unique=True))
    rows = []
    acts = []
    for t in tickers:
        picks = sorted(
            draw(st.lists(st.integers(0, len(DAYS) - 1), min_size=1, max_size=25, unique=True))
        )
        for k in picks:
            close = draw(st.floats(1.0, 1000.0))
            rows.append((t, DAYS[k], close, close * 1.01, close * 0.99, close, float(k * 100)))
        # actions anywhere: on the first and last bar, between bars, before and after all
        n_acts = draw(st.integers(0, 5))
        for _ in range(n_acts):
            day = draw(st.integers(-2, len(DAYS) + 2))
            when = DAYS[0] + pd.Timedelta(days=day) if day < 0 or day >= len(DAYS) else DAYS[day]
            if draw(st.booleans()):
                acts.append((t, when, "split", draw(st.sampled_from([2.0, 3.0, 4.0, 0.5, 1.5]))))
            else:
                acts.append((t, when, "dividend", draw(st.floats(0.001, 0.5))))
    bars = pd.DataFrame(
        rows, columns=["ticker", "timestamp", "open", "high", "low", "close", "volume"]
    )
    actions = pd.DataFrame(acts, columns=["ticker", "timestamp", "kind", "value"])
    actions = actions.drop_duplicates(["ticker", "timestamp", "kind"], keep="last")
    return bars.sort_values(["ticker", "timestamp"]).reset_index(drop=True), actions


def _close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["timestamp"]) == list(b["timestamp"])
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(
            a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, atol=0, err_msg=c
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(["splits", "all"]))
def test_pure_function_matches_reference(data: tuple[pd.DataFrame, pd.DataFrame], how: str):
    bars, actions = data
    got = adjust_prices(
        pa.Table.from_pandas(bars, preserve_index=False),
        pa.Table.from_pandas(actions, preserve_index=False),
        how,  # type: ignore[arg-type]
    ).to_pandas()
    _close(got, reference(bars, actions, how))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(["splits", "all"]), st.integers(0, 39), st.integers(0, 39))
def test_range_reads_match_reference(
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[pd.DataFrame, pd.DataFrame],
    how: str,
    i: int,
    j: int,
):
    """A range read adjusts by every action after it (also those after the range's end,
    measured against bars outside the range): the same bar reads the same everywhere."""
    bars, actions = data
    db = ParquetDB(tmp_path_factory.mktemp("db"))
    db.upsert_prices(bars)
    if len(actions):
        db.upsert_actions(actions)
    expected = reference(bars, actions, how)
    _close(db.read_table("prices", adjust=how), expected)
    lo, hi = DAYS[min(i, j)], DAYS[max(i, j)]
    part = db.read_table("prices", start=lo, end=hi, adjust=how)
    want = expected[(expected["timestamp"] >= lo) & (expected["timestamp"] <= hi)]
    _close(part.reset_index(drop=True), want.reset_index(drop=True))
    raw = db.read_table("prices")
    _close(raw, bars)  # raw bars are never rewritten


def test_four_for_one_split_and_a_dividend(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    days = pd.bdate_range("2024-03-04", periods=4, tz="UTC")
    db.upsert_prices(
        pd.DataFrame(
            {
                "ticker": "AAPL",
                "timestamp": days,
                "open": [400.0, 404.0, 101.0, 100.0],
                "high": [401.0, 405.0, 102.0, 101.0],
                "low": [399.0, 403.0, 100.0, 99.0],
                "close": [400.0, 404.0, 101.0, 100.0],
                "volume": [1000.0, 1000.0, 4000.0, 4000.0],
            }
        )
    )
    db.upsert_actions(
        pd.DataFrame(
            {
                "ticker": ["AAPL", "AAPL"],
                "timestamp": [days[2], days[3]],
                "kind": ["split", "dividend"],
                "value": [4.0, 1.01],
            }
        )
    )
    s = db.read_table("prices", adjust="splits")
    assert s["close"].tolist() == [100.0, 101.0, 101.0, 100.0]
    assert s["volume"].tolist() == [4000.0] * 4
    a = db.read_table("prices", adjust="all", columns=["close"])
    assert a.columns.tolist() == ["close"]
    assert a["close"].tolist() == pytest.approx([99.0, 99.99, 99.99, 100.0], rel=1e-12)
    assert db.read_table("prices")["close"].tolist() == [400.0, 404.0, 101.0, 100.0]


def test_pinned_version_reads_the_actions_of_its_time(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    days = pd.bdate_range("2024-03-04", periods=3, tz="UTC")
    bars = pd.DataFrame(
        {
            "ticker": "X",
            "timestamp": days,
            "open": 10.0,
            "high": 10.0,
            "low": 10.0,
            "close": 10.0,
            "volume": 1.0,
        }
    )
    v = db.upsert_prices(bars).version
    db.upsert_actions(
        pd.DataFrame([{"ticker": "X", "timestamp": days[2], "kind": "split", "value": 2.0}])
    )
    assert db.read_table("prices", adjust="splits")["close"].tolist() == [5.0, 5.0, 10.0]
    # the version pinned before the split was stored reads as it did then
    assert db.read_table("prices", version=v, adjust="splits")["close"].tolist() == [10.0] * 3


def test_streamed_reads_adjust_with_actions_stored_after_the_last_prices(tmp_path: Path):
    """``iter_table`` (what ``tickvault query``, export and the dashboard stream) pairs the
    newest prices with the newest actions like ``read_table``: a split stored after the
    bars, or a dividend deleted after them, counts at once, not at the next price commit."""
    db = ParquetDB(tmp_path / "db")
    days = pd.bdate_range("2024-03-04", periods=4, tz="UTC")
    one = {"ticker": "X", "timestamp": days, "high": 405.0, "low": 99.0, "volume": 1.0}
    db.upsert_prices(pd.DataFrame({**one, "open": 400.0, "close": [400.0, 404.0, 101.0, 102.0]}))

    def streamed(**kw) -> list[float]:
        return pd.concat(db.iter_table("prices", batch_rows=2, **kw))["close"].tolist()

    db.upsert_actions(
        pd.DataFrame([{"ticker": "X", "timestamp": days[2], "kind": "split", "value": 4.0}])
    )
    assert db.read_table("prices", adjust="splits")["close"].tolist() == [100, 101, 101, 102]
    assert streamed(adjust="splits") == [100, 101, 101, 102]
    db.upsert_actions(
        pd.DataFrame([{"ticker": "X", "timestamp": days[3], "kind": "dividend", "value": 1.01}])
    )
    assert streamed(adjust="all") == pytest.approx([99, 99.99, 99.99, 102], rel=1e-12)
    db.delete("actions", tickers=["X"], dry_run=False)
    assert streamed(adjust="all") == [400, 404, 101, 102]
    assert db.read_table("prices", adjust="all")["close"].tolist() == [400, 404, 101, 102]


def test_bad_adjust_value_names_the_option(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ConfigError, match=r"adjust='bogus' is not one of: raw .*splits .*all"):
        db.read_table("prices", adjust="bogus")
    with pytest.raises(ConfigError, match="prices table"):
        db.read_table("actions", adjust="all")


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        ("split", 0.0, "non-positive"),
        ("dividend", -0.2, "non-positive"),
        ("split", math.inf, "non-finite"),
        ("dividend", math.nan, "null value"),  # NaN reads as a missing value
        ("merger", 1.0, "unknown"),
    ],
)
def test_bad_actions_are_rejected_naming_the_row(
    tmp_path: Path, kind: str, value: float, problem: str
):
    db = ParquetDB(tmp_path / "db")
    rows = [
        {"ticker": "AAPL", "timestamp": "2024-02-09", "kind": "dividend", "value": 0.24},
        {"ticker": "AAPL", "timestamp": "2024-03-01", "kind": kind, "value": value},
    ]
    with pytest.raises(ValidationError, match=problem) as info:
        db.upsert_actions(pd.DataFrame(rows))
    assert "AAPL" in str(info.value) and "2024-03-01" in str(info.value)
    assert "actions" not in db.tables()


def test_dividend_before_any_bar_adjusts_nothing(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        pd.DataFrame(
            {
                "ticker": "X",
                "timestamp": pd.bdate_range("2024-03-04", periods=2, tz="UTC"),
                "open": 10.0,
                "high": 10.0,
                "low": 10.0,
                "close": 10.0,
                "volume": 1.0,
            }
        )
    )
    db.upsert_actions(
        pd.DataFrame([{"ticker": "X", "timestamp": "2024-03-04", "kind": "dividend", "value": 1}])
    )
    assert db.read_table("prices", adjust="all")["close"].tolist() == [10.0, 10.0]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.lists(
        st.tuples(
            st.sampled_from(["splits", "all"]),
            st.integers(0, 39),
            st.integers(0, 39),
            st.sampled_from([None, "AAA", ["AAA", "CCC"]]),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_cached_reads_equal_cold_reads(
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[pd.DataFrame, pd.DataFrame],
    reads: list[tuple[str, int, int, object]],
):
    """One handle reading ranges in any order (its actions index and dividend products
    filled by earlier reads) reads the same bits as a fresh handle's first read."""
    bars, actions = data
    path = tmp_path_factory.mktemp("db")
    warm = ParquetDB(path)
    warm.upsert_prices(bars)
    if len(actions):
        warm.upsert_actions(actions)
    for how, i, j, tickers in reads:
        kw = {
            "start": DAYS[min(i, j)],
            "end": None if max(i, j) == 39 else DAYS[max(i, j)],
            "tickers": tickers,
            "adjust": how,
        }
        assert warm.read_arrow("prices", **kw).equals(ParquetDB(path).read_arrow("prices", **kw))


def _bars(closes: list[float], ticker: str = "X") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": DAYS[: len(closes)],
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )


def _act(day: int, kind: str, value: float, ticker: str = "X") -> pd.DataFrame:
    return pd.DataFrame([{"ticker": ticker, "timestamp": DAYS[day], "kind": kind, "value": value}])


def test_new_commits_are_never_read_from_a_stale_cache(tmp_path: Path):
    """A new actions commit (a split, a dividend) or prices commit (a corrected close)
    after cached reads changes the adjusted result as the formulas say."""
    db = ParquetDB(tmp_path / "db")
    bars = _bars([10.0, 20.0, 40.0, 50.0, 80.0])
    db.upsert_prices(bars)
    db.upsert_actions(_act(3, "dividend", 1.0))
    month = {"start": DAYS[0], "end": DAYS[1]}  # the dividend is after the range

    def both(expected_bars: pd.DataFrame, expected_actions: pd.DataFrame) -> None:
        for how in ("splits", "all"):
            want = reference(expected_bars, expected_actions, how)
            _close(db.read_table("prices", adjust=how), want)
            _close(db.read_table("prices", adjust=how, **month), want.iloc[:2])

    acts = _act(3, "dividend", 1.0)
    both(bars, acts)
    db.upsert_actions(_act(2, "split", 2.0))  # a new split
    acts = pd.concat([acts, _act(2, "split", 2.0)])
    both(bars, acts)
    db.upsert_actions(_act(3, "dividend", 4.0))  # a corrected dividend (upserted)
    acts = pd.concat([_act(3, "dividend", 4.0), _act(2, "split", 2.0)])
    both(bars, acts)
    db.upsert_actions(_act(1, "dividend", 0.5))  # a dividend inside the range
    acts = pd.concat([acts, _act(1, "dividend", 0.5)])
    both(bars, acts)
    fixed = _bars([10.0, 20.0, 25.0, 50.0, 80.0])  # the close dividends are measured by
    db.upsert_prices(fixed)
    both(fixed, acts)


def test_pinned_versions_keep_their_pairing_with_a_warm_cache(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    v0 = db.upsert_prices(_bars([10.0, 10.0, 10.0, 10.0])).version
    db.upsert_actions(_act(2, "dividend", 1.0))
    v1 = db.upsert_prices(_bars([10.0, 20.0, 10.0, 10.0])).version
    db.upsert_actions(_act(3, "split", 2.0))
    newest = db.read_table("prices", adjust="all")["close"].tolist()
    assert newest == pytest.approx([5.0 * 0.95, 10.0 * 0.95, 5.0, 10.0], rel=1e-12)
    for _ in range(2):  # cold, then from the cache
        assert db.read_table("prices", version=v0, adjust="all")["close"].tolist() == [10.0] * 4
        at_v1 = db.read_table("prices", version=v1, adjust="all")["close"].tolist()
        assert at_v1 == pytest.approx([10.0 * 0.95, 20.0 * 0.95, 10.0, 10.0], rel=1e-12)
        assert db.read_table("prices", adjust="all")["close"].tolist() == newest
        assert ParquetDB(tmp_path / "db").read_table("prices", version=v1, adjust="all")[
            "close"
        ].tolist() == pytest.approx(at_v1, rel=0)


def test_concurrent_cold_reads_on_one_handle(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    db = ParquetDB(tmp_path / "db")
    frames = [_bars([10.0 + k + i for k in range(30)], f"T{i}") for i in range(8)]
    db.upsert_prices(pd.concat(frames))
    db.upsert_actions(
        pd.concat([_act(d, "dividend", 0.1 * (i + 1), f"T{i}") for i in range(8) for d in (7, 21)])
    )
    ranges = [(DAYS[a], DAYS[a + 4]) for a in range(0, 25, 3)]
    want = [
        ParquetDB(tmp_path / "db").read_arrow("prices", start=s, end=e, adjust="all")
        for s, e in ranges
    ]
    shared = ParquetDB(tmp_path / "db")
    with ThreadPoolExecutor(8) as pool:
        got = list(
            pool.map(
                lambda r: shared.read_arrow("prices", start=r[0], end=r[1], adjust="all"),
                ranges * 3,
            )
        )
    for k, table in enumerate(got):
        assert table.equals(want[k % len(ranges)])
