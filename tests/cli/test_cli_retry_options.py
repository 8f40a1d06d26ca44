"""``--source-option retry_policy=3`` / ``'retry_policy={"attempts": 3}'`` work from the
command line; a bad one is a usage error naming the option, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import one_clear_line, tv


@pytest.mark.parametrize("value", ["3", '{"attempts": 3, "backoff": 0.01}'])
def test_retry_policy_option_retries_transient_failures(tmp_path: Path, value: str) -> None:
    db = tmp_path / "db"
    r = tv(
        "backfill", "AAA", "BBB", "--source", "demo",
        "--source-option", "transient_failures=1",
        "--source-option", f"retry_policy={value}",
        "--start", "2026-11-01", "-q", db=db,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    q = tv("query", "AAA", "BBB", "--output", str(tmp_path / "out.csv"), db=db)
    assert q.returncode == 0, q.stderr
    assert {line.split(",")[0] for line in (tmp_path / "out.csv").read_text().split()[1:]} == {
        "AAA",
        "BBB",
    }


def test_a_bad_retry_option_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "db"
    r = tv(
        "backfill", "AAA", "--source", "demo", "--source-option", "retry_policy=three",
        "--start", "2026-11-01", db=db,
    )  # fmt: skip
    assert r.returncode == 2
    assert "retry_policy must be a number of attempts" in one_clear_line(r)
    r = tv(
        "backfill", "AAA", "--source", "yahoo", "--source-option", "http_retry=0",
        "--start", "2024-06-03", db=db,
    )  # fmt: skip
    assert r.returncode == 2
    line = one_clear_line(r)
    assert "http_retry=0: the number of attempts must be >= 1" in line and "http_retry=3" in line
    assert not db.exists()
