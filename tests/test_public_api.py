"""The public façade is exactly __all__; errors are one picklable tree; import is cheap."""

from __future__ import annotations

import pickle
import subprocess
import sys

import tickvault
from tickvault import errors


def test_all_is_exactly_the_public_surface():
    public = {n for n in dir(tickvault) if not n.startswith("_")} | {"__version__"}
    assert set(tickvault.__all__) == public
    for name in tickvault.__all__:
        assert getattr(tickvault, name) is not None


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
        "print(any(m.startswith(('dask', 'distributed', 'exchange_calendars', 'httpx')) "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
