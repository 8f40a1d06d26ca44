"""What keeps the dashboard safe to run: the Host names it answers, the optional token,
and the headers on every response. See the "Security" section of docs/dashboard.md.

* **Host names (DNS rebinding).** A web page the user visits can point a name of its own
  at 127.0.0.1 and then read the dashboard as if it were its own site. The browser still
  sends that name in ``Host``, so the dashboard answers only names it knows: ``localhost``,
  ``127.0.0.1``, ``[::1]``, the address it is bound to and ``--allowed-host`` names (a
  reverse proxy's). Bound to every interface (``0.0.0.0``, ``::``) it also answers any IP
  address literal (an address cannot be rebound) and the machine's host name. Anything
  else is a 400.
* **Token.** With a token (at least 16 characters), every request must carry it:
  ``Authorization: Bearer TOKEN``, the cookie a ``?token=TOKEN`` link sets (the link then
  redirects to the same page without the token, so it leaves the address bar and the
  history), compared in constant time. Anything else is a 401; repeated wrong tokens are
  slowed down (:mod:`.throttle`).
* **Headers.** ``X-Content-Type-Options: nosniff`` and ``Cross-Origin-Resource-Policy:
  same-origin`` on every response; a ``Content-Security-Policy`` that allows only the
  dashboard's own files and no framing, and ``Referrer-Policy: no-referrer`` on HTML; an
  ``Allow`` header on every 405; redirects are relative (the Host is never echoed); with a
  token, ``Cache-Control: no-store`` on every response (no cache keeps a protected page).

Starlette's ``TrustedHostMiddleware`` checks names too, but it cannot accept "any IP
literal" for a wildcard bind, answers in plain text only, and would sit inside the error
middleware, so its 400s and the app's 500s would miss the headers; :class:`Guard` wraps
the whole app instead.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError
from .throttle import WrongTokens

__all__ = [
    "COOKIE",
    "CSP",
    "LOCAL_HOSTS",
    "MIN_TOKEN_LENGTH",
    "TOKEN_COMMAND",
    "TOKEN_ENV",
    "Guard",
    "HostNotAllowed",
    "HostPolicy",
    "NotAuthenticated",
    "check_token",
    "is_exposed",
]

log = logging.getLogger(__name__)

#: Names every dashboard answers to.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: Where ``tickvault serve`` reads the token when ``--token`` is not given.
TOKEN_ENV = "TICKVAULT_DASHBOARD_TOKEN"
#: The cookie a ``?token=`` link sets.
COOKIE = "tickvault_token"
#: The Content-Security-Policy of every HTML page: the dashboard's own files only.
CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")
#: the shortest token accepted: a token must resist guessing
MIN_TOKEN_LENGTH = 16
#: a shell command that prints a good token
TOKEN_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~+/=-]*$")
_HOST_HEADER = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::\d{1,5})?$")


class HostNotAllowed(Exception):
    """The request's ``Host`` header names a host this dashboard does not serve (400)."""


class NotAuthenticated(Exception):
    """The dashboard asks for a token and the request carries none, or a wrong one (401)."""


def _normalise(name: str) -> str:
    """A host name or address as compared: lower case, IPv6 without brackets, compressed."""
    name = name.strip().lower()
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return name


def _host_of(header: str | None) -> str | None:
    """The host part of a ``Host`` header (normalised), or None if it is malformed."""
    m = _HOST_HEADER.match((header or "").strip())
    if m is None:
        return None
    if m["v6"] is not None:
        try:
            return str(ipaddress.IPv6Address(m["v6"]))
        except ValueError:
            return None
    return _normalise(m["name"])


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_exposed(bind: str) -> bool:
    """Whether a server bound to ``bind`` can be reached from other machines (anything
    but a loopback address or ``localhost``)."""
    name = _normalise(bind)
    if name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` headers a dashboard answers (:meth:`for_bind` builds it)."""

    names: frozenset[str]
    suffixes: tuple[str, ...] = ()  # from "*.example.com": ".example.com"
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def for_bind(cls, bind: str = "127.0.0.1", allowed: Iterable[str] = ()) -> HostPolicy:
        """The local names, the bind address (for a wildcard bind: any IP literal and this
        machine's host name) and ``allowed`` (names, ``*.domain`` or ``*`` for any)."""
        names = {_normalise(n) for n in LOCAL_HOSTS}
        suffixes: list[str] = []
        any_ip = bind.strip() in _WILDCARDS
        if any_ip:
            names.add(_normalise(socket.gethostname()))
        else:
            names.add(_normalise(bind))
        any_host = False
        for raw in allowed:
            name = raw.strip()
            if name == "*":
                any_host = True
            elif name.startswith("*."):
                suffixes.append(_normalise(name[1:]))
            elif not name or "*" in name or "/" in name or _host_of(name) is None:
                raise ConfigError(
                    f"allowed host {raw!r} is not a host name; use e.g. dash.example.com, "
                    f"*.example.com, 192.168.1.5 or [::1] (no scheme, no path)"
                )
            else:
                names.add(_host_of(name) or name)
        return cls(frozenset(names), tuple(suffixes), any_ip, any_host)

    def allows(self, header: str | None) -> bool:
        if self.any_host:
            return True
        host = _host_of(header)
        if host is None:
            return False
        if host in self.names or (self.any_ip and _is_ip(host)):
            return True
        return any(host.endswith(s) and len(host) > len(s) for s in self.suffixes)

    def describe(self) -> str:
        shown = sorted(f"[{n}]" if ":" in n else n for n in self.names)
        shown += [f"*{s}" for s in self.suffixes]
        if self.any_ip:
            shown.append("any IP address")
        return ", ".join(shown)


def check_token(token: str | None, *, advice: str | None = None) -> str | None:
    """``token`` if it can be used (None: no token); a ConfigError otherwise: it must be
    16-512 characters (letters, digits and ``._~+/=-``). The message never shows the token;
    it ends with ``advice`` (default: the command that makes a good one)."""
    if token is None:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        problem = (
            f"is too short ({len(token)} characters): it must be at least "
            f"{MIN_TOKEN_LENGTH} characters long, so that it cannot be guessed"
        )
    elif len(token) > 512:
        problem = f"is too long ({len(token)} characters; at most 512)"
    elif not _TOKEN_CHARS.match(token):
        problem = "may hold only letters, digits and . _ ~ + / = -"
    else:
        return token
    advice = advice or f"make a random one with: {TOKEN_COMMAND}"
    raise ConfigError(f"the dashboard token {problem}; {advice}")


def _same(given: str, token: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token)


def _relative(location: str) -> str:
    """A redirect target without scheme and host: the Host header is never echoed."""
    parts = urlsplit(location)
    return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))


def _secure_send(send: Send, *, no_store: bool) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            if no_store:  # a page behind the token: no cache may keep a copy
                headers["Cache-Control"] = "no-store"
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Cross-Origin-Resource-Policy"] = "same-origin"
            if headers.get("content-type", "").startswith("text/html"):
                headers["Content-Security-Policy"] = CSP
                headers["Referrer-Policy"] = "no-referrer"
            if message["status"] == 405 and "allow" not in headers:
                headers["Allow"] = "GET, HEAD"
            if "location" in headers:
                headers["Location"] = _relative(headers["location"])
            if "server" in headers:
                del headers["server"]
        await send(message)

    return wrapped


Renderer = Callable[[Request, Exception], Response]


class Guard:
    """ASGI middleware around the whole dashboard: the Host check, the token and the
    security headers (see the module docstring). Refusals are rendered by ``render`` —
    the app's error page or JSON — from :class:`HostNotAllowed` / :class:`NotAuthenticated`."""

    def __init__(
        self, app: ASGIApp, *, hosts: HostPolicy, token: str | None, render: Renderer
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.token = None if token is None else token.encode("utf-8")
        self.render = render
        self.wrong_tokens = WrongTokens()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the dashboard has none
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _secure_send(send, no_store=self.token is not None)
        request = Request(scope)
        refusal = self._host_refusal(request) or await self._token_refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_refusal(self, request: Request) -> Response | None:
        header = request.headers.get("host")
        if self.hosts.allows(header):
            return None
        return self.render(
            request,
            HostNotAllowed(
                f"host {header or ''!r} is not served by this dashboard; it answers to "
                f"{self.hosts.describe()}. Behind a reverse proxy, start it with "
                f"--allowed-host NAME."
            ),
        )

    async def _token_refusal(self, request: Request) -> Response | None:
        """None when the request carries the token (or none is needed); the redirect that
        sets the cookie for ``?token=``; else a 401, slowed if it is a repeated guess."""
        if self.token is None:
            return None
        kind, _, value = request.headers.get("authorization", "").partition(" ")
        bearer = value.strip() if kind.lower() == "bearer" else None
        cookie = request.cookies.get(COOKIE)
        given = request.query_params.get("token")
        if bearer is not None and _same(bearer, self.token):
            return None
        if cookie is not None and _same(cookie, self.token):
            return None
        if given is not None and _same(given, self.token):
            return self._enter(request, given)
        if (bearer, cookie, given) != (None, None, None):  # a token, and a wrong one
            await self.wrong_tokens.wrong(request.client.host if request.client else "")
        response = self.render(
            request,
            NotAuthenticated(
                "this dashboard asks for a token: open it once with ?token=TOKEN (a cookie "
                "keeps you signed in) or send the header 'Authorization: Bearer TOKEN'"
            ),
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="tickvault"'
        return response

    @staticmethod
    def _enter(request: Request, token: str) -> Response:
        """The token came as a query parameter: set the cookie and go to the same page
        without it."""
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(request.url.path)
        query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)]
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        response = RedirectResponse(path + ("?" + rest if rest else ""), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response
