"""When stderr is not a terminal (cron logs), one error is one line: never wrapped at 80
columns, so a URL or a path is never split."""

from __future__ import annotations

import pytest

from helpers.cli import tv


@pytest.mark.slow
def test_long_error_lines_are_not_wrapped(tmp_path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-for-exports-" * 3)
    folder.mkdir()
    r = tv("backfill", "NOPE", "--source", "csv", "--source-option", f"path={folder}",
           "--quiet", db=tmp_path / "db", env={"COLUMNS": "80"})  # fmt: skip
    assert r.returncode == 1
    [line] = [ln for ln in r.stderr.splitlines() if "NOPE:" in ln]
    assert str(folder) in line and len(line) > 120
