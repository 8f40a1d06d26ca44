"""One freshness verdict: the library, `tickvault freshness` and the dashboard (page and
JSON twin) never contradict each other. The headline is the worst ticker's status."""

from __future__ import annotations

import json

import pandas as pd

from helpers.cli import tv
from helpers.dashboard import daily_bars, get_json, local_client, today
from tickvault import ParquetDB
from tickvault.dashboard import create_app
from tickvault.data_freshness import freshness_summary, get_price_data_freshness


def test_one_stale_ticker_makes_every_view_say_stale(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        pd.concat(
            [
                daily_bars("AAPL", today(), 30),
                daily_bars("MSFT", today(), 30),
                daily_bars("XOM", today() - pd.Timedelta(days=40), 30),
            ]
        )
    )
    lib = get_price_data_freshness(db)
    assert lib["is_stale"] is True and lib["stale_tickers"] == 1
    assert lib["status"] == "🔴 STALE (40 days)" and lib["days_old"] == 40
    assert lib["status"] == freshness_summary(db)["status"]

    r = tv("freshness", "--json", db=tmp_path / "db")
    assert r.returncode == 1
    cli = json.loads(r.stdout)["summary"]

    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        api = get_json(client, "/api/overview")["freshness"]
        page = client.get("/").text
        client.get("/api/overview?wait_verify=1")
    for key in ("status", "is_stale", "stale_tickers"):
        assert lib[key] == cli[key] == api[key], key
    # the page draws its status icon itself (inline SVG, no emoji font needed)
    assert "Fresh" not in page and "STALE (40 days)" in page and "icon-stale" in page


def test_all_fresh_is_fresh_everywhere(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(daily_bars("AAPL", today(), 30))
    lib = get_price_data_freshness(db)
    assert lib["status"] == "🟢 Fresh" and lib["is_stale"] is False and lib["days_old"] == 0
    r = tv("freshness", "--json", db=tmp_path / "db")
    assert r.returncode == 0 and json.loads(r.stdout)["summary"]["stale_tickers"] == 0
