"""A database path starting with ``~`` is in the home folder, from ``--db`` and from
``$TICKVAULT_DB`` alike: cron and systemd do not expand ``~``, and a quoted ``'~/prices'``
reaches tickvault as written — it must never become a folder named ``~`` in the current
directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import ParquetDB


@pytest.mark.slow
def test_tilde_in_db_and_in_the_environment_is_the_home_folder(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    env = {"HOME": str(home), "TICKVAULT_DB": "~/prices"}
    window = ["--start", "2024-06-03", "--end", "2024-06-07"]
    r = tv("backfill", "AAA", *window, "-q", env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert (home / "prices" / "tickvault.json").exists()
    assert list(cwd.iterdir()) == []  # no ./~/prices
    r = tv("info", "--json", "--db", "~/prices", env={"HOME": str(home)}, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tables"]["prices"]["tickers"] == 1
    assert list(cwd.iterdir()) == []


def test_parquetdb_expands_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    db = ParquetDB("~/prices")
    db.upsert_prices(make_bars("AAA", "2024-06-03", 3))
    assert db.path == tmp_path / "home" / "prices"
    assert (tmp_path / "home" / "prices" / "tickvault.json").exists()
    assert not (tmp_path / "~").exists()
    assert len(ParquetDB(tmp_path / "home" / "prices", create=False).read_table()) == 3
