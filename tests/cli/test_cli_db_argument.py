"""A wrong `--db` is a usage error before any work; a database this user may not write is a
documented exit code with a message naming the database and the permission problem."""

from __future__ import annotations

import errno
import os
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tickvault
from helpers.cli import one_clear_line, tv

WINDOW = ["--start", "2024-06-03", "--end", "2024-06-28"]


@pytest.mark.slow
@pytest.mark.parametrize("command", [["backfill", "AAPL", *WINDOW], ["info"], ["update"]])
def test_db_that_is_a_file_is_exit_2_before_any_work(tmp_path, command) -> None:
    f = tmp_path / "prices.csv"
    f.write_text("not a database\n")
    r = tv(*command, db=f)
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r)  # no progress bar, no traceback
    assert "--db" in line and "is a file" in line
    assert f.read_text() == "not a database\n"


@pytest.mark.slow
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


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folders are private to us)."""
    folder = Path(tempfile.mkdtemp(prefix="tickvault-shared-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tickvault_as_nobody(shared: Path) -> tuple[list[str], dict[str, str]] | str:
    """The command and environment with which the user nobody runs this tickvault, or a
    one-line reason why it cannot. When this checkout or its virtualenv lies in a folder
    nobody may enter (a clone in ``mktemp -d``), nobody gets hard links to this Python's
    packages in ``shared`` and runs the real interpreter with them on PYTHONPATH."""
    if shutil.which("setpriv") is None:
        return "needs setpriv to run tickvault as another user"
    env = {k: v for k, v in os.environ.items() if k not in ("TICKVAULT_DB", "PYTHONPATH")}
    if _imports_tickvault([*NOBODY, sys.executable], env):
        return [*NOBODY, sys.executable, "-m", "tickvault"], env
    package_root = Path(tickvault.__file__).resolve().parent.parent
    roots = [package_root, *(Path(p) for p in site.getsitepackages() if Path(p).is_dir())]
    paths = []
    try:
        for i, root in enumerate(dict.fromkeys(roots)):
            paths.append(_link_tree(root, shared / "python" / str(i)))
    except OSError as exc:
        return f"cannot give the user nobody a readable copy of this Python's packages: {exc}"
    env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    python = os.path.realpath(sys.executable)  # the interpreter behind the virtualenv
    if not _imports_tickvault([*NOBODY, python], env):
        return f"the user nobody cannot run {python} (it lies in a folder nobody may enter)"
    return [*NOBODY, python, "-m", "tickvault"], env


def unprivileged(shared: Path) -> tuple[list[str], dict[str, str]]:
    """How to run this tickvault as a user the file permissions apply to: as the user
    nobody when the tests run as root (root may read and write anything), else as is.
    Skips the test, saying why, when root cannot run it as nobody here."""
    if os.geteuid() != 0:
        env = {k: v for k, v in os.environ.items() if k != "TICKVAULT_DB"}
        return [sys.executable, "-m", "tickvault"], env
    nobody = tickvault_as_nobody(shared)
    if isinstance(nobody, str):
        pytest.skip(nobody)
    return nobody


def _imports_tickvault(python: list[str], env: dict[str, str]) -> bool:
    """Does ``python`` import this very tickvault — not another installed copy (the
    virtualenv's, when these tests run a worktree's sources through PYTHONPATH)? A copy
    linked onto its PYTHONPATH counts as this one."""
    probe = [*python, "-c", "import tickvault; print(tickvault.__file__)"]
    r = subprocess.run(probe, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    if r.returncode != 0:
        return False
    found = Path(r.stdout.strip()).resolve()
    linked = [Path(p).resolve() for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return found == Path(tickvault.__file__).resolve() or found.parent.parent in linked


def _link_tree(src: Path, dst: Path) -> Path:
    """Every file under ``src`` in new folders every user may read: hard links, or copies
    when ``src`` is on another filesystem."""
    link: Callable[[str, Path], object] = os.link
    for folder, _, files in os.walk(src):
        target = dst / os.path.relpath(folder, src)
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o755)
        for name in files:
            if name.endswith(".pyc"):
                continue
            try:
                link(os.path.join(folder, name), target / name)
            except OSError as exc:
                if exc.errno != errno.EXDEV or link is not os.link:
                    raise
                link = shutil.copy2  # no hard links across filesystems
                link(os.path.join(folder, name), target / name)
    return dst


@pytest.mark.slow
def test_a_database_this_user_may_not_write_is_exit_7_naming_it(tmp_path, shared_tmp) -> None:
    # root may write anything: it runs the command as the user nobody, on a database in a
    # folder nobody may enter and read but not write
    db = (shared_tmp if os.geteuid() == 0 else tmp_path) / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    command, env = unprivileged(shared_tmp)
    if os.geteuid() != 0:
        for p in [db, *db.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    argv = [*command, "backfill", "MSFT", *WINDOW, "--quiet", "--db", str(db)]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert r.returncode == 7, r.stderr
    line = one_clear_line(r)
    assert "permission denied" in line and repr(str(db)) in line
    # the database and the refused operation, never the temporary file it was writing
    assert "may not write" in line and "backfill" in line, line
    assert ".tmp" not in line and "part-" not in line and "_log" not in line, line


@pytest.mark.slow
def test_a_database_this_user_may_not_read_is_exit_7_naming_the_read(tmp_path, shared_tmp) -> None:
    # root may read anything: it runs the command as the user nobody (the same way as the
    # write test above), on a database whose table folder nobody may enter
    db = (shared_tmp if os.geteuid() == 0 else tmp_path) / "db"
    assert tv("backfill", "AAPL", *WINDOW, "--quiet", db=db).returncode == 0
    command, env = unprivileged(shared_tmp)
    (db / "prices").chmod(0o700 if os.geteuid() == 0 else 0o000)
    try:
        argv = [*command, "query", "AAPL", "--db", str(db)]
        r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    finally:
        (db / "prices").chmod(0o755)
    assert r.returncode == 7, r.stderr
    line = one_clear_line(r)
    assert repr(str(db)) in line and "may not read" in line and "query" in line, line
    assert "_log" not in line and ".json" not in line and "prices/" not in line, line


@pytest.mark.slow
def test_a_new_database_in_a_folder_this_user_may_not_write_points_at_that_folder(
    tmp_path, shared_tmp
) -> None:
    """The hint names a path that exists: the folder the new database would go in, not the
    database that could not be created."""
    ro = (shared_tmp if os.geteuid() == 0 else tmp_path) / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    db = ro / "newdb"
    command, env = unprivileged(shared_tmp)
    argv = [*command, "backfill", "AAPL", *WINDOW, "--quiet", "--db", str(db)]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert r.returncode == 7, r.stderr
    line = one_clear_line(r)
    assert repr(str(db)) in line and f"(ls -ld {ro})" in line, line
    assert not db.exists()
