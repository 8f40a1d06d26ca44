"""Connections that never finish their request are closed, and there is a cap on how many
are open at once (issue 26 item 5): a real ``tickvault serve`` on 127.0.0.1, real sockets
that send nothing, trickle header bytes one at a time, or trickle the next request of a
keep-alive connection."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.dashboard import make_demo_db
from helpers.serve import Served, serve

TIMEOUT = 1.0  # --header-timeout of the servers here
CAP = 6  # --max-connections of the server in the cap tests


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "db"
    make_demo_db(path).close()
    return path


@pytest.fixture(scope="module")
def site(db: Path) -> Iterator[Served]:
    with serve(db, "--header-timeout", str(TIMEOUT), "--max-connections", "50") as s:
        yield s


def connect(site: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def drain(sock: socket.socket) -> tuple[bytes, bool]:
    """(what the server sent that is waiting on ``sock``, whether it closed it: EOF or
    reset), without blocking."""
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        return data, True
    except BlockingIOError:
        return data, False
    except OSError:  # reset
        return data, True
    finally:
        sock.setblocking(True)


def closed_by_server(sock: socket.socket) -> bool:
    return drain(sock)[1]


def trickle_until_closed(sock: socket.socket, data: bytes, limit: float) -> float:
    """Send ``data`` one byte every 0.1 s (repeating) until the server closes the
    connection; the seconds that took (``limit`` + 1 if it never did)."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < limit:
        try:
            sock.send(data[i % len(data) : i % len(data) + 1])
        except OSError:
            return time.monotonic() - t0
        if closed_by_server(sock):
            return time.monotonic() - t0
        i += 1
        time.sleep(0.1)
    return limit + 1


def get(sock: socket.socket, path: str = "/api/runs", *, keep_alive: bool = False) -> bytes:
    """A whole GET on ``sock``; the response's head and body."""
    connection = "keep-alive" if keep_alive else "close"
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        None,
    )
    while length is not None and len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_trickles_its_headers_is_closed(site: Served):
    with connect(site) as sock:
        sock.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        seconds = trickle_until_closed(sock, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 8)
    assert TIMEOUT * 0.8 <= seconds <= TIMEOUT + 3, seconds


def test_a_connection_that_sends_nothing_is_closed(site: Served):
    with connect(site) as sock:
        t0 = time.monotonic()
        while not closed_by_server(sock) and time.monotonic() - t0 < 8:
            time.sleep(0.05)
        seconds = time.monotonic() - t0
    assert TIMEOUT * 0.8 <= seconds <= TIMEOUT + 3, seconds


def test_trickling_the_next_request_of_a_kept_alive_connection_is_closed(site: Served):
    with connect(site) as sock:
        first = get(sock, keep_alive=True)
        assert first.startswith(b"HTTP/1.1 200"), first[:100]
        seconds = trickle_until_closed(sock, b"GET /api/runs HTTP/1.1\r\nHost: x\r\nX: y", 8)
    assert seconds <= TIMEOUT + 3, seconds


def test_a_slow_but_complete_request_is_served(site: Served):
    with connect(site) as sock:
        for part in [
            b"GET /api/runs HTTP/1.1\r\n",
            b"Host: 127.0.0.1\r\n",
            b"Connection: close\r\n\r\n",
        ]:
            sock.sendall(part)
            time.sleep(TIMEOUT / 5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b'"count":2' in data


def test_a_response_slower_than_the_header_timeout_is_not_cut(site: Served):
    """The timeout is for the request's headers: a request being answered is left alone
    (verify of the whole database takes as long as it takes)."""
    with connect(site) as sock:
        time.sleep(TIMEOUT / 2)
        first = get(sock, "/api/overview?wait_verify=1", keep_alive=True)
        assert first.startswith(b"HTTP/1.1 200")
        assert get(sock, "/api/runs", keep_alive=True).startswith(b"HTTP/1.1 200")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_connections_are_capped_and_the_server_recovers(db: Path):
    """CAP idle connections fill the server; the next one is told 503 and closed at once
    (the server holds no more sockets than the cap); once the idle ones go, it serves."""
    with serve(db, "--header-timeout", "30", "--max-connections", str(CAP)) as s:
        baseline = _open_fds(s.proc.pid)
        idle = [connect(s) for _ in range(CAP)]
        time.sleep(0.5)  # accepted by the server
        try:
            extra = [connect(s) for _ in range(20)]
            for sock in extra:
                response = get(sock)
                assert response.startswith(b"HTTP/1.1 503"), response[:200]
                assert b"too many connections" in response
                sock.close()
            time.sleep(0.5)
            assert _open_fds(s.proc.pid) <= baseline + CAP
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 10
        while True:
            with connect(s) as sock:
                response = get(sock)
            if response.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.startswith(b"HTTP/1.1 200"), response[:200]


@pytest.mark.slow
def test_slow_connections_do_not_pile_up(db: Path):
    """Forty connections that trickle bytes: the server holds at most the cap of them
    (the others are told 503 at once), each for about the header timeout, and then it
    answers again with no socket left over."""
    with serve(db, "--header-timeout", str(TIMEOUT), "--max-connections", str(CAP)) as s:
        baseline = _open_fds(s.proc.pid)
        socks = [connect(s) for _ in range(40)]
        received = dict.fromkeys(socks, b"")
        closed: dict[socket.socket, float] = {}
        t0 = time.monotonic()
        while len(closed) < len(socks) and time.monotonic() - t0 < TIMEOUT + 4:
            for sock in socks:
                if sock in closed:
                    continue
                with contextlib.suppress(OSError):
                    sock.send(b"X")
                data, gone = drain(sock)
                received[sock] += data
                if gone:
                    closed[sock] = time.monotonic() - t0
            time.sleep(0.1)
        assert len(closed) == len(socks)  # every one was closed by the server
        held = [sock for sock in socks if not received[sock].startswith(b"HTTP/1.1 503")]
        assert 1 <= len(held) <= CAP, len(held)
        assert all(TIMEOUT * 0.8 <= closed[sock] <= TIMEOUT + 3 for sock in held)
        for sock in socks:
            sock.close()
        with connect(s) as sock:
            assert get(sock).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while _open_fds(s.proc.pid) > baseline and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _open_fds(s.proc.pid) <= baseline


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--header-timeout", "0"], "--header-timeout"),
        (["--max-connections", "0"], "--max-connections"),
    ],
)
def test_bad_limits_are_a_usage_error(db: Path, args: list[str], word: str):
    from helpers.cli import tv

    r = tv("serve", *args, db=db, timeout=20)
    assert r.returncode == 2 and word in r.stderr, r.stderr
