"""The dashboard's routes: each page and its JSON twin call the same view function of
:mod:`.views` with the request's parameters; the page renders the result with a template,
the twin returns it as JSON. The app's :class:`~.database.DashboardDB` is
``request.app.state.tickvault``."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import views
from .database import DashboardDB
from .templating import STATIC, content_disposition, make_templates
from .views import PageNotFound

__all__ = ["routes"]

Endpoint = Callable[[Request], Response]
View = Callable[[Request], dict[str, Any]]

templates = make_templates()


def _database(request: Request) -> DashboardDB:
    database: DashboardDB = request.app.state.tickvault
    return database


# -- views bound to request parameters --------------------------------------------------


def overview_view(request: Request) -> dict[str, Any]:
    d = _database(request)
    wait = request.query_params.get("wait_verify", "") in ("1", "true", "yes")
    return views.overview(d.db(), d.fresh, d.verify, wait_verify=wait)


def tickers_view(request: Request) -> dict[str, Any]:
    d = _database(request)
    p = request.query_params
    return views.tickers(
        d.db(),
        d.fresh,
        q=p.get("q"),
        level=p.get("level"),
        stale=p.get("stale"),
        sort=p.get("sort"),
        order=p.get("order"),
        page=p.get("page"),
        per_page=p.get("per_page"),
    )


def ticker_view(request: Request) -> dict[str, Any]:
    d = _database(request)
    p = request.query_params
    return views.ticker_detail(
        d.db(),
        d.fresh,
        request.path_params["ticker"],
        range_=p.get("range"),
        start=p.get("start"),
        end=p.get("end"),
        latest=p.get("latest"),
        adjust=p.get("adjust"),
        interval=p.get("interval"),
        tz=p.get("tz"),
    )


def runs_view(request: Request) -> dict[str, Any]:
    return views.runs(_database(request).db(), limit=request.query_params.get("limit"))


# -- endpoints ----------------------------------------------------------------------------


def twin(
    template: str, nav: str, title: Callable[[dict[str, Any]], str], view: View
) -> tuple[Endpoint, Endpoint]:
    """A page endpoint and its JSON twin over the same view function."""

    def html(request: Request) -> Response:
        data = view(request)
        context = {
            "data": data,
            "nav": nav,
            "title": title(data),
            "db_path": str(_database(request).path),
        }
        return templates.TemplateResponse(request, template, context)

    def api(request: Request) -> Response:
        return JSONResponse(view(request))

    return html, api


def ticker_route(endpoint: Endpoint) -> Endpoint:
    """Tickers may hold '/' (the routes take the rest of the path): a trailing '/' that is
    not part of a known ticker redirects to the address without it."""

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


def bars_csv(request: Request) -> Response:
    """``/api/tickers/{ticker}/bars.csv``: the ticker's bars as a CSV download. The first
    piece (up to ``bars.CSV_ROWS`` rows) is made before answering, so a download that fits
    in it is one ordinary response and any error is an error status; a longer one is
    streamed piece by piece (an error after the first piece cuts the transfer short, which
    the client sees as an incomplete download, never as a complete file)."""
    ticker = request.path_params["ticker"]
    p = request.query_params
    db = _database(request).db()
    pieces = views.ticker_bars_csv(
        db,
        ticker,
        start=p.get("start"),
        end=p.get("end"),
        adjust=p.get("adjust"),
        interval=p.get("interval"),
    )
    first = next(pieces)
    second = next(pieces, None)
    media, headers = "text/csv; charset=utf-8", {"Content-Disposition": content_disposition(ticker)}
    if second is None:
        return Response(first, media_type=media, headers=headers)
    rest = itertools.chain([first, second], pieces)
    return StreamingResponse(rest, media_type=media, headers=headers)


def bars_json(request: Request) -> Response:
    """``/api/tickers/{ticker}/bars.json``: a page of the ticker's bars."""
    p = request.query_params
    data = views.ticker_bars_page(
        _database(request).db(),
        request.path_params["ticker"],
        start=p.get("start"),
        end=p.get("end"),
        adjust=p.get("adjust"),
        limit=p.get("limit"),
        version=p.get("version"),
        interval=p.get("interval"),
    )
    return JSONResponse(data)


def api_index(request: Request) -> Response:
    return JSONResponse(
        {
            "overview": "/api/overview",
            "tickers": "/api/tickers",
            "ticker": "/api/tickers/{ticker}",
            "bars_csv": "/api/tickers/{ticker}/bars.csv",
            "bars_json": "/api/tickers/{ticker}/bars.json",
            "runs": "/api/runs",
        }
    )


overview_html, overview_api = twin("overview.html", "overview", lambda d: "Overview", overview_view)
tickers_html, tickers_api = twin("tickers.html", "tickers", lambda d: "Tickers", tickers_view)
ticker_html, ticker_api = twin("ticker.html", "tickers", lambda d: d["ticker"], ticker_view)
runs_html, runs_api = twin("runs.html", "runs", lambda d: "Runs", runs_view)


def routes() -> list[BaseRoute]:
    """Every route of the dashboard (only GET and HEAD)."""
    return [
        Route("/", overview_html, name="overview"),
        Route("/tickers", tickers_html, name="tickers"),
        Route("/tickers/{ticker:path}", ticker_route(ticker_html), name="ticker"),
        Route("/runs", runs_html, name="runs"),
        Route("/api", api_index),
        Route("/api/overview", overview_api),
        Route("/api/tickers", tickers_api),
        Route("/api/tickers/{ticker:path}/bars.csv", bars_csv),
        Route("/api/tickers/{ticker:path}/bars.json", bars_json),
        Route("/api/tickers/{ticker:path}", ticker_route(ticker_api)),
        Route("/api/runs", runs_api),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
