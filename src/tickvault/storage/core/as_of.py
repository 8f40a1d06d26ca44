"""Which version was current at a point in time (``read_table(as_of=...)``, decision 016).

Every log entry carries the ``timestamp`` of its commit. Versions are published in order,
and a writer stamps its entry after it has read the version before it, so on one clock the
timestamps grow with the version: the version current at ``T`` is found by a binary search
that reads about log2(versions) entries, not every entry. (Writers on machines whose clocks
disagree can break the order by the skew between them; the search still returns a version
committed at or before ``T`` by its own stamp, unless the skew hides it.)
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...errors import ConfigError, StorageError, VersionUnavailable
from ...times import TimeLike, is_date_only, parse_strict, parse_time, to_ns
from .table import Table

EXAMPLE = "e.g. as_of='2026-11-30T22:00Z'"


def check_one(version: int | None, as_of: TimeLike) -> None:
    """``version`` and ``as_of`` name the same thing two ways: at most one may be given."""
    if version is not None and as_of is not None:
        raise ConfigError(
            f"version={version!r} and as_of={as_of!r} were both given; pass one of them "
            f"(version=12 for a version, {EXAMPLE} for the version current at a time)"
        )
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ConfigError(f"version={version!r} is not a whole number >= 0, e.g. version=12")
    if version is not None and version < 0:
        raise ConfigError(f"version={version!r} is negative; versions start at 0, e.g. version=12")


def as_of_ns(as_of: TimeLike) -> int:
    """``as_of`` in ns since the epoch (UTC). A bare date means the end of that day, like an
    ``end`` bound: ``as_of='2026-11-30'`` is the version current when that day ended."""
    if isinstance(as_of, str):  # a time of the log is never guessed: ISO 8601 only
        parse_strict(as_of, name="as_of")
    ns = to_ns(as_of, name="as_of", end=True)
    assert ns is not None
    now = pd.Timestamp.now(tz="UTC")
    day = parse_time(as_of, name="as_of") if is_date_only(as_of) else None
    if ns > now.value and not (day is not None and day <= now):
        raise ConfigError(
            f"as_of={as_of!r} is in the future (now is {now.isoformat(timespec='seconds')}); "
            f"omit as_of to read the newest version, or pass a past time, {EXAMPLE}"
        )
    return ns


def _stamp(t: Table, version: int) -> int | None:
    entry = t.log.read_entry(version)
    if entry is None:
        return None
    return entry_ns(entry)


def entry_ns(entry: dict[str, Any]) -> int | None:
    ts = entry.get("timestamp")
    if not ts:
        return None
    try:
        return int(pd.Timestamp(ts).value)
    except (ValueError, TypeError):
        return None


def version_at(t: Table, as_of: TimeLike) -> int:
    """The newest version of ``t`` committed at or before ``as_of``. A time before the table
    existed is a ConfigError naming when it was created; a time before the oldest log entry
    still kept (older ones pruned) is VersionUnavailable naming that entry."""
    ns = as_of_ns(as_of)
    newest = t.refresh().version
    if newest < 0:
        raise StorageError(f"table {t.name!r} has no versions yet; nothing to read as of a time")
    newest_ns = _stamp(t, newest)
    if newest_ns is not None and newest_ns <= ns:
        return newest
    lo = 0
    lo_ns = _stamp(t, 0)
    if lo_ns is None:  # the log was pruned below a checkpoint: start at the oldest entry
        versions = t.log.list_versions()
        lo = versions[0] if versions else newest
        lo_ns = _stamp(t, lo)
    if lo_ns is None:
        raise StorageError(f"{t.name}: log entry {lo} has no timestamp; run `tickvault verify`")
    if ns < lo_ns:
        first = pd.Timestamp(lo_ns, tz="UTC")
        when = first.isoformat()
        if lo == 0:
            later = first.ceil("s").strftime("%Y-%m-%dT%H:%M:%SZ")
            raise ConfigError(
                f"as_of={as_of!r} is before table {t.name!r} existed (created {when}); "
                f"pass a later time, e.g. as_of={later!r}"
            )
        raise VersionUnavailable(
            f"as_of={as_of!r} is before the oldest log entry kept for {t.name!r} "
            f"(version {lo}, {when}); older entries were pruned",
            oldest=lo,
        )
    # invariant: stamp(lo) <= ns < stamp(hi)
    hi = newest
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s = _stamp(t, mid)
        if s is None:
            raise StorageError(
                f"{t.name}: log entry {mid} is missing or has no timestamp; run `tickvault verify`"
            )
        if s <= ns:
            lo = mid
        else:
            hi = mid
    return lo


def resolve(t: Table, version: int | None, as_of: TimeLike) -> int | None:
    """The version a read pins: ``version``, the one current at ``as_of``, or None (the
    newest). Both given is a ConfigError."""
    check_one(version, as_of)
    if as_of is None:
        return version
    return version_at(t, as_of)
