"""The ticker page's raw/adjusted switch and its splits and dividends (page and JSON twin)."""

from __future__ import annotations

import pytest

from helpers.dashboard import get_html, get_json, local_client
from tickvault import ParquetDB, fetch_and_write
from tickvault.dashboard import create_app
from tickvault.sources import DemoSource


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("dash-actions") / "db"
    db = ParquetDB(path)
    fetch_and_write(["NVDA"], DemoSource(as_of="2024-06-28"), db, start="2024-01-01")
    db.close()
    with local_client(create_app(path), raise_server_exceptions=False) as c:
        yield c
        c.get("/api/overview?wait_verify=1")


def test_json_twin_carries_actions_and_adjusted_bars(client):
    raw = get_json(client, "/api/tickers/NVDA?range=all")
    assert raw["adjust"] is None
    kinds = [a["kind"] for a in raw["actions"]]
    assert "split" in kinds and "dividend" in kinds
    assert all(0 < a["position"] < 1 for a in raw["actions"])
    adj = get_json(client, "/api/tickers/NVDA?range=all&adjust=splits")
    assert adj["adjust"] == "splits"
    assert adj["bars"]["close"][0] == pytest.approx(raw["bars"]["close"][0] / 10, rel=1e-9)
    assert adj["bars"]["close"][-1] == raw["bars"]["close"][-1]
    bad = client.get("/api/tickers/NVDA?adjust=bogus")
    assert bad.status_code == 400 and "adjust" in bad.text


def test_page_has_the_switch_and_marks(client):
    html = get_html(client, "/tickers/NVDA?range=all&adjust=all")
    assert 'id="adjust-switch"' in html and 'data-adjust="all"' in html
    assert 'class="active" data-adjust="all"' in html
    assert 'data-kind="split"' in html and "10-for-1 split" in html
