"""The dashboard's pages link only relatively (no scheme, no host, no leading '/'), so it
works behind a reverse proxy that serves it under a path prefix."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from helpers.bars import make_bars
from helpers.dashboard import local_client
from tickvault import ParquetDB
from tickvault.dashboard import create_app


def test_every_link_is_relative(tmp_path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["AAPL", "EUR/USD"], periods=3))
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        for page, prefix in [("/", "./"), ("/tickers", "./"), ("/runs", "./"),
                             ("/tickers/AAPL", "../"), ("/tickers/EUR/USD", "../../")]:  # fmt: skip
            html = client.get(page).text
            links = re.findall(r'(?:href|src)="([^"]*)"', html)
            assert links, page
            for link in links:
                assert not link.startswith(("/", "http:", "https:")), (page, link)
            assert f'href="{prefix}static/style.css"' in html, page
            # each relative link resolves to a page the dashboard serves
            for link in links:
                target = urljoin("http://127.0.0.1" + page, link.replace("&amp;", "&"))
                assert client.get(target).status_code == 200, (page, link, target)
        client.get("/api/overview?wait_verify=1")
