"""`--scheduler distributed --quiet` (a real local Dask cluster) prints nothing on a clean
run: --quiet means only errors."""

from __future__ import annotations

import pytest

from helpers.cli import tv

pytestmark = pytest.mark.cluster


def test_distributed_quiet_prints_nothing(tmp_path) -> None:
    r = tv("backfill", "AAPL", "MSFT", "--scheduler", "distributed", "--n-workers", "2",
           "--start", "2024-06-03", "--end", "2024-06-28", "--quiet",
           db=tmp_path / "db", timeout=180)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
