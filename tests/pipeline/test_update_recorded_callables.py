"""A callable (or a source object built by hand) is recorded so that it is never taken for
the registry source of the same name; ``update`` without a source fails the tickers whose
recorded source it cannot recreate — naming them and how to pass the source — and updates
the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers.cli import tv
from tickvault import ConfigError, ParquetDB, fetch_and_write, update
from tickvault.sources import DemoSource, as_source, register_source, unregister_source

START, MID, END = "2024-06-03", "2024-06-14", "2024-06-28"


def demo_bars(ticker: str, start: Any, end: Any) -> pd.DataFrame:
    return DemoSource(as_of=END).fetch(ticker, start, end)


def demo(ticker: str, start: Any, end: Any) -> pd.DataFrame:
    """ "My vendor's prices", in a function that happens to be called like a built-in
    source: the demo bars times three, to tell them apart."""
    df = demo_bars(ticker, start, end)
    for c in ("open", "high", "low", "close"):
        df[c] *= 3
    return df


def my_fetch(ticker: str, start: Any, end: Any) -> pd.DataFrame:
    return demo_bars(ticker, start, end)


def test_a_callable_named_like_a_builtin_source_is_never_updated_from_the_builtin(
    tmp_path: Path,
) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["ACME"], demo, db, start=START, end=MID)
    recorded = db.sources()["ACME"]
    assert recorded["name"] == "demo" and recorded["kind"] == "callable"
    assert recorded["qualname"].endswith(".demo")
    before = db.read_table()

    report = update(db=db, end=END)  # what `tickvault update` in cron does

    assert (report["failed"], report["written"]) == (1, 0)
    error = report["tickers"]["ACME"]["error"]
    assert "ACME came from demo (callable" in error and "source=demo" in error
    pd.testing.assert_frame_equal(db.read_table(), before)  # nothing from the built-in
    # the built-in is another source: refused, as before
    with pytest.raises(ConfigError, match="came from demo \\(callable"):
        update(["ACME"], "demo", db, end=END)
    # the function itself updates it
    assert update(["ACME"], demo, db, end=END)["failed"] == 0
    closes = db.read_table(tickers=["ACME"]).set_index("timestamp")["close"]
    expected = demo(
        "ACME", START, END).set_index("timestamp")["close"]  # fmt: skip
    pd.testing.assert_series_equal(closes, expected, check_names=False, check_dtype=False)


def test_a_builtin_source_is_not_taken_for_a_callable_of_its_name(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["ACME"], "demo", db, start=START, end=MID)
    assert db.sources()["ACME"] == {"name": "demo", "options": {}}
    version = db.version
    with pytest.raises(ConfigError, match="came from demo"):
        fetch_and_write(["ACME"], demo, db, start=START, end=END)
    assert db.version == version


def test_as_source_with_a_name_is_recorded_and_updated_with_it(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    mine = as_source(my_fetch, name="mine")
    fetch_and_write(["AAA"], mine, db, start=START, end=MID)
    assert db.sources()["AAA"]["name"] == "mine"
    report = update(["AAA"], as_source(my_fetch, name="mine"), db, end=END)
    assert (report["failed"], report["written"]) == (0, 1)
    # another function under the same name is another source
    other = as_source(lambda t, s, e: demo_bars(t, s, e), name="mine")
    with pytest.raises(ConfigError, match="came from mine"):
        update(["AAA"], other, db, end=END)


def test_update_without_a_source_updates_what_it_can_and_names_the_rest(
    tmp_path: Path,
) -> None:
    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAA", "BBB"], my_fetch, db, start=START, end=MID)
    fetch_and_write(["CCC"], "demo", db, start=START, end=MID)

    report = update(db=db, end=END)

    assert (report["total"], report["written"], report["failed"]) == (3, 1, 2)
    assert db.watermarks()["CCC"] == pd.Timestamp(END, tz="UTC")
    for t in ("AAA", "BBB"):
        error = report["tickers"][t]["error"]
        assert error.startswith("ConfigError: AAA, BBB came from my_fetch (callable")
        assert "source=my_fetch" in error and "register_source('my_fetch'" in error
        assert db.watermarks()[t] == pd.Timestamp(MID, tz="UTC")
    # and the fix the message names works
    assert update(["AAA", "BBB"], my_fetch, db, end=END)["failed"] == 0


@pytest.mark.slow
def test_cli_update_updates_what_it_can_and_exits_1_naming_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "db"
    fetch_and_write(["AAA", "BBB"], my_fetch, db, start=START, end=MID)
    fetch_and_write(["CCC"], "demo", db, start=START, end=MID)
    r = tv("update", "--end", END, "--json", db=db)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["written"], doc["failed"]) == (1, 2)
    assert "AAA, BBB came from my_fetch" in doc["errors"]["AAA"]
    assert ParquetDB(db).watermarks()["CCC"] == pd.Timestamp(END, tz="UTC")


def legacy_db(tmp_path: Path, name: str) -> ParquetDB:
    """AAA written by a callable and recorded as an older version did: by its name only."""
    db = ParquetDB(tmp_path / "db")
    files = db.write_files("prices", demo_bars("AAA", START, MID))
    db.commit_files("prices", files, info={"source": {"name": name, "options": {}}})
    return db


def test_older_records_of_a_callable_are_still_read(tmp_path: Path) -> None:
    db = legacy_db(tmp_path, "my_fetch")
    report = update(db=db, end=END)  # not a registry name: cannot be recreated
    assert report["failed"] == 1
    error = report["tickers"]["AAA"]["error"]
    assert "cannot be created here" in error and "register_source('my_fetch'" in error
    assert update(["AAA"], my_fetch, db, end=MID)["failed"] == 0  # the same name: accepted
    assert db.sources()["AAA"]["kind"] == "callable"  # recorded unambiguously from now on

    db = legacy_db(tmp_path / "2", "my_fetch")
    register_source("my_fetch", lambda: as_source(my_fetch))
    try:  # registered under that name: update finds it, as before
        assert update(db=db, end=END)["failed"] == 0
    finally:
        unregister_source("my_fetch")


def test_a_built_in_source_made_by_hand_is_that_source(tmp_path: Path) -> None:
    """``DemoSource()`` or ``CsvSource(path)`` built by hand are the built-ins of their
    names, as they were always recorded: a script passing one runs again on a database it
    wrote before, and ``update`` recreates them by name (a file source with its path)."""
    from tickvault.sources import CsvSource

    db = tmp_path / "db"
    fetch_and_write(["AAA"], DemoSource(), db, start="2024-01-02", end="2024-02-01")
    fetch_and_write(["AAA"], DemoSource(), db, start="2024-01-02", end="2024-02-01")
    assert ParquetDB(db).sources()["AAA"] == {"name": "demo", "options": {}}
    folder = tmp_path / "in"
    folder.mkdir()
    days = pd.bdate_range("2024-01-02", periods=3)
    bars = {"Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5, "Volume": 100}
    frame = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), **bars})
    frame.to_csv(folder / "BBB.csv", index=False)
    report = fetch_and_write(["BBB"], CsvSource(path=folder), db, start="2024-01-02")
    assert report["written"] == 1
    recorded = ParquetDB(db).sources()["BBB"]
    assert recorded["name"] == "csv" and recorded["options"]["path"] == str(folder.resolve())
    again = update(["BBB"], db=db)  # recreated by name, with its path
    assert again["failed"] == 0, again["errors"]
