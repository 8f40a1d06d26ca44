"""Importing Parquet files another program wrote (``tickvault.import_parquet``,
``tickvault import``): the original pattern's ``db/prices/*.parquet``, Hive partitions,
yearly files with a ticker column, a yfinance frame saved with ``to_parquet``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tickvault.parquet_import as parquet_import
from helpers.bars import make_bars
from helpers.cli import one_clear_line, tv
from tickvault import BadSourceData, ConfigError, ParquetDB, import_parquet

COLS = ["ticker", "timestamp", "open", "high", "low", "close", "volume"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _stored(db: ParquetDB, table: str = "prices") -> pd.DataFrame:
    df = db.read_table(table)[COLS]
    df["timestamp"] = df.timestamp.astype("datetime64[ns, UTC]")
    return df.sort_values(["ticker", "timestamp"]).reset_index(drop=True)


def six_files(tmp_path: Path) -> tuple[Path, list[pd.DataFrame]]:
    """A folder of six 25-bar files, one ticker each (f0.parquet .. f5.parquet)."""
    old = tmp_path / "old"
    old.mkdir()
    frames = [make_bars(f"T{i}", periods=25) for i in range(6)]
    for i, df in enumerate(frames):
        df.to_parquet(old / f"f{i}.parquet", index=False)
    return old, frames


def _expected(*frames: pd.DataFrame) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)[COLS]
    df["timestamp"] = df.timestamp.astype("datetime64[ns, UTC]")
    df = df.drop_duplicates(["ticker", "timestamp"], keep="last")
    return df.sort_values(["ticker", "timestamp"]).reset_index(drop=True)


def test_the_original_patterns_folder_is_imported_and_left_as_it_was(tmp_path: Path) -> None:
    old = tmp_path / "old_db"
    (old / "prices").mkdir(parents=True)
    frames = {t: make_bars(t, periods=30) for t in ("AAPL", "MSFT", "SPY")}
    for t, df in frames.items():
        df.to_parquet(old / "prices" / f"{t}.parquet", index=False)
    before = _digest(old)
    new = tmp_path / "new_db"

    preview = import_parquet(ParquetDB(new), old)
    assert preview.dry_run and preview.commits == 0
    assert preview.tickers == ["AAPL", "MSFT", "SPY"] and preview.rows == 90
    assert preview.first == "2024-01-01T00:00:00Z" and preview.named_by_file == []
    assert ParquetDB(new).read_table("prices").empty  # a dry run writes nothing

    done = import_parquet(ParquetDB(new), old, apply=True)
    assert done.commits == 1 and done.rows == 90
    pd.testing.assert_frame_equal(_stored(ParquetDB(new)), _expected(*frames.values()))
    assert _digest(old) == before  # the files are never changed
    # run again: the same bars, nothing changes
    import_parquet(ParquetDB(new), old, apply=True)
    pd.testing.assert_frame_equal(_stored(ParquetDB(new)), _expected(*frames.values()))


def test_hive_partitions_name_the_ticker_not_the_file(tmp_path: Path) -> None:
    old = tmp_path / "lake"
    frames = []
    for t in ("aapl", "MSFT"):
        part = old / f"ticker={t}"
        part.mkdir(parents=True)
        df = make_bars(t.upper(), periods=12)
        df.drop(columns="ticker").to_parquet(part / "part-0.parquet", index=False)
        frames.append(df)
    report = import_parquet(ParquetDB(tmp_path / "db"), old, apply=True)
    assert report.named_by_file == []
    assert sorted(ParquetDB(tmp_path / "db").tickers()) == ["AAPL", "MSFT"]
    pd.testing.assert_frame_equal(_stored(ParquetDB(tmp_path / "db")), _expected(*frames))


def test_yearly_files_with_overlap_keep_the_later_files_bars(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    tickers = ["AAPL", "MSFT", "IBM"]
    y1 = make_bars(tickers, start="2023-12-18", periods=15)  # into January 2024
    y2 = make_bars(tickers, start="2024-01-01", periods=20, salt=3)
    y1.to_parquet(old / "2023.parquet", index=False)
    y2.to_parquet(old / "2024.parquet", index=False)
    report = import_parquet(ParquetDB(tmp_path / "db"), old, apply=True)
    assert report.tickers == sorted(tickers) and report.rows == len(y1) + len(y2)
    stored = _stored(ParquetDB(tmp_path / "db"))
    pd.testing.assert_frame_equal(stored, _expected(y1, y2))
    jan2 = stored[(stored.ticker == "AAPL") & (stored.timestamp == "2024-01-02")]
    assert jan2.close.item() == pytest.approx(
        y2[(y2.ticker == "AAPL") & (y2.timestamp == "2024-01-02")].close.item()
    )


def test_a_yfinance_frame_saved_with_its_date_index(tmp_path: Path) -> None:
    df = make_bars("AAPL", periods=10)
    yf = pd.DataFrame(
        {
            "Open": df.open.to_numpy(),
            "High": df.high.to_numpy(),
            "Low": df.low.to_numpy(),
            "Close": df.close.to_numpy(),
            "Adj Close": df.close.to_numpy() * 0.98,
            "Volume": df.volume.to_numpy(),
        },
        index=pd.DatetimeIndex(df.timestamp.dt.tz_convert(None), name="Date").tz_localize(
            "America/New_York"
        ),
    )
    (tmp_path / "yf").mkdir()
    yf.to_parquet(tmp_path / "yf" / "AAPL.parquet")
    report = import_parquet(ParquetDB(tmp_path / "db"), tmp_path / "yf", apply=True)
    assert report.named_by_file == ["AAPL"]  # said, so that a dry run shows it
    stored = ParquetDB(tmp_path / "db").read_table("prices")
    # local midnights in New York are the daily bars of those dates (decision 025)
    assert stored.timestamp.tolist() == df.timestamp.tolist()
    np.testing.assert_allclose(stored.adj_close, df.close.to_numpy() * 0.98)


def test_a_bad_bar_names_file_row_and_column_and_nothing_is_written(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    make_bars("AAPL", periods=10).to_parquet(old / "a.parquet", index=False)
    bad = make_bars("MSFT", periods=10)
    bad.loc[6, "high"] = bad.loc[6, "low"] - 5  # high below low
    bad.to_parquet(old / "b.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("IBM", periods=3))
    version = db.version
    with pytest.raises(BadSourceData) as err:
        import_parquet(db, old, apply=True)
    msg = str(err.value)
    assert "b.parquet" in msg and "row 7" in msg and "high" in msg
    assert ParquetDB(tmp_path / "db").version == version
    assert ParquetDB(tmp_path / "db").tickers() == ["IBM"]


def test_a_bar_in_the_future_is_refused_naming_the_file(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    df = make_bars("AAPL", periods=3)
    df.loc[2, "timestamp"] = pd.Timestamp("2099-01-05", tz="UTC")
    df.to_parquet(old / "typo.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(BadSourceData) as err:
        import_parquet(db, old, apply=True)
    assert "typo.parquet row 3, column 'timestamp'" in str(err.value)
    assert "in the future" in str(err.value)
    assert db.read_table("prices").empty


def test_batches_are_written_as_read_and_committed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_import, "BATCH_ROWS", 40)
    old, frames = six_files(tmp_path)
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    report = import_parquet(db, old, apply=True)
    assert report.commits == 1 and db.version == 1  # three batches of files, one commit
    assert len(db.history()) == 2 and db.history()[-1]["info"]["imported"] == str(old)
    pd.testing.assert_frame_equal(_stored(db), _expected(*frames))


def test_a_later_batch_overwriting_an_earlier_one_is_a_later_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_import, "BATCH_ROWS", 10)
    old = tmp_path / "old"
    old.mkdir()
    first = make_bars("AAPL", periods=20)
    second = make_bars("AAPL", start="2024-01-15", periods=10, salt=5)  # overlaps first
    first.to_parquet(old / "a.parquet", index=False)
    second.to_parquet(old / "b.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    report = import_parquet(db, old, apply=True)
    assert report.commits == 2
    pd.testing.assert_frame_equal(_stored(db), _expected(first, second))


def test_a_bad_file_after_written_batches_leaves_no_files_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_import, "BATCH_ROWS", 10)
    old = tmp_path / "old"
    old.mkdir()
    for i in range(3):
        make_bars(f"T{i}", periods=20).to_parquet(old / f"a{i}.parquet", index=False)
    bad = make_bars("ZZZ", periods=5)
    bad.loc[2, "close"] = -1.0
    bad.to_parquet(old / "z.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("IBM", periods=3))
    files_before = sorted(p.name for p in (tmp_path / "db" / "prices").glob("*.parquet"))
    with pytest.raises(BadSourceData, match=r"z\.parquet row 3"):
        import_parquet(db, old, apply=True)
    after = sorted(p.name for p in (tmp_path / "db" / "prices").glob("*.parquet"))
    assert after == files_before  # the three batches written before were deleted
    assert db.tickers() == ["IBM"] and db.version == 1


def test_minute_bars_go_to_their_interval_table(tmp_path: Path) -> None:
    ts = pd.date_range("2024-03-01 14:30", periods=30, freq="1min", tz="UTC")
    df = pd.DataFrame(
        {"symbol": "AAPL", "datetime": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5}
        | {"volume": 100.0}
    )
    df.to_parquet(tmp_path / "min.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    report = import_parquet(db, tmp_path / "min.parquet", interval="1m", apply=True)
    assert report.table == "prices_1m" and report.rows == 30
    assert len(db.read_table("prices_1m")) == 30 and db.read_table("prices").empty


def test_paths_that_are_not_there_hold_nothing_or_are_a_database(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("AAPL"))
    with pytest.raises(ConfigError, match="does not exist"):
        import_parquet(db, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no Parquet files"):
        import_parquet(db, tmp_path / "empty")
    other = ParquetDB(tmp_path / "other")
    other.upsert_prices(make_bars("MSFT"))
    with pytest.raises(ConfigError, match="tickvault database"):
        import_parquet(db, tmp_path / "other" / "prices")


def test_cli_previews_then_imports(tmp_path: Path) -> None:
    old = tmp_path / "db"
    (old / "prices").mkdir(parents=True)
    for t in ("AAPL", "MSFT"):
        make_bars(t, periods=20).to_parquet(old / "prices" / f"{t}.parquet", index=False)
    new = tmp_path / "tv"
    # opening the old folder as a database is refused and points at the import
    r = tv("info", db=old)
    assert r.returncode == 3 and "prices/AAPL.parquet" in r.stderr
    assert f"tickvault import {old} --db" in r.stderr
    r = tv("backfill", "AAPL", db=old)
    assert r.returncode == 2 and "other files" in r.stderr
    assert f"tickvault import {old} --db" in r.stderr  # the way forward, not --db old/db
    r = tv("import", str(old), db=new)
    assert r.returncode == 0, r.stderr
    assert "would import 40 bars of 2 ticker(s) (AAPL, MSFT)" in r.stdout
    assert "--apply" in r.stderr + r.stdout
    assert not new.exists()  # a dry run creates nothing
    r = tv("--json", "import", str(old), "--apply", db=new)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == 40 and doc["commits"] == 1 and doc["dry_run"] is False
    assert len(ParquetDB(new).read_table("prices")) == 40
    r = tv("import", str(tmp_path / "missing"), db=new)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = tv("import", str(old), "--column", "close", db=new)
    assert r.returncode == 2 and "THEIRS=OURS" in r.stderr


def test_hive_folders_pandas_wrote_are_url_decoded(tmp_path: Path) -> None:
    # pandas/pyarrow percent-encode partition values: ^GSPC is the folder ticker=%5EGSPC
    frames = [make_bars(t, periods=5) for t in ("AAPL", "BRK.B", "^GSPC")]
    pd.concat(frames).to_parquet(tmp_path / "old", partition_cols=["ticker"], index=False)
    assert (tmp_path / "old" / "ticker=%5EGSPC").is_dir()
    db = ParquetDB(tmp_path / "db")
    report = import_parquet(db, tmp_path / "old", apply=True)
    assert report.tickers == ["AAPL", "BRK.B", "^GSPC"]
    assert db.tickers() == ["AAPL", "BRK.B", "^GSPC"]
    pd.testing.assert_frame_equal(_stored(db), _expected(*frames))


def test_intraday_bars_are_refused_by_a_daily_import_and_named(tmp_path: Path) -> None:
    # minute bars in a daily import would be stored in the daily table as they are (it
    # takes any instant), naive New York times as if they were UTC
    ts = pd.date_range("2024-03-04 09:30", periods=30, freq="1min")
    df = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5})
    (tmp_path / "old").mkdir()
    df.assign(volume=100).to_parquet(tmp_path / "old" / "AAPL.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    for apply in (False, True):
        with pytest.raises(BadSourceData) as err:
            import_parquet(db, tmp_path / "old", apply=apply)
        msg = str(err.value)
        assert "AAPL.parquet: AAPL has 30 bars on 2024-03-04 (09:30, 09:31, 09:32, ..." in msg
        assert "--interval 1m" in msg and "--tz" in msg
    assert db.read_table("prices").empty and db.history() == []
    # as minute bars with their zone they are imported, into their own table
    report = import_parquet(db, tmp_path / "old", interval="1m", tz="America/New_York", apply=True)
    stored = db.read_table("prices", interval="1m")
    assert report.rows == 30 and str(stored.timestamp.iloc[0]) == "2024-03-04 14:30:00+00:00"
    # daily bars stamped at another time of day than midnight (one a date) are fine
    daily = make_bars("MSFT", periods=5)
    daily.assign(timestamp=daily.timestamp + pd.Timedelta(hours=21)).to_parquet(
        tmp_path / "close.parquet", index=False
    )
    assert import_parquet(db, tmp_path / "close.parquet").rows == 5


def test_one_ticker_in_two_spellings_with_different_bars_is_refused(tmp_path: Path) -> None:
    # 'aapl' and 'AAPL' are one ticker (stored upper case): two different bars of one date
    # are a contradiction, as for one spelling, not a silent choice of one of them
    low = make_bars("aapl", periods=5)
    high = make_bars("AAPL", periods=5, salt=3)
    pd.concat([low, high]).to_parquet(tmp_path / "x.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(BadSourceData, match=r"two different bars for 'aapl' .* row 1 and .* row 6"):
        import_parquet(db, tmp_path / "x.parquet", apply=True)
    assert db.read_table("prices").empty
    # the same bars in both spellings are one bar
    pd.concat([low, low.assign(ticker="AAPL")]).to_parquet(tmp_path / "y.parquet", index=False)
    assert import_parquet(db, tmp_path / "y.parquet", apply=True).tickers == ["AAPL"]
    assert len(db.read_table("prices")) == 5


def test_a_date_column_beyond_what_nanoseconds_hold_names_its_row(tmp_path: Path) -> None:
    # a datetime64[s] column holds the year 1500; converting it to nanoseconds crashed
    df = make_bars("OLD", periods=3)
    df["timestamp"] = df.timestamp.dt.tz_localize(None).astype("datetime64[s]")
    df.loc[1, "timestamp"] = pd.Timestamp("1500-01-01").as_unit("s")
    df.to_parquet(tmp_path / "OLD.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(BadSourceData) as err:
        import_parquet(db, tmp_path / "OLD.parquet", apply=True)
    assert "OLD.parquet row 2, column 'timestamp': '1500-01-01 00:00:00' is outside" in str(
        err.value
    )
    r = tv("import", str(tmp_path / "OLD.parquet"), db=tmp_path / "db")
    assert r.returncode == 5 and "internal error" not in r.stderr and "row 2" in r.stderr


def test_files_that_are_not_parquet_are_reported_not_read(tmp_path: Path) -> None:
    old = tmp_path / "prices"
    old.mkdir()
    make_bars("AAPL", periods=5).to_parquet(old / "AAPL.parquet", index=False)
    make_bars("MSFT", periods=5).to_csv(old / "MSFT.csv", index=False)
    (old / "_SUCCESS").write_text("")  # markers and hidden files are not worth a word
    (old / ".DS_Store").write_text("x")
    report = import_parquet(ParquetDB(tmp_path / "db"), old)
    assert report.tickers == ["AAPL"] and report.skipped == [str(old / "MSFT.csv")]
    r = tv("import", str(old), db=tmp_path / "db")
    assert r.returncode == 0, r.stderr
    assert "1 other file(s) not read" in r.stderr and "MSFT.csv" in r.stderr
    assert "--source csv" in r.stderr


def test_a_database_inside_the_folder_is_not_read_as_files_to_import(tmp_path: Path) -> None:
    # `tickvault import old --db old/new`: run again, the import read the database's own
    # data files (versions replaced since among them) as files to import
    old = tmp_path / "old"
    old.mkdir()
    make_bars("AAPL", periods=10).to_parquet(old / "AAPL.parquet", index=False)
    db = ParquetDB(old / "new")
    import_parquet(db, old, apply=True)
    db.upsert_prices(make_bars("AAPL", periods=2, salt=7))  # a correction after the import
    again = import_parquet(db, old)
    assert again.files == [str(old / "AAPL.parquet")] and again.rows == 10
    assert again.skipped == []  # nor its tickvault.json listed as a file not read


def test_the_cli_checks_the_path_before_it_creates_the_database(tmp_path: Path) -> None:
    # a typo in PATH with --apply created the default ./db, then called PATH a database's
    r = tv("import", "nothere", "--apply", cwd=tmp_path)
    assert r.returncode == 2 and "'nothere' does not exist" in one_clear_line(r)
    assert "relative to the current directory" in r.stderr
    assert not (tmp_path / "db").exists()
    # the default --db ./db is the old pattern's folder: a new folder beside it, not in it
    (tmp_path / "db" / "prices").mkdir(parents=True)
    make_bars("AAPL", periods=3).to_parquet(tmp_path / "db" / "prices" / "AAPL.parquet")
    r = tv("import", "db/prices", "--apply", cwd=tmp_path)
    assert r.returncode == 2 and "tickvault import db/prices --db tvdb" in one_clear_line(r)
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["prices"]


def test_every_half_written_file_is_named_at_once_and_nothing_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the original pattern's failure: a writer killed part way leaves a file without its
    # footer; all of them are named in one run, not one a run, and nothing is written
    monkeypatch.setattr(parquet_import, "BATCH_ROWS", 10)
    old = tmp_path / "old"
    old.mkdir()
    for t in ("AAPL", "MSFT", "NVDA"):
        make_bars(t, periods=20).to_parquet(old / f"{t}.parquet", index=False)
    whole = (old / "MSFT.parquet").read_bytes()
    (old / "MSFT.parquet").write_bytes(whole[: len(whole) // 2])
    (old / "ZERO.parquet").write_bytes(b"")
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars("IBM", periods=3))
    with pytest.raises(BadSourceData) as err:
        import_parquet(db, old, apply=True)
    msg = str(err.value)
    assert msg.startswith("2 file(s) cannot be read as Parquet, half-written")
    assert "MSFT.parquet (" in msg and "ZERO.parquet (" in msg and "AAPL.parquet" not in msg
    assert f"move them out of {str(old)!r}" in msg
    assert db.tickers() == ["IBM"] and db.version == 1
    assert len(list((tmp_path / "db" / "prices").glob("part-*.parquet"))) == 1
    (old / "MSFT.parquet").write_bytes(whole)  # restored
    (old / "ZERO.parquet").unlink()
    assert import_parquet(db, old, apply=True).tickers == ["AAPL", "MSFT", "NVDA"]


def test_update_of_imported_bars_asks_for_a_source_naming_the_import(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    make_bars("AAPL", periods=5).to_parquet(old / "AAPL.parquet", index=False)
    new = tmp_path / "tv"
    assert tv("import", str(old), "--apply", db=new).returncode == 0
    r = tv("update", db=new)
    assert r.returncode == 2 and "no source is recorded for AAPL" in one_clear_line(r)
    assert "brought in by `tickvault import`" in r.stderr and "--source" in r.stderr
    r = tv("update", "--source", "demo", "AAPL", db=new)  # records the source from then on
    assert r.returncode == 0, r.stderr
    assert tv("update", db=new).returncode == 0


def test_a_column_mapping_no_file_has_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    df = make_bars("AAPL", periods=5).assign(vw=lambda d: d.close)
    df.to_parquet(old / "a.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    # a typo: the mapping would silently not apply, and no vwap would be stored
    with pytest.raises(ConfigError, match=r"\['vwp'\].*'vw'"):
        import_parquet(db, old, columns={"vwp": "vwap"}, apply=True)
    assert db.read_table("prices").empty
    import_parquet(db, old, columns={"vw": "vwap"}, apply=True)
    assert db.read_table("prices").vwap.notna().all()


def test_sigterm_during_an_import_commits_nothing_and_says_so(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    old = tmp_path / "old"
    old.mkdir()
    for i in range(400):
        make_bars(f"T{i:03d}", periods=20).to_parquet(old / f"T{i:03d}.parquet", index=False)
    new = tmp_path / "new"
    env = {k: v for k, v in os.environ.items() if k != "TICKVAULT_DB"}
    argv = [sys.executable, "-m", "tickvault", "import", str(old), "--apply", "--quiet",
            "--db", str(new)]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (new / "tickvault.json").exists():  # reading the files now
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "an import commits at its end" in err and "Traceback" not in err
    db = ParquetDB(new)
    assert db.read_table("prices").empty and db.verify().ok


def test_a_null_ticker_cell_names_its_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = tmp_path / "old"
    old.mkdir()
    days = pd.date_range("2024-01-02", periods=3, freq="B")
    table = pa.table(
        {"ticker": pa.array(["AAPL", None, "AAPL"], pa.string()), "timestamp": pa.array(days)}
        | {c: [1.0, 2.0, 3.0] for c in ("open", "high", "low", "close", "volume")}
    )
    pq.write_table(table, old / "all.parquet")
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(BadSourceData, match=r"all\.parquet row 2, column 'ticker': empty ticker"):
        import_parquet(db, old, apply=True)
    assert db.read_table("prices").empty


def test_a_copied_table_folder_is_refused_not_read_as_files(tmp_path: Path) -> None:
    """A table's folder copied without its database's tickvault.json holds the files of
    replaced versions too; read in name order, an old bar could win (review)."""
    import shutil

    db = ParquetDB(tmp_path / "db", auto_compact=False)
    for salt in range(4):
        db.upsert_prices(make_bars("AAPL", periods=5, salt=salt))
    db.compact()
    shutil.copytree(tmp_path / "db" / "prices", tmp_path / "backup" / "prices")
    target = ParquetDB(tmp_path / "new")
    for path in (tmp_path / "backup", tmp_path / "backup" / "prices"):
        with pytest.raises(ConfigError, match="a tickvault table's files"):
            import_parquet(target, path)
    one = next((tmp_path / "backup" / "prices").glob("part-*.parquet"))
    with pytest.raises(ConfigError, match="a tickvault table's files"):
        import_parquet(target, one)
    # what the message says works: the folder above opens as the database it was
    back = ParquetDB(tmp_path / "backup").read_table("prices")
    pd.testing.assert_frame_equal(back, db.read_table("prices"))


def test_one_date_stamped_differently_in_two_files_is_refused(tmp_path: Path) -> None:
    """Within a file the intraday check says it; across files (or batches) each bar was
    stored, two bars for a date (review)."""
    old = tmp_path / "old"
    old.mkdir()
    utc = make_bars("AAPL", periods=5)
    utc.to_parquet(old / "a.parquet", index=False)
    later = make_bars("AAPL", start="2024-01-03", periods=5, salt=1)
    later["timestamp"] = later.timestamp + pd.Timedelta(hours=5)  # New York midnight, as UTC
    later.to_parquet(old / "b.parquet", index=False)
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(BadSourceData, match=r"AAPL has two bars on 2024-01-03.*b\.parquet"):
        import_parquet(db, old, apply=True)
    assert db.read_table("prices").empty
    assert not list((tmp_path / "db" / "prices").glob("part-*.parquet"))


def test_a_dry_run_from_the_default_db_folder_runs_and_says_where_apply_goes(
    tmp_path: Path,
) -> None:
    """`tickvault import db` with no --db: the default ./db is the folder being imported; a
    dry run creates nothing, so it runs (it was refused) and says --apply needs a folder."""
    (tmp_path / "db" / "prices").mkdir(parents=True)
    make_bars("AAPL", periods=3).to_parquet(tmp_path / "db" / "prices" / "AAPL.parquet")
    r = tv("import", "db", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "would import 3 bars of 1 ticker(s) (AAPL)" in r.stdout
    assert "--apply needs a new folder" in r.stderr and "--db tvdb --apply" in r.stderr
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["prices"]


def test_a_long_import_commits_as_it_goes_so_no_batch_ages_into_an_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files no version names are orphans to vacuum once an hour old: an import of billions
    of bars would have its first batches deleted before its end (review). Past
    COMMIT_EVERY_SECONDS it commits what it has written."""
    monkeypatch.setattr(parquet_import, "BATCH_ROWS", 40)
    monkeypatch.setattr(parquet_import, "COMMIT_EVERY_SECONDS", 0.0)
    old, frames = six_files(tmp_path)
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    versions = []
    report = import_parquet(
        db, old, apply=True, on_file=lambda *_: versions.append(db.table_version("prices"))
    )
    assert report.commits == 3  # one per batch of two files
    assert versions == [-1, 1, 1, 2, 2, 3]  # committed while the import still read files
    pd.testing.assert_frame_equal(_stored(db), _expected(*frames))
