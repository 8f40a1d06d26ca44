"""The dashboard web app: Starlette routes over :mod:`tickvault.dashboard.views`.

Every page has a JSON twin under ``/api``; both call the same view function. The app only
reads (``ParquetDB(path, create=False)`` and pinned snapshots) and maps errors to HTTP
statuses in exactly one place (:func:`http_status`). :class:`~.security.Guard` wraps the
whole app: Host check, optional token, security headers (see :mod:`.security`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa
from jinja2 import pass_context
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from ..errors import (
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    StorageError,
    TickvaultError,
    ValidationError,
)
from ..formats import human_bytes, short_time
from ..storage import ParquetDB
from ..storage.core.store import display_url, is_url
from ..storage.db import MARKER
from . import views
from .security import (
    Guard,
    HostNotAllowed,
    HostPolicy,
    NotAuthenticated,
    check_token,
)
from .views import FreshnessCache, FreshnessOptions, PageNotFound, VerifyCache

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


# -- the one place errors become HTTP statuses --------------------------------------------


def http_status(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, short title) for an exception raised while serving a request."""
    if isinstance(exc, HTTPException):
        titles = {404: "Not found", 405: "Method not allowed"}
        return exc.status_code, titles.get(exc.status_code, "Error")
    if isinstance(exc, HostNotAllowed):
        return 400, "Host not allowed"
    if isinstance(exc, NotAuthenticated):
        return 401, "Token required"
    if isinstance(exc, DatabaseNotFound):
        return 503, "Database not found"
    if isinstance(exc, PageNotFound):
        return 404, "Not found"
    if isinstance(exc, ValidationError | ConfigError):
        return 400, "Bad request"
    if isinstance(exc, CorruptDatabaseError):
        return 500, "The database is corrupt"
    if isinstance(exc, StorageError | OSError | pa.ArrowException):
        return 500, "The database could not be read"
    return 500, "Internal error"


def _hint(status: int, exc: BaseException) -> str:
    if isinstance(exc, DatabaseNotFound):
        return "Start the dashboard with --db pointing at a tickvault database."
    if status == 500:
        return (
            "Run `tickvault verify` to find the damaged file and `tickvault verify --repair` "
            "to fix it."
        )
    return ""


# -- template helpers ---------------------------------------------------------------------


def _fmt_int(n: Any) -> str:
    return "—" if n is None else f"{int(n):,}"


def _fmt_num(x: Any, digits: int = 2) -> str:
    return "—" if x is None else f"{float(x):,.{digits}f}"


def _fmt_ts(s: Any) -> str:
    """ISO timestamp → '2024-03-01' for midnight UTC (daily bars), else with the time in UTC."""
    text = short_time(s, empty="—")
    return f"{text} UTC" if len(text) > 10 else text


def _fmt_age(age: Any, unit: Any) -> str:
    if age is None:
        return "—"
    u = str(unit or "days")
    return f"{age} {u[:-1] if age == 1 else u}"


def _query(request: Request, **changes: Any) -> str:
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


@pass_context
def _rel(ctx: Any, path: str) -> str:
    """``path`` (written from the dashboard's root, "/runs") as a link relative to the page
    being rendered ("./runs", "../runs"), so the dashboard works behind a reverse proxy
    that serves it under a path prefix. Never built from the request's Host."""
    request = ctx.get("request")
    depth = request.url.path.count("/") - 1 if request is not None else 0
    return ("../" * depth or "./") + path.lstrip("/")


@pass_context
def _static(ctx: Any, name: str) -> str:
    """A relative link to a static file (never built from the request's Host)."""
    return str(_rel(ctx, "/static/" + quote(name)))


def _content_disposition(ticker: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name as RFC 6266
    ``filename*`` (UTF-8, percent-encoded), for any ticker."""
    name = ticker.replace("/", "_").replace("\\", "_") + ".csv"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _make_templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(TEMPLATES))
    t.env.filters.update(
        bytes=human_bytes,
        int=_fmt_int,
        num=_fmt_num,
        ts=_fmt_ts,
        urlq=lambda s: quote(str(s), safe=""),
    )
    t.env.globals.update(age=_fmt_age, query=_query, static=_static, rel=_rel)
    return t


# -- the app ------------------------------------------------------------------------------


class _State:
    """Per-app state: the database (opened read-only, lazily) and the verify cache."""

    def __init__(self, db_path: str | os.PathLike[str], opts: FreshnessOptions) -> None:
        #: a URL (s3://...) stays a string, shown without credentials
        self.target = db_path
        self.url = is_url(db_path)
        self.path: Path | str = display_url(str(db_path)) if self.url else Path(db_path)
        self.fresh = FreshnessCache(opts)
        self.verify = VerifyCache()
        self._db: ParquetDB | None = None
        self._lock = threading.Lock()

    def db(self) -> ParquetDB:
        """The database, opened read-only. Re-checked on every request, so a database
        created after the server started is picked up and a removed one reports 503."""
        with self._lock:
            if self._db is not None and self._marker_exists():
                return self._db
            self._db = None
            self._db = ParquetDB(self.target, create=False)
            return self._db

    def explain(self, exc: BaseException) -> BaseException:
        """A read that failed because the database folder went away while the request
        was being served is a missing database (503), not a damaged one (500) or an
        unknown ticker (404)."""
        gone = isinstance(exc, PageNotFound) or http_status(exc)[0] == 500
        if gone and not self._marker_exists():
            return DatabaseNotFound(
                f"no tickvault database at {str(self.path)!r} any more (it was moved or "
                f"removed while this request was served)"
            )
        return exc

    def _marker_exists(self) -> bool:
        if not self.url:
            return (Path(self.path) / MARKER).exists()
        try:  # a bucket: one HEAD
            return self._db is not None and self._db.store.exists(MARKER)
        except OSError:
            return False


class _Dashboard(Starlette):
    """Starlette with :class:`~.security.Guard` outside everything, error middleware
    included, so every response — 500s and refusals too — gets the security headers."""

    guard: dict[str, Any]

    def build_middleware_stack(self) -> ASGIApp:
        return Guard(super().build_middleware_stack(), **self.guard)


def create_app(
    db_path: str | os.PathLike[str],
    *,
    calendar: str | None = None,
    fresh_days: int = 1,
    stale_days: int = 7,
    host: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
    token: str | None = None,
) -> Starlette:
    """The dashboard for the database at ``db_path`` (read-only). ``calendar``,
    ``fresh_days`` and ``stale_days`` are passed to :func:`tickvault.freshness`.

    It answers only requests whose ``Host`` is ``localhost``, ``127.0.0.1``, ``[::1]``,
    ``host`` (the address the server binds; for ``0.0.0.0``/``::`` any IP address and the
    machine's name) or one of ``allowed_hosts`` (``*.example.com`` and ``*`` work). With a
    ``token``, every request must carry it (see :mod:`tickvault.dashboard.security`)."""
    state = _State(db_path, FreshnessOptions(calendar, fresh_days, stale_days))
    templates = _make_templates()
    hosts = HostPolicy.for_bind(host, allowed_hosts)
    token = check_token(token)

    def page(
        request: Request, template: str, data: dict[str, Any], nav: str, title: str
    ) -> Response:
        return templates.TemplateResponse(
            request,
            template,
            {"data": data, "nav": nav, "title": title, "db_path": str(state.path)},
        )

    def twin(
        template: str, nav: str, title: Callable[[dict[str, Any]], str], view: Callable[..., Any]
    ) -> tuple[Callable[[Request], Response], Callable[[Request], Response]]:
        """A page endpoint and its JSON twin over the same view function."""

        def html(request: Request) -> Response:
            data = view(request)
            return page(request, template, data, nav, title(data))

        def api(request: Request) -> Response:
            return JSONResponse(view(request))

        return html, api

    # views bound to request parameters ----------------------------------------------------

    def v_overview(request: Request) -> dict[str, Any]:
        wait = request.query_params.get("wait_verify", "") in ("1", "true", "yes")
        return views.overview(state.db(), state.fresh, state.verify, wait_verify=wait)

    def v_tickers(request: Request) -> dict[str, Any]:
        p = request.query_params
        return views.tickers(
            state.db(),
            state.fresh,
            q=p.get("q"),
            level=p.get("level"),
            stale=p.get("stale"),
            sort=p.get("sort"),
            order=p.get("order"),
            page=p.get("page"),
            per_page=p.get("per_page"),
        )

    def v_ticker(request: Request) -> dict[str, Any]:
        p = request.query_params
        return views.ticker_detail(
            state.db(),
            state.fresh,
            request.path_params["ticker"],
            range_=p.get("range"),
            start=p.get("start"),
            end=p.get("end"),
            latest=p.get("latest"),
            adjust=p.get("adjust"),
        )

    def v_runs(request: Request) -> dict[str, Any]:
        return views.runs(state.db(), limit=request.query_params.get("limit"))

    def bars_csv(request: Request) -> Response:
        ticker = request.path_params["ticker"]
        p = request.query_params
        text = views.ticker_bars_csv(state.db(), ticker, start=p.get("start"), end=p.get("end"))
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": _content_disposition(ticker)},
        )

    def ticker_route(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Tickers may hold '/' (the routes take the rest of the path): a trailing '/'
        that is not part of a known ticker redirects to the address without it."""

        def route(request: Request) -> Response:
            try:
                return endpoint(request)
            except PageNotFound:
                path = request.url.path
                if not path.endswith("/"):
                    raise
                target = quote(path.rstrip("/"), safe="/")
                query = request.url.query
                return RedirectResponse(target + ("?" + query if query else ""))

        return route

    overview_html, overview_api = twin(
        "overview.html", "overview", lambda d: "Overview", v_overview
    )
    tickers_html, tickers_api = twin("tickers.html", "tickers", lambda d: "Tickers", v_tickers)
    ticker_html, ticker_api = twin("ticker.html", "tickers", lambda d: d["ticker"], v_ticker)
    runs_html, runs_api = twin("runs.html", "runs", lambda d: "Runs", v_runs)

    def api_index(request: Request) -> Response:
        return JSONResponse(
            {
                "overview": "/api/overview",
                "tickers": "/api/tickers",
                "ticker": "/api/tickers/{ticker}",
                "bars_csv": "/api/tickers/{ticker}/bars.csv",
                "runs": "/api/runs",
            }
        )

    # errors -------------------------------------------------------------------------------

    def error_response(request: Request, exc: BaseException) -> Response:
        exc = state.explain(exc)
        status, title = http_status(exc)
        refused = isinstance(exc, HostNotAllowed | NotAuthenticated)  # say nothing more
        if status == 500 and not isinstance(exc, TickvaultError | OSError | pa.ArrowException):
            log.exception("dashboard: unexpected error on %s", request.url.path, exc_info=exc)
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = exc.detail if isinstance(exc, HTTPException) else str(exc)
            if status >= 500:
                log.warning("dashboard: %s on %s: %s", title, request.url.path, message)
        headers = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
        if request.url.path.startswith("/api"):
            return JSONResponse(
                {"error": title, "message": message, "status": status},
                status_code=status,
                headers=headers,
            )
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "nav": "",
                "title": title,
                "status": status,
                "message": message,
                "hint": _hint(status, exc),
                "db_path": "" if refused else str(state.path),
            },
            status_code=status,
            headers=headers,
        )

    async def handle(request: Request, exc: Exception) -> Response:
        return error_response(request, exc)

    routes = [
        Route("/", overview_html, name="overview"),
        Route("/tickers", tickers_html, name="tickers"),
        Route("/tickers/{ticker:path}", ticker_route(ticker_html), name="ticker"),
        Route("/runs", runs_html, name="runs"),
        Route("/api", api_index),
        Route("/api/overview", overview_api),
        Route("/api/tickers", tickers_api),
        Route("/api/tickers/{ticker:path}/bars.csv", bars_csv),
        Route("/api/tickers/{ticker:path}", ticker_route(ticker_api)),
        Route("/api/runs", runs_api),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    handlers: dict[Any, Callable[..., Any]] = {
        HTTPException: handle,
        TickvaultError: handle,
        PageNotFound: handle,
        OSError: handle,
        pa.ArrowException: handle,
        Exception: handle,
    }
    app = _Dashboard(routes=routes, exception_handlers=handlers)
    app.guard = {"hosts": hosts, "token": token, "render": error_response}
    app.state.tickvault = state
    return app
