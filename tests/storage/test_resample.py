"""Issue 23 item 4: resampling on read, checked against pandas on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tickvault import ParquetDB
from tickvault.errors import ConfigError


def random_minutes(seed: int, tickers=("AAA", "BBB", "CCC"), n: int = 3000) -> pd.DataFrame:
    """Random one-minute bars with gaps (so some buckets are empty), some vwap and
    trade_count missing, over several UTC days."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in tickers:
        minutes = np.sort(rng.choice(4 * 1440, size=n, replace=False))
        ts = pd.Timestamp("2024-03-04", tz="UTC") + pd.to_timedelta(minutes, unit="min")
        close = 50 + np.cumsum(rng.normal(0, 0.2, n))
        close = np.maximum(close, 1.0)
        opn = close + rng.normal(0, 0.1, n)
        opn = np.maximum(opn, 0.5)
        high = np.maximum(opn, close) + rng.random(n)
        low = np.minimum(opn, close) - rng.random(n) * 0.4
        vwap = low + (high - low) * rng.random(n)
        vwap[rng.random(n) < 0.2] = np.nan
        trades = rng.integers(0, 40, n).astype("float64")
        trades[rng.random(n) < 0.2] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "ticker": t,
                    "timestamp": ts,
                    "open": opn,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(0, 500, n).astype(float),
                    "vwap": vwap,
                    "trade_count": pd.array(trades, dtype="Int64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def pandas_resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The reference: pandas resample(rule, closed='left', label='left') per ticker."""
    out = []
    for t, g in df.groupby("ticker", sort=True):
        g = g.set_index("timestamp").sort_index()
        r = g.resample(rule, closed="left", label="left")
        has_vwap = g["vwap"].notna()
        pv = (g["vwap"] * g["volume"]).where(has_vwap, 0.0)
        w = g["volume"].where(has_vwap, 0.0)
        frame = pd.DataFrame(
            {
                "open": r["open"].first(),
                "high": r["high"].max(),
                "low": r["low"].min(),
                "close": r["close"].last(),
                "volume": r["volume"].sum(),
                "n": r["close"].count(),
                "pv": pv.resample(rule, closed="left", label="left").sum(),
                "w": w.resample(rule, closed="left", label="left").sum(),
                "trade_count": r["trade_count"].sum(min_count=1),
            }
        )
        frame = frame[frame["n"] > 0]  # empty buckets dropped
        frame["vwap"] = (frame["pv"] / frame["w"]).where(frame["w"] > 0)
        frame = frame.drop(columns=["n", "pv", "w"]).reset_index()
        frame.insert(0, "ticker", t)
        out.append(frame)
    return pd.concat(out, ignore_index=True)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("resample") / "db"
    db = ParquetDB(path)
    data = random_minutes(7)
    db.upsert_prices(data, interval="1m")
    yield db, data
    db.close()


@pytest.mark.parametrize(
    ("rule", "pandas_rule"), [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("1d", "1D")]
)
def test_resample_matches_pandas_on_random_bars(stored, rule, pandas_rule):
    db, data = stored
    got = db.read_table("prices", interval="1m", resample=rule)
    want = pandas_resample(data, pandas_rule)
    assert len(got) == len(want)
    assert list(got["ticker"]) == list(want["ticker"])
    assert (got["timestamp"].to_numpy() == want["timestamp"].to_numpy()).all()
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        got["vwap"].to_numpy(dtype=float, na_value=np.nan),
        want["vwap"].to_numpy(dtype=float, na_value=np.nan),
        rtol=1e-9,
    )
    assert got["trade_count"].isna().tolist() == want["trade_count"].isna().tolist()
    assert got["trade_count"].dropna().tolist() == want["trade_count"].dropna().tolist()
    assert got["vwap"].dropna().between(0, np.inf).all()


def test_resample_honours_filters_and_columns(stored):
    db, data = stored
    got = db.read_table(
        "prices",
        interval="1m",
        resample="15m",
        tickers="BBB",
        start="2024-03-05",
        end="2024-03-05 23:59",
        columns=["close"],
    )
    assert list(got.columns) == ["ticker", "timestamp", "close"]
    sub = data[
        (data.ticker == "BBB") & (data.timestamp.dt.date == pd.Timestamp("2024-03-05").date())
    ]
    want = pandas_resample(sub, "15min")
    assert list(got["close"]) == list(want["close"])


def test_resample_one_day_by_session(tmp_path):
    db = ParquetDB(tmp_path / "db")
    idx = pd.date_range("2024-11-29 14:30", "2024-11-29 17:59", freq="1min", tz="UTC")
    idx = idx.append(pd.date_range("2024-12-02 14:30", "2024-12-02 20:59", freq="1min", tz="UTC"))
    # an evening bar at 19:00 New York (00:00 UTC the next day) stays in its session
    idx = idx.append(pd.DatetimeIndex([pd.Timestamp("2024-12-03 00:00", tz="UTC")]))
    bars = pd.DataFrame(
        {
            "ticker": "AAPL",
            "timestamp": idx,
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 1.0,
        }
    )
    db.upsert_prices(bars, interval="1m")
    by_session = db.read_table("prices", interval="1m", resample="1d", calendar="XNYS")
    assert list(by_session["timestamp"]) == [
        pd.Timestamp("2024-11-29", tz="UTC"),
        pd.Timestamp("2024-12-02", tz="UTC"),
    ]
    assert list(by_session["volume"]) == [210.0, 391.0]
    by_utc_day = db.read_table("prices", interval="1m", resample="1d")
    assert list(by_utc_day["volume"]) == [210.0, 390.0, 1.0]


def test_adjusted_reads_compose_with_resampling(tmp_path):
    db = ParquetDB(tmp_path / "db")
    idx = pd.date_range("2024-06-03 13:30", periods=20, freq="1min", tz="UTC")
    idx = idx.append(pd.date_range("2024-06-04 13:30", periods=20, freq="1min", tz="UTC"))
    bars = pd.DataFrame(
        {
            "ticker": "ACME",
            "timestamp": idx,
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.0,
            "volume": 10.0,
            "vwap": 100.5,
        }
    )
    db.upsert_prices(bars, interval="1m")
    db.upsert_actions(
        pd.DataFrame(
            {"ticker": ["ACME"], "timestamp": ["2024-06-04"], "kind": ["split"], "value": [2.0]}
        )
    )
    got = db.read_table("prices", interval="1m", resample="5m", adjust="splits")
    before, after = got[got.timestamp < "2024-06-04"], got[got.timestamp >= "2024-06-04"]
    assert (before["close"] == 50.0).all() and (before["vwap"] == 50.25).all()
    assert (before["volume"] == 100.0).all()  # 5 bars x 10 shares x 2
    assert (after["close"] == 100.0).all()


@pytest.mark.parametrize(
    ("interval", "rule", "words"),
    [
        ("1m", "1m", "does not fit bars of interval '1m'"),
        ("5m", "2m", "does not fit bars of interval '5m'"),
        ("2m", "5m", "choose one of 30m, 1h, 1d"),
        ("1m", "7m", "is not a bar interval"),
    ],
)
def test_a_resample_that_does_not_fit_is_refused(tmp_path, interval, rule, words):
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        db.read_table("prices", interval=interval, resample=rule)


def test_calendar_needs_a_daily_resample(tmp_path):
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ConfigError, match="resample='1d'"):
        db.read_table("prices", interval="1m", resample="5m", calendar="XNYS")
    with pytest.raises(ConfigError, match="XNYS"):
        db.read_table("prices", interval="1m", resample="1d", calendar="NOPE")


def test_resampled_bars_are_valid_bars_again(tmp_path):
    """vwap at the bars' high: the weighted mean (162.8 x volumes / volume) rounds one ulp
    above 162.8 unless held within [low, high]; the resampled bars must be storable."""
    db = ParquetDB(tmp_path / "db")
    idx = pd.date_range("2024-03-04 14:30", periods=5, freq="1min", tz="UTC")
    bars = pd.DataFrame(
        {
            "ticker": "AAA",
            "timestamp": idx,
            "open": 162.0,
            "high": 162.8,
            "low": 161.5,
            "close": 162.5,
            "volume": [948.0, 869.0, 423.0, 273.0, 827.0],
            "vwap": 162.8,
        }
    )
    db.upsert_prices(bars, interval="1m")
    five = db.read_table("prices", interval="1m", resample="5m")
    assert five["vwap"].item() == 162.8
    db.upsert_prices(five, interval="5m")
    assert db.read_table("prices", interval="5m").equals(five)
