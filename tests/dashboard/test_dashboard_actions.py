"""The ticker page's raw/adjusted switch and its splits and dividends (page and JSON twin)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers.dashboard import get_html, get_json, local_client
from tickvault import ParquetDB, fetch_and_write
from tickvault.dashboard import create_app
from tickvault.sources import DemoSource


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dash-actions") / "db"
    db = ParquetDB(path)
    fetch_and_write(["NVDA"], DemoSource(as_of="2024-06-28"), db, start="2024-01-01")
    db.close()
    return path


@pytest.fixture(scope="module")
def client(path: Path):
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


# -- the CSV download honours ?adjust= (issue 26 item 8) ---------------------------------


def _csv(client, url: str) -> pd.DataFrame:
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    return pd.read_csv(io.StringIO(r.text), parse_dates=["timestamp"])


@pytest.mark.parametrize("adjust", ["splits", "all"])
def test_csv_download_carries_the_adjusted_prices(client, path: Path, adjust: str):
    db = ParquetDB(path, create=False)
    raw, want = db.read_table(tickers="NVDA"), db.read_table(tickers="NVDA", adjust=adjust)
    got = _csv(client, f"/api/tickers/NVDA/bars.csv?adjust={adjust}")
    assert len(got) == len(want) == len(raw)
    assert (got["timestamp"] == want["timestamp"]).all()
    for col in ["open", "high", "low", "close", "volume"]:
        assert got[col].tolist() == pytest.approx(want[col].tolist(), rel=1e-12), col
    assert got["close"].iloc[0] != pytest.approx(raw["close"].iloc[0])  # before the split
    as_traded = _csv(client, "/api/tickers/NVDA/bars.csv?adjust=raw")
    assert as_traded["close"].tolist() == pytest.approx(raw["close"].tolist(), rel=1e-12)
    db.close()


def test_the_pages_csv_link_downloads_what_the_page_shows(client):
    html = get_html(client, "/tickers/NVDA?range=all&adjust=all")
    link = re.search(r'id="csv-link" href="([^"]+)"', html)
    assert link is not None and "adjust=all" in link.group(1)
    target = "/api/tickers/" + link.group(1).split("/api/tickers/", 1)[1].replace("&amp;", "&")
    shown = get_json(client, "/api/tickers/NVDA?range=all&adjust=all")["bars"]["close"]
    assert _csv(client, target)["close"].tolist() == pytest.approx(shown, rel=1e-12)


@pytest.mark.parametrize("value", ["bogus", "adjusted", "1"])
def test_a_bad_adjust_on_the_csv_is_a_400_naming_the_choices(client, value: str):
    r = client.get(f"/api/tickers/NVDA/bars.csv?adjust={value}")
    assert r.status_code == 400, r.text[:300]
    message = r.json()["message"]
    assert f"adjust={value!r} is not one of: raw" in message
    assert "splits" in message and "all" in message
    page = client.get(f"/tickers/NVDA?adjust={value}")
    assert page.status_code == 400  # the page says the same


def test_the_csv_takes_adjust_in_any_case_like_the_page(client):
    """One adjust rule (tickvault.modes): ALL on the CSV is 'all', as in the library and CLI."""
    upper = _csv(client, "/api/tickers/NVDA/bars.csv?adjust=ALL&range=all")
    lower = _csv(client, "/api/tickers/NVDA/bars.csv?adjust=all&range=all")
    assert upper["close"].tolist() == lower["close"].tolist()


def test_a_split_stored_after_the_bars_adjusts_the_page_the_json_and_the_csv(tmp_path: Path):
    """Actions stored after the last prices commit count at once (as in read_table), for
    the page's JSON twin and the CSV download; a version asked for keeps its time's actions."""
    db = ParquetDB(tmp_path / "db")
    days = pd.bdate_range("2024-03-04", periods=4, tz="UTC")
    close = [400.0, 404.0, 101.0, 102.0]
    bars = {"ticker": "X", "timestamp": days, "open": close, "high": 405.0, "low": 99.0}
    v = db.upsert_prices(pd.DataFrame({**bars, "close": close, "volume": 1.0})).version
    db.upsert_actions(
        pd.DataFrame([{"ticker": "X", "timestamp": days[2], "kind": "split", "value": 4.0}])
    )
    with local_client(create_app(tmp_path / "db"), raise_server_exceptions=False) as c:
        page = get_json(c, "/api/tickers/X?range=all&adjust=splits")["bars"]["close"]
        assert page == [100.0, 101.0, 101.0, 102.0]
        assert _csv(c, "/api/tickers/X/bars.csv?adjust=splits")["close"].tolist() == page
        newest = get_json(c, "/api/tickers/X/bars.json?adjust=splits")["bars"]
        assert newest["close"] == page
        pinned = get_json(c, f"/api/tickers/X/bars.json?adjust=splits&version={v}")["bars"]
        assert pinned["close"] == close  # the actions of version v's time: none
    db.close()
