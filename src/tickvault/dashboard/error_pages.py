"""The one place errors become HTTP statuses (:func:`http_status`), and the error page or
JSON document every failed request gets (:class:`ErrorPages`): a title, the message, a
hint, never a traceback. Every 5xx is logged at warning level."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from ..errors import (
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    StorageError,
    TickvaultError,
    ValidationError,
    VersionUnavailable,
)
from .security import HostNotAllowed, NotAuthenticated
from .views import PageNotFound


class Explains(Protocol):
    """What the error pages need of the dashboard's database handle
    (:class:`~tickvault.dashboard.database.DashboardDB`): where the database is, and the
    error to show for ``exc``."""

    path: Path | str

    def explain(self, exc: BaseException) -> BaseException: ...


__all__ = ["ErrorPages", "http_status"]

log = logging.getLogger(__name__)


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
    if isinstance(exc, VersionUnavailable):
        return 410, "Version no longer available"
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


class ErrorPages:
    """Renders an exception as the error page (HTML) or, under ``/api``, as
    ``{"error", "message", "status"}``; also renders the Guard's refusals, which say
    nothing about the database."""

    def __init__(self, database: Explains, templates: Jinja2Templates) -> None:
        self.database = database
        self.templates = templates

    def __call__(self, request: Request, exc: BaseException) -> Response:
        exc = self.database.explain(exc)
        status, title = http_status(exc)
        refused = isinstance(exc, HostNotAllowed | NotAuthenticated)
        message = _message(request, exc, status, title)
        headers = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
        if request.url.path.startswith("/api"):
            return JSONResponse(
                {"error": title, "message": message, "status": status},
                status_code=status,
                headers=headers,
            )
        return self.templates.TemplateResponse(
            request,
            "error.html",
            {
                "nav": "",
                "title": title,
                "status": status,
                "message": message,
                "hint": _hint(status, exc),
                "db_path": "" if refused else str(self.database.path),
            },
            status_code=status,
            headers=headers,
        )

    async def handle(self, request: Request, exc: Exception) -> Response:
        """Starlette's exception handler signature."""
        return self(request, exc)


def _message(request: Request, exc: BaseException, status: int, title: str) -> str:
    """The message shown, and the log line of a 5xx (unexpected errors with traceback)."""
    if status == 500 and not isinstance(exc, TickvaultError | OSError | pa.ArrowException):
        log.exception("dashboard: unexpected error on %s", request.url.path, exc_info=exc)
        return f"{type(exc).__name__}: {exc}"
    message = exc.detail if isinstance(exc, HTTPException) else str(exc)
    if status >= 500:
        log.warning("dashboard: %s on %s: %s", title, request.url.path, message)
    return str(message)
