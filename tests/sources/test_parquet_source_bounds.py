"""The parquet source reads only the columns it recognises, and refuses a file whose
metadata declares more uncompressed bytes for them than `max_uncompressed` (issue 26 item
9): a small file with a huge, highly compressible column cannot blow up a backfill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickvault.errors import BadSourceData, ConfigError
from tickvault.sources import get_source
from tickvault.sources.files import DEFAULT_MAX_UNCOMPRESSED

ROWS = 1000


def _bars() -> pa.Table:
    ts = pd.date_range("2024-01-01", periods=ROWS, freq="D")
    return pa.table({"Date": ts.strftime("%Y-%m-%d").tolist(), "Open": [10.0] * ROWS,
                     "High": [11.0] * ROWS, "Low": [9.0] * ROWS, "Close": [10.5] * ROWS,
                     "Volume": [1000] * ROWS})  # fmt: skip


@pytest.mark.slow
def test_an_unused_huge_column_is_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    blob = pa.array(["x" * 300_000] * ROWS, pa.large_string())  # 300 MB uncompressed
    pq.write_table(_bars().append_column("notes", blob), folder / "ACME.parquet",
                   compression="zstd")  # fmt: skip
    assert (folder / "ACME.parquet").stat().st_size < 5_000_000
    del blob
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(r.stderr)\n"
    )
    argv = [sys.executable, "-c", probe, sys.executable, "-m", "tickvault", "backfill", "ACME",
            "--source", "parquet", "--source-option", f"path={folder}", "--start", "2024-01-01",
            "--end", "2026-09-26", "--db", str(tmp_path / "db"), "--quiet"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    code, peak_kb = (int(x) for x in r.stdout.split())
    assert code == 0, r.stderr
    assert peak_kb < 300_000, f"peak {peak_kb / 1024:.0f} MB: the unused column was read"


def test_a_file_declaring_more_than_max_uncompressed_is_refused(tmp_path: Path) -> None:
    pq.write_table(_bars(), tmp_path / "ACME.parquet")
    source = get_source("parquet", path=str(tmp_path), max_uncompressed=10_000)
    with pytest.raises(BadSourceData) as info:
        source.fetch("ACME", "2024-01-01", "2024-12-31")
    msg = str(info.value)
    assert "ACME.parquet" in msg and "max_uncompressed" in msg and "10,000" in msg, msg
    fine = get_source("parquet", path=str(tmp_path)).fetch("ACME", "2024-01-01", "2024-01-31")
    assert len(fine) == 31
    assert DEFAULT_MAX_UNCOMPRESSED == 1 << 30


def test_the_option_is_checked_and_reaches_the_cli(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        get_source("parquet", path=str(tmp_path), max_uncompressed=-1)
    pq.write_table(_bars(), tmp_path / "ACME.parquet")
    r = subprocess.run(
        [sys.executable, "-m", "tickvault", "backfill", "ACME", "--source", "parquet",
         "--source-option", f"path={tmp_path}", "--source-option", "max_uncompressed=1000",
         "--start", "2024-01-01", "--end", "2024-01-31", "--db", str(tmp_path / "db"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "max_uncompressed" in json.loads(r.stdout)["errors"]["ACME"]
