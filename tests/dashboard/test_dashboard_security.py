"""The dashboard's security, over HTTP against a real ``tickvault serve`` on 127.0.0.1:
foreign Host headers (DNS rebinding), security headers, the warning for a public bind
address, the optional token, ordinary input that must not be a 500, symbols with ``/`` and
non-Latin letters, and what the server logs."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from helpers.dashboard import TestClient, daily_bars, make_demo_db, today
from helpers.serve import Served, serve
from tickvault.dashboard import create_app
from tickvault.errors import ConfigError

TOKEN = "s3cret-Token_0123456789abcdef"
ODD = ["EUR/USD", "日本", "BRK-B"]  # symbols beside the demo database's tickers


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo database plus symbols with '/', non-Latin letters and a '-', served with
    the default options."""
    path = tmp_path_factory.mktemp("security") / "db"
    db = make_demo_db(path)
    db.upsert_prices(pd.concat([daily_bars(t, today(), 5) for t in ODD], ignore_index=True))
    db.close()
    with serve(path) as s:
        yield s


def hosts(port: int, names: list[str]) -> list[str]:
    return [n.format(port=port) for n in names]


# -- 1. Host header: DNS rebinding --------------------------------------------------------

FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "127.0.0.1.evil.example:{port}",
    "localhost.evil.example",
    "10.1.2.3:{port}",
    "[::2]:{port}",
    "",
]
LOCAL_HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LocalHost", "127.0.0.1"]


@pytest.mark.slow
def test_a_foreign_host_header_is_refused(site: Served):
    for host in hosts(site.port, FOREIGN_HOSTS):
        for path in ["/", "/api/runs", "/api/overview", "/tickers/", "/static/style.css"]:
            r = site.get(path, headers={"Host": host})
            assert r.status_code == 400, (host, path, r.status_code)
            assert str(site.db) not in r.text  # nothing about the database leaks
            assert "location" not in r.headers
        assert "host" in site.get("/api/runs", headers={"Host": host}).json()["message"]


def test_local_host_names_are_served(site: Served):
    for host in hosts(site.port, LOCAL_HOSTS):
        r = site.get("/", headers={"Host": host})
        assert r.status_code == 200, host
        assert site.get("/api/runs", headers={"Host": host}).status_code == 200


def test_links_and_redirects_are_relative(site: Served):
    for page in ["/", "/tickers", "/tickers/AAPL", "/runs", "/nope"]:
        html = site.get(page, headers={"Host": f"localhost:{site.port}"}).text
        assert "http://" not in html and "localhost" not in html, page
        prefix = "../" if page == "/tickers/AAPL" else "./"
        assert f'href="{prefix}static/style.css"' in html
    for path, target in [
        ("/tickers/", "/tickers"),
        ("/runs/", "/runs"),
        ("/api/overview/", "/api/overview"),
        ("/tickers/AAPL/", "/tickers/AAPL"),
        ("/tickers/AAPL/?range=all", "/tickers/AAPL?range=all"),
    ]:
        r = site.get(path, headers={"Host": f"localhost:{site.port}"})
        assert r.is_redirect and r.headers["location"] == target, (path, r.headers)


@pytest.mark.slow
def test_allowed_host_option_admits_a_reverse_proxy_name(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    args = ["--allowed-host", "dash.example.com", "--allowed-host", "*.internal.example"]
    with serve(tmp_path / "db", *args) as s:
        for host in ["dash.example.com", "DASH.example.com:443", "a.internal.example"]:
            assert s.get("/api/runs", headers={"Host": host}).status_code == 200, host
        for host in hosts(s.port, LOCAL_HOSTS):
            assert s.get("/api/runs", headers={"Host": host}).status_code == 200, host
        for host in ["evil.example", "dash.example.com.evil.example", "internal.example.evil"]:
            assert s.get("/api/runs", headers={"Host": host}).status_code == 400, host


def test_an_embedded_app_checks_hosts_too(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    for allowed, status in [((), 400), (["testserver"], 200), (["*"], 200)]:
        app = create_app(tmp_path / "db", allowed_hosts=allowed)
        with TestClient(app) as client:  # sends Host: testserver
            assert client.get("/api/runs").status_code == status, allowed


# -- 2. security headers ------------------------------------------------------------------

HTML_PAGES = ["/", "/tickers", "/tickers/AAPL", "/runs", "/nope", "/tickers?sort=bad"]
OTHER = ["/api", "/api/overview", "/api/tickers/AAPL/bars.csv", "/static/style.css", "/api/x"]


def test_every_response_carries_security_headers(site: Served):
    responses = {p: site.get(p) for p in HTML_PAGES + OTHER}
    responses["foreign host"] = site.get("/", headers={"Host": "evil.example"})
    for what, r in responses.items():
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert "server" not in r.headers, (what, r.headers.get("server"))
        if r.headers["content-type"].startswith("text/html"):
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, what
            assert r.headers["referrer-policy"] == "no-referrer", what
    assert {responses[p].headers["content-type"][:9] for p in HTML_PAGES} == {"text/html"}


def test_pages_need_no_inline_code_that_the_policy_would_block(site: Served):
    for page in [*HTML_PAGES, "/?wait_verify=0", "/tickers/EUR%2FUSD"]:
        html = site.get(page).text
        scripts = re.findall(r"<script\b[^>]*>", html)
        inline = [t for t in scripts if "src=" not in t and 'type="application/json"' not in t]
        assert inline == [], (page, inline)
        assert re.search(r"<[^>]*\sstyle=", html) is None, page
        assert re.search(r"<[^>]*\son[a-z]+=", html) is None, page  # no onclick= etc.
        assert "javascript:" not in html, page


def test_other_methods_are_405_with_an_allow_header(site: Served):
    for method, path in [
        ("POST", "/api/tickers"),
        ("DELETE", "/tickers/AAPL"),
        ("PUT", "/"),
        ("POST", "/static/style.css"),
    ]:
        r = site.request(method, path)
        assert r.status_code == 405, (method, path)
        assert "GET" in r.headers["allow"], (method, path)
        assert r.headers["x-content-type-options"] == "nosniff"


# -- 3. a public bind address and the token -----------------------------------------------


@pytest.mark.slow
def test_a_public_bind_address_warns_once_on_stderr(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    with serve(tmp_path / "db", "--host", "0.0.0.0") as s:
        # IP literals cannot be rebound: any address of this machine is served
        assert s.get("/api/runs", headers={"Host": f"192.0.2.7:{s.port}"}).status_code == 200
        assert s.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400
    warnings = [line for line in s.stderr.splitlines() if "authentication" in line]
    assert len(warnings) == 1, s.stderr
    assert "no authentication" in warnings[0] and "other machines" in warnings[0]


def _assert_refused(r: httpx.Response, db: Path) -> None:
    assert r.status_code == 401, (r.status_code, r.text[:200])
    assert str(db) not in r.text and "AAPL" not in r.text
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.slow
def test_the_token_guards_every_route(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    with serve(tmp_path / "db", "--token", TOKEN) as s:
        for path in ["/", "/tickers/AAPL", "/api/runs", "/api/tickers/AAPL/bars.csv", "/static/x"]:
            _assert_refused(s.get(path), s.db)
            _assert_refused(s.get(path, headers={"Authorization": "Bearer wrong"}), s.db)
            _assert_refused(s.get(path, headers={"Authorization": f"Basic {TOKEN}"}), s.db)
            _assert_refused(s.get(path, cookies={"tickvault_token": TOKEN[:-1]}), s.db)
        assert s.get("/api/runs").json()["status"] == 401
        ok = s.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["count"] == 2
        _assert_refused(s.get(f"/?token={TOKEN}x"), s.db)

        # once as a query parameter: a cookie, and the token leaves the address bar
        r = s.get(f"/tickers?q=A&token={TOKEN}&sort=age")
        assert r.status_code == 303 and r.headers["location"] == "/tickers?q=A&sort=age"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("tickvault_token=") and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        page = s.get("/tickers?q=A&sort=age", cookies={"tickvault_token": TOKEN})
        assert page.status_code == 200 and "AAPL" in page.text
    assert "no authentication" not in s.stderr


@pytest.mark.slow
def test_the_token_can_come_from_the_environment(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    env = {"TICKVAULT_DASHBOARD_TOKEN": TOKEN}
    with serve(tmp_path / "db", "--host", "0.0.0.0", env=env) as s:
        _assert_refused(s.get("/api/runs"), s.db)
        assert s.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert "no authentication" not in s.stderr
    assert sum("other machines" in line for line in s.stderr.splitlines()) == 1


def _serve_fails(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``tickvault serve ARGS`` must stop at once with a usage error: its one stderr line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    full_env.update(env or {})
    argv = [sys.executable, "-m", "tickvault", "serve", "--db", str(db), "--port", "1", *args]
    r = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("tickvault serve: error: ")
    return r.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--token", "has space-0123456789"], "letters, digits"),
        (["--token", ""], "at least 16 characters"),
        (["--allowed-host", "https://dash.example.com/"], "not a host name"),
    ],
    ids=["space", "empty", "url"],
)
def test_a_bad_token_or_allowed_host_is_a_usage_error(
    tmp_path: Path, args: list[str], expected: str
):
    make_demo_db(tmp_path / "db").close()
    assert expected in _serve_fails(tmp_path / "db", *args)


@pytest.mark.slow
@pytest.mark.parametrize("token", ["x", "a1", "fifteen-chars-1"])
def test_a_short_token_is_a_usage_error_with_an_example(tmp_path: Path, token: str):
    """A token must resist guessing: at least 16 characters (issue 26 item 7)."""
    make_demo_db(tmp_path / "db").close()
    line = _serve_fails(tmp_path / "db", "--token", token)
    assert "--token" in line and "at least 16 characters" in line
    assert f"({len(token)} characters)" in line
    assert "secrets.token_urlsafe(24)" in line
    assert len(token) < 3 or token not in line  # a secret, even a bad one, is not echoed
    line = _serve_fails(tmp_path / "db", env={"TICKVAULT_DASHBOARD_TOKEN": token})
    assert "TICKVAULT_DASHBOARD_TOKEN" in line and "at least 16 characters" in line
    with pytest.raises(ConfigError, match="at least 16 characters"):
        create_app(tmp_path / "db", token=token)


@pytest.mark.slow
def test_a_token_of_16_characters_is_accepted(tmp_path: Path):
    make_demo_db(tmp_path / "db").close()
    token = "0123456789abcdef"
    with serve(tmp_path / "db", "--token", token) as s:
        assert s.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.slow
def test_token_protected_responses_are_not_stored(tmp_path: Path):
    """Pages, JSON, CSV, static files and refusals of a dashboard with a token carry
    ``Cache-Control: no-store``: no cache (the browser's, a proxy's) keeps a copy."""
    make_demo_db(tmp_path / "db").close()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve(tmp_path / "db", "--token", TOKEN) as s:
        for path in ["/", "/tickers", "/tickers/AAPL", "/runs", "/api/overview", "/api/runs",
                     "/api/tickers/AAPL", "/api/tickers/AAPL/bars.csv", "/static/style.css",
                     "/nope"]:  # fmt: skip
            for headers in [auth, {}]:
                r = s.get(path, headers=headers)
                assert r.status_code in (200, 401, 404), (path, r.status_code)
                assert r.headers.get("cache-control") == "no-store", (path, r.status_code)
        entered = s.get(f"/runs?token={TOKEN}")
        assert entered.status_code == 303 and entered.headers["cache-control"] == "no-store"
    with serve(tmp_path / "db") as s:  # no token: caching is the browser's business
        assert "no-store" not in s.get("/static/style.css").headers.get("cache-control", "")


def _timed(site: Served, headers: dict[str, str]) -> tuple[int, float]:
    t0 = time.monotonic()
    r = site.get("/api/runs", headers=headers)
    return r.status_code, time.monotonic() - t0


@pytest.mark.slow
def test_repeated_wrong_tokens_are_slowed_but_the_right_one_is_not(tmp_path: Path):
    """After a few wrong tokens from one address, each further wrong try waits a second,
    one at a time, so guessing runs at about one try per second; a request with the
    right token is answered at once all along (issue 26 item 7)."""
    make_demo_db(tmp_path / "db").close()
    right = {"Authorization": f"Bearer {TOKEN}"}
    with serve(tmp_path / "db", "--token", TOKEN) as s:
        for i in range(10):  # the first tries are free: a typo costs nothing
            status, seconds = _timed(s, {"Authorization": f"Bearer wrong-{i}"})
            assert status == 401 and seconds < 0.9, (i, seconds)
        assert all(_timed(s, {})[1] < 0.9 for _ in range(5))  # no token at all: not a guess
        results: list[tuple[int, float]] = []
        t0 = time.monotonic()
        guesses = [
            threading.Thread(
                target=lambda i=i: results.append(_timed(s, {"Authorization": f"Bearer g{i}"}))
            )
            for i in range(4)
        ]
        for t in guesses:
            t.start()
        time.sleep(0.3)
        status, seconds = _timed(s, right)
        assert status == 200 and seconds < 0.9, seconds
        for t in guesses:
            t.join(30)
        elapsed = time.monotonic() - t0
        assert sorted(r[0] for r in results) == [401] * 4
        assert elapsed >= 3.8, elapsed  # four wrong tries, one second each, one at a time
        assert _timed(s, {"Cookie": "tickvault_token=guess"})[1] >= 0.9  # cookies count too
        assert _timed(s, right)[0] == 200


# -- 4. ordinary input is never a 500 -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/tickers/AAPL?start=0001-01-01&end=9999-12-31", "start"),
        ("/api/tickers/AAPL?end=9999-12-31", "end"),
        ("/tickers/AAPL?end=9999-12-31", "end"),
        ("/api/tickers/AAPL/bars.csv?start=0001-01-01", "start"),
        ("/tickers/AAPL?start=2262-04-12", "start"),
    ],
)
def test_dates_outside_the_storable_range_are_a_400(site: Served, path: str, param: str):
    r = site.get(path)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    for word in [f"{param}=", "1677-09-21", "2262-04-11"]:
        assert word in r.text, (word, r.text[:300])
    for word in ["Error:", "Overflow", "OutOfBounds", "verify"]:
        assert word not in r.text


def test_dates_at_the_edges_of_the_range_are_served(site: Served):
    r = site.get("/api/tickers/AAPL?start=1677-09-22&end=2262-04-11")
    assert r.status_code == 200 and r.json()["count"] == 400
    assert site.get("/api/tickers/AAPL/bars.csv?end=2262-04-11").status_code == 200


def test_csv_of_a_non_latin_symbol_has_an_rfc6266_filename(site: Served):
    r = site.get("/api/tickers/%E6%97%A5%E6%9C%AC/bars.csv")
    assert r.status_code == 200
    assert r.text.count("日本") == 5
    disposition = r.headers["content-disposition"]
    assert "filename*=UTF-8''%E6%97%A5%E6%9C%AC.csv" in disposition
    assert re.search(r'filename="[\x20-\x7e]+\.csv"', disposition)
    latin = site.get("/api/tickers/BRK-B/bars.csv").headers["content-disposition"]
    assert 'filename="BRK-B.csv"' in latin


def test_symbols_with_a_slash_work_everywhere(site: Served):
    assert 'href="./tickers/EUR%2FUSD"' in site.get("/tickers").text
    page = site.get("/tickers/EUR%2FUSD")
    assert page.status_code == 200 and "EUR/USD" in page.text
    assert site.get("/api/tickers/EUR%2FUSD").json()["count"] == 5
    csv = site.get("/api/tickers/EUR%2FUSD/bars.csv")
    assert csv.status_code == 200 and csv.text.count("EUR/USD") == 5
    assert 'filename="EUR_USD.csv"' in csv.headers["content-disposition"]
    assert site.get("/api/tickers/EUR%2FGBP").status_code == 404


@pytest.mark.slow
def test_requests_in_flight_when_the_database_moves_away_are_503(tmp_path: Path):
    path = tmp_path / "db"
    db = make_demo_db(path)
    for i in range(30):  # many small files: reads take a while
        db.upsert_prices(daily_bars("AAPL", today() - pd.Timedelta(days=400 + 10 * i), 10))
    db.close()
    urls = ["/api/tickers/AAPL?range=all", "/api/tickers/AAPL/bars.csv", "/tickers/AAPL?range=all"]
    statuses: collections.Counter[int] = collections.Counter()
    bad: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=s.url, timeout=30) as client:
            while not stop.is_set():
                r = client.get(url)
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code not in (200, 503):
                        bad.append(f"{url}: {r.status_code} {r.text[:200]}")

    def seen(code: int) -> int:
        with lock:
            return statuses[code]

    with serve(path) as s:
        threads = [threading.Thread(target=hammer, args=(u,)) for u in urls * 2]
        for t in threads:
            t.start()
        try:
            for _ in range(20):
                ok = seen(200)
                while seen(200) < ok + 3:
                    time.sleep(0.01)
                path.rename(tmp_path / "moved")  # while requests are being served
                gone = seen(503)
                while seen(503) < gone + 3:
                    time.sleep(0.01)
                (tmp_path / "moved").rename(path)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
    assert bad == []
    assert statuses[200] and statuses[503]


# -- 7. the server logs what went wrong ---------------------------------------------------


def test_the_server_logs_expected_500s(tmp_path: Path):
    db = make_demo_db(tmp_path / "db")
    for f in (db.path / "prices").glob("*.parquet"):
        f.write_bytes(b"PAR1 this is not parquet")
    db.close()
    with serve(tmp_path / "db") as s:
        assert s.get("/tickers/AAPL").status_code == 500
        assert s.get("/api/tickers/AAPL/bars.csv").status_code == 500
    logged = [line for line in s.stderr.splitlines() if "WARNING" in line]
    assert any("/tickers/AAPL" in line for line in logged), s.stderr
    assert any("/api/tickers/AAPL/bars.csv" in line for line in logged), s.stderr
    assert "authentication" not in s.stderr  # 127.0.0.1: no warning about exposure
