"""The dashboard's pages and their JSON twins, in process, against real databases."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from helpers.dashboard import (
    AGING,
    FRESH,
    STALE,
    TestClient,
    daily_bars,
    get_html,
    get_json,
    local_client,
    make_demo_db,
    today,
)
from helpers.files import tree_snapshot
from tickvault import ParquetDB
from tickvault.dashboard import create_app
from tickvault.data_freshness import freshness, get_price_data_freshness
from tickvault.formats import iso_utc

with warnings.catch_warnings():
    # starlette asks for httpx2 but works with httpx; the warning is about the test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[ParquetDB, TestClient]]:
    db = make_demo_db(tmp_path / "db")
    with local_client(create_app(db.path), raise_server_exceptions=False) as client:
        yield db, client
        client.get("/api/overview?wait_verify=1")  # no verify thread outlives the test
    db.close()


# -- overview -----------------------------------------------------------------------------


def test_overview_shows_the_library_status_counts_and_size(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    data = get_json(client, "/api/overview?wait_verify=1")
    lib = get_price_data_freshness(db)
    assert data["freshness"]["status"] == lib["status"] == "🔴 STALE (30 days)"
    assert data["summary"]["status"] == "🔴 STALE (30 days)"
    assert data["summary"]["counts"] == {
        "fresh": 3,
        "aging": 1,
        "stale": 2,
        "missing": 0,
        "future": 0,
    }
    info = db.info()["tables"]["prices"]
    assert data["tickers"] == 6 == info["tickers"]
    assert data["stored_rows"] == info["stored_rows"] == 3 * 400 + 200 + 2 * 100
    assert data["bytes"] == info["bytes"] > 0
    assert data["version"] == db.version
    assert data["first"] == info["first"] and data["last"] == info["last"]
    assert data["last_run"]["run_id"] == "run-bad"
    verify = data["verify"]
    assert verify["state"] == "ok" and verify["current"] and not verify["running"]
    assert verify["result"]["version"] == db.version
    assert verify["result"]["files_checked"] == info["files"] >= 1
    assert verify["result"]["rows_checked"] == info["stored_rows"]
    assert verify["result"]["problems"] == []

    html = get_html(client, "/")
    overall = html.split('id="overall-status">', 1)[1].split("</span>", 1)[0]
    assert overall.endswith("</svg> STALE (30 days)") and "icon-stale" in overall  # one verdict
    assert "Fresh" not in overall
    assert 'id="stale-count" data-value="2"' in html
    assert 'id="ticker-count" data-value="6"' in html
    assert "</svg> OK" in html


def test_overview_of_an_empty_database_says_empty(tmp_path: Path):
    ParquetDB(tmp_path / "db").close()
    with local_client(create_app(tmp_path / "db")) as client:
        data = get_json(client, "/api/overview?wait_verify=1")
        assert data["freshness"]["status"] == "⚪ Empty"
        assert data["tickers"] == 0 and data["version"] == -1
        assert "</svg> Empty" in get_html(client, "/")  # the mark drawn, not typed
        assert get_json(client, "/api/tickers")["rows"] == []
        assert get_json(client, "/api/runs")["runs"] == []
        client.get("/api/overview?wait_verify=1")


def test_verify_result_follows_new_versions(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    first = get_json(client, "/api/overview?wait_verify=1")["verify"]["result"]
    db.upsert_prices(daily_bars("AMZN", today(), 5))
    again = get_json(client, "/api/overview?wait_verify=1")["verify"]
    assert again["current"] and again["result"]["version"] == first["version"] + 1


# -- tickers ------------------------------------------------------------------------------


def test_tickers_lists_every_ticker_with_the_library_status(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    data = get_json(client, "/api/tickers")
    expected = freshness(db)
    assert [r["ticker"] for r in data["rows"]] == list(expected["ticker"]) == sorted(data_t())
    assert [r["status"] for r in data["rows"]] == list(expected["status"])
    assert data["total"] == data["matched"] == 6 and data["pages"] == 1
    ge = next(r for r in data["rows"] if r["ticker"] == "GE")
    assert ge == {
        "ticker": "GE",
        "last_timestamp": iso_utc(today() - pd.Timedelta(days=30)),
        "age": 30,
        "age_unit": "days",
        "status": "🔴 STALE (30 days)",
        "level": "stale",
        "is_stale": True,
    }


def data_t() -> list[str]:
    return FRESH + AGING + STALE


@pytest.mark.parametrize(
    ("query", "tickers"),
    [
        ("stale=true", ["GE", "XOM"]),
        ("stale=false", ["AAPL", "IBM", "MSFT", "NVDA"]),
        ("level=aging", ["IBM"]),
        ("level=fresh&q=a", ["AAPL", "NVDA"]),
        ("q=X", ["XOM"]),
        ("q=nothing", []),
        ("sort=age&order=desc", ["GE", "XOM", "IBM", "AAPL", "MSFT", "NVDA"]),
        ("sort=ticker&order=desc", ["XOM", "NVDA", "MSFT", "IBM", "GE", "AAPL"]),
        ("sort=status&order=desc", ["GE", "XOM", "IBM", "AAPL", "MSFT", "NVDA"]),
        ("sort=last_timestamp", ["GE", "XOM", "IBM", "AAPL", "MSFT", "NVDA"]),
        ("per_page=4&page=2", ["NVDA", "XOM"]),
        ("per_page=4&page=99", ["NVDA", "XOM"]),
    ],
)
def test_tickers_filter_sort_and_page(
    demo: tuple[ParquetDB, TestClient], query: str, tickers: list[str]
):
    _, client = demo
    data = get_json(client, f"/api/tickers?{query}")
    assert [r["ticker"] for r in data["rows"]] == tickers
    html = get_html(client, f"/tickers?{query}")
    assert html.count('<tr data-level="') == len(tickers)
    for t in tickers:
        assert f'href="./tickers/{t}">{t}</a>' in html


@pytest.mark.slow
def test_five_thousand_tickers_are_paged(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    names = [f"T{i:04d}" for i in range(5000)]
    day = today()
    last = [day - pd.Timedelta(days=i % 40) for i in range(5000)]
    frame = pd.concat([daily_bars(t, d, 1) for t, d in zip(names, last, strict=True)])
    db.upsert_prices(frame.reset_index(drop=True))
    stale = sorted(t for t, d in zip(names, last, strict=True) if (day - d).days > 7)
    with local_client(create_app(db.path)) as client:
        first = get_json(client, "/api/tickers")
        assert first["total"] == first["matched"] == 5000
        assert first["pages"] == 50 and first["per_page"] == 100
        assert [r["ticker"] for r in first["rows"]] == names[:100]
        last_page = get_json(client, "/api/tickers?page=50")
        assert [r["ticker"] for r in last_page["rows"]] == names[4900:]
        big = get_json(client, "/api/tickers?per_page=5000")
        assert [r["ticker"] for r in big["rows"]] == names and big["pages"] == 1
        stale_page = get_json(client, "/api/tickers?stale=true&per_page=1000&page=2")
        assert stale_page["matched"] == len(stale)
        assert [r["ticker"] for r in stale_page["rows"]] == stale[1000:2000]
        html = get_html(client, "/tickers?page=2")
        assert html.count('<tr data-level="') == 100
        assert 'href="./tickers/T0100">T0100</a>' in html
        assert 'id="matched" data-matched="5000" data-total="5000"' in html
        assert "page 2 of 50" in html and 'rel="next"' in html and 'rel="prev"' in html
    db.close()


@pytest.mark.parametrize(
    "query", ["sort=volume", "order=up", "level=rotten", "stale=maybe", "per_page=0", "page=x"]
)
def test_bad_tickers_query_is_a_400_not_a_crash(demo: tuple[ParquetDB, TestClient], query: str):
    _, client = demo
    err = get_json(client, f"/api/tickers?{query}", status=400)
    assert err["status"] == 400 and err["message"]
    assert "400" in get_html(client, f"/tickers?{query}", status=400)


# -- one ticker ---------------------------------------------------------------------------


def test_ticker_page_serves_bars_of_the_chosen_range(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    data = get_json(client, "/api/tickers/AAPL?range=1m")
    start = today() - pd.DateOffset(months=1)
    expected = db.read_table(tickers="AAPL", start=start)
    assert data["count"] == len(expected) == len(data["bars"]["timestamp"])
    assert data["bars"]["timestamp"][0] == iso_utc(expected["timestamp"].iloc[0])
    assert data["bars"]["close"] == pytest.approx(expected["close"].tolist())
    assert data["freshness"]["status"] == "🟢 Fresh"
    assert data["latest"][0]["timestamp"] == iso_utc(today())  # newest first
    assert len(data["latest"]) == 20

    everything = get_json(client, "/api/tickers/AAPL?range=all&latest=5")
    assert everything["count"] == 400 and len(everything["latest"]) == 5
    custom = get_json(client, "/api/tickers/AAPL?start=2000-01-01&end=" + str(today().date()))
    assert custom["range"] == "custom" and custom["count"] == 400

    html = get_html(client, "/tickers/AAPL?range=1m")
    assert 'id="chart"' in html and f'data-count="{len(expected)}"' in html
    assert 'id="bars-data"' in html and "/api/tickers/AAPL/bars.csv" in html
    assert html.count("<tr><td>") == 20


def test_ticker_csv_download_matches_the_database(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    r = client.get("/api/tickers/IBM/bars.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="IBM.csv"' in r.headers["content-disposition"]
    got = pd.read_csv(io.StringIO(r.text), parse_dates=["timestamp"])
    want = db.read_table(tickers="IBM")
    assert len(got) == len(want) == 200
    assert (got["timestamp"] == want["timestamp"]).all()
    assert got["close"].tolist() == pytest.approx(want["close"].tolist())
    part = client.get(f"/api/tickers/IBM/bars.csv?start={(today() - pd.Timedelta(days=13)).date()}")
    assert len(pd.read_csv(io.StringIO(part.text))) == 10


def test_unknown_ticker_is_a_404_page_and_json(demo: tuple[ParquetDB, TestClient]):
    _, client = demo
    assert "no ticker 'NOPE'" in get_json(client, "/api/tickers/NOPE", status=404)["message"]
    assert "no ticker &#39;NOPE&#39;" in get_html(client, "/tickers/NOPE", status=404)
    assert client.get("/api/tickers/NOPE/bars.csv").status_code == 404
    assert get_json(client, "/api/tickers/AAPL?range=2w", status=400)["status"] == 400
    assert get_json(client, "/api/tickers/AAPL?start=later", status=400)["status"] == 400
    assert "404" in get_html(client, "/no/such/page", status=404)


def test_odd_ticker_names_round_trip_through_urls(tmp_path: Path):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(pd.concat([daily_bars("BRK.B", today(), 5), daily_bars("^GSPC", today(), 5)]))
    with local_client(create_app(db.path)) as client:
        html = get_html(client, "/tickers")
        assert 'href="./tickers/BRK.B"' in html and 'href="./tickers/%5EGSPC"' in html
        assert get_json(client, "/api/tickers/%5EGSPC")["count"] == 5
        assert get_json(client, "/api/tickers/BRK.B")["count"] == 5
        assert client.get("/api/tickers/BRK.B/bars.csv").text.count("BRK.B") == 5
    db.close()


# -- runs ---------------------------------------------------------------------------------


def test_runs_show_history_with_per_ticker_errors(demo: tuple[ParquetDB, TestClient]):
    db, client = demo
    data = get_json(client, "/api/runs")
    assert [r["run_id"] for r in data["runs"]] == [r["run_id"] for r in db.runs()]
    bad = data["runs"][0]
    assert bad["run_id"] == "run-bad" and bad["failed"] == 2 and bad["source"] == "yahoo"
    assert bad["errors"]["FOO"] == "TickerNotFound: yahoo does not know 'FOO'"
    assert get_json(client, "/api/runs?limit=1")["count"] == 1

    html = get_html(client, "/runs")
    assert 'data-run-id="run-bad"' in html and 'data-run-id="run-ok"' in html
    assert "2 error(s)" in html and "timed out after 3 attempts" in html
    assert "TickerNotFound: yahoo does not know &#39;FOO&#39;" in html


# -- errors and read-only -----------------------------------------------------------------


def test_missing_database_is_a_clear_503_until_it_exists(tmp_path: Path):
    path = tmp_path / "nowhere"
    with local_client(create_app(path)) as client:
        for url in ["/", "/tickers", "/tickers/AAPL", "/runs"]:
            html = get_html(client, url, status=503)
            assert "Database not found" in html and "no tickvault database" in html
        for url in ["/api/overview", "/api/tickers", "/api/tickers/AAPL", "/api/runs"]:
            assert get_json(client, url, status=503)["error"] == "Database not found"
        assert not path.exists()  # the dashboard never creates one
        make_demo_db(path).close()
        assert get_json(client, "/api/tickers")["total"] == 6
        client.get("/api/overview?wait_verify=1")


def test_corrupt_data_file_is_an_error_page_and_a_failed_verify(tmp_path: Path):
    db = make_demo_db(tmp_path / "db")
    for f in (db.path / "prices").glob("*.parquet"):
        f.write_bytes(b"PAR1 this is not parquet")
    db.close()
    with local_client(create_app(tmp_path / "db"), raise_server_exceptions=False) as client:
        html = get_html(client, "/tickers/AAPL", status=500)
        assert "The database is corrupt" in html
        assert "`tickvault verify --repair` to fix it" in html  # a command that exists
        assert "tickvault repair" not in html
        err = get_json(client, "/api/tickers/AAPL", status=500)
        assert err["status"] == 500 and err["message"]
        # metadata pages still work, and the overview says what verify found
        data = get_json(client, "/api/overview?wait_verify=1")
        assert data["verify"]["state"] == "problems"
        assert any("unreadable" in p for p in data["verify"]["result"]["problems"])
        assert "</svg> problems found" in get_html(client, "/")


def test_corrupt_log_is_an_error_page(tmp_path: Path):
    db = make_demo_db(tmp_path / "db")
    for f in (db.path / "prices" / "_log").glob("*.json"):
        f.write_text("{not json")
    (db.path / "prices" / "_log" / "_last_checkpoint").unlink(missing_ok=True)
    db.close()
    with local_client(create_app(tmp_path / "db"), raise_server_exceptions=False) as client:
        html = get_html(client, "/tickers", status=500)
        assert "tickvault verify" in html
        assert get_json(client, "/api/overview", status=500)["status"] == 500


def test_the_dashboard_never_writes(tmp_path: Path):
    db = make_demo_db(tmp_path / "db")
    db.close()
    before = tree_snapshot(tmp_path / "db")
    with local_client(create_app(tmp_path / "db")) as client:
        for url in [
            "/",
            "/api/overview?wait_verify=1",
            "/tickers?sort=age&order=desc",
            "/api/tickers?stale=true",
            "/tickers/AAPL?range=all",
            "/api/tickers/GE",
            "/api/tickers/GE/bars.csv",
            "/runs",
            "/api/runs",
        ]:
            assert client.get(url).status_code == 200, url
        assert client.post("/api/tickers").status_code == 405
    assert tree_snapshot(tmp_path / "db") == before


def test_every_page_has_a_json_twin(demo: tuple[ParquetDB, TestClient]):
    _, client = demo
    index = get_json(client, "/api")
    assert set(index) == {"overview", "tickers", "ticker", "bars_csv", "bars_json", "runs"}
    for page, api in [
        ("/", "/api/overview"),
        ("/tickers", "/api/tickers"),
        ("/tickers/MSFT", "/api/tickers/MSFT"),
        ("/runs", "/api/runs"),
    ]:
        get_html(client, page)
        get_json(client, api)
        prefix = "../" if page.count("/") > 1 else "./"  # relative links
        assert f'href="{prefix}{api[1:]}' in get_html(client, page)  # each page links its twin


def test_static_assets_are_served_locally(demo: tuple[ParquetDB, TestClient]):
    _, client = demo
    for name in ["style.css", "chart.js", "tickers.js"]:
        assert client.get(f"/static/{name}").status_code == 200
    for page in ["/", "/tickers", "/tickers/AAPL", "/runs"]:
        html = get_html(client, page)
        assert "https://" not in html and "http://cdn" not in html


def test_a_real_pipeline_run_shows_on_the_runs_page(tmp_path: Path):
    from tickvault.pipeline import fetch_and_write
    from tickvault.sources.demo import DemoSource

    source = DemoSource(unknown_tickers=["NOPE"])
    report = fetch_and_write(
        ["AAA", "BBB", "NOPE"],
        source,
        tmp_path / "db",
        start="2024-01-01",
        end="2024-03-31",
        scheduler="synchronous",
    )
    assert report["failed"] == 1
    with local_client(create_app(tmp_path / "db")) as client:
        run = get_json(client, "/api/runs")["runs"][0]
        assert run["run_id"] == report["run_id"] and run["kind"] == report["kind"]
        assert run["written"] == 2 and run["failed"] == 1 and run["ticker_count"] == 3
        assert set(run["errors"]) == {"NOPE"} and "tickers" not in run
        html = get_html(client, "/runs")
        assert f'data-run-id="{report["run_id"]}"' in html and "1 error(s)" in html
        tickers = get_json(client, "/api/tickers")
        assert [r["ticker"] for r in tickers["rows"]] == ["AAA", "BBB"]
        assert get_json(client, "/api/tickers/AAA?range=all")["count"] == 61
        client.get("/api/overview?wait_verify=1")


# -- bad dates are a 400 naming the parameter (issue 26 item 6) --------------------------


@pytest.mark.parametrize("value", ["-1", "-5", "-0", "-2024-01-01"])
@pytest.mark.parametrize("param", ["start", "end"])
def test_a_negative_date_is_a_400_naming_the_parameter(
    demo: tuple[ParquetDB, TestClient], param: str, value: str
):
    _, client = demo
    for url in ["/api/tickers/AAPL", "/api/tickers/AAPL/bars.csv"]:
        err = get_json(client, f"{url}?{param}={value}", status=400)
        assert err["error"] == "Bad request"
        assert err["message"].startswith(f"{param}={value!r} is not a date or time")
        assert "2024-03-01" in err["message"]  # an example of a good one
    html = get_html(client, f"/tickers/AAPL?{param}={value}", status=400)
    assert f"{param}=&#39;{value}&#39; is not a date or time" in html
    assert "NotImplementedError" not in html
