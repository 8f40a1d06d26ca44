"""Dashboard status icons need no emoji font (inline SVG drawn in the page's colours), and
the runs page shows each run's id and its skipped tickers (issue 25 item 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.cli import tv
from helpers.serve import serve
from tickvault import ParquetDB

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("icons") / "db"
    assert tv("backfill", "AAPL", "MSFT", "--start", "2024-06-03", "--end", "2024-06-14",
              "--quiet", db=path).returncode == 0  # fmt: skip
    store = ParquetDB(path)
    store.record_run({"kind": "backfill", "source": "demo", "run_id": "resumed00042",
                      "started": "2024-07-01T06:00:00Z", "finished": "2024-07-01T06:01:00Z",
                      "total": 300, "written": 200, "skipped": 100, "unchanged": 0,
                      "failed": 0, "rows": 5000, "seconds": 60.0, "errors": {}})  # fmt: skip
    store.close()
    return path


@pytest.mark.slow
def test_pages_show_status_icons_without_emoji(db: Path) -> None:
    with serve(db) as site:
        site.get("/api/overview?wait_verify=1")  # the overview then shows the verify result
        for url in ("/", "/tickers", "/tickers/AAPL"):
            r = site.get(url)
            assert r.status_code == 200, r.text[:300]
            found = EMOJI.findall(r.text)
            assert not found, (url, found[:5])
            assert '<svg class="icon' in r.text, url
        api = site.get("/api/overview").json()
    assert api["freshness"]["status"].startswith(("🟢", "🟡", "🔴", "⚪"))  # the JSON is unchanged


def test_runs_page_shows_run_id_and_skipped(db: Path) -> None:
    with serve(db) as site:
        html = site.get("/runs").text
    head = re.search(r"<thead>(.*?)</thead>", html, re.S)
    assert head is not None
    columns = re.findall(r"<th[^>]*>(.*?)</th>", head.group(1))
    assert "Run" in columns and "Skipped" in columns, columns
    row = re.search(r'<tr data-run-id="resumed00042">(.*?)</tr>', html, re.S)
    assert row is not None, html[:500]
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    at = {name: cells[i] for i, name in enumerate(columns) if i < len(cells)}
    assert at["Run"] == "resumed00042" and at["Skipped"] == "100", at
    assert at["Tickers"] == "300" and at["Written"] == "200", at
