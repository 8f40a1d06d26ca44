"""`tickvault sql` and `tickvault export`, run as real processes on a real database with
overlapping files: results equal read_arrow, writes are refused, bad SQL is exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB


def tv(*args: str, db: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "tickvault", *args, "--db", str(db)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "db"
    d = ParquetDB(path, auto_compact=False)
    d.upsert_prices(make_bars(["AAA", "BBB", "CCC"], "2023-06-01", 200))
    d.compact()
    d.upsert_prices(make_bars(["AAA", "BBB"], "2024-02-20", 5, salt=1))  # revises bars
    return path


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ticker", "timestamp"]).reset_index(drop=True)


def test_sql_equals_read_arrow(db):
    r = tv(
        "sql",
        "--format",
        "json",
        "SELECT ticker, count(*) n, sum(close) s FROM prices GROUP BY 1 ORDER BY 1",
        db=db,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    df = ParquetDB(db).read_table()
    want = df.groupby("ticker").agg(n=("close", "size"), s=("close", "sum")).reset_index()
    assert [g["ticker"] for g in got] == list(want["ticker"])
    assert [g["n"] for g in got] == list(want["n"])
    assert [g["s"] for g in got] == pytest.approx(list(want["s"]))


@pytest.mark.slow
def test_sql_version_and_csv(db):
    r = tv("sql", "--version", "1", "--format", "csv", "SELECT count(*) AS n FROM prices", db=db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", str(ParquetDB(db).read_arrow(version=1).num_rows)]
    r = tv("sql", "SELECT ticker FROM prices LIMIT 1", db=db)
    assert r.returncode == 0 and "AAA" in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "sql",
    ["COPY (SELECT 1) TO 'x.csv'", "CREATE TABLE t AS SELECT 1", "SELECT 1; ATTACH 'x.db'"],
)
def test_sql_refuses_writes(db, sql, tmp_path):
    r = tv("sql", sql, db=db)
    assert r.returncode == 2
    assert "read-only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not Path("x.csv").exists()


@pytest.mark.slow
def test_bad_sql_is_a_usage_error_with_duckdbs_message(db):
    r = tv("sql", "SELEC 1", db=db)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "syntax error" in r.stderr
    r = tv("sql", "SELECT * FROM nope", db=db)
    assert r.returncode == 2 and "nope" in r.stderr


@pytest.mark.slow
def test_export_parquet_reads_back_exactly(db, tmp_path):
    out = tmp_path / "out"
    r = tv("export", str(out), "--tickers", "AAA", "BBB", "--start", "2024-01-01", db=db)
    assert r.returncode == 0, r.stderr
    want = _sorted(ParquetDB(db).read_table(tickers=["AAA", "BBB"], start="2024-01-01"))
    # read_table gives trade_count (int64 with nulls) as pandas' nullable Int64;
    # pd.read_parquet falls back to float64 for an int column holding nulls
    got = pd.read_parquet(out).astype({"trade_count": "Int64"})
    assert _sorted(got).equals(want)
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchall()
    assert n == [(len(want),)]
    first = sorted(p.read_bytes() for p in out.glob("*.parquet"))
    r = tv("export", str(out), "--tickers", "AAA", "BBB", "--start", "2024-01-01", db=db)
    assert r.returncode == 0  # idempotent: the same files again
    assert sorted(p.read_bytes() for p in out.glob("*.parquet")) == first
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_export_csv_and_versions(db, tmp_path):
    out = tmp_path / "csv"
    r = tv("--json", "export", str(out), "--format", "csv", "--version", "1", db=db)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == ParquetDB(db).read_arrow(version=1).num_rows
    got = pd.concat(pd.read_csv(p) for p in sorted(out.glob("*.csv")))
    assert len(got) == doc["rows"] and set(got["ticker"]) == {"AAA", "BBB", "CCC"}
    # timestamps as the CLI's CSV and JSON write them: ISO 8601, UTC, "Z"
    assert got["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    expected = ParquetDB(db).read_table(version=1)
    parsed = (
        pd.to_datetime(got["timestamp"], utc=True).dt.as_unit("ns").sort_values(ignore_index=True)
    )
    assert parsed.equals(expected["timestamp"].sort_values(ignore_index=True))


def test_export_refuses_a_folder_with_other_files(db, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    r = tv("export", str(tmp_path), db=db)
    assert r.returncode == 2 and "mine.txt" in r.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_export_after_one_killed_while_writing_its_manifest(db, tmp_path):
    """An export killed while writing its manifest leaves the manifest's temporary (and
    complete parts, no manifest): the next export into that folder finishes the job."""
    first = tv("export", str(tmp_path), db=db)
    assert first.returncode == 0, first.stderr
    manifest = tmp_path / "_tickvault_export.json"
    (tmp_path / "._tickvault_export.json.4242.84994fcc46fb.tmp").write_bytes(b'{"tab')
    manifest.unlink()
    r = tv("export", str(tmp_path), db=db)
    assert r.returncode == 0, r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert json.loads(manifest.read_text())["rows"] == ParquetDB(db).read_arrow().num_rows


@pytest.mark.crash
@pytest.mark.slow
def test_killed_export_leaves_no_half_file(tmp_path):
    """SIGKILL an export at several points: every file under a final name is complete,
    and the next export finishes the job (temporaries gone, rows exact)."""
    import signal
    import time

    import pyarrow.parquet as pq

    path = tmp_path / "db"
    d = ParquetDB(path, auto_compact=False)
    d.upsert_prices(make_bars([f"T{i:03d}" for i in range(300)], "2000-01-03", 2000))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "tickvault", "export", str(out), "--format", "csv"]
    for delay in (0.4, 0.8, 1.2, 1.6):
        proc = subprocess.Popen([*argv, "--db", str(path)], stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for p in out.glob("part-*") if out.exists() else []:
            assert p.stat().st_size > 0
    r = tv("export", str(out), db=path)
    assert r.returncode == 0, r.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert [p.suffix for p in out.glob("part-*")] == [".parquet"]
    assert pq.read_table(out).num_rows == 600_000
