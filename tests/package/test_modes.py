"""One rule for the adjust words everywhere: the library, the command line and the dashboard
accept the same values in any case and refuse the rest with the same message."""

from __future__ import annotations

import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from helpers.serve import serve
from tickvault import ParquetDB
from tickvault.errors import ConfigError
from tickvault.modes import parse_adjust


@pytest.mark.parametrize(
    ("word", "mode"),
    [
        (None, None),
        ("", None),
        ("raw", None),
        ("RAW", None),
        ("None", None),
        ("splits", "splits"),
        (" Splits ", "splits"),
        ("ALL", "all"),
        ("all", "all"),
    ],
)
def test_parse_adjust_accepts_each_word_in_any_case(word, mode):
    assert parse_adjust(word) == mode


@pytest.mark.parametrize("word", ["bogus", "split", "adjusted", 1, True])
def test_parse_adjust_refuses_anything_else_naming_the_choices(word):
    with pytest.raises(ConfigError, match=r"is not one of: raw .*splits .*all"):
        parse_adjust(word)


@pytest.mark.slow
def test_library_cli_and_dashboard_agree(tmp_path):
    path = tmp_path / "db"
    db = ParquetDB(path)
    db.upsert_prices(make_bars(["AAA"], "2024-01-01", 5))
    assert db.read_table("prices", adjust="ALL").shape[0] == 5

    ok = tv("query", "AAA", "--adjust", "ALL", "--format", "csv", db=path)
    assert ok.returncode == 0, ok.stderr
    bad_cli = tv("query", "AAA", "--adjust", "bogus", db=path)
    assert bad_cli.returncode == 2
    assert "'bogus' is not one of: raw" in bad_cli.stderr

    with serve(path) as site:
        assert site.get("/api/tickers/AAA?adjust=ALL").status_code == 200
        r = site.get("/api/tickers/AAA?adjust=bogus")
    assert r.status_code == 400
    assert "'bogus' is not one of: raw" in r.text
