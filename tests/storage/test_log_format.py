"""A table written in a newer log format is refused, whole and unchanged, by a version
that cannot read it (tickvault.storage.core.state.FORMAT_VERSION): reads, writes and the
command line name the format and what to do, instead of misreading or writing over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import NewerFormat, ParquetDB
from tickvault.storage.core.log import checkpoint_name, entry_name
from tickvault.storage.core.state import FORMAT_VERSION


def _files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _db(path: Path, **options: object) -> ParquetDB:
    db = ParquetDB(path, fsync=False, auto_compact=False, **options)
    db.upsert_prices(make_bars(["AAA", "BBB"], periods=5))
    db.upsert_prices(make_bars(["AAA"], start="2024-02-01", periods=3))
    db.wait_for_compaction()  # nothing of these writes still running when a test edits
    return db


def _append_newer_entry(path: Path) -> None:
    """Publish, as the next version of ``prices``, an entry in the next log format."""
    log = path / "prices" / "_log"
    newest = max(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())
    entry = {"operation": "upsert", "format": FORMAT_VERSION + 1, "add": [], "remove": []}
    (log / entry_name(newest + 1)).write_text(json.dumps(entry))


def _set_created_format(path: Path, value: object) -> object:
    """Make version 0 of ``prices`` say its format is ``value``; the format it said."""
    first = path / "prices" / "_log" / entry_name(0)
    entry = json.loads(first.read_text())
    was = entry["meta"]["format"]
    entry["meta"]["format"] = value
    first.write_text(json.dumps(entry))
    return was


def _refused(path: Path, newer: int) -> None:
    before = _files(path)
    db = ParquetDB(path, fsync=False, auto_compact=False)
    with pytest.raises(NewerFormat) as err:
        db.read_table("prices")
    assert err.value.format == newer and err.value.supported == FORMAT_VERSION
    assert f"log format {newer}" in str(err.value) and "newer tickvault" in str(err.value)
    assert "pip install -U tickvault" in str(err.value)
    with pytest.raises(NewerFormat):
        db.upsert_prices(make_bars(["CCC"], periods=2))
    with pytest.raises(NewerFormat):
        db.verify()
    assert _files(path) == before  # nothing written, nothing removed


def test_an_entry_of_a_newer_format_is_refused_by_reads_and_writes(tmp_path):
    path = tmp_path / "db"
    db = _db(path)
    assert len(db.read_table("prices")) == 13
    _append_newer_entry(path)
    # a handle that had read the older versions meets the entry on its next refresh
    with pytest.raises(NewerFormat):
        db.read_table("prices")
    _refused(path, FORMAT_VERSION + 1)


def test_a_table_created_in_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "db"
    _db(path)
    assert _set_created_format(path, FORMAT_VERSION + 2) == FORMAT_VERSION  # as written
    _refused(path, FORMAT_VERSION + 2)


def test_a_checkpoint_of_a_newer_format_is_refused_not_skipped(tmp_path):
    path = tmp_path / "db"
    _db(path, checkpoint_interval=2)
    cp = path / "prices" / "_log" / checkpoint_name(2)
    state = json.loads(cp.read_text())
    assert state["format"] == FORMAT_VERSION
    state["format"] = FORMAT_VERSION + 1
    cp.write_text(json.dumps(state))
    _refused(path, FORMAT_VERSION + 1)


def test_a_format_that_is_not_a_number_is_reported_as_damage(tmp_path):
    path = tmp_path / "db"
    _db(path)
    _set_created_format(path, "2.0-beta")
    from tickvault import CorruptDatabaseError

    with pytest.raises(CorruptDatabaseError, match=r"'2\.0-beta' is not a whole number"):
        ParquetDB(path).read_table("prices")


def test_the_command_line_names_the_format_and_the_fix(tmp_path):
    path = tmp_path / "db"
    _db(path)
    _append_newer_entry(path)
    before = _files(path)
    r = tv("query", "SELECT count(*) FROM prices", db=path)
    assert r.returncode != 0
    assert "newer tickvault" in r.stderr and "pip install -U tickvault" in r.stderr
    assert "Traceback" not in r.stderr
    assert _files(path) == before


def test_a_background_compaction_writes_nothing_into_a_newer_table(tmp_path):
    """The compactor of a process that opened the table before it was upgraded meets the
    newer format when it next runs: it gives up without recording its error in the
    database (``_compaction.json``) — the files stay exactly as the newer version left
    them."""
    path = tmp_path / "db"
    db = _db(path)
    _append_newer_entry(path)
    before = _files(path)
    db.compact(wait=False)  # the background compactor, as after a commit
    assert db.wait_for_compaction(timeout=30)
    assert _files(path) == before
