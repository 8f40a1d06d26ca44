"""What a pipeline run reports: per ticker, in total, and as progress while it runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TickerResult:
    """What happened to one ticker. ``status``: ``written`` (rows committed), ``unchanged``
    (fetched, nothing new to write: an empty answer, or every bar already stored
    identically), ``failed`` (gave up after the retries), ``skipped`` (not fetched because
    an earlier run already committed it: resume), or ``pending`` while the run goes on."""

    ticker: str
    status: str = "pending"
    rows: int = 0  # rows committed for this ticker by this run
    fetched: int = 0  # rows the source returned
    attempts: int = 0  # fetch attempts made (1 = no retry)
    error: str | None = None  # "ErrorClass: message" when failed
    error_type: str | None = None
    seconds: float = 0.0  # time spent fetching (all attempts, including backoff)
    version: int | None = None  # the commit that published its rows
    source: str | None = None  # where it was fetched from: "yahoo", "csv (path=/data)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """A progress event, passed to ``on_progress`` after every ticker and every commit.

    ``done`` counts finished tickers (written, unchanged, failed or skipped, including ones
    whose rows are still waiting in the writer's batch) out of ``total``; ``rows`` counts
    rows committed so far, ``fetched_rows`` rows received; ``rate`` is finished tickers per
    second since the start; ``ticker``/``status`` describe the event (``status`` is
    ``"commit"`` after a commit, with ``ticker=None``).
    """

    done: int
    total: int
    written: int
    failed: int
    skipped: int
    rows: int
    fetched_rows: int
    seconds: float
    rate: float
    ticker: str | None = None
    status: str | None = None
    version: int | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


#: The keys of a report (``report[key]``, ``dict(report)``, ``report.to_dict()``).
KEYS = (
    "run_id",
    "kind",
    "status",
    "source",
    "scheduler",
    "db",
    "parallel_write",
    "start",
    "end",
    "started",
    "finished",
    "seconds",
    "total",
    "written",
    "unchanged",
    "failed",
    "skipped",
    "rows",
    "fetched_rows",
    "attempts",
    "retries",
    "errors",
    "source_down",
    "versions",
    "commits",
    "verify",
    "tickers",
)


#: error types that mean the source (not the ticker) failed
OUTAGE_ERRORS = frozenset({"SourceUnavailable", "RateLimited", "TransientSourceError"})


@dataclass(eq=False)
class RunReport(Mapping[str, Any]):
    """The result of :func:`~tickvault.pipeline.fetch_and_write` / :func:`update`.

    Dict-compatible with the original two-phase pattern: ``report["total"]``,
    ``report["written"]``, ``report["failed"]``, ``report["errors"]`` ({ticker:
    "ErrorClass: message"}), ``dict(report)``, ``report.to_dict()`` (JSON-ready; this is what
    is stored in the database's run history). Keys: see :data:`KEYS`.
    """

    run_id: str
    kind: str  # "backfill" | "update"
    source: str
    scheduler: str
    db: str
    parallel_write: bool = False
    start: str | None = None
    end: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float = 0.0
    versions: list[int] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    results: dict[str, TickerResult] = field(default_factory=dict)
    #: "finished", or "interrupted" (Ctrl-C / SIGTERM: the commits made before it stay)
    status: str = "finished"

    # -- counts ----------------------------------------------------------------------------

    def _count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def written(self) -> int:
        return self._count("written")

    @property
    def unchanged(self) -> int:
        return self._count("unchanged")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def rows(self) -> int:
        """Rows committed by this run."""
        return sum(r.rows for r in self.results.values())

    @property
    def fetched_rows(self) -> int:
        return sum(r.fetched for r in self.results.values())

    @property
    def attempts(self) -> int:
        return sum(r.attempts for r in self.results.values())

    @property
    def retries(self) -> int:
        return sum(max(0, r.attempts - 1) for r in self.results.values())

    @property
    def errors(self) -> dict[str, str]:
        return {t: r.error or "" for t, r in self.results.items() if r.status == "failed"}

    @property
    def source_down(self) -> bool:
        """The source itself was unreachable: every ticker the run fetched failed with an
        outage error (``SourceUnavailable``/``RateLimited`` after the retries) — an outage,
        not a few bad tickers."""
        tried = [r for r in self.results.values() if r.status != "skipped"]
        return bool(tried) and all(
            r.status == "failed" and r.error_type in OUTAGE_ERRORS for r in tried
        )

    @property
    def commits(self) -> int:
        return len(self.versions)

    @property
    def ok(self) -> bool:
        """No ticker failed and every committed file opened."""
        return self.failed == 0 and bool(self.verify.get("ok", True))

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(key)
        if key == "tickers":
            return {t: r.to_dict() for t, r in self.results.items()}
        value = getattr(self, key)
        return list(value) if key == "versions" else value

    def __iter__(self) -> Iterator[str]:
        return iter(KEYS)

    def __len__(self) -> int:
        return len(KEYS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every key (stored by ``db.record_run``)."""
        return {k: self[k] for k in KEYS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunReport:
        """Rebuild a report from :meth:`to_dict` output (e.g. one of ``db.runs()``)."""
        results = {
            t: TickerResult(
                **{k: v for k, v in r.items() if k in TickerResult.__dataclass_fields__}
            )
            for t, r in dict(d.get("tickers") or {}).items()
        }
        return cls(
            run_id=str(d.get("run_id", "")),
            kind=str(d.get("kind", "")),
            source=str(d.get("source", "")),
            scheduler=str(d.get("scheduler", "")),
            db=str(d.get("db", "")),
            parallel_write=bool(d.get("parallel_write", False)),
            start=d.get("start"),
            end=d.get("end"),
            started=d.get("started"),
            finished=d.get("finished"),
            seconds=float(d.get("seconds", 0.0)),
            versions=list(d.get("versions") or []),
            verify=dict(d.get("verify") or {}),
            results=results,
            status=str(d.get("status") or "finished"),
        )

    def __repr__(self) -> str:
        return (
            f"RunReport({self.kind} from {self.source!r}: total={self.total}, "
            f"written={self.written}, unchanged={self.unchanged}, failed={self.failed}, "
            f"skipped={self.skipped}, rows={self.rows}, seconds={self.seconds:.2f})"
        )


def run_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The headline of a stored run record (one of ``db.runs()``): who/when/what and the
    counts, with types fixed and defaults for records written by older versions or by
    other code. The per-ticker results are left out (``ticker_count`` says how many)."""
    errors = record.get("errors") or {}
    if not isinstance(errors, Mapping):
        errors = {"?": str(errors)}
    tickers = record.get("tickers")
    count = len(tickers) if isinstance(tickers, Mapping | list) else None
    failed = record.get("failed")
    return {
        "run_id": record.get("run_id"),
        "kind": record.get("kind"),
        "status": str(record.get("status") or "finished"),
        "source": record.get("source"),
        "started": record.get("started"),
        "finished": record.get("finished"),
        "total": int(record.get("total") or count or 0),
        "written": int(record.get("written") or 0),
        "failed": int(failed if failed is not None else len(errors)),
        "rows": int(record.get("rows") or 0),
        "seconds": float(record.get("seconds") or 0.0),
        "ticker_count": count,
        "errors": {str(k): str(v) for k, v in errors.items()},
    }
