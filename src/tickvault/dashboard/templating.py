"""The dashboard's Jinja templates and the filters and helpers they use: number, time and
age formats, query strings, and links relative to the page (never built from the Host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from ..formats import human_bytes, short_time

__all__ = ["STATIC", "TEMPLATES", "content_disposition", "make_templates"]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _fmt_int(n: Any) -> str:
    return "—" if n is None else f"{int(n):,}"


def _fmt_num(x: Any, digits: int = 2) -> str:
    return "—" if x is None else f"{float(x):,.{digits}f}"


def _fmt_ts(s: Any) -> str:
    """ISO timestamp → '2024-03-01' for midnight UTC (daily bars), else with the time in UTC."""
    text = short_time(s, empty="—")
    return f"{text} UTC" if len(text) > 10 else text


def _fmt_span(seconds: Any) -> str:
    """A candle's span: '15 minutes', '1 hour', '4 days'."""
    n = int(seconds or 0)
    for size, unit in ((86_400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if n >= size and n % size == 0:
            count = n // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{n} seconds"


def _fmt_age(age: Any, unit: Any) -> str:
    if age is None:
        return "—"
    u = str(unit or "days")
    return f"{age} {u[:-1] if age == 1 else u}"


#: the library's status marks (``🟢 Fresh``) as the icon kind drawn for them: emoji render
#: as empty boxes on machines without a colour-emoji font, so pages draw inline SVG
_MARKS = {"🟢": "fresh", "🟡": "aging", "🔴": "stale", "⚪": "none"}


def icon(kind: str) -> Markup:
    """An inline SVG status icon (no font needed): a dot in the level's colour (a ring for
    ``none``), or a warning triangle (``warn``); hidden from screen readers, the text
    beside it says the same."""
    if kind == "warn":
        shape = '<path d="M6 .8 11.6 11H.4z"/><path d="M6 4.2v3.4M6 9v.6" class="icon-mark"/>'
    elif kind == "none":
        shape = '<circle cx="6" cy="6" r="4.6" fill="none" stroke-width="1.6"/>'
    else:
        shape = '<circle cx="6" cy="6" r="5.4"/>'
    return Markup(
        f'<svg class="icon icon-{kind}" viewBox="0 0 12 12" width="12" height="12" '
        f'aria-hidden="true" focusable="false">{shape}</svg>'
    )


def _fmt_status(status: Any) -> Markup:
    """``'🟢 Fresh'`` → an SVG dot and ``Fresh`` (text without a leading mark stays text)."""
    text = str(status or "")
    for mark, kind in _MARKS.items():
        if text.startswith(mark):
            rest = text[len(mark) :].lstrip("\ufe0f").strip()
            return icon(kind) + Markup(" ") + escape(rest)
    return Markup(escape(text))


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


def content_disposition(ticker: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name as RFC 6266
    ``filename*`` (UTF-8, percent-encoded), for any ticker."""
    name = ticker.replace("/", "_").replace("\\", "_") + ".csv"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def make_templates() -> Jinja2Templates:
    """The page templates with the dashboard's filters (``int``, ``num``, ``ts``, ``span``,
    ``bytes``, ``urlq``, ``status``) and helpers (``age``, ``query``, ``static``, ``rel``,
    ``icon``)."""
    t = Jinja2Templates(directory=str(TEMPLATES))
    t.env.filters.update(
        bytes=human_bytes,
        int=_fmt_int,
        num=_fmt_num,
        ts=_fmt_ts,
        span=_fmt_span,
        urlq=lambda s: quote(str(s), safe=""),
        status=_fmt_status,
    )
    t.env.globals.update(age=_fmt_age, query=_query, static=_static, rel=_rel, icon=icon)
    return t
