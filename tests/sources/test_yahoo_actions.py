"""Yahoo chart v8 dividends and splits: a recorded response served by the local server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.http_server import RECORDED, MarketServer
from tickvault import ParquetDB, fetch_and_write
from tickvault.sources import get_source
from tickvault.sources.policy import RetryPolicy


def _recorded() -> dict:
    return json.loads(RECORDED["ACME"].read_text())["chart"]["result"][0]


@pytest.mark.slow
def test_stored_actions_and_adjusted_closes_match_yahoo(
    market_server: MarketServer, tmp_path: Path
) -> None:
    source = get_source(
        "yahoo", base_url=market_server.base_url, rate_limit=None, retry_policy=RetryPolicy()
    )
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["ACME"], source, db)
    assert report["failed"] == 0, report.results["ACME"].error
    res = _recorded()
    quote, adjclose = res["indicators"]["quote"][0], res["indicators"]["adjclose"][0]["adjclose"]
    actions = db.read_table("actions")
    splits = actions[actions["kind"] == "split"]
    assert splits["value"].tolist() == [4.0]
    assert splits["timestamp"].tolist() == [pd.Timestamp("2024-01-25", tz="UTC")]
    # dividends are stored as paid: the one before the split is 4x Yahoo's split-adjusted amount
    divs = actions[actions["kind"] == "dividend"].reset_index(drop=True)
    yahoo_amounts = sorted(
        res["events"]["dividends"].values(), key=lambda d: d["date"]
    )  # oldest first
    assert divs["value"].tolist() == pytest.approx(
        [yahoo_amounts[0]["amount"] * 4, yahoo_amounts[1]["amount"]], rel=1e-12
    )
    raw = db.read_table("prices", tickers="ACME")
    before = raw["timestamp"] < pd.Timestamp("2024-01-25", tz="UTC")
    # stored bars are as traded: 4x Yahoo's close before the split
    np.testing.assert_allclose(
        raw["close"].to_numpy(), np.array(quote["close"]) * np.where(before, 4.0, 1.0), rtol=1e-12
    )
    splits_adj = db.read_table("prices", tickers="ACME", adjust="splits")
    np.testing.assert_allclose(splits_adj["close"].to_numpy(), quote["close"], rtol=1e-9)
    np.testing.assert_allclose(splits_adj["volume"].to_numpy(), quote["volume"], rtol=1e-9)
    everything = db.read_table("prices", tickers="ACME", adjust="all")
    np.testing.assert_allclose(everything["close"].to_numpy(), adjclose, rtol=1e-6)
    # a range read in the middle adjusts the same bars the same way
    part = db.read_table("prices", start="2024-01-10", end="2024-01-20", adjust="all")
    mask = (raw["timestamp"] >= "2024-01-10") & (raw["timestamp"] <= "2024-01-20")
    np.testing.assert_allclose(part["close"].to_numpy(), np.array(adjclose)[mask], rtol=1e-6)
