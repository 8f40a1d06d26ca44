"""End to end: the real server on a free port, driven by Debian's chromium via Playwright.

CI installs chromium (scripts/test.sh); a missing browser fails this test, it never skips.
Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import uvicorn

from helpers.dashboard import AGING, FRESH, STALE, make_demo_db
from tickvault.dashboard import create_app
from tickvault.data_freshness import get_price_data_freshness

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TICKVAULT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class ServerThread:
    """uvicorn serving an app on 127.0.0.1 on a free port, in a background thread."""

    def __init__(self, app: object) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            self.thread.join(0.05)
        raise RuntimeError("the dashboard server did not start within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"chromium is not installed at {CHROMIUM}: the dashboard's browser test needs it. "
            "Install it with `apt-get install -y chromium` (scripts/test.sh does this in CI) "
            "or point TICKVAULT_CHROMIUM at a chromium binary."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_dashboard_in_a_real_browser(tmp_path: Path, browser: object):
    db = make_demo_db(tmp_path / "db")
    status = get_price_data_freshness(db)["status"]
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    foreign: list[str] = []
    with ServerThread(create_app(db.path)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "request",
            lambda r: None if r.url.startswith(server.url) else foreign.append(r.url),
        )

        # overview: the library's status and the ticker count
        page.goto(server.url + "/")
        # one verdict: the worst ticker's (two are stale)
        assert status == "🔴 STALE (30 days)"  # the library's text; the page draws the mark
        assert (page.text_content("#overall-status") or "").strip() == "STALE (30 days)"
        assert page.locator("#overall-status svg.icon-stale").count() == 1
        box = page.locator("#overall-status svg").bounding_box()  # drawn, without any font
        assert box is not None and box["width"] >= 8 and box["height"] >= 8, box
        assert "lvl-stale" in (page.get_attribute("#overall", "class") or "")
        n = len(FRESH + AGING + STALE)
        assert page.get_attribute("#ticker-count", "data-value") == str(n)
        assert page.text_content("#ticker-count") == str(n)
        page.wait_for_selector("#verify[data-state=ok]", timeout=15_000)  # verify finished
        page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

        # tickers: filter to stale ones with the status control
        page.click("text=Tickers")
        page.wait_for_selector("#tickers-table")
        assert page.locator("#tickers-table tbody tr").count() == n
        with page.expect_navigation():
            page.select_option("select[name=stale]", "true")
        assert "stale=true" in page.url
        rows = page.locator("#tickers-table tbody tr")
        assert rows.count() == len(STALE)
        assert sorted(rows.locator("td:first-child").all_text_contents()) == sorted(STALE)
        stale_cells = page.locator("#tickers-table tbody td.lvl-stale")
        assert {t.strip() for t in stale_cells.all_text_contents()} == {"STALE (30 days)"}
        assert page.locator("#tickers-table tbody td.lvl-stale svg.icon-stale").count() == len(
            STALE
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard-tickers-stale.png"), full_page=True)

        # sort by age, newest first, with the column header
        page.click("th a[data-sort=age]")
        page.wait_for_url("**sort=age**")

        # a ticker page: the chart draws one candle per bar
        page.click(f"#tickers-table a:text-is('{STALE[0]}')")
        page.wait_for_selector("#chart[data-rendered=true]")
        count = int(page.get_attribute("#chart", "data-count") or 0)
        points = int(page.get_attribute("#chart", "data-points") or 0)
        assert count == 100 and points == count  # the 1Y default covers all 100 bars
        assert page.locator("#chart svg .candle").count() == points
        assert page.locator("#chart svg .vol").count() == points
        assert page.locator("#latest-bars tbody tr").count() == 20
        last = (pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=30)).date()
        assert page.text_content("#latest-bars tbody tr:first-child td") == str(last)
        page.hover("#chart svg", position={"x": 300, "y": 150})
        assert "O " in (page.text_content("#chart-tip") or "")
        page.screenshot(path=str(ARTIFACTS / "dashboard-ticker.png"), full_page=True)

        # another range redraws; the CSV link downloads the bars
        page.goto(server.url + f"/tickers/{FRESH[0]}?range=all")
        page.wait_for_selector("#chart[data-rendered=true]")
        assert page.get_attribute("#chart", "data-bars") == "400"
        assert int(page.get_attribute("#chart", "data-points") or 0) > 100
        with page.expect_download() as dl:
            page.click("#csv-link")
        csv_path = tmp_path / "bars.csv"
        dl.value.save_as(csv_path)
        assert len(pd.read_csv(csv_path)) == 400

        # runs: errors per ticker open on click
        page.click("text=Runs")
        page.click("details.run-errors summary")
        assert page.is_visible("text=timed out after 3 attempts")
        page.screenshot(path=str(ARTIFACTS / "dashboard-runs.png"), full_page=True)
        page.close()
    db.close()
    assert problems == []
    assert foreign == []  # every asset is served by the dashboard itself


def test_missing_database_page_in_a_browser(tmp_path: Path, browser: object):
    with ServerThread(create_app(tmp_path / "none")) as server:
        page = browser.new_page()  # type: ignore[attr-defined]
        response = page.goto(server.url + "/")
        assert response is not None and response.status == 503
        assert "Database not found" in (page.text_content("#error h1") or "")
        page.close()


def test_a_long_range_is_drawn_from_at_most_max_candles(tmp_path: Path, browser: object):
    """6000 daily bars: the page embeds at most MAX_CANDLES server candles, the chart
    draws them (merging further to fit the width) and the tooltip says how many bars a
    candle holds (issue 26 item 3)."""
    from helpers.dashboard import daily_bars, today
    from tickvault import ParquetDB
    from tickvault.dashboard.bars import MAX_CANDLES

    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(daily_bars("LONG", today(), 6000))
    problems: list[str] = []
    with ServerThread(create_app(db.path)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(server.url + "/tickers/LONG?range=all")
        page.wait_for_selector("#chart[data-rendered=true]")
        assert page.get_attribute("#chart", "data-count") == "6000"
        candles = int(page.get_attribute("#chart", "data-bars") or 0)
        assert 0 < candles <= MAX_CANDLES
        assert page.get_attribute("#chart-note", "data-candles") == str(candles)
        points = int(page.get_attribute("#chart", "data-points") or 0)
        assert 0 < points <= candles and page.locator("#chart svg .candle").count() == points
        page.hover("#chart svg", position={"x": 300, "y": 150})
        tip = page.text_content("#chart-tip") or ""
        assert " – " in tip and " bars)" in tip, tip
        page.screenshot(path=str(ARTIFACTS / "dashboard-ticker-long.png"), full_page=True)
        page.close()
    db.close()
    assert problems == []


def _overlaps(boxes: list[dict[str, float]]) -> list[tuple[int, int]]:
    """Pairs of label boxes (page pixels) that share any area, by index."""
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    ]


@pytest.mark.parametrize("width", [1400, 400])
def test_time_axis_labels_never_overlap_on_minute_bars(tmp_path: Path, browser: object, width: int):
    """The chart's time labels of minute bars (long: date, time and zone) are measured in
    the page: no two bounding boxes overlap, wide or narrow, and there are at least two."""
    from tickvault import ParquetDB, fetch_and_write

    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, interval="1m", start="2024-06-03", end="2024-06-05")
    problems: list[str] = []
    with ServerThread(create_app(db.path)) as server:
        page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        for query in ("range=all", "start=2024-06-03&end=2024-06-03"):
            page.goto(server.url + f"/tickers/AAPL?interval=1m&{query}")
            page.wait_for_selector("#chart[data-rendered=true]")
            labels = page.locator("#chart svg .axis text[text-anchor=middle]")
            boxes = [labels.nth(k).bounding_box() for k in range(labels.count())]
            texts = labels.all_text_contents()
            assert len(boxes) >= 2 and all(b is not None for b in boxes), texts
            if width == 1400:  # wide: the full label; narrow: month-day and time
                assert all(t.endswith(" EDT") for t in texts), texts
            else:
                assert all(len(t) == len("06-03 10:42") for t in texts), texts
            assert _overlaps(boxes) == [], (width, query, texts)  # type: ignore[arg-type]
            chart = page.locator("#chart svg").bounding_box()
            assert chart is not None
            assert all(b["x"] >= chart["x"] - 0.5 for b in boxes if b)  # none clipped left
            right = chart["x"] + chart["width"] + 0.5
            assert all(b["x"] + b["width"] <= right for b in boxes if b), texts
        page.screenshot(path=str(ARTIFACTS / f"dashboard-minute-axis-{width}.png"), full_page=True)
        page.close()
    db.close()
    assert problems == []
