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


def test_an_interrupted_read_does_not_speak_of_commits():
    """Ctrl-C on ``query`` said "what was committed before it stays" (new-user trial):
    only commands that write say so."""
    from tickvault.cli.errors import Terminated, exit_code

    assert exit_code(KeyboardInterrupt(), command="query") == (130, "interrupted")
    assert exit_code(Terminated(), command="export")[1] == "terminated (SIGTERM)"
    code, message = exit_code(KeyboardInterrupt(), command="backfill")
    assert code == 130 and message == "interrupted; what was committed before it stays"
