"""Bar responses are bounded whatever the table holds (issue 26 item 3): the chart gets at
most MAX_CANDLES candles (a long range aggregated on the server: open first, high max, low
min, close last, volume sum), JSON bars come in pages with a link to the next one, CSV
downloads are streamed in pieces, and a real server's memory does not grow with the
number of bars a request covers."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import numpy as np
import pandas as pd
import pytest

from helpers.dashboard import TestClient, daily_bars, get_json, local_client, today
from helpers.serve import serve
from tickvault import ParquetDB, fetch_and_write
from tickvault.csv_export import to_csv
from tickvault.dashboard import create_app
from tickvault.dashboard.bars import CSV_ROWS, DEFAULT_PAGE, MAX_CANDLES, MAX_PAGE
from tickvault.formats import iso_utc
from tickvault.sources import DemoSource

DAILY = 6000  # bars of LONG: one a day for 16 years
MINUTES = 25_000  # bars of MINUTE: one a minute for 17 days


def minute_bars(ticker: str, n: int, start: str = "2024-01-02") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="min", tz="UTC")
    rng = np.random.default_rng(7)
    close = 100 + np.abs(np.cumsum(rng.normal(0, 0.05, n)))
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": ts,
            "open": close + rng.normal(0, 0.01, n),
            "high": close + 0.2,
            "low": close - 0.2,
            "close": close,
            "volume": rng.integers(1, 1000, n).astype("float64"),
        }
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ParquetDB, TestClient]]:
    db = ParquetDB(tmp_path_factory.mktemp("bounded") / "db")
    db.upsert_prices(daily_bars("LONG", today(), DAILY))
    db.upsert_prices(minute_bars("MINUTE", MINUTES))
    db.upsert_prices(daily_bars("SHORT", today(), 50))
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        yield db, client
        client.get("/api/overview?wait_verify=1")
    db.close()


def _ns(times: object) -> np.ndarray:
    """Timestamps (ISO strings or a tz-aware Series) as int64 ns since the epoch (UTC)."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert(None)
    return index.as_unit("ns").asi8


def check_candles(raw: pd.DataFrame, bars: dict[str, list]) -> None:
    """Each candle is the OHLCV of the raw bars from its timestamp to its timestamp_end,
    and the candles cover every bar once, in order."""
    t0, t1, ts = _ns(bars["timestamp"]), _ns(bars["timestamp_end"]), _ns(raw["timestamp"])
    assert (t0 <= t1).all() and (t1[:-1] < t0[1:]).all()
    which = np.searchsorted(t0, ts, side="right") - 1
    assert (which >= 0).all() and (ts <= t1[which]).all()  # no bar outside the candles
    groups = raw.groupby(which)
    want = pd.DataFrame(
        {
            "open": groups["open"].first(),
            "high": groups["high"].max(),
            "low": groups["low"].min(),
            "close": groups["close"].last(),
            "volume": groups["volume"].sum(),
            "bars": groups.size(),
        }
    )
    assert len(want) == len(t0)  # no empty candle
    for col in ["open", "high", "low", "close", "volume"]:
        assert bars[col] == pytest.approx(want[col].tolist(), rel=1e-12), col
    assert bars["bars"] == want["bars"].tolist()
    assert (t0 == ts[groups.head(1).index]).all()  # the candle's first bar's time
    assert (t1 == ts[groups.tail(1).index]).all()  # and its last bar's


@pytest.mark.parametrize(("ticker", "n"), [("LONG", DAILY), ("MINUTE", MINUTES)])
def test_a_long_range_is_aggregated_into_at_most_max_candles(big, ticker: str, n: int):
    db, client = big
    data = get_json(client, f"/api/tickers/{ticker}?range=all&latest=30")
    assert data["count"] == n  # bars in the range, as before
    bars = data["bars"]
    assert MAX_CANDLES // 4 < len(bars["timestamp"]) <= MAX_CANDLES
    assert data["candles"] == {
        "count": len(bars["timestamp"]),
        "max": MAX_CANDLES,
        "aggregated": True,
        "seconds": data["candles"]["seconds"],
    }
    raw = db.read_table(tickers=ticker)
    check_candles(raw, bars)
    assert sum(bars["bars"]) == n
    newest = raw.iloc[::-1].head(30)
    assert [b["timestamp"] for b in data["latest"]] == [iso_utc(t) for t in newest.timestamp]
    assert [b["close"] for b in data["latest"]] == pytest.approx(newest["close"].tolist())

    html = client.get(f"/tickers/{ticker}?range=all").text  # the page embeds the same
    embedded = re.search(r'<script type="application/json" id="bars-data">(.*?)</script>', html)
    assert embedded is not None and json.loads(embedded.group(1)) == bars
    assert f'data-count="{n}"' in html


def test_a_range_within_the_cap_gets_the_bars_themselves(big):
    db, client = big
    data = get_json(client, "/api/tickers/LONG?range=1y")
    raw = db.read_table(tickers="LONG", start=data["start"])
    assert data["count"] == len(raw) == len(data["bars"]["timestamp"]) <= MAX_CANDLES
    assert data["candles"]["aggregated"] is False and "timestamp_end" not in data["bars"]
    assert data["bars"]["timestamp"] == [iso_utc(t) for t in raw["timestamp"]]
    assert data["bars"]["close"] == pytest.approx(raw["close"].tolist(), rel=1e-12)


def _pages(client: TestClient, url: str) -> list[dict]:
    pages = [get_json(client, url)]
    while pages[-1]["next"] is not None:
        assert len(pages) < 100
        pages.append(get_json(client, urljoin("http://127.0.0.1" + url, pages[-1]["next"])))
    return pages


def _frame(pages: list[dict]) -> pd.DataFrame:
    frame = pd.concat([pd.DataFrame(p["bars"]) for p in pages], ignore_index=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def test_json_bars_come_in_pages_with_a_link_to_the_next(big):
    db, client = big
    pages = _pages(client, "/api/tickers/LONG/bars.json")
    assert [p["count"] for p in pages] == [DEFAULT_PAGE] * 6  # 6000 bars
    assert pages[-1]["next"] is None and pages[-1]["next_start"] is None
    assert pages[0]["next_start"] == pages[1]["bars"]["timestamp"][0]
    got, want = _frame(pages), db.read_table(tickers="LONG")
    assert (got["timestamp"] == want["timestamp"]).all()
    for col in ["open", "high", "low", "close", "volume"]:
        assert got[col].tolist() == pytest.approx(want[col].tolist(), rel=1e-12), col

    part = _pages(
        client, "/api/tickers/MINUTE/bars.json?limit=7000&start=2024-01-05&end=2024-01-15"
    )
    got = _frame(part)
    want = db.read_table(tickers="MINUTE", start="2024-01-05", end="2024-01-15")
    assert [p["count"] for p in part] == [7000] * 2 + [len(want) - 14000]
    assert (got["timestamp"] == want["timestamp"]).all()
    assert all("end=2024-01-15" in p["next"] for p in part[:-1])


@pytest.mark.parametrize(
    ("query", "word"),
    [(f"limit={MAX_PAGE + 1}", "limit="), ("limit=0", "limit="), ("version=x", "version=")],
)
def test_a_page_larger_than_the_limit_is_a_400(big, query: str, word: str):
    _, client = big
    err = get_json(client, f"/api/tickers/LONG/bars.json?{query}", status=400)
    assert word in err["message"]
    assert get_json(client, f"/api/tickers/MINUTE/bars.json?limit={MAX_PAGE}")["count"] == MAX_PAGE


def test_pages_stay_on_the_version_of_the_first(tmp_path: Path):
    # no background compaction: the versions compared are the upserts' own
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(daily_bars("PIN", today(), 2500))
    with local_client(create_app(db.path)) as client:
        first = get_json(client, "/api/tickers/PIN/bars.json")
        changed = daily_bars("PIN", today(), 2500).assign(close=5000.0, high=5001.0)
        db.upsert_prices(changed)  # a new version between page 1 and page 2
        second = get_json(client, "/api/tickers/PIN/bars.json" + first["next"])
        assert second["version"] == first["version"] < db.version
        assert 5000.0 not in second["bars"]["close"]
        fresh = get_json(client, "/api/tickers/PIN/bars.json")
        assert fresh["version"] == db.version and set(fresh["bars"]["close"]) == {5000.0}
        too_new = get_json(client, f"/api/tickers/PIN/bars.json?version={db.version + 1}", 400)
        assert "version=" in too_new["message"]
    db.close()


def test_adjusted_pages_equal_the_adjusted_read(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["NVDA"], DemoSource(as_of="2024-06-28"), db, start="2024-01-01")
    with local_client(create_app(db.path)) as client:
        pages = _pages(client, "/api/tickers/NVDA/bars.json?adjust=all&limit=40")
        assert len(pages) > 2 and all("adjust=all" in p["next"] for p in pages[:-1])
        want = db.read_table(tickers="NVDA", adjust="all")
        assert _frame(pages)["close"].tolist() == pytest.approx(want["close"].tolist())
    db.close()


def test_a_big_csv_is_streamed_and_equals_the_table(big):
    db, client = big
    r = client.get("/api/tickers/MINUTE/bars.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "content-length" not in r.headers  # streamed, not built whole
    assert r.text == to_csv(db.read_table(tickers="MINUTE"))
    small = client.get("/api/tickers/SHORT/bars.csv")  # fits in one piece: one response
    assert small.headers["content-length"] == str(len(small.content))
    assert small.text == to_csv(db.read_table(tickers="SHORT"))
    window = client.get("/api/tickers/MINUTE/bars.csv?start=2024-01-03&end=2024-01-09")
    want = db.read_table(tickers="MINUTE", start="2024-01-03", end="2024-01-09")
    assert len(want) > 2 * CSV_ROWS and window.text == to_csv(want)
    empty = client.get("/api/tickers/MINUTE/bars.csv?start=2030-01-01")
    assert empty.status_code == 200
    assert list(pd.read_csv(io.StringIO(empty.text)).columns) == list(want.columns)


# -- a real server's memory ---------------------------------------------------------------


def _peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


@pytest.mark.slow
def test_memory_does_not_grow_with_the_bars_a_request_covers(tmp_path: Path):
    """400,000 minute bars of one ticker (a 43 MB CSV): downloading them, charting them
    all and paging through them raise the server's peak memory by far less than the bars
    take (the code before the caps grew by 100 MB for the CSV and 300 MB for the chart)."""
    n = 400_000
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(minute_bars("BIG", n, start="2000-01-03"))
    db.close()
    with serve(tmp_path / "db") as site:
        site.get("/api/tickers/BIG?range=1m")  # imports, caches and pools warmed up
        site.get("/api/tickers/BIG/bars.csv?start=2000-09-01")
        before = _peak_kb(site.proc.pid)
        t0 = time.monotonic()
        lines = 0
        with httpx.stream("GET", site.url + "/api/tickers/BIG/bars.csv", timeout=300) as r:
            assert r.status_code == 200
            for chunk in r.iter_text():
                lines += chunk.count("\n")
        assert lines == n + 1
        chart = site.get("/api/tickers/BIG?range=all").json()
        assert chart["count"] == n and len(chart["bars"]["timestamp"]) <= MAX_CANDLES
        page = site.get(f"/api/tickers/BIG/bars.json?limit={MAX_PAGE}&start=2000-05-01").json()
        assert page["count"] == MAX_PAGE and page["next"]
        grown_mb = (_peak_kb(site.proc.pid) - before) / 1024
        assert grown_mb < 40, (grown_mb, time.monotonic() - t0)
