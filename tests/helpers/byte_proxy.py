"""A byte-counting TCP proxy on 127.0.0.1 for an HTTP server (SeaweedFS's S3 endpoint in
benchmarks/bench_s3.py and the object-store tests): it forwards both directions unchanged
(no Host rewrite, so request signatures stay valid) and parses the HTTP/1.1 framing as it
passes (request and status lines, ``Content-Length`` or chunked bodies, HEAD answers
without a body, ``100 Continue``), so it can say, for any client that speaks through it,
how many requests went up and how many bytes each way — counted the same way whatever the
client (tickvault's obstore, deltalake's object_store, anything else).

Every finished exchange is one :class:`Exchange`; it is recorded *before* the last bytes of
its answer are passed on, so when a client call returns, its requests are all counted.
``with ByteProxy(upstream) as proxy:`` runs the proxy in threads of this process; for a
benchmark whose client is Python, :func:`spawn` runs it in a child process (its copying then
takes no time from the client's interpreter) and :class:`ExchangeLog` reads what it recorded.
No pytest here.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

_BUF = 1 << 20


@dataclass
class Exchange:
    """One request and its answer: method, target (path and query), the Range header,
    the status, bytes up and down on the wire (start line, headers and body), the body
    bytes of each, and ``conn`` (which connection carried it)."""

    method: str
    target: str
    range: str
    status: int
    up: int
    down: int
    up_body: int
    down_body: int
    conn: int


class _Message:
    """Incremental framing of one direction of an HTTP/1.1 connection. ``feed`` takes the
    bytes as they pass and calls ``on_head(start_line, headers)`` when a message's head is
    complete (it returns the body length: an int, ``-1`` chunked, ``None`` until close)
    and ``on_end(head_bytes, body_bytes)`` when the message is complete."""

    def __init__(
        self,
        on_head: Callable[[str, dict[str, str]], int | None],
        on_end: Callable[[int, int], None],
    ) -> None:
        self.on_head = on_head
        self.on_end = on_end
        self.buf = bytearray()
        self.state = "head"  # head | body | chunk-size | chunk-data | trailer | until-close
        self.left = 0  # body (or chunk) bytes still to come
        self.head_bytes = 0
        self.body_bytes = 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            if self.state in ("body", "chunk-data"):
                take = min(self.left, len(view))
                self.left -= take
                self.body_bytes += take
                view = view[take:]
                if self.left == 0:
                    if self.state == "body":
                        self._end()
                    else:
                        self.state = "chunk-size"
                continue
            if self.state == "until-close":
                self.body_bytes += len(view)
                return
            # a line-oriented state: head, chunk-size, trailer
            self.buf += view
            view = view[len(view) :]
            self._lines()

    def _lines(self) -> None:
        while True:
            if self.state == "head":
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    return
                head = bytes(self.buf[: i + 4])
                rest = bytes(self.buf[i + 4 :])
                self.buf.clear()
                self.head_bytes = len(head)
                self.body_bytes = 0
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = self.on_head(lines[0], headers)
                if length is None:
                    self.state = "until-close"
                elif length == -1:
                    self.state = "chunk-size"
                elif length == 0:
                    self._end()
                else:
                    self.state, self.left = "body", length
                if rest:
                    self.feed(rest)
                return
            if self.state == "chunk-size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                self.body_bytes += i + 2
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.state = "trailer"
                else:
                    self.state, self.left = "chunk-data", size + 2  # data and its CRLF
                    rest = bytes(self.buf)
                    self.buf.clear()
                    if rest:
                        self.feed(rest)
                    return
                continue
            if self.state == "trailer":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                del self.buf[: i + 2]
                self.body_bytes += i + 2
                if i == 0:  # the empty line after the trailers
                    rest = bytes(self.buf)
                    self.buf.clear()
                    self._end()
                    if rest:
                        self.feed(rest)
                    return
                continue
            return

    def _end(self) -> None:
        head, body = self.head_bytes, self.body_bytes
        self.state = "head"
        self.left = self.head_bytes = self.body_bytes = 0
        self.on_end(head, body)

    def close(self) -> None:
        """The connection closed: a body read until close is complete."""
        if self.state == "until-close":
            self._end()


def _length(headers: dict[str, str]) -> int:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return -1
    return int(headers.get("content-length") or 0)


class _Connection:
    """One client connection and its upstream twin, with the framing of both directions."""

    def __init__(self, proxy: ByteProxy, client: socket.socket, conn_id: int) -> None:
        self.proxy = proxy
        self.client = client
        self.conn_id = conn_id
        self.upstream = socket.create_connection(proxy.upstream)
        self.pending: deque[dict[str, object]] = deque()  # requests without an answer yet
        self.answer: dict[str, object] | None = None
        self.requests = _Message(self._request_head, self._request_end)
        self.responses = _Message(self._response_head, self._response_end)
        self.current: dict[str, object] | None = None

    # -- framing callbacks -----------------------------------------------------------------

    def _request_head(self, line: str, headers: dict[str, str]) -> int:
        method, _, rest = line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        self.current = {"method": method, "target": target, "range": headers.get("range", "")}
        self.pending.append(self.current)
        return _length(headers)

    def _request_end(self, head: int, body: int) -> None:
        if self.current is not None:
            self.current["up"] = head + body
            self.current["up_body"] = body

    def _response_head(self, line: str, headers: dict[str, str]) -> int | None:
        parts = line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 100 <= status < 200:  # 100 Continue: the real answer follows
            self.answer = {"status": status, "interim": True}
            return 0
        req = self.pending.popleft() if self.pending else {"method": "?", "target": ""}
        self.answer = {**req, "status": status}
        if req["method"] == "HEAD" or status in (204, 304):
            return 0
        if "transfer-encoding" not in headers and "content-length" not in headers:
            return None
        return _length(headers)

    def _response_end(self, head: int, body: int) -> None:
        ans = self.answer
        self.answer = None
        if ans is None:
            return
        if ans.get("interim"):
            self.proxy._interim += head
            return
        self.proxy._record(
            Exchange(
                method=str(ans["method"]),
                target=str(ans["target"]),
                range=str(ans.get("range", "")),
                status=int(ans["status"]),  # type: ignore[call-overload]
                up=int(ans.get("up", 0)),  # type: ignore[call-overload]
                down=head + body,
                up_body=int(ans.get("up_body", 0)),  # type: ignore[call-overload]
                down_body=body,
                conn=self.conn_id,
            )
        )

    # -- pumping ---------------------------------------------------------------------------

    def run(self) -> None:
        up = threading.Thread(target=self._pump, args=(self.client, self.upstream, True))
        up.daemon = True
        up.start()
        self._pump(self.upstream, self.client, False)
        up.join()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        framing = self.requests if upward else self.responses
        try:
            while True:
                data = src.recv(_BUF)
                if not data:
                    break
                framing.feed(data)  # recorded before the bytes move on
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not upward:
                framing.close()
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


class ByteProxy:
    """``with ByteProxy("http://127.0.0.1:8333") as proxy:`` — ``proxy.endpoint`` is its
    URL; ``proxy.exchanges`` every finished exchange, in the order their answers ended;
    ``sink`` (if given) is also called with each."""

    def __init__(
        self, upstream: str, sink: Callable[[Exchange], None] | None = None, port: int = 0
    ) -> None:
        u = urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.sink = sink
        self.port = port
        self.exchanges: list[Exchange] = []
        self._interim = 0
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ByteProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(128)
        self.port = server.getsockname()[1]
        self._server = server
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
            self._server = None

    def _accept(self) -> None:
        n = 0
        server = self._server
        assert server is not None
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            n += 1
            try:
                conn = _Connection(self, client, n)
            except OSError:
                client.close()
                continue
            threading.Thread(target=conn.run, daemon=True).start()

    def _record(self, ex: Exchange) -> None:
        with self._lock:
            self.exchanges.append(ex)
            if self.sink is not None:
                self.sink(ex)

    def mark(self) -> int:
        """A position in :attr:`exchanges`, for :meth:`since`."""
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return self.exchanges[mark:]


# -- in a child process ----------------------------------------------------------------------


class ExchangeLog:
    """The exchanges a :func:`spawn`-ed proxy appended to its log file (one JSON line
    each): ``mark()`` then ``since(mark)``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int) -> list[Exchange]:
        with open(self.path, "rb") as fh:
            fh.seek(mark)
            data = fh.read()
        return [Exchange(**json.loads(line)) for line in data.splitlines() if line.strip()]


@contextlib.contextmanager
def spawn(upstream: str, log: Path) -> Iterator[tuple[str, ExchangeLog]]:
    """Run a ByteProxy in a child process until the block ends; yields its endpoint and
    the log of its exchanges."""
    proc = subprocess.Popen(
        [sys.executable, __file__, upstream, str(log)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", ExchangeLog(log)
    finally:
        proc.terminate()
        proc.wait(10)


def _main() -> None:
    upstream, path = sys.argv[1], sys.argv[2]
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def write(ex: Exchange) -> None:
        out.write(json.dumps(asdict(ex), separators=(",", ":")) + "\n")
        out.flush()

    proxy = ByteProxy(upstream, sink=write)
    proxy.start()
    print(proxy.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _main()


__all__ = ["ByteProxy", "Exchange", "ExchangeLog", "spawn"]
