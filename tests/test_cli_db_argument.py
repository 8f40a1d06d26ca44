"""A wrong `--db` is a usage error before any work; a database this user may not write is a
documented exit code with a message naming the database and the permission problem."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cli_helpers import one_clear_line, tv

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-28"]


@pytest.mark.parametrize("command", [["backfill", "AAPL", *WINDOW], ["info"], ["update"]])
def test_db_that_is_a_file_is_exit_2_before_any_work(tmp_path, command) -> None:
    f = tmp_path / "prices.csv"
    f.write_text("not a database\n")
    r = tv(*command, db=f)
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r)  # no progress bar, no traceback
    assert "--db" in line and "is a file" in line
    assert f.read_text() == "not a database\n"


def test_backfill_refuses_a_non_empty_folder_that_is_not_a_database(tmp_path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    r = tv("backfill", "AAPL", *WINDOW, db=folder)
    assert r.returncode == 2, r.stderr
    assert "no tickvault database" in one_clear_line(r)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=empty).returncode == 0
    assert tv("backfill", "MSFT", *WINDOW, "--quiet", db=empty).returncode == 0  # a database


@pytest.fixture
def open_tmp():
    """A temporary folder every user can reach (pytest's own are 0700 for root, so another
    user would be refused at the path, never at the database)."""
    folder = Path(tempfile.mkdtemp(prefix="tv-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_database_this_user_may_not_write_is_exit_7_naming_it(open_tmp) -> None:
    tmp_path = open_tmp
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    argv = [sys.executable, "-m", "tickvault", "backfill", "MSFT", *WINDOW, "--quiet",
            "--db", str(db)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TICKVAULT_DB"}
    if os.geteuid() == 0:  # root may write anything: run as nobody
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        os.chmod(tmp_path, 0o755)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    else:
        for p in [db, *db.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 7, r.stderr
    line = one_clear_line(r)
    assert "permission denied" in line and repr(str(db)) in line
    # the database and the refused operation, never the temporary file it was writing
    assert "may not write" in line and "backfill" in line, line
    assert ".tmp" not in line and "part-" not in line and "_log" not in line, line


def test_a_database_this_user_may_not_read_is_exit_7_naming_the_read(open_tmp) -> None:
    tmp_path = open_tmp
    db = tmp_path / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    argv = [sys.executable, "-m", "tickvault", "query", "AAPL", "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if k != "TICKVAULT_DB"}
    (db / "prices").chmod(0o700 if os.geteuid() == 0 else 0o000)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        os.chmod(tmp_path, 0o755)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    finally:
        (db / "prices").chmod(0o755)
    assert r.returncode == 7, r.stderr
    line = one_clear_line(r)
    assert repr(str(db)) in line and "may not read" in line and "query" in line, line
    assert "_log" not in line and ".json" not in line and "prices/" not in line, line
