"""The tickvault web dashboard: freshness, tickers, charts and run history.

``create_app(db_path)`` builds the Starlette app; ``serve(db_path)`` runs it with uvicorn
on 127.0.0.1:8000. Every page has a JSON twin under ``/api`` (see docs/dashboard.md).
"""

from .app import create_app
from .server import serve

__all__ = ["create_app", "serve"]
