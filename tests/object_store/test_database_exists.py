"""``tickvault.storage.database_exists``: the one answer to "is there a database here?"
for a folder, a bucket URL or an open store, which the CLI and the dashboard ask instead
of looking for the marker file themselves. It never creates anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.files import tree_snapshot
from helpers.s3 import BUCKET
from tickvault import ParquetDB
from tickvault.errors import ConfigError
from tickvault.storage import MemoryStore, database_exists


def test_a_folder_is_a_database_only_once_one_was_created(tmp_path: Path) -> None:
    assert database_exists(tmp_path / "nowhere") is False
    assert not (tmp_path / "nowhere").exists()  # asking creates nothing
    (tmp_path / "empty").mkdir()
    assert database_exists(tmp_path / "empty") is False
    assert os.listdir(tmp_path / "empty") == []
    (tmp_path / "notes.txt").write_text("not a database")
    assert database_exists(tmp_path / "notes.txt") is False
    ParquetDB(tmp_path / "db").close()
    assert database_exists(tmp_path / "db") is True
    assert database_exists(str(tmp_path / "db")) is True
    before = tree_snapshot(tmp_path / "db")
    (tmp_path / "db").rename(tmp_path / "moved")
    assert database_exists(tmp_path / "db") is False
    assert database_exists(tmp_path / "moved") is True
    assert tree_snapshot(tmp_path / "moved") == before


def test_an_open_store_is_asked_directly() -> None:
    store = MemoryStore()
    assert database_exists(store) is False
    ParquetDB(store=store)
    assert database_exists(store) is True


def test_storage_options_are_only_for_buckets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="storage_options"):
        database_exists(tmp_path, {"endpoint": "http://127.0.0.1:1"})


def test_a_bucket_url_is_answered_through_the_object_store(s3_url: str) -> None:
    assert database_exists(s3_url) is False
    assert database_exists(f"s3://{BUCKET}/") is False  # the bucket exists, no database
    db = ParquetDB(s3_url)
    assert database_exists(s3_url) is True
    assert database_exists(db.store) is True
    db.close()
