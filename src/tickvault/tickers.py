"""The one ticker rule: tickers are upper case (decision 010).

Every way in — ``upsert``, reads, the pipeline, sources, freshness, the CLI and dashboard
URLs — normalises a ticker with :func:`normalize`: surrounding whitespace removed, letters
upper-cased, punctuation kept (``brk.b`` → ``BRK.B``, ``^gspc`` → ``^GSPC``, ``eurusd=x`` →
``EURUSD=X``). So ``msft`` and ``MSFT`` are one series. An unknown ticker is reported with
the stored tickers closest to it (:func:`close_matches`), by one rule (:func:`check_known`):
the CLI exits 3, the library logs a warning, ``strict=True`` raises UnknownTicker.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable

from .errors import UnknownTicker

log = logging.getLogger("tickvault.tickers")


def normalize(ticker: str) -> str:
    """The stored spelling of ``ticker``: stripped and upper case."""
    return ticker.strip().upper()


def normalize_all(tickers: Iterable[str]) -> list[str]:
    """:func:`normalize` each, in order, without duplicates."""
    seen: dict[str, None] = {}
    for t in tickers:
        seen.setdefault(normalize(t), None)
    return list(seen)


def close_matches(ticker: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` stored tickers that look like ``ticker`` (a typo, a missing suffix)."""
    known = list(known)
    want = normalize(ticker)
    hits = difflib.get_close_matches(want, known, n=n, cutoff=0.6)
    prefix = [k for k in sorted(known) if k != want and (k.startswith(want) or want.startswith(k))]
    return list(dict.fromkeys([*hits, *prefix]))[:n]


def not_found(unknown: list[str], known: Iterable[str], where: str) -> UnknownTicker:
    """The error for tickers that are not in a database, with suggestions."""
    known = sorted(set(known))
    parts = []
    suggestions: dict[str, list[str]] = {}
    for t in unknown:
        near = suggestions[t] = close_matches(t, known)
        parts.append(f"{t} (did you mean {', '.join(near)}?)" if near else t)
    sample = ", ".join(known[:5]) or "none"
    count = f"{len(known)} ticker{'' if len(known) == 1 else 's'}"
    return UnknownTicker(
        f"{'; '.join(parts)} not in the database at {where} ({count}, e.g. {sample})",
        tickers=unknown,
        suggestions=suggestions,
    )


def unknown(requested: str | Iterable[str], known: Iterable[str]) -> list[str]:
    """The requested tickers (upper case, in order, once each) that are not in ``known``
    (a set or a dict is looked up as it is, anything else made a set first); a ticker
    stored in another spelling before tickers were upper case counts as known."""
    have = known if isinstance(known, (set, frozenset, dict)) else set(known)
    names = [requested] if isinstance(requested, str) else [str(t) for t in requested]
    missing = [t for t in names if normalize(t) not in have and t not in have]
    return normalize_all(missing)


def check_known(
    requested: str | Iterable[str] | None,
    known: Callable[[], Iterable[str]],
    *,
    where: str,
    strict: bool = False,
    elsewhere: Callable[[list[str]], str] | None = None,
) -> None:
    """The one rule for reads that name tickers the database does not hold: a warning on
    the ``tickvault`` logger naming them and the closest stored ones — or, ``strict``,
    :class:`~tickvault.errors.UnknownTicker`. ``known()`` is called only for a read that
    names tickers; ``elsewhere(missing)``, only when some are missing, may say where they
    are (another interval's table)."""
    if requested is None:
        return
    stored = known()
    missing = unknown(requested, stored)
    if not missing:
        return
    error = not_found(missing, sorted(stored), where)
    extra = elsewhere(missing) if elsewhere is not None else ""
    if extra:
        error = UnknownTicker(
            f"{error}; {extra}", tickers=error.tickers, suggestions=error.suggestions
        )
    if strict:
        raise error
    log.warning("%s; reading the others (strict=True raises UnknownTicker)", error)
