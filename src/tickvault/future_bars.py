"""Bars in the future: the one rule.

A bar is an observation, so it cannot be later than now. A bar stamped beyond ``now +
max_future`` — a typo in the year, a time zone mix-up, a source's bug — would freeze its
ticker once stored: ``update`` starts from the last stored bar, so nothing newer would ever
be fetched. So:

* ``upsert``, the pipeline and every source refuse such rows (:func:`reject_future`, run by
  :meth:`TableSchema.validate <tickvault.schema.TableSchema.validate>` for tables of bars);
  the error names the first one. ``max_future`` is a ``ParquetDB`` option (seconds or a
  ``timedelta``; ``None``: no limit), one day by default for clocks and stamps slightly
  ahead; sources use the default.
* Tickers that hold such bars anyway (written before the rule, or with a larger
  ``max_future``) are flagged: :func:`ahead_of` finds them from the log's watermarks, for
  ``verify``; freshness and the dashboard give them the level ``future``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .convert import reject, row_description
from .errors import ConfigError

#: The default allowance beyond now, in seconds: one day.
DEFAULT_MAX_FUTURE = 86_400.0


def max_future_seconds(value: object, name: str = "max_future") -> float | None:
    """``max_future`` as seconds (None: no limit); ConfigError naming the option otherwise."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        out = value.total_seconds()
    elif isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
        out = float(value)
    else:
        out = -1.0
    if not out >= 0:  # also NaN
        raise ConfigError(
            f"{name}={value!r} must be a timedelta or a number of seconds >= 0 (None: no "
            f"limit), e.g. {name}=datetime.timedelta(days=1)"
        )
    return out


def limit(max_future: float | None, now: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """The latest timestamp a bar may have: ``now + max_future`` (None: no limit)."""
    if max_future is None:
        return None
    base = pd.Timestamp.now(tz="UTC") if now is None else now
    return (base + pd.Timedelta(seconds=max_future)).as_unit("ns")


def describe_allowance(max_future: float) -> str:
    """``1 day``, ``12 hours``, ``0 seconds``: the allowance for a message."""
    td = pd.Timedelta(seconds=max_future)
    if max_future and max_future % 86_400 == 0:
        n = int(max_future // 86_400)
        return f"{n} day{'s' if n != 1 else ''}"
    if max_future and max_future % 3_600 == 0:
        n = int(max_future // 3_600)
        return f"{n} hour{'s' if n != 1 else ''}"
    return f"{td.total_seconds():g} seconds"


def reject_future(
    table: pa.Table,
    column: str,
    key: Sequence[str],
    max_future: float | None,
    now: pd.Timestamp | None = None,
) -> None:
    """ValidationError if a value of the timestamp ``column`` is later than ``now +
    max_future``, naming how many and the first row. ``table`` is cast already."""
    latest = limit(max_future, now)
    if latest is None or table.num_rows == 0:
        return
    ts = table.column(column)
    top = pc.max(ts).as_py()
    if top is None or pd.Timestamp(top) <= latest:
        return
    mask = pc.greater(ts, pa.scalar(latest.value, pa.int64()).cast(ts.type))
    allowance = describe_allowance(max_future or 0.0)
    bad = np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    reject(
        column,
        bad,
        "value in the future" if int(bad.sum()) == 1 else "values in the future",
        lambda i: row_description(table, i, key),
        f"a bar cannot be later than now + {allowance} ({latest.isoformat()}); check the "
        f"year and the time zone of the source (ParquetDB(max_future=...) allows more)",
    )


def ahead_of(
    watermarks: Mapping[str, pd.Timestamp],
    max_future: float | None,
    now: pd.Timestamp | None = None,
) -> dict[str, pd.Timestamp]:
    """``{ticker: last bar}`` of the tickers whose last bar is later than ``now +
    max_future`` (``max_future=None``: later than ``now``)."""
    latest = limit(max_future or 0.0, now)
    assert latest is not None
    return {t: ts for t, ts in sorted(watermarks.items()) if ts > latest}


def future_warnings(
    table: str,
    watermarks: Mapping[str, pd.Timestamp],
    max_future: float | None,
    now: pd.Timestamp | None = None,
) -> list[str]:
    """A one-line warning (``verify``) for the tickers of ``table`` whose last bar is later
    than ``now + max_future``; none when there are none."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    ahead = ahead_of(watermarks, max_future, now)
    if not ahead:
        return []
    shown = list(ahead.items())[:10]
    names = ", ".join(f"{t} (last bar {ts.isoformat()})" for t, ts in shown)
    more = f" and {len(ahead) - len(shown)} more" if len(ahead) > len(shown) else ""
    n = len(ahead)
    return [
        f"{table}: {n} ticker{'s' if n != 1 else ''} hold{'s' if n == 1 else ''} bars in the "
        f"future (now is {now.isoformat(timespec='seconds')}): {names}{more}; `update` "
        f"starts from the last stored bar, so {'it is' if n == 1 else 'they are'} never "
        f"brought up to date - check the source's time stamps (or this machine's clock)"
    ]
