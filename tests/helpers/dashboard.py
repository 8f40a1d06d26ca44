"""A demo database with fresh, aging and stale tickers, a local test client and checked
JSON/HTML getters, shared by the dashboard's API, browser and CLI tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault import ParquetDB

with warnings.catch_warnings():
    # starlette asks for httpx2 but works with httpx; the warning is about the test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def today() -> pd.Timestamp:
    """Midnight UTC of the current day, read when a test builds its data (not at import:
    a suite that runs across midnight would otherwise expect ages one day off)."""
    return pd.Timestamp.now(tz="UTC").normalize()


FRESH = ["AAPL", "MSFT", "NVDA"]


AGING = ["IBM"]  # last bar 4 days ago


STALE = ["GE", "XOM"]  # last bar 30 days ago


def daily_bars(ticker: str, last: pd.Timestamp, periods: int) -> pd.DataFrame:
    dates = pd.date_range(end=last, periods=periods, freq="D", tz="UTC")
    rng = np.random.default_rng(sum(map(ord, ticker)))
    close = 100 + np.cumsum(rng.normal(0, 1, periods))
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": dates,
            "open": close - 0.3,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": rng.integers(100, 10_000, periods).astype("float64"),
        }
    )


def make_demo_db(path: Path) -> ParquetDB:
    """Fresh, aging and stale tickers, one clean run and one run with errors."""
    db = ParquetDB(path)
    day = today()
    frames = [daily_bars(t, day, 400) for t in FRESH]
    frames += [daily_bars(t, day - pd.Timedelta(days=4), 200) for t in AGING]
    frames += [daily_bars(t, day - pd.Timedelta(days=30), 100) for t in STALE]
    db.upsert_prices(pd.concat(frames, ignore_index=True))
    db.record_run(
        {
            "run_id": "run-ok",
            "started": "2024-05-01T06:00:00+00:00",
            "finished": "2024-05-01T06:00:05+00:00",
            "source": "demo",
            "total": 6,
            "written": 6,
            "failed": 0,
            "rows": 1800,
            "seconds": 5.0,
            "errors": {},
        }
    )
    db.record_run(
        {
            "run_id": "run-bad",
            "started": "2024-05-02T06:00:00+00:00",
            "finished": "2024-05-02T06:00:07+00:00",
            "source": "yahoo",
            "total": 8,
            "written": 6,
            "failed": 2,
            "rows": 12,
            "seconds": 7.25,
            "errors": {
                "FOO": "TickerNotFound: yahoo does not know 'FOO'",
                "BAR": "SourceUnavailable: timed out after 3 attempts",
            },
        }
    )
    return db


def local_client(app: Any, **kwargs: Any) -> TestClient:
    """Starlette's test client, sending ``Host: 127.0.0.1`` (the dashboard answers only
    local names, not the client's default ``testserver``)."""
    return TestClient(app, base_url="http://127.0.0.1", **kwargs)


def get_json(client: TestClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def get_html(client: TestClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "Traceback" not in r.text
    return r.text
