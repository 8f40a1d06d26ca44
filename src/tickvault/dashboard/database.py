"""The database a dashboard shows: opened read-only and lazily, re-checked on every
request (a database created after the server started is picked up, a removed one is a
503), with the freshness and verify caches that belong to it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import DatabaseNotFound
from ..storage import ParquetDB, database_exists
from ..storage.core.store import display_url, is_url
from .caches import FreshnessCache, FreshnessOptions, VerifyCache
from .error_pages import http_status
from .views import PageNotFound

__all__ = ["DashboardDB"]


class DashboardDB:
    """Per-app state: the database (opened read-only, lazily) and its caches."""

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
            if self._db is not None and self._exists():
                return self._db
            self._db = None
            self._db = ParquetDB(self.target, create=False)
            return self._db

    def explain(self, exc: BaseException) -> BaseException:
        """A read that failed because the database folder went away while the request
        was being served is a missing database (503), not a damaged one (500) or an
        unknown ticker (404)."""
        gone = isinstance(exc, PageNotFound) or http_status(exc)[0] == 500
        if gone and not self._exists():
            return DatabaseNotFound(
                f"no tickvault database at {str(self.path)!r} any more (it was moved or "
                f"removed while this request was served)"
            )
        return exc

    def _exists(self) -> bool:
        if not self.url:
            return database_exists(self.target)
        try:  # a bucket: one HEAD through the open database's store
            return self._db is not None and database_exists(self._db.store)
        except OSError:
            return False
