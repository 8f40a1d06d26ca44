"""``query --output FILE`` writes the format the file's extension names (a.parquet is
Parquet, not CSV text under that name); a --format that contradicts the extension is exit
2 and writes nothing; an extension that names no format is CSV, as it always was, with a
note."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("output") / "db"
    db = ParquetDB(p)
    db.upsert_prices(make_bars("AAA", "2024-06-03", 5))
    db.close()
    return p


@pytest.mark.parametrize("name", ["a.parquet", "b.pq", "c.PARQUET"])
def test_a_parquet_extension_writes_parquet(path: Path, name: str) -> None:
    out = path.parent / name
    r = tv("query", "AAA", "--limit", "3", "--output", str(out), db=path)
    assert r.returncode == 0, r.stderr
    got = pq.read_table(out)
    assert got.num_rows == 3 and got.column("ticker").to_pylist() == ["AAA"] * 3


def test_json_and_csv_extensions(path: Path) -> None:
    js, csv = path.parent / "a.json", path.parent / "a.csv"
    r = tv("query", "AAA", "--limit", "2", "-o", str(js), db=path)
    assert r.returncode == 0, r.stderr
    assert [row["ticker"] for row in json.loads(js.read_text())] == ["AAA", "AAA"]
    r = tv("query", "AAA", "--limit", "2", "-o", str(csv), "--json", db=path)
    assert r.returncode == 0, r.stderr  # the file's extension decides, not --json
    assert csv.read_text().splitlines()[0].startswith("ticker,timestamp,")
    txt = path.parent / "a.txt"  # an explicit --format names the format of any file
    r = tv("query", "AAA", "--format", "csv", "-o", str(txt), db=path)
    assert r.returncode == 0 and txt.read_text().count("\nAAA,") == 5


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("x.parquet", ["--format", "csv"], ["--format csv contradicts", "parquet file"]),
        ("x.csv", ["--format", "json"], ["--format json contradicts", "x.json"]),
        ("x.csv", ["--format", "table"], ["--format table prints to the terminal"]),
    ],
)
def test_a_format_the_file_name_contradicts_is_exit_2(
    path: Path, name: str, args: list[str], words: list[str]
) -> None:
    out = path.parent / name
    r = tv("query", "AAA", *args, "--output", str(out), db=path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = one_clear_line(r)
    for w in words:
        assert w in line, line
    assert not out.exists()


@pytest.mark.parametrize("name", ["bars.txt", "bars", "bars.csv.gz.part"])
def test_a_name_that_names_no_format_is_csv_as_before_with_a_note(path: Path, name: str) -> None:
    out = path.parent / name
    r = tv("query", "AAA", "--output", str(out), db=path)
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines()[0].startswith("ticker,timestamp,")
    assert "names no format" in r.stderr and "writing CSV" in r.stderr
