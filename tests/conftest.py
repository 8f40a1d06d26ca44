"""Fixtures for every wing: real databases in tmp_path, the bar factory and the local market
server. Importable helpers live in the ``helpers`` package (``tests/helpers``, on the path
through ``pythonpath`` in pyproject.toml); this file holds only fixtures.

Layout: one folder per wing — ``storage/``, ``object_store/``, ``pipeline/``, ``sources/``,
``cli/``, ``dashboard/`` — and ``package/`` for checks of the package as a whole (its public
API, and the rules that the library, the CLI and the dashboard must apply alike). Test
module names are unique across folders (the folders are not packages). Markers (registered
in pyproject.toml): ``s3``, ``cluster``, ``browser``, ``crash``, ``slow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.bars import make_bars
from helpers.http_server import MarketServer
from tickvault import ParquetDB


@pytest.fixture
def bars() -> Callable[..., object]:
    return make_bars


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def db(db_path: Path) -> Iterator[ParquetDB]:
    d = ParquetDB(db_path)
    yield d
    d.close()


@pytest.fixture
def market_server() -> Iterator[MarketServer]:
    """A started :class:`~helpers.http_server.MarketServer`, stopped after the test."""
    server = MarketServer().start()
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """dask.distributed leaves an unbound probe socket (``laddr=('0.0.0.0', 0)``) to the
    garbage collector while a cluster starts or stops (distributed/node.py); under load the
    collection can land inside a test, where warnings are errors. It is distributed's, not
    ours: tests that start a cluster ignore exactly that warning."""
    socket_leak = "ignore:unclosed <socket.socket:ResourceWarning"
    unraisable = (
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    )
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(pytest.mark.filterwarnings(socket_leak))
            item.add_marker(pytest.mark.filterwarnings(unraisable))
