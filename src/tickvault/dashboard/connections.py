"""Limits on the connections ``tickvault serve`` holds: a deadline for the request's
headers and a cap on how many connections are open at once.

uvicorn (0.55, with h11) arms its keep-alive timeout only after a response, and cancels it
whenever a byte arrives: a connection that never sends anything, or that sends its
headers a byte at a time, is never closed, and nothing limits how many such connections a
client opens. :func:`limited_protocol` makes an h11 protocol class that

* closes a connection whose request headers are not complete ``header_timeout`` seconds
  after it opened, or after its previous response: a deadline, not an idle timeout, so
  trickled bytes do not extend it. A request whose headers arrived is never cut, however
  long its answer takes;
* answers ``503 Service Unavailable`` (``Connection: close``) to a connection that would
  be one more than ``max_connections``, without handing it to the app, and closes it once
  the client has sent its request (or after a second), so the client reads the answer.

Put a reverse proxy in front (nginx, Caddy) when the dashboard is reachable beyond this
machine: it buffers slow clients and can limit them per address.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ConfigError

__all__ = ["HEADER_TIMEOUT", "MAX_CONNECTIONS", "limited_protocol"]

#: seconds a connection has to send a request's headers
HEADER_TIMEOUT = 10.0
#: connections served at once; more are answered 503
MAX_CONNECTIONS = 100
#: seconds a refused connection is kept to read the client's request before closing
_LINGER = 1.0

_BUSY = b"too many connections: try again in a moment\n"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BUSY)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Cache-Control: no-store\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Connection: close\r\n\r\n" + _BUSY
)


class _LimitedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (the class
    attributes, set by :func:`limited_protocol`)."""

    header_timeout = HEADER_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        self._refused = True
        self.transport = transport  # type: ignore[assignment]
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        if transport.can_write_eof():
            transport.write_eof()  # the answer is complete; its request is read and dropped
        self._deadline = self.loop.call_later(_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers have the same deadline

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # its headers came in time; the answer is under way
        if not self.transport.is_closing():
            self.transport.close()


def limited_protocol(
    header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS
) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    if not header_timeout > 0:
        raise ConfigError(f"header_timeout must be > 0 seconds, got {header_timeout!r}")
    if max_connections < 1:
        raise ConfigError(f"max_connections must be at least 1, got {max_connections!r}")
    attrs = {"header_timeout": float(header_timeout), "max_connections": int(max_connections)}
    return type("LimitedProtocol", (_LimitedProtocol,), attrs)
