"""The one home for human-readable numbers and times (CLI tables and dashboard pages)."""

from __future__ import annotations

import math

import pandas as pd

from tickvault.formats import human_bytes, short_time
from tickvault.times import iso


def test_human_bytes_uses_binary_units_and_one_decimal() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(None) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KB"
    assert human_bytes(5 * 1024**3) == "5.0 GB"
    assert human_bytes(3 * 1024**4) == "3.0 TB"
    assert human_bytes(-2048) == "-2.0 KB"


def test_short_time_shows_daily_bars_as_dates_and_other_times_in_utc() -> None:
    assert short_time("2024-03-01T00:00:00+00:00") == "2024-03-01"
    assert short_time("2024-03-01") == "2024-03-01"
    assert short_time("2024-03-01T14:30:00.123456+00:00") == "2024-03-01 14:30:00"
    assert short_time("2024-03-01T09:30:00-05:00") == "2024-03-01 14:30:00"
    assert short_time("2024-03-01T14:30:00Z") == "2024-03-01 14:30:00"
    assert short_time(None) == "" and short_time("", empty="—") == "—"
    assert short_time("not a time") == "not a time"


def test_iso_turns_every_missing_value_into_none() -> None:
    assert iso(None) is None and iso(pd.NaT) is None and iso(math.nan) is None
    assert iso(pd.Timestamp("2024-03-01", tz="UTC")) == "2024-03-01T00:00:00Z"
    assert iso("2024-03-01T14:30:00Z") == "2024-03-01T14:30:00Z"
    assert iso(0) == "1970-01-01T00:00:00Z"


def test_a_missing_time_is_never_written_as_natz() -> None:
    """``iso_utc(NaT)`` used to give ``'NaTZ'`` (NaT is a datetime); a missing time is not
    a time, and the JSON writers make it null."""
    import pytest

    from tickvault.cli.output import json_default
    from tickvault.formats import iso_utc

    with pytest.raises(ValueError, match="NaT is not a time"):
        iso_utc(pd.NaT)
    assert json_default(pd.NaT) is None
    assert json_default(pd.Timestamp("2024-03-01 14:30", tz="UTC")) == "2024-03-01T14:30:00Z"
