"""What a run starts from: the source and database the caller named, the tickers (upper
case, once each), the source each ticker's stored bars came from, and which tickers an
interrupted backfill already committed (``resume=True``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..sources import as_source, get_source
from ..sources.base import Source
from ..sources.provenance import describe as describe_origin
from ..sources.provenance import origin, same_origin
from ..storage import ParquetDB
from ..tickers import normalize
from ..times import iso


def resolve_source(source: Any) -> Source:
    """A source object for a registered name, a source object or a plain callable."""
    if isinstance(source, str):
        return get_source(source)
    return as_source(source)


def open_db(db: ParquetDB | str | os.PathLike[str]) -> ParquetDB:
    return db if isinstance(db, ParquetDB) else ParquetDB(db)


def unique_tickers(tickers: str | Iterable[str]) -> list[str]:
    if isinstance(tickers, str):
        tickers = [tickers]
    out: list[str] = []
    seen: set[str] = set()
    for t in tickers:
        if not isinstance(t, str):
            raise ConfigError(f"tickers must be strings, got {t!r}")
        t = normalize(t)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def check_sources(db: ParquetDB, tickers: list[str], source: Source, replace: bool) -> None:
    """Refuse (ConfigError) to write tickers whose stored bars came from another source,
    unless ``replace``: mixing two sources' bars in one series is silent corruption."""
    if replace:
        return
    mine = origin(source)
    stored = db.sources()
    clash: dict[str, list[str]] = {}
    for t in tickers:
        theirs = stored.get(t)
        if theirs is not None and not same_origin(theirs, mine):
            clash.setdefault(describe_origin(theirs), []).append(t)
    if clash:
        parts = "; ".join(
            f"{_first_few(ts)} came from {where}" for where, ts in sorted(clash.items())
        )
        raise ConfigError(
            f"source {describe_origin(mine)!r} is not where the stored bars came from: {parts}. "
            f"Use that source (`tickvault update` without --source picks it), or pass "
            f"--replace-source (replace_source=True) to overwrite them with {mine['name']!r} bars"
        )


def stored_source(db: ParquetDB, tickers: list[str]) -> Source:
    """The one source the stored bars of ``tickers`` came from (``update`` without a
    source); ConfigError if they came from several, or if none was recorded."""
    from ..sources import get_source as make

    stored = db.sources()
    groups: dict[str, list[str]] = {}
    found: dict[str, dict[str, Any]] = {}
    unknown = []
    for t in tickers:
        o = stored.get(t)
        if o is None:
            unknown.append(t)
            continue
        key = json.dumps(o, sort_keys=True)
        groups.setdefault(key, []).append(t)
        found[key] = o
    if len(groups) > 1:
        listing = "; ".join(
            f"{describe_origin(found[k])}: {_first_few(ts)}" for k, ts in sorted(groups.items())
        )
        raise ConfigError(
            f"the tickers came from different sources ({listing}); update each group with "
            f"its own source, e.g. `tickvault update --source NAME TICKER...`"
        )
    if not groups and not unknown:
        return make("demo")  # no tickers at all: nothing will be fetched
    if not groups:
        names = ", ".join(unknown[:5])
        raise ConfigError(
            f"no source is recorded for {names}; name one, e.g. source='yahoo' "
            f"(`tickvault update --source yahoo`)"
        )
    o = next(iter(found.values()))
    return make(o["name"], **o.get("options", {}))


def resume_key(source: Source, start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """What makes two backfills "the same run" for ``resume=True``: the source name and
    the requested range. An open end (``end=None``, "up to now") is pinned to today's UTC
    date, so a resumed open-ended backfill only skips tickers committed the same day."""
    end_part = iso(end) if end is not None else f"open:{dt.datetime.now(dt.UTC).date()}"
    doc = json.dumps(["backfill", source.name, iso(start), end_part])
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def completed_tickers(db: ParquetDB, key: str) -> set[str]:
    """Tickers that commits of earlier runs with this resume key published.

    The log is the checkpoint: each pipeline commit records ``run_key`` and the tickers
    it completed in its ``info``, atomically with the data, so what is skipped is exactly
    what was committed."""
    done: set[str] = set()
    for entry in db.history("prices"):
        info = entry.get("info") or {}
        if info.get("run_key") == key:
            done.update(info.get("done") or ())
    return done


def _first_few(tickers: list[str]) -> str:
    """Up to five tickers for a message, with "…" when there are more."""
    return ", ".join(tickers[:5]) + (" …" if len(tickers) > 5 else "")
