"""The one ticker rule: tickers are upper case (decision 010).

Every way in — ``upsert``, reads, the pipeline, sources, freshness, the CLI and dashboard
URLs — normalises a ticker with :func:`normalize`: surrounding whitespace removed, letters
upper-cased, punctuation kept (``brk.b`` → ``BRK.B``, ``^gspc`` → ``^GSPC``, ``eurusd=x`` →
``EURUSD=X``). So ``msft`` and ``MSFT`` are one series. An unknown ticker is reported with
the stored tickers closest to it (:func:`close_matches`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from .errors import TickerNotFound


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


def not_found(unknown: list[str], known: Iterable[str], where: str) -> TickerNotFound:
    """The error for tickers that are not in a database, with suggestions."""
    known = sorted(known)
    parts = []
    for t in unknown:
        near = close_matches(t, known)
        parts.append(f"{t} (did you mean {', '.join(near)}?)" if near else t)
    sample = ", ".join(known[:5]) or "none"
    return TickerNotFound(
        f"{'; '.join(parts)} not in the database at {where} ({len(known)} tickers, e.g. {sample})",
        ticker=unknown[0] if len(unknown) == 1 else None,
    )
