"""The commit-time half of the source check.

A run checks, before fetching, that no ticker's stored bars came from another source
(:func:`~tickvault.pipeline.inputs.check_sources`). Two runs started at the same time both
pass that check for a new ticker; so each commit checks again, atomically with publishing
(``ParquetDB.commit_files(check_sources=...)``): a ticker that another run recorded from a
different source since this run looked fails in this run's report, with its rows left out;
the other run's bars stay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..sources.provenance import describe, same_origin


class SourceConflict(ConfigError):
    """A commit would record tickers from a source other than the one a concurrent run
    just recorded for them; ``lost`` maps each such ticker to that run's source."""

    def __init__(self, message: str, lost: dict[str, dict[str, Any]]) -> None:
        super().__init__(message)
        self.lost = lost


class SourceGuard:
    """What the run saw recorded when it checked (``expected``, ``db.sources()``): a
    ticker's record may still be that (the check accepted it), none, or the run's own
    source; anything else was written by another run meanwhile."""

    def __init__(self, expected: Mapping[str, dict[str, Any]]) -> None:
        self.expected = dict(expected)

    def conflicts(
        self,
        recorded: Mapping[str, dict[str, Any]],
        tickers: Iterable[str],
        mine: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """The tickers among ``tickers`` recorded (in ``recorded``) from another source
        than ``mine`` since the run checked, with that source."""
        lost = {}
        for t in tickers:
            now = recorded.get(t)
            if now is None or now == self.expected.get(t) or same_origin(now, mine):
                continue
            lost[t] = now
        return lost

    def check(self, mine: dict[str, Any]) -> Callable[[dict[str, dict[str, Any]]], None]:
        """The ``check_sources`` of a commit of bars from ``mine``: raises
        :class:`SourceConflict` naming the lost tickers."""

        def check(recorded: dict[str, dict[str, Any]]) -> None:
            lost = self.conflicts(recorded, recorded, mine)
            if lost:
                raise SourceConflict(lost_message(sorted(lost), lost, mine), lost)

        return check


def lost_message(
    tickers: list[str], lost: Mapping[str, dict[str, Any]], mine: dict[str, Any]
) -> str:
    """Why ``tickers`` were not written: another run recorded them from another source
    while this one ran."""
    theirs = sorted({describe(lost[t]) for t in tickers})
    return (
        f"another run wrote {', '.join(tickers[:5])}{' …' if len(tickers) > 5 else ''} from "
        f"{' and '.join(theirs)} while this run fetched from {describe(mine)}; not written, "
        f"so the series does not mix two sources (the other run's bars stay). Update from "
        f"that source, or pass --replace-source (replace_source=True) to overwrite them"
    )
