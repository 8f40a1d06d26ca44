"""A small real HTTP proxy on 127.0.0.1 that injects faults between a client and an S3
server (SeaweedFS in the tests): it forwards every request unchanged (the Host header too,
so request signatures stay valid) and, where a rule matches, answers 500/403/503 itself,
forwards the request and then answers 500 (``500-after``: the write landed, the answer
says it failed), drops the connection, cuts the response body short, adds latency, or stops
listening for a while like a restarting server. No pytest here.

A rule is ``Fault(action, method=..., path=..., rate=..., times=...)``: ``path`` is a regular
expression searched in the request path, ``rate`` the share of matching requests it hits
(seeded, so a run repeats), ``times`` how many it hits at most (None: no limit).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACTIONS = ("400", "500", "503", "403", "404-bucket", "500-after", "drop", "truncate", "latency")

_ERROR_BODY = {
    "400": ("InvalidRequest", "The request is not valid."),
    "500": ("InternalError", "We encountered an internal error. Please try again."),
    "503": ("SlowDown", "Please reduce your request rate."),
    "403": ("AccessDenied", "Access Denied"),
    "404-bucket": ("NoSuchBucket", "The specified bucket does not exist"),
}


@dataclass
class Fault:
    action: str
    method: str | None = None
    path: str = ""
    rate: float = 1.0
    times: int | None = None
    latency: float = 0.5
    hits: int = field(default=0)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault {self.action!r}; one of {ACTIONS}")


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` — ``proxy.endpoint`` is its URL;
    ``proxy.faults`` the rules (a list, change it any time); ``proxy.hits`` counts the
    faults injected per action; ``proxy.stop_for(seconds)`` refuses connections that long.
    """

    def __init__(self, upstream: str, faults: list[Fault] | None = None, seed: int = 7) -> None:
        u = urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.faults: list[Fault] = list(faults or [])
        self.hits: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop_for(self, seconds: float) -> threading.Thread:
        """Stop listening now (new connections are refused, open ones are cut at their
        next request) and listen again on the same port after ``seconds``, in a background
        thread (returned, to join)."""
        self._down_until = time.monotonic() + seconds
        self.close()

        def later() -> None:
            time.sleep(max(0.0, self._down_until - time.monotonic()))
            self.start()

        t = threading.Thread(target=later, daemon=True)
        t.start()
        return t

    # -- rules -----------------------------------------------------------------------------

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests[method] += 1
            for f in self.faults:
                if f.method and f.method != method:
                    continue
                if f.path and not re.search(f.path, path):
                    continue
                if f.times is not None and f.hits >= f.times:
                    continue
                if f.rate < 1.0 and self._random.random() >= f.rate:
                    continue
                f.hits += 1
                self.hits[f.action] += 1
                return f
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.owner.pick(self.command, self.path)
        action = fault.action if fault else None
        if self.owner.down:
            action = "drop"  # a kept-alive connection of a stopped server
        if action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if action in _ERROR_BODY:
            assert fault is not None
            code, text = _ERROR_BODY[action]
            status = int(action[:3])
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{text}</Message><Resource>{self.path}</Resource></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml) if self.command != "HEAD" else 0))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)
            return
        if action == "latency":
            assert fault is not None
            time.sleep(fault.latency)
        status, reason, headers, data = self._forward(body)
        if action == "500-after":  # it landed; the client is told it failed
            status, reason, headers = 500, "Internal Server Error", []
            data = b"<Error><Code>InternalError</Code><Message>after</Message></Error>"
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if action == "truncate" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.owner.upstream
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, r.reason, r.getheaders(), data
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


__all__ = ["Fault", "FaultProxy"]
