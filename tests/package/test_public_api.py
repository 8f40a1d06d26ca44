"""The public façade is exactly __all__; errors are one picklable tree; import is cheap."""

from __future__ import annotations

import pickle
import subprocess
import sys
import types

import tickvault
from tickvault import errors

PUBLIC = {
    # the database
    "ParquetDB", "Snapshot", "StorageOptions", "CommitResult",
    "VerifyReport", "VacuumReport", "RepairReport",
    # the pipeline
    "fetch_and_write", "update", "RunReport", "Progress",
    # sources
    "get_source", "available_sources", "register_source", "RetryPolicy", "RateLimit",
    # importing Parquet files another program wrote
    "import_parquet", "ImportReport",
    # freshness
    "freshness", "freshness_summary", "get_price_data_freshness",
    # errors
    "TickvaultError", "ValidationError", "ConfigError", "BadTimeBound", "StorageError",
    "DatabaseNotFound", "TableNotFound", "CorruptDatabaseError", "CommitConflict",
    "StorageFull", "VersionUnavailable", "VersionNotFound", "ObjectStoreError",
    "ObjectStoreUnavailable", "ObjectStorePermissionError", "MissingCredentials",
    "BucketNotFound", "NewerFormat",
    "SourceError", "TickerNotFound", "UnknownTicker", "BadSourceData", "TransientSourceError",
    "RateLimited", "SourceUnavailable",
    "__version__",
}  # fmt: skip


def test_all_is_exactly_the_public_surface():
    assert set(tickvault.__all__) == PUBLIC
    assert len(tickvault.__all__) == len(PUBLIC)  # no name listed twice
    for name in tickvault.__all__:
        assert getattr(tickvault, name) is not None
    # the module's real attributes (not dir(), which the module may override): every public
    # name it holds is in __all__, submodules aside; lazy names resolve on first access
    real = {
        n
        for n, v in vars(tickvault).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert real <= set(tickvault.__all__), sorted(real - set(tickvault.__all__))
    assert set(tickvault.__all__) - {"__version__"} <= real  # all resolved by the loop above


def test_every_error_derives_from_the_root_and_pickles():
    classes = [
        getattr(errors, n)
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)
    ]
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert issubclass(cls, tickvault.TickvaultError)
    e = tickvault.RateLimited("slow down", retry_after=2.5, ticker="AAPL", source="yahoo")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is tickvault.RateLimited
    assert (back.retry_after, back.ticker, back.source, str(back)) == (
        2.5,
        "AAPL",
        "yahoo",
        "slow down",
    )
    assert back.retryable and not tickvault.TickerNotFound("x").retryable
    v = pickle.loads(pickle.dumps(tickvault.ValidationError("bad", column="close", count=3)))
    assert isinstance(v, ValueError) and v.column == "close" and v.count == 3


def test_import_has_no_heavy_side_effects():
    code = (
        "import sys, tickvault; "
        "print(any(m.startswith(('dask', 'distributed', 'exchange_calendars', 'httpx', 'obstore')) "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_public_name_is_shadowed_by_a_submodule():
    # importing ``tickvault.<x>`` sets the package attribute ``x`` to the module: a public
    # function named like a submodule would turn into a module once anything imports it
    code = (
        "import importlib, pkgutil, types, tickvault\n"
        "for m in pkgutil.walk_packages(tickvault.__path__, 'tickvault.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "mods = [n for n in tickvault.__all__\n"
        "        if isinstance(getattr(tickvault, n), types.ModuleType)]\n"
        "print(mods)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_retry_after_and_bad_source_data_are_attributes_of_their_classes():
    """``retry_after`` is a documented attribute of every transient source error (never set
    on an exception from outside), and one classmethod words "bad source data"."""
    from tickvault.errors import BadSourceData, SourceUnavailable, TransientSourceError

    e = SourceUnavailable("HTTP 503", retry_after=3.0, ticker="AAPL", source="yahoo")
    assert isinstance(e, TransientSourceError) and e.retry_after == 3.0
    assert SourceUnavailable("HTTP 503").retry_after is None
    bad = BadSourceData.from_validation(
        ValueError("close is negative"), source="csv", ticker="AAPL", where=" at a.csv line 3"
    )
    assert (
        str(bad) == "source 'csv' returned bad data for 'AAPL' at a.csv line 3: close is negative"
    )
    assert (bad.ticker, bad.source) == ("AAPL", "csv")
