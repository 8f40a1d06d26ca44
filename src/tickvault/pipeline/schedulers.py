"""Where fetch tasks run: one small interface over local executors and dask.distributed.

Every runner offers :meth:`Runner.imap_unordered`, which keeps at most ``max_inflight`` tasks
submitted and yields each result as soon as it completes, so memory is bounded by the number
of tasks in flight, not by the number of tickers.

* ``"threads"`` — a :class:`~concurrent.futures.ThreadPoolExecutor` (I/O-bound APIs).
* ``"processes"`` — a :class:`~concurrent.futures.ProcessPoolExecutor` started with
  ``spawn`` (safe in multi-threaded parents; tasks and sources must pickle).
* ``"synchronous"`` — in the calling thread, one task at a time (debugging, profiling).
* ``"distributed"`` — a ``dask.distributed.LocalCluster`` for the run, closed after it.
* ``"tcp://host:port"`` (any address with ``://``) — a client to a running scheduler.
* a ``distributed.Client`` — used as is and left open.
"""

from __future__ import annotations

import abc
import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

SCHEDULERS = ("threads", "processes", "synchronous", "distributed")
DEFAULT_THREADS = 8

#: A finished task: (its arguments, its result or the exception it raised).
Done = tuple[tuple[Any, ...], Any, BaseException | None]


class Runner(abc.ABC):
    """Runs tasks somewhere; subclasses implement :meth:`imap_unordered`."""

    name = "runner"
    slots = 1  # tasks that can run at once

    @abc.abstractmethod
    def imap_unordered(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        max_inflight: int,
    ) -> Iterator[Done]:
        """Yield ``(args, result, error)`` for each task as it completes."""

    def close(self) -> None:  # noqa: B027 - optional hook: most runners hold nothing
        """Release what the runner holds (pools, clusters); nothing by default."""

    def check_sendable(self, obj: Any, what: str) -> None:  # noqa: B027 - optional hook
        """ConfigError if ``obj`` (``what``: "the source") cannot reach the workers: runners
        in other processes pickle it; threads take it as it is."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SynchronousRunner(Runner):
    name = "synchronous"

    def imap_unordered(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        max_inflight: int,
    ) -> Iterator[Done]:
        for args in tasks:
            try:
                yield args, fn(*args), None
            except Exception as exc:
                yield args, None, exc


class ExecutorRunner(Runner):
    """A ``concurrent.futures`` executor with a bounded number of submitted tasks."""

    def __init__(self, name: str, executor: Executor, slots: int) -> None:
        self.name = name
        self.executor = executor
        self.slots = slots

    def check_sendable(self, obj: Any, what: str) -> None:
        if isinstance(self.executor, ProcessPoolExecutor):
            _check_pickles(obj, what, self.name, pickle.dumps)

    def imap_unordered(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        max_inflight: int,
    ) -> Iterator[Done]:
        it = iter(tasks)
        pending: dict[Future[Any], tuple[Any, ...]] = {}

        def top_up() -> None:
            while len(pending) < max_inflight:
                args = next(it, None)
                if args is None:
                    return
                pending[self.executor.submit(fn, *args)] = args

        top_up()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    args = pending.pop(fut)
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        exc = BrokenProcessPool(f"{exc} {WORKER_DIED}")
                    yield args, (None if exc is not None else fut.result()), exc
                top_up()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class DistributedRunner(Runner):
    """Tasks on a ``dask.distributed`` cluster, streamed back with ``as_completed``."""

    def __init__(self, client: Any, *, cluster: Any = None, owns_client: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        self.name = "distributed" if cluster is not None else str(client.scheduler.address)
        try:
            self.slots = max(1, sum(client.nthreads().values()))
        except Exception:  # pragma: no cover - a scheduler without workers yet
            self.slots = 1

    def imap_unordered(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        max_inflight: int,
    ) -> Iterator[Done]:
        from distributed import as_completed

        it = iter(tasks)
        args_of: dict[str, tuple[Any, ...]] = {}
        ac = as_completed([], raise_errors=False)

        def submit_one() -> bool:
            args = next(it, None)
            if args is None:
                return False
            fut = self.client.submit(fn, *args, pure=False)
            args_of[fut.key] = args
            ac.add(fut)
            return True

        for _ in range(max_inflight):
            if not submit_one():
                break
        try:
            for fut in ac:
                args = args_of.pop(fut.key)
                try:
                    result, exc = fut.result(), None
                except Exception as e:  # the task raised, or its worker died
                    result, exc = None, e
                fut.release()
                yield args, result, exc
                submit_one()
        finally:
            ac.clear()

    def check_sendable(self, obj: Any, what: str) -> None:
        from distributed.protocol.pickle import dumps

        _check_pickles(obj, what, self.name, dumps)

    def close(self) -> None:
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


#: said with a worker process's abrupt end: what usually kills one at start
WORKER_DIED = (
    "(the worker's error is on stderr; usually the source cannot be loaded there: a "
    "function defined in a notebook or under `if __name__ == '__main__':` does not exist "
    "in a worker process. Define it at the top level of an importable module, or use "
    "scheduler='threads')"
)


def _check_pickles(obj: Any, what: str, runner: str, dumps: Callable[[Any], bytes]) -> None:
    try:
        dumps(obj)
    except Exception as exc:
        raise ConfigError(
            f"{what} cannot be sent to the worker processes of scheduler {runner!r} "
            f"({type(exc).__name__}: {exc}); define it (and what it uses) at the top level "
            f"of an importable module, or use scheduler='threads'"
        ) from exc


def check_workers(n_workers: Any) -> int | None:
    """``n_workers``: None (the scheduler's default) or a whole number >= 1."""
    if n_workers is None:
        return None
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigError(
            f"n_workers must be a whole number >= 1 (or None for the scheduler's default), "
            f"e.g. n_workers=8; got {n_workers!r}"
        )
    return n_workers


def scheduler_name(scheduler: Any) -> str:
    if isinstance(scheduler, str):
        return scheduler
    address = getattr(getattr(scheduler, "scheduler", None), "address", None)
    return f"client:{address}" if address else type(scheduler).__name__


def open_runner(
    scheduler: Any,
    n_workers: int | None = None,
    *,
    cluster_options: dict[str, Any] | None = None,
) -> Runner:
    """The runner for a ``scheduler=`` value (see the module docstring)."""
    n_workers = check_workers(n_workers)
    if isinstance(scheduler, str):
        s = scheduler.strip().lower()
        if s == "threads" or s == "threading":
            n = n_workers or DEFAULT_THREADS
            ex = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tickvault-fetch")
            return ExecutorRunner("threads", ex, n)
        if s in ("processes", "multiprocessing"):
            n = n_workers or os.cpu_count() or 2
            ctx = multiprocessing.get_context("spawn")
            return ExecutorRunner("processes", ProcessPoolExecutor(n, mp_context=ctx), n)
        if s in ("synchronous", "sync", "single-threaded"):
            return SynchronousRunner()
        if s == "distributed":
            from distributed import Client, LocalCluster

            opts: dict[str, Any] = {
                "n_workers": n_workers or min(4, os.cpu_count() or 2),
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
                "silence_logs": logging.ERROR,
            }
            opts.update(cluster_options or {})
            cluster = LocalCluster(**opts)
            try:
                client = Client(cluster)
            except BaseException:
                cluster.close()
                raise
            return DistributedRunner(client, cluster=cluster, owns_client=True)
        if "://" in s:
            from distributed import Client

            return DistributedRunner(Client(scheduler.strip()), owns_client=True)
        raise ConfigError(
            f"unknown scheduler {scheduler!r}; use one of {list(SCHEDULERS)}, a scheduler "
            f"address like 'tcp://127.0.0.1:8786', or a distributed.Client"
        )
    from distributed import Client

    if isinstance(scheduler, Client):
        return DistributedRunner(scheduler)
    raise ConfigError(
        f"scheduler must be a name, an address or a distributed.Client, got {scheduler!r}"
    )
