"""The machine-wide rate-limit state lives in a private folder: another local user cannot
plant a symlink (or a folder of their own) in the shared temporary directory and make a
tickvault process write into a file of theirs choosing.

Each case runs a real process whose temporary directory (``TMPDIR``) is a folder of the
test standing in for ``/tmp``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file locks: POSIX only")

KEY = "yahoo-0123456789abcdef"
SCRIPT = f"""
import json, logging, sys, time
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
from tickvault.sources.machine_limit import shared_bucket
from tickvault.sources.policy import RateLimit
bucket = shared_bucket({KEY!r}, RateLimit(per_second=20))
t0 = time.monotonic()
for _ in range(6):
    bucket.acquire()
print(json.dumps({{"path": str(getattr(bucket, "path", "")), "seconds": time.monotonic() - t0}}))
"""
PRECIOUS = b"precious data that belongs to the victim\n"
OTHER_UID = 65534  # nobody


def run_in(tmpdir: Path) -> tuple[dict[str, object], list[str]]:
    """Take six tokens at 20/s in a process whose temporary directory is ``tmpdir``;
    returns what it printed and its warnings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env["TMPDIR"] = str(tmpdir)
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), [ln for ln in r.stderr.splitlines() if "WARNING" in ln]


@pytest.fixture
def bucket_name(tmp_path: Path) -> str:
    """The state file's name, learnt from a process with a clean temporary directory."""
    clean = tmp_path / "clean"
    clean.mkdir()
    out, warnings = run_in(clean)
    assert warnings == []
    path = Path(str(out["path"]))
    folder = clean / f"tickvault-rate-{os.getuid()}"
    assert path.parent == folder
    st = folder.lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.getuid()
    assert stat.S_ISREG(path.lstat().st_mode) and path.stat().st_size == 16
    return path.name


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(PRECIOUS)
    return victim


def _needs_root() -> None:
    if os.getuid() != 0:
        pytest.skip("simulating another user's folder needs root (chown)")


def plant_world_writable(shared: Path, name: str, victim: Path) -> Path:
    folder = shared / f"tickvault-rate-{os.getuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    (folder / name).symlink_to(victim)
    return folder


def plant_foreign_owner(shared: Path, name: str, victim: Path) -> Path:
    _needs_root()
    folder = shared / f"tickvault-rate-{os.getuid()}"
    folder.mkdir(mode=0o700)
    (folder / name).symlink_to(victim)
    os.lchown(folder / name, OTHER_UID, OTHER_UID)
    os.chown(folder, OTHER_UID, OTHER_UID)
    return folder


def plant_symlinked_folder(shared: Path, name: str, victim: Path) -> Path:
    target = shared / "attacker"
    target.mkdir(mode=0o700)
    (target / name).symlink_to(victim)
    folder = shared / f"tickvault-rate-{os.getuid()}"
    folder.symlink_to(target, target_is_directory=True)
    return target


def plant_symlink_in_private_folder(shared: Path, name: str, victim: Path) -> Path:
    folder = shared / f"tickvault-rate-{os.getuid()}"
    folder.mkdir(mode=0o700)
    (folder / name).symlink_to(victim)
    return folder


def plant_foreign_state_file(shared: Path, name: str, victim: Path) -> Path:
    _needs_root()
    folder = shared / f"tickvault-rate-{os.getuid()}"
    folder.mkdir(mode=0o700)
    os.link(victim, folder / name)  # a hard link: the victim's own inode, owned by them
    os.chown(victim, OTHER_UID, OTHER_UID)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "plant",
    [
        plant_world_writable,
        plant_foreign_owner,
        plant_symlinked_folder,
        plant_symlink_in_private_folder,
        plant_foreign_state_file,
    ],
    ids=lambda f: f.__name__.removeprefix("plant_"),
)
def test_planted_state_is_never_written_through(tmp_path: Path, bucket_name: str, plant):
    shared = tmp_path / "shared"
    shared.mkdir()
    victim = _victim(tmp_path)
    folder = plant(shared, bucket_name, victim)
    before = sorted(p.name for p in folder.iterdir())
    out, warnings = run_in(shared)
    assert victim.read_bytes() == PRECIOUS  # not a byte changed
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing created there
    assert len(warnings) == 1, warnings  # one warning, naming what is wrong
    assert "rate limit" in warnings[0] and str(shared) in warnings[0]
    assert float(out["seconds"]) >= 0.2  # still limited: 6 tokens at 20/s (in this process)


@pytest.mark.slow
def test_a_private_folder_of_the_user_is_reused(tmp_path: Path, bucket_name: str):
    shared = tmp_path / "shared"
    shared.mkdir()
    first, warnings = run_in(shared)
    again, warnings_again = run_in(shared)
    assert warnings == warnings_again == []
    assert first["path"] == again["path"]
    assert Path(str(first["path"])).parent == shared / f"tickvault-rate-{os.getuid()}"
