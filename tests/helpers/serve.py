"""A real ``tickvault serve`` process on 127.0.0.1 for HTTP tests: ``with serve(db, *args)
as site: site.get("/api/runs")``; the server's stderr is in ``site.stderr`` afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A running ``tickvault serve`` process, reached on 127.0.0.1."""

    def __init__(self, proc: subprocess.Popen[str], port: int, db: Path) -> None:
        self.proc = proc
        self.port = port
        self.db = db
        self.url = f"http://127.0.0.1:{port}"
        self.stderr = ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, self.stderr = self.proc.communicate(timeout=30)
        return self.stderr


@contextmanager
def serve(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``tickvault serve --db DB --port FREE ARGS`` until the block ends (stderr is in
    ``.stderr`` afterwards)."""
    port = _free_port()
    argv = [sys.executable, "-m", "tickvault", "serve", "--db", str(db), "--port", str(port)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [*argv, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=full_env,
    )
    served = Served(proc, port, db)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(served.url + "/favicon.ico", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, served.stop()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        yield served
    finally:
        served.stop()
