"""An interrupted run records exactly what it committed: a second Ctrl-C while the run
waited for its writer thread left that thread committing batches after the run was
recorded, so the run history missed versions the database held (new-user trial).
``Writer.abort`` lets the commit in progress end, discards the queued batch and returns
only once the thread has stopped."""

from __future__ import annotations

import threading

from tickvault.pipeline.writer import Batch, Writer
from tickvault.storage import FileInfo


def info(name: str) -> FileInfo:
    return FileInfo(
        path=name, rows=1, bytes=1, seq=-1, seq_col=False, level=0, tickers=[],
        min_ts=[], max_ts=[], ticker_rows=[],
    )  # fmt: skip


def test_abort_ends_the_commit_in_progress_and_discards_the_queued_batch():
    started, release = threading.Event(), threading.Event()
    committed: list[str] = []
    discarded: list[str] = []

    def commit(batch: Batch) -> None:
        started.set()
        assert release.wait(10)
        committed.append(batch.files[0].path)

    writer = Writer(commit, lambda files: discarded.extend(f.path for f in files))
    writer.put(Batch(files=[info("first")]))
    assert started.wait(10)  # the first batch is being committed
    writer.put(Batch(files=[info("second")]))  # queued behind it
    done = threading.Event()
    aborter = threading.Thread(target=lambda: (writer.abort(), done.set()))
    aborter.start()
    assert not done.wait(0.5)  # waits for the commit in progress...
    release.set()
    assert done.wait(10)  # ...and returns once the thread has ended
    aborter.join()
    assert committed == ["first"] and discarded == ["second"]
    assert not writer.thread.is_alive()


def test_abort_of_an_idle_writer_returns_at_once():
    writer = Writer(lambda batch: None, lambda files: None)
    writer.abort()
    assert not writer.thread.is_alive() and writer.aborted
