"""A backfill says where its bars came from, and says "synthetic" whenever they are the demo
source's; demo prices sit at a plausible, per-ticker price level (issue 25 item 13)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.cli import tv
from tickvault.sources import DemoSource

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-14"]


@pytest.mark.slow
def test_the_default_demo_source_is_named_and_called_synthetic(tmp_path) -> None:
    db = tmp_path / "db"
    r = tv("backfill", "AAPL", *WINDOW, db=db)
    assert r.returncode == 0, r.stderr
    screen = r.stdout + r.stderr
    assert "from source 'demo'" in screen, screen
    assert "synthetic" in screen and "not real" in screen, screen
    again = tv("update", "AAPL", db=db)  # every time, update too
    assert "synthetic" in again.stdout + again.stderr, again.stdout + again.stderr
    doc = json.loads(tv("backfill", "MSFT", *WINDOW, "--json", db=db).stdout)
    assert doc["source"] == "demo" and doc["synthetic"] is True


@pytest.mark.slow
def test_a_real_source_is_named_and_not_called_synthetic(tmp_path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "AAPL.csv").write_text("date,open,high,low,close,volume\n2024-06-03,1,2,0.5,1.5,10\n")
    r = tv("backfill", "AAPL", *WINDOW, "--source", "csv", "--source-option",
           f"path={folder}", db=tmp_path / "db")  # fmt: skip
    assert r.returncode == 0, r.stderr
    screen = r.stdout + r.stderr
    assert "from source 'csv" in screen and "synthetic" not in screen, screen
    doc = json.loads(tv("backfill", "AAPL", *WINDOW, "--source", "csv", "--source-option",
                        f"path={folder}", "--json", db=tmp_path / "db").stdout)  # fmt: skip
    assert doc["synthetic"] is False


def test_demo_prices_sit_at_a_plausible_per_ticker_level() -> None:
    demo = DemoSource(as_of="2026-11-30")
    last, swings = [], []
    for i in range(150):
        close = demo.fetch(f"T{i:03d}", "2016-11-30", "2026-11-30")["close"].to_numpy()
        last.append(close[-1])
        swings.append(close.max() / close.min())
    for ticker in ("MSFT", "AAPL", "NVDA", "GOOG", "SPY"):
        close = demo.fetch(ticker, "2016-11-30", "2026-11-30")["close"]
        assert close.min() >= 5 and close.max() <= 2500, (ticker, close.min(), close.max())
    assert min(last) >= 5 and max(last) <= 2500, (min(last), max(last))
    assert 20 <= float(np.median(last)) <= 400, np.median(last)
    assert max(swings) < 30, max(swings)  # ten years, not a walk off to 1 cent or 20,000
    low, high = np.percentile(last, [10, 90])
    assert low < 30 and high > 150, (low, high)  # spread, not one level for all
