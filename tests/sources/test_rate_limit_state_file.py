"""The machine-wide rate limit's state file: shared only while it is the same inode, sane
after damage or foreign contents, safe across fork, and never a reason for a fetch to fail."""

from __future__ import annotations

import errno
import gc
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers.http_server import MarketServer, Reply
from tickvault.errors import TickvaultError
from tickvault.sources import RetryPolicy, get_source, machine_limit
from tickvault.sources.machine_limit import FileTokenBucket, shared_bucket
from tickvault.sources.policy import RateLimit

FAST = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.05, jitter=False)
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and flock")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _state(path: Path, tat: float, not_before: float = -math.inf) -> None:
    path.write_bytes(struct.pack("<dd", tat, not_before))


@posix_only
def test_sweep_does_not_split_a_bucket_still_in_use(tmp_path, monkeypatch):
    """A worker that has been idle for a day still holds its state file open; another
    process's sweep unlinks it and later workers create a fresh file, so the old and the
    new workers each get a full limit."""
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(tmp_path))
    limit = RateLimit(per_second=1)
    old_worker = shared_bucket(f"sweep-{uuid.uuid4().hex}", limit)
    assert isinstance(old_worker, FileTokenBucket)
    assert old_worker.try_acquire() == 0.0
    day_ago = time.time() - 2 * 86_400
    os.utime(old_worker.path, (day_ago, day_ago))  # idle (not written) for two days
    shared_bucket(f"other-{uuid.uuid4().hex}", limit)  # any new bucket sweeps the folder
    new_worker = FileTokenBucket(limit, path=old_worker.path)  # a worker started now
    assert new_worker.try_acquire() > 0.5  # the token was just taken by old_worker


@pytest.mark.crash
@posix_only
def test_killed_holder_does_not_block_others_when_it_had_forked(tmp_path):
    """The docstring promises the kernel releases the lock when a holder dies. A child
    forked after the file was opened inherits the descriptor (same open file description)
    and never closes it, so the dead parent's flock stays held while the child lives."""
    path = tmp_path / "held.bucket"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    child = None
    try:
        child = int(proc.stdout.readline().split()[1])
        assert proc.stdout.readline().strip() == "locked"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        got: list[float] = []
        other = FileTokenBucket(RateLimit(per_second=1000), path=path)
        t = threading.Thread(target=lambda: got.append(other.try_acquire()), daemon=True)
        t.start()
        t.join(1.5)
        blocked = t.is_alive()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if child is not None:
            os.kill(child, signal.SIGKILL)
    t.join(5)
    assert not blocked, "a dead process's lock blocked every other user of the bucket"


@posix_only
def test_child_forked_while_a_thread_is_in_the_bucket_does_not_hang(tmp_path):
    """``_lock`` (a threading.Lock) is copied locked into a child forked while another
    thread holds it, and nothing re-creates it after fork: the child's first request hangs
    forever."""
    out = subprocess.run(
        [sys.executable, "-c", _FORK_WHILE_HELD, str(tmp_path / "f.bucket")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.strip() == "finished", out.stdout + out.stderr


@posix_only
@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_state_file_with_non_finite_values_is_reset(tmp_path, bad):
    """NaN in the file disables the limit for good (max(nan, x) is nan, ``now < nan`` is
    False); +inf makes try_acquire return inf and acquire() raise OverflowError."""
    clock = FakeClock()
    path = tmp_path / "x.bucket"
    _state(path, bad)
    b = FileTokenBucket(RateLimit(per_second=10), clock=clock, path=path)
    assert b.try_acquire() == 0.0
    assert b.try_acquire() == pytest.approx(0.09)  # the next slot, as with a fresh file


@posix_only
def test_state_written_by_a_host_with_another_monotonic_clock(tmp_path):
    """shared_bucket's docstring allows TICKVAULT_RATE_DIR on a folder shared between
    machines, but the state is in time.monotonic() units (time since that host booted).
    Here a host that has been up six days longer took the last token: this host then waits
    six days instead of one interval. (The other way round, a host with a smaller uptime
    writes a tat in this host's past, so both grant and the limit is exceeded.)"""
    path = tmp_path / "x.bucket"
    _state(path, time.monotonic() + 6 * 86_400)
    b = FileTokenBucket(RateLimit(per_second=10), path=path)
    assert b.try_acquire() <= 0.1


@posix_only
@pytest.mark.parametrize("where", ["pwrite", "flock"])
def test_state_file_io_error_does_not_leak_into_fetch(tmp_path, monkeypatch, where):
    """Only os.open failures fall back to a per-process limit; a full temporary folder
    (ENOSPC on the first pwrite) or a filesystem without flock (ENOLCK) makes every fetch
    raise a bare OSError (not a TickvaultError, so the pipeline treats it as permanent)."""
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(tmp_path))
    server = MarketServer().start()
    try:
        src = get_source("yahoo", base_url=server.base_url, rate_limit=100, http_retry=FAST)

        def fail(*args, **kwargs):
            code = errno.ENOSPC if where == "pwrite" else errno.ENOLCK
            raise OSError(code, os.strerror(code))

        if where == "pwrite":
            monkeypatch.setattr(os, "pwrite", fail)
        else:
            monkeypatch.setattr(machine_limit.fcntl, "flock", fail)
        try:
            df = src.fetch("AAPL", "2024-05-01", "2024-05-10")
        except Exception as exc:  # acceptable only as a classified tickvault error
            assert isinstance(exc, TickvaultError), repr(exc)
        else:
            assert len(df) > 0
    finally:
        monkeypatch.undo()
        server.stop()


@pytest.mark.slow
@posix_only
def test_absurd_retry_after_does_not_break_later_fetches(tmp_path, monkeypatch):
    """A 429 with Retry-After far in the future (an HTTP date in year 9999) is stored as
    not_before; every later acquire() of that source, in every process, then raises
    OverflowError from time.sleep."""
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(tmp_path))
    server = MarketServer().start()
    try:
        src = get_source("yahoo", base_url=server.base_url, rate_limit=100, http_retry=FAST)
        server.script("AAPL", Reply(status=429, headers={"Retry-After": "31 Dec 9999 00:00:00"}))
        with pytest.raises(TickvaultError):
            src.fetch("AAPL", "2024-05-01", "2024-05-10")
        errors: list[BaseException] = []

        def later() -> None:
            try:
                src.fetch("MSFT", "2024-05-01", "2024-05-10")
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=later, daemon=True)
        t.start()
        t.join(3)
        leaked = [e for e in errors if not isinstance(e, TickvaultError)]
        assert leaked == [], leaked
    finally:
        server.stop()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux /proc")
def test_sources_do_not_leak_a_descriptor_each(tmp_path, monkeypatch):
    """shared_bucket caches one FileTokenBucket per source id forever and its descriptor
    is never closed: every source object made in a long-lived process costs an open file
    (and a state file) until the process exits."""
    monkeypatch.setenv("TICKVAULT_RATE_DIR", str(tmp_path))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        src = get_source("yahoo", base_url="http://127.0.0.1:9", rate_limit=1000)
        src.bucket.acquire()
        del src
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) - before < 10


@posix_only
def test_state_file_of_unexpected_size_resets_and_still_limits(tmp_path):
    clock = FakeClock()
    path = tmp_path / "x.bucket"
    path.write_bytes(b"\x01\x02\x03\x04\x05")
    b = FileTokenBucket(RateLimit(per_second=10), clock=clock, path=path)
    assert b.try_acquire() == 0.0
    assert path.stat().st_size == 16
    assert b.try_acquire() == pytest.approx(0.09)


@posix_only
def test_threads_and_a_second_descriptor_take_one_token(tmp_path):
    """Threads share one descriptor (serialised by the bucket's lock) and another object on
    the same file stands for another process: with burst 1 exactly one token is granted."""
    clock = FakeClock()
    limit = RateLimit(per_second=1)
    a = FileTokenBucket(limit, clock=clock, path=tmp_path / "x.bucket")
    b = FileTokenBucket(limit, clock=clock, path=tmp_path / "x.bucket")
    grants: list[float] = []
    barrier = threading.Barrier(16)

    def take(bucket: FileTokenBucket) -> None:
        barrier.wait()
        grants.append(bucket.try_acquire())

    threads = [threading.Thread(target=take, args=((a, b)[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grants) == 16 and grants.count(0.0) == 1


_HOLDER = """
import os, sys, time
from pathlib import Path
from tickvault.sources.machine_limit import FileTokenBucket
from tickvault.sources.policy import RateLimit
HOLD = False
def clock():
    if HOLD:
        print("locked", flush=True)
        time.sleep(600)
    return time.monotonic()
b = FileTokenBucket(RateLimit(per_second=1000), path=Path(sys.argv[1]), clock=clock)
b.try_acquire()                 # the state file is open
pid = os.fork()                 # e.g. a worker or a subprocess helper forked later
if pid == 0:
    time.sleep(60)
    os._exit(0)
print(f"child {pid}", flush=True)
HOLD = True
b.try_acquire()                 # holds the flock; the test kills this process here
"""


_FORK_WHILE_HELD = """
import os, sys, threading, time
from pathlib import Path
from tickvault.sources.machine_limit import FileTokenBucket
from tickvault.sources.policy import RateLimit
inside, release = threading.Event(), threading.Event()
def clock():
    if threading.current_thread().name == "fetcher":
        inside.set(); release.wait()
    return time.monotonic()
b = FileTokenBucket(RateLimit(per_second=1000), path=Path(sys.argv[1]), clock=clock)
t = threading.Thread(target=b.try_acquire, name="fetcher"); t.start()
inside.wait()                   # a fetch thread is inside the bucket ...
pid = os.fork()                 # ... when multiprocessing (fork) starts a worker
if pid == 0:
    b.try_acquire()
    os._exit(0)
release.set(); t.join()
deadline = time.time() + 1.5
while time.time() < deadline:
    if os.waitpid(pid, os.WNOHANG)[0]:
        print("finished"); sys.exit(0)
    time.sleep(0.02)
print("hung"); os.kill(pid, 9); os.waitpid(pid, 0)
"""
