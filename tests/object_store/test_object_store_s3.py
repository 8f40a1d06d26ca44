"""Object storage, protocol tier: the whole API, the CLI, the pipeline and the dashboard
against a real S3 protocol server (moto, in-process, 127.0.0.1), and no credential in any
output. moto's conditional put is not atomic under concurrent requests, so nothing here
asserts mutual exclusion (that is the unit tier's and SeaweedFS's job).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.bars import arrow_bars
from helpers.s3 import ACCESS_KEY, BUCKET, SECRET_KEY
from tickvault import ParquetDB, fetch_and_write
from tickvault.storage.core.object_store import ObjectStore

pytestmark = pytest.mark.s3

SECRETS = (ACCESS_KEY, SECRET_KEY)


def options(endpoint: str) -> dict[str, str]:
    """Explicit storage options (object_store key names), no environment needed."""
    return {
        "endpoint": endpoint,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "region": "us-east-1",
    }


def assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text


def bucket_text(db: ParquetDB) -> str:
    """Every object of the database, concatenated (to look for leaked secrets)."""
    store = db.store
    out = []

    def walk(prefix: str) -> None:
        for name in store.list(prefix):
            key = f"{prefix}/{name}" if prefix else name
            if store.stat(key) is None:
                walk(key)
            else:
                out.append(store.get(key).decode("latin-1"))

    walk("")
    return "\n".join(out)


def test_the_whole_api_works_on_s3(s3_endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"s3://{BUCKET}/api-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(
        url, storage_options=options(s3_endpoint), target_file_rows=40, checkpoint_interval=3
    )
    assert isinstance(db.store, ObjectStore) and db.path == url
    db.upsert_prices(arrow_bars(["AAA", "BBB"] * 10, [d for d in range(10) for _ in "ab"], 1.0))
    v1 = db.version
    db.upsert_prices(arrow_bars(["BBB"] * 5, list(range(5, 10)), 2.0))  # replaces BBB 5..9
    for day in range(10, 14):
        db.upsert_prices(arrow_bars(["AAA"], [day], 3.0))
    db.compact()
    got = db.read_table()
    assert len(got) == 24 and not got.duplicated(["ticker", "timestamp"]).any()
    assert list(got[got.ticker == "BBB"]["close"]) == [1.0] * 5 + [2.0] * 5
    assert (db.read_table(version=v1)["close"] == 1.0).all()
    assert db.watermarks()["AAA"] > db.watermarks()["BBB"]
    assert [h["operation"] for h in db.history()][-1] == "compact"
    assert db.verify().ok
    assert db.vacuum(dry_run=False, retention=0).files  # what compaction replaced
    assert db.verify().ok and db.read_table().equals(got)
    db.record_run({"kind": "test", "finished": "2026-11-30T00:00:00Z"})
    assert db.runs()[0]["kind"] == "test"
    # a torn file is found and repaired through the bucket
    (torn,) = db.upsert_prices(arrow_bars(["CCC"] * 3, [0, 1, 2], 4.0)).files
    key = f"prices/{torn}"
    db.store.put(key, db.store.get(key)[:40])
    fresh = ParquetDB(url, storage_options=options(s3_endpoint), create=False)
    assert [p.kind for p in fresh.verify().problems] == ["unreadable"]
    assert fresh.repair(dry_run=False).actions and fresh.verify().ok
    assert len(fresh.read_table()) == 24
    # secrets: not in the handle, the info, the log, the run records
    assert_no_secret(repr(db) + json.dumps(db.info()) + bucket_text(db) + caplog.text)


def test_reading_one_ticker_costs_at_most_two_gets_per_file_once_footers_are_cached(
    s3_endpoint,
):
    url = f"s3://{BUCKET}/reads-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(url, storage_options=options(s3_endpoint), auto_compact=False)
    tickers = [f"T{i:03d}" for i in range(50)]
    db.upsert_prices(arrow_bars([t for t in tickers for _ in range(200)], list(range(200)) * 50))
    for day in range(200, 203):  # daily updates: small level-0 files
        db.upsert_prices(arrow_bars(tickers, [day] * 50))
    reader = ParquetDB(url, storage_options=options(s3_endpoint), create=False)
    reader.read_table(tickers=["T007"])  # warms footers (and small files)
    n_files = len(reader.snapshot().files)
    store = reader.store
    assert isinstance(store, ObjectStore) and n_files == 4
    reader._table("prices").footers._readers.clear()  # no open reader holds data blocks
    store.requests.clear()
    got = reader.read_table(tickers=["T042"])
    assert len(got) == 203 and (got["ticker"] == "T042").all()
    # the probe for a newer log entry, then at most 2 GETs per file touched
    assert store.requests["get"] <= 1 + 2 * n_files, store.requests
    assert set(store.requests) == {"get"}, store.requests


def test_the_cli_works_on_s3_with_the_endpoint_from_the_environment(s3_url, s3_env):
    env = {**os.environ, **s3_env, "COLUMNS": "200"}
    env.pop("TICKVAULT_DB", None)

    def tv(*args: str, db: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tickvault", *args, *(["--db", s3_url] if db else [])]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        assert_no_secret(r.stdout + r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    r = tv("backfill", "AAPL", "MSFT", "--source", "demo", "--start", "2024-01-02",
           "--end", "2024-03-28", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["written"] == 2 and report["db"] == s3_url
    with ThreadPoolExecutor(max_workers=3) as pool:  # independent commands, concurrently
        info_f = pool.submit(tv, "info", "--json")
        v_f = pool.submit(tv, "verify", "--json")
        q_f = pool.submit(tv, "query", "AAPL", "--start", "2024-03-01", "--format", "csv")
        missing_f = pool.submit(tv, "info", "--db", s3_url + "-nothing-here", db=False)
    info = json.loads(info_f.result().stdout)
    assert info["path"] == s3_url and info["tables"]["prices"]["tickers"] == 2
    v = v_f.result()
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True
    q = q_f.result()
    assert q.returncode == 0 and q.stdout.count("AAPL") == 20  # March 2024 sessions to 28th
    env["TICKVAULT_DB"] = s3_url  # the environment variable works like --db
    f = tv("freshness", "--calendar", "XNYS", "--now", "2024-03-29T21:00Z", "--json", db=False)
    assert f.returncode == 0, f.stderr
    missing = missing_f.result()
    assert missing.returncode == 3 and s3_url + "-nothing-here" in missing.stderr


def test_the_pipeline_writes_to_s3_from_threads_and_in_parallel_write_mode(s3_url, s3_env):
    tickers = [f"S{i:02d}" for i in range(12)]
    r1 = fetch_and_write(tickers[:6], db=s3_url, start="2024-01-02", end="2024-02-29")
    assert r1["written"] == 6 and r1["failed"] == 0
    r2 = fetch_and_write(
        tickers[6:], db=s3_url, start="2024-01-02", end="2024-02-29", parallel_write=True
    )
    assert r2["written"] == 6 and r2["failed"] == 0
    db = ParquetDB(s3_url, create=False)
    got = db.read_table()
    assert sorted(set(got["ticker"])) == tickers
    assert not got.duplicated(["ticker", "timestamp"]).any()
    assert db.verify().ok and len(db.runs()) == 2
    assert_no_secret(json.dumps(db.runs()) + bucket_text(db))


def test_parallel_write_from_worker_processes_ships_the_storage_options(s3_endpoint):
    """Worker processes get the database by pickle: the options travel with it (no
    environment variables are set here)."""
    assert "AWS_ENDPOINT_URL" not in os.environ
    url = f"s3://{BUCKET}/procs-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(url, storage_options=options(s3_endpoint))
    tickers = ["P1", "P2", "P3", "P4"]
    report = fetch_and_write(
        tickers, db=db, start="2024-01-02", end="2024-01-31", scheduler="processes",
        n_workers=2, parallel_write=True, chunk_size=1,
    )  # fmt: skip
    assert report["written"] == 4, report.to_dict()
    assert sorted(set(db.read_table()["ticker"])) == tickers and db.verify().ok


def test_the_dashboard_serves_an_s3_database(s3_url, s3_env):
    import warnings

    from tickvault.dashboard import create_app

    with warnings.catch_warnings():  # starlette asks for httpx2; the test client works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    fetch_and_write(["AAPL", "MSFT"], db=s3_url, start="2024-01-02", end="2024-02-29")
    with TestClient(create_app(s3_url), base_url="http://127.0.0.1") as client:
        overview = client.get("/api/overview?wait_verify=1")
        assert overview.status_code == 200, overview.text
        tickers = client.get("/api/tickers").json()
        runs = client.get("/api/runs").json()
        page = client.get("/")
    assert {r["ticker"] for r in tickers["rows"]} == {"AAPL", "MSFT"}
    assert len(runs["runs"]) == 1 and page.status_code == 200
    assert s3_url in page.text
    assert_no_secret(overview.text + json.dumps(tickers) + json.dumps(runs) + page.text)
