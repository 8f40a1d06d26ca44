"""What cannot reach worker processes is said before anything is fetched, and a worker
that dies at start says the usual cause: sources in notebooks or under the ``__main__``
guard, and ``n_workers`` values that are no number of workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tickvault import ParquetDB, fetch_and_write
from tickvault.errors import ConfigError


@pytest.mark.parametrize("n", [0, -2, 2.5, True, "4"])
def test_n_workers_must_be_a_number_of_workers(tmp_path: Path, n: object) -> None:
    with pytest.raises(ConfigError, match=r"n_workers must be a whole number >= 1.*n_workers=8"):
        fetch_and_write(["AAA"], "demo", tmp_path / "db", n_workers=n)  # type: ignore[arg-type]
    assert not (tmp_path / "db" / "prices").exists()


class Locked:
    """A fetch callable holding a lock: it cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, ticker, start, end):  # pragma: no cover - never reached
        raise AssertionError("not called")


def test_a_source_that_cannot_be_pickled_is_refused_before_fetching(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ConfigError, match=r"cannot be sent to the worker processes.*'threads'"):
        fetch_and_write(["AAA"], Locked(), db, scheduler="processes", n_workers=1)
    assert db.version == -1 and db.runs() == []  # nothing written, no run recorded
    report = fetch_and_write(["AAA"], lambda t, s, e: None, db, scheduler="threads")
    assert report["total"] == 1  # threads take any callable


def test_a_source_under_the_main_guard_says_why_its_workers_died(tmp_path: Path) -> None:
    """A script whose fetch function is defined under ``if __name__ == '__main__':`` pickles
    by name but does not exist in a spawned worker: each ticker's error says so."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from tickvault import fetch_and_write
            from tickvault.sources import get_source

            if __name__ == "__main__":
                demo = get_source("demo")

                def my_fetch(t, s, e):
                    return demo.fetch(t, s, e)

                r = fetch_and_write(["AAA", "BBB"], my_fetch, {str(tmp_path / "db")!r},
                                    start="2024-06-03", end="2024-06-07",
                                    scheduler="processes", n_workers=1)
                print(r["failed"])
                print(r["errors"]["AAA"])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    failed, error = done.stdout.strip().splitlines()[-2:]
    assert failed == "2"
    assert "BrokenProcessPool" in error and "if __name__ == '__main__':" in error, error
    assert "scheduler='threads'" in error
