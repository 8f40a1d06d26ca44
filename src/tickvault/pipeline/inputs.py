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
from ..schema import get_schema
from ..sources import as_source, get_source
from ..sources.base import Source, check_interval
from ..sources.provenance import describe as describe_origin
from ..sources.provenance import from_registry, origin, registry_name, same_origin
from ..storage import ParquetDB
from ..tickers import close_matches, normalize
from ..times import iso


def resolve_source(source: Any, interval: str = "1d") -> Source:
    """A source object for a registered name (created for ``interval``), a source object
    or a plain callable; ConfigError, before anything is fetched, if it does not give bars
    of ``interval`` (:func:`~tickvault.sources.base.check_interval`)."""
    if isinstance(source, str):
        src = get_source(source, **({} if interval == "1d" else {"interval": interval}))
    else:
        src = as_source(source)
    check_interval(src, interval)
    return src


def open_db(db: ParquetDB | str | os.PathLike[str] | None) -> ParquetDB:
    """``db`` opened (None: ``$TICKVAULT_DB``, else ``./db``, like the command line)."""
    return db if isinstance(db, ParquetDB) else ParquetDB(db)


def stored_spans(
    db: ParquetDB, table: str
) -> tuple[dict[str, pd.Timestamp], dict[str, pd.Timestamp]]:
    """``(first, last)`` stored timestamp per ticker of ``table``, both from one version's
    log statistics (no data file is read); the snapshot is released on return."""
    snap = db.snapshot(table)
    return snap.first_timestamps(), snap.watermarks()


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


def check_sources(
    db: ParquetDB, tickers: list[str], source: Source, replace: bool, table: str = "prices"
) -> None:
    """Refuse (ConfigError) to write tickers whose stored bars came from another source,
    unless ``replace``: mixing two sources' bars in one series is silent corruption."""
    if replace:
        return
    mine = origin(source)
    stored = db.sources(table)
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


def stored_sources(
    db: ParquetDB, tickers: list[str], table: str = "prices"
) -> tuple[list[tuple[Source, list[str]]], dict[str, str]]:
    """The sources the stored bars of ``tickers`` came from, each with its tickers
    (``update`` without a source): every ticker is fetched from the source recorded for
    *its* bars, never another's. ConfigError, before anything is fetched, naming the
    tickers that have no recorded source (written with ``upsert_prices``, or not stored
    at all) and how to name one.

    Also returns the tickers whose recorded source cannot be recreated here, each with
    its error (``"ConfigError: why"``), failed in the run's report while the others are
    updated: a callable's or hand-built object's (:func:`recreate`), a name the registry
    does not know, or an HTTP source the environment points elsewhere."""
    stored = db.sources(table)
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
    if unknown:
        known = db.tickers(table)
        have = set(known)
        named = []
        for t in unknown[:5]:
            near = close_matches(t, known) if t not in have else []
            named.append(f"{t} (did you mean {', '.join(near)}?)" if near else t)
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ConfigError(
            f"no source is recorded for {', '.join(named)}{more} (bars written with "
            f"upsert_prices or brought in by `tickvault import`, or not stored yet), and "
            f"update never fetches a ticker from another ticker's source; name the source, "
            f"e.g. `tickvault update --source yahoo {unknown[0]}` (update([{unknown[0]!r}], "
            f"source='yahoo')); from then on it is recorded"
        )
    interval = get_schema(table).interval or "1d"
    out = []
    refused: dict[str, str] = {}
    for k, ts in sorted(groups.items()):
        try:
            out.append((recreate(found[k], ts, interval), ts))
        except ConfigError as exc:
            refused.update(dict.fromkeys(ts, f"ConfigError: {exc}"))
    return out, refused


def recreate(recorded: dict[str, Any], tickers: list[str], interval: str = "1d") -> Source:
    """The source ``recorded`` describes, created through the registry for ``interval``;
    ConfigError naming ``tickers`` and what to do when it cannot be: a callable or a
    source object built by hand (recorded with its kind) is never looked up by name, a
    name may be unknown here, and an HTTP source the environment
    (``$TICKVAULT_<NAME>_BASE_URL``) points elsewhere than the recorded URL would be
    another source."""
    name = str(recorded.get("name"))
    few = _first_few(tickers)
    if not from_registry(recorded):
        as_name = f"my_{name}" if registry_name(name) else name  # a name of its own
        raise ConfigError(
            f"{few} came from {describe_origin(recorded)}, which update cannot recreate "
            f"(only sources created by name, get_source / --source, are). Pass it again: "
            f"update({tickers[:5]!r}, source={name}); or register a factory for it "
            f"(register_source({as_name!r}, factory) or a plugin entry point) and switch "
            f"the tickers to it once with update(..., source={as_name!r}, "
            f"replace_source=True), after which `tickvault update` finds it"
        )
    options = dict(recorded.get("options") or {})
    if interval != "1d":  # the table's interval, even if the source was an object
        options["interval"] = interval
    try:
        src = get_source(name, **options)
        check_interval(src, interval)
        # where the environment alone would send it (HTTP sources: $TICKVAULT_<NAME>_BASE_URL)
        without = {k: v for k, v in options.items() if k != "base_url"}
        here = origin(get_source(name, **without)) if hasattr(src, "base_url") else None
    except ConfigError as exc:
        raise ConfigError(
            f"the source recorded for {few}, {describe_origin(recorded)}, cannot be created "
            f"here: {exc}. If it was a function or object of your own, pass it again "
            f"(update({tickers[:5]!r}, source=...)), or register it under that name "
            f"(register_source({name!r}, factory) or a plugin entry point)"
        ) from exc
    url = None if here is None else here["options"].get("base_url")
    if (
        here is not None
        and url is not None
        and not same_origin(here, {**here, "options": recorded.get("options")})
    ):
        env = f"TICKVAULT_{name.upper()}_BASE_URL"
        was = (recorded.get("options") or {}).get("base_url")
        where = "" if was else " (the provider's own URL)"
        fix = f"Unset it (or set it to {was})" if was else "Unset it"
        raise ConfigError(
            f"{few} came from {describe_origin(recorded)}{where}, but ${env} points {name} "
            f"at {url}: another source. {fix} to update from the recorded one, or pass the "
            f"source with --replace-source (replace_source=True) to switch to {url}"
        )
    return src


def unrecorded(
    db: ParquetDB, tickers: list[str], source: Source, table: str = "prices"
) -> frozenset[str]:
    """Tickers whose recorded source is not ``source`` (none recorded, or another one with
    ``replace_source``), or is it as an older version recorded a callable (no kind):
    their fetched bars are written even when stored identically already, so the run
    records where they come from now."""
    mine = origin(source)
    stored = db.sources(table)
    return frozenset(
        t
        for t in tickers
        if stored.get(t) is None
        or not same_origin(stored[t], mine)
        or from_registry(stored[t]) != from_registry(mine)
    )


def resume_key(source: Source, start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """What makes two backfills "the same run" for ``resume=True``: the source name and
    the requested range. An open end (``end=None``, "up to now") is pinned to today's UTC
    date, so a resumed open-ended backfill only skips tickers committed the same day."""
    end_part = iso(end) if end is not None else f"open:{dt.datetime.now(dt.UTC).date()}"
    doc = json.dumps(["backfill", source.name, iso(start), end_part])
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def completed_tickers(db: ParquetDB, key: str, table: str = "prices") -> set[str]:
    """Tickers that commits of earlier runs with this resume key published.

    The log is the checkpoint: each pipeline commit records ``run_key`` and the tickers
    it completed in its ``info``, atomically with the data, so what is skipped is exactly
    what was committed."""
    done: set[str] = set()
    for entry in db.history(table):
        info = entry.get("info") or {}
        if info.get("run_key") == key:
            done.update(info.get("done") or ())
    return done


def _first_few(tickers: list[str]) -> str:
    """Up to five tickers for a message, with "…" when there are more."""
    return ", ".join(tickers[:5]) + (" …" if len(tickers) > 5 else "")
