"""The dashboard web app: :func:`create_app` puts together the routes (:mod:`.routes`, over
:mod:`.views`), the error pages (:mod:`.error_pages`) and the database it shows
(:mod:`.database`).

Every page has a JSON twin under ``/api``; both call the same view function. The app only
reads (``ParquetDB(path, create=False)`` and pinned snapshots) and maps errors to HTTP
statuses in exactly one place (:func:`~.error_pages.http_status`). :class:`~.security.Guard`
wraps the whole app: Host check, optional token, security headers (see :mod:`.security`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from ..errors import TickvaultError
from .caches import FreshnessOptions
from .database import DashboardDB
from .error_pages import ErrorPages, http_status
from .routes import routes, templates
from .security import Guard, HostPolicy, check_token
from .views import PageNotFound

__all__ = ["create_app", "http_status"]


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
    database = DashboardDB(db_path, FreshnessOptions(calendar, fresh_days, stale_days))
    hosts = HostPolicy.for_bind(host, allowed_hosts)
    token = check_token(token)
    errors = ErrorPages(database, templates)
    handled = (HTTPException, TickvaultError, PageNotFound, OSError, pa.ArrowException, Exception)
    handlers: dict[Any, Callable[..., Any]] = dict.fromkeys(handled, errors.handle)
    app = _Dashboard(routes=routes(), exception_handlers=handlers)
    app.guard = {"hosts": hosts, "token": token, "render": errors}
    app.state.tickvault = database
    return app
