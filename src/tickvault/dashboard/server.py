"""Running the dashboard: bind the address first (so a taken port is a clear error, not a
traceback from uvicorn), warn when it is reachable from other machines, then serve with a
deadline for request headers and a cap on connections (:mod:`.connections`)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import AddressInUse
from .app import create_app
from .connections import HEADER_TIMEOUT, MAX_CONNECTIONS, limited_protocol
from .security import TOKEN_ENV, is_exposed

log = logging.getLogger(__name__)


def serve(
    db_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allowed_hosts: Iterable[str] = (),
    token: str | None = None,
    on_listening: Callable[[str], None] | None = None,
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    **options: Any,
) -> None:
    """Run the dashboard with uvicorn until interrupted. The address is bound first: if it
    is taken, :class:`~tickvault.errors.AddressInUse` is raised before anything is served,
    else ``on_listening(url)`` is called and requests are served. Binds to 127.0.0.1 unless told
    otherwise, and warns when the address is reachable from other machines;
    ``allowed_hosts``, ``token`` and ``options`` (calendar, fresh_days, stale_days) go to
    :func:`create_app`. No ``Server`` header is sent. A connection whose request headers
    are not complete ``header_timeout`` seconds after it opened (or after its last
    response) is closed; beyond ``max_connections`` open at once, new ones are answered
    503."""
    import uvicorn

    protocol = limited_protocol(header_timeout, max_connections)
    app = create_app(db_path, host=host, allowed_hosts=allowed_hosts, token=token, **options)
    if is_exposed(host):
        where = f"{host}:{port}"
        if token is None:
            log.warning(
                "the dashboard on %s has no authentication and is reachable from other "
                "machines: anyone who can connect can read every price, path and run record "
                "(set a token with --token or %s, or bind 127.0.0.1)",
                where,
                TOKEN_ENV,
            )
        else:
            log.warning(
                "the dashboard on %s is reachable from other machines; it asks for the token, "
                "which crosses the network unencrypted over plain HTTP (put an HTTPS reverse "
                "proxy in front)",
                where,
            )
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_level="warning", server_header=False, http=protocol)
    if on_listening is not None:
        shown = f"[{host}]" if ":" in host else host
        on_listening(f"http://{shown}:{sock.getsockname()[1]}")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (AddressInUse if another program has it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(
                f"address already in use: {host}:{port} (another program listens there; "
                f"stop it or pick another --port)"
            ) from None
        raise
    sock.set_inheritable(True)
    return sock
