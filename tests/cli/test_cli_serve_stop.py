"""``tickvault serve`` stops cleanly on Ctrl-C and on SIGTERM alike (``systemctl stop``,
``docker stop``, a supervisor): exit 0 after uvicorn's graceful shutdown, no error line —
not 0 for one and 143 for the other."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from helpers.bars import make_bars
from helpers.serve import serve
from tickvault import ParquetDB


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_ends_with_exit_0_on_ctrl_c_and_on_sigterm(tmp_path: Path, sig: int) -> None:
    db = tmp_path / "db"
    ParquetDB(db).upsert_prices(make_bars("AAA", "2024-06-03", 3))
    with serve(db) as site:
        assert site.get("/api/overview").status_code == 200
        site.proc.send_signal(sig)
        assert site.proc.wait(timeout=30) == 0, site.stop()
        assert "error" not in site.stop()
