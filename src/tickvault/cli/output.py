"""How the command line prints: rich tables and progress for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..csv_export import to_csv
from ..formats import iso_utc, short_time, whole_counts
from .errors import run_exit_code

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console


def _console(**options: Any) -> Console:
    """A rich Console that goes quiet when the reader of its pipe went away
    (``tickvault freshness 2>&1 | head``): rich's own answer is ``SystemExit(1)``, which
    made a command whose exit code is its result (freshness: 1 = stale) report an alarm
    for a closed pipe. The command goes on and exits with its own code."""
    from rich.console import Console

    class QuietOnBrokenPipe(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            stream = sys.stderr if self.stderr else sys.stdout
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)

    return QuietOnBrokenPipe(**options)


class Output:
    """Where a command writes: stdout for results, stderr for progress and messages."""

    def __init__(self, *, as_json: bool, quiet: bool) -> None:
        self.json = as_json
        self.quiet = quiet
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def out(self) -> Console:
        if self._out is None:
            # piped output is for files and scripts: never truncate it to 80 columns
            width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 200)
            self._out = _console(highlight=False, soft_wrap=False, width=width)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            # not a terminal (cron logs): one message = one line, never wrapped at 80 columns
            tty = sys.stderr.isatty()
            self._err = _console(
                stderr=True,
                highlight=False,
                soft_wrap=not tty,
                width=None if tty else 10_000,
            )
        return self._err

    def data(self, obj: Any) -> None:
        """A JSON document on stdout (``--json``)."""
        sys.stdout.write(json.dumps(obj, indent=2, default=json_default, ensure_ascii=False))
        sys.stdout.write("\n")

    def print(self, *items: Any) -> None:
        if not self.quiet:
            self.out.print(*items)

    def note(self, text: str) -> None:
        """A message for the person at the terminal (stderr; silenced by --quiet)."""
        if not self.quiet:
            self.err.print(text)


def json_default(obj: Any) -> Any:
    if isinstance(obj, dt.datetime):  # pandas Timestamps too, and NaT (no time: null)
        return None if isnull(obj) else iso_utc(obj)  # ISO 8601 in UTC ending in Z
    if hasattr(obj, "isoformat"):
        return None if isnull(obj) else obj.isoformat()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj)
    return str(obj)


def isnull(x: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    header: bool = True,
) -> Any:
    from rich.table import Table

    t = Table(
        title=title, title_justify="left", show_edge=False, pad_edge=False, show_header=header
    )
    for c in columns:
        t.add_column(c, justify="right" if c in _NUMERIC else "left", no_wrap=True)
    for r in rows:
        t.add_row(*("" if v is None or isnull(v) else str(v) for v in r))
    return t


_NUMERIC = {"rows", "files", "tickers", "version", "age", "total", "written", "failed", "seconds"}
_NUMERIC |= {"open", "high", "low", "close", "volume", "adj_close", "unchanged", "skipped"}
_NUMERIC |= {"+files", "-files", "size", "vwap", "trade_count"}


@contextmanager
def progress(out: Output, total: int, label: str) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar fed by the pipeline's ``on_progress`` events (on stderr)."""
    if out.quiet or out.json:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:>10,} rows  {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out.err,
        transient=False,
    )
    task = bar.add_task(label, total=total or None, rows=0, failed=0)
    started = False

    def on_progress(event: Any) -> None:
        # drawn from the first event on: a run refused before any work draws nothing
        nonlocal started
        if not started:
            started = True
            bar.start()
        bar.update(
            task,
            completed=int(getattr(event, "done", 0)),
            total=int(getattr(event, "total", total)) or None,
            rows=int(getattr(event, "rows", 0)),
            failed=int(getattr(event, "failed", 0)),
        )

    try:
        yield on_progress
    finally:
        if started:
            bar.stop()


def report_summary(out: Output, report: Any, top: int = 10) -> int:
    """The one-screen summary of a pipeline run; returns the exit code."""
    from ..sources import is_synthetic

    doc = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    source = doc.get("source")
    doc["synthetic"] = is_synthetic(source)
    if out.json:
        doc.pop("tickers", None)
        out.data(doc)
        return run_exit_code(doc)
    if not out.quiet:
        keys = ["total", "written", "unchanged", "failed", "skipped", "rows", "seconds"]
        rows = [(k, fmt_num(doc[k])) for k in keys if k in doc]
        run = f" (run {doc['run_id']})" if doc.get("run_id") else ""
        origin = f" from source {source!r}" if source else ""
        out.print(f"{doc.get('kind') or 'run'} into {doc.get('db', '')}{origin}{run}")
        out.print(table(None, ["", "n"], rows, header=False))
        if doc["synthetic"]:  # every time: made-up prices must never pass for real ones
            out.err.print(
                f"warning: the {source!r} source is synthetic: these bars are generated, not "
                f"real market prices (fetch real ones with --source yahoo, stooq, csv or "
                f"parquet)"
            )
    errors = dict(doc.get("errors") or {})
    if errors:
        shown = sorted(errors.items())[:top]
        lines = [f"  {t}: {' '.join(str(e).split())}" for t, e in shown]
        more = f"\n  … and {len(errors) - top} more" if len(errors) > top else ""
        out.err.print(f"{len(errors)} ticker(s) failed:\n" + "\n".join(lines) + more)
    if doc.get("source_down"):
        out.err.print(f"the source {doc.get('source')!r} was unreachable for every ticker")
    return run_exit_code(doc)


def fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_frame(df: pd.DataFrame, fmt: str, target: str | IO[str]) -> None:
    if fmt != "parquet":
        df = whole_counts(df)  # volume as integers, whatever else the result holds
    if fmt == "parquet":
        df.to_parquet(str(target), index=False)
    elif fmt == "csv" or fmt == "table":
        to_csv(df, target)  # formula cells neutralised for spreadsheets
    else:
        text = df.to_json(orient="records", date_format="iso", date_unit="s")
        if isinstance(target, str):
            Path(target).write_text(text + "\n", encoding="utf-8")
        else:
            target.write(text + "\n")


def stream_frames(
    frames: Iterable[pd.DataFrame], fmt: str, target: IO[str], *, empty: Callable[[], Any]
) -> None:
    """Write ``frames`` (pieces of one result, in order) to ``target`` as one CSV (one
    header) or one JSON array of records, each piece as it comes: the first rows are out
    before the later ones are read. ``empty()`` gives the result's columns when no piece
    comes (a CSV of no rows still has its header)."""
    first = True
    for df in frames:
        if fmt == "csv":
            to_csv(df, target, header=first)
        else:
            text = whole_counts(df).to_json(orient="records", date_format="iso", date_unit="s")
            target.write(("[" if first else ",") + text[1:-1])
        target.flush()
        first = False
    if first:
        write_frame(empty(), fmt, target)
    elif fmt == "json":
        target.write("]\n")


def print_frame(out: Output, df: pd.DataFrame, head: int = 25) -> None:
    import pandas as pd

    df = whole_counts(df)
    shown = df if len(df) <= 2 * head else None
    cols = list(df.columns)
    printed = df if shown is not None else pd.concat([df.head(head), df.tail(head)])
    cells = [column_cells(printed[c]) for c in cols]  # one format per column
    body = [list(r) for r in zip(*cells, strict=True)] if cols else []
    if shown is None:
        body = [*body[:head], ["…"] * len(cols), *body[head:]]
    out.print(table(None, cols, body))
    if shown is None:
        out.note(f"{len(df):,} rows; showing the first and last {head} (use --format csv)")


def column_cells(s: pd.Series) -> list[str]:
    """The cells of one column as text, all in the column's format: times shortened; a
    float column with whole values only as integers, else with two decimals; missing
    values empty."""
    import numpy as np

    if s.dtype.kind == "f":
        v = s.to_numpy()
        finite = v[np.isfinite(v)]
        spec = ".0f" if bool(np.all(finite == np.floor(finite))) else ".2f"
        return ["" if math.isnan(x) else format(x, spec) for x in v.tolist()]
    return [cell(x) for x in s.tolist()]


def cell(v: Any) -> str:
    if v is None or isnull(v):
        return ""
    if hasattr(v, "isoformat"):
        return short_time(v.isoformat())
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.2f}"
    return str(v)


def as_int(v: Any) -> int | None:
    return None if v is None or isnull(v) else int(v)
