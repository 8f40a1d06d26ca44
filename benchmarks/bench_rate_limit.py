"""How close to its rate limit does an HTTP source get, and does it ever exceed it?

Starts the local Yahoo-format test server (tests/helpers/http_server.py, in its own process so its
timestamps do not wait for this process's GIL) enforcing the same limit a
real API would (GCRA, R requests/second with a small burst for network jitter; excess
requests get 429 + Retry-After), then lets many threads fetch through ONE yahoo source with
``rate_limit=R`` for a while and measures, from the server's request timestamps:
achieved requests/second vs R, 429s caused, the most requests in any 1-second window and the
burst the server would have needed to accept every request.

    .venv/bin/python benchmarks/bench_rate_limit.py --rate 20 --threads 32 --seconds 10 \
        --write docs/benchmarks_sources.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import pickle
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.http_server import MarketServerProcess, max_in_window  # noqa: E402
from tickvault.errors import TransientSourceError  # noqa: E402
from tickvault.sources import RateLimit, RetryPolicy  # noqa: E402
from tickvault.sources.yahoo import YahooSource  # noqa: E402


def excess(times: list[float], rate: float) -> float:
    t = sorted(times)
    best, i = 0.0, 0
    for j in range(len(t)):  # O(n^2) worst case but n is small
        for k in range(i, j + 1):
            best = max(best, (j - k + 1) - rate * (t[j] - t[k]))
    return best


def hammer(source: YahooSource, threads: int, deadline: float, first: int = 0) -> int:
    """``threads`` threads fetching through ``source`` until ``deadline`` (monotonic, which
    is system-wide, so processes agree on it); returns the failed fetches."""
    failures = 0
    lock = threading.Lock()

    def worker(n: int) -> None:
        nonlocal failures
        i = 0
        while time.monotonic() < deadline:
            try:
                source.fetch(f"T{(n + i) % 8}", "2024-06-24", "2024-06-28")
            except TransientSourceError:
                with lock:
                    failures += 1
            i += 1

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(first, first + threads)))
    return failures


def _hammer_in_child(args: tuple[bytes, int, float, int]) -> int:
    blob, threads, deadline, first = args
    return hammer(pickle.loads(blob), threads, deadline, first)


def run(
    *,
    rate: float,
    client_rate: float | None,
    threads: int,
    seconds: float,
    server_burst: int,
    processes: int = 1,
) -> dict[str, Any]:
    server = MarketServerProcess(rate_limit=rate, burst=server_burst).start()
    source = YahooSource(
        base_url=server.base_url,
        rate_limit=None if client_rate is None else RateLimit(per_second=client_rate),
        http_retry=RetryPolicy(attempts=10, backoff=0.2, max_backoff=5),
    )
    source.fetch("WARM", "2024-06-24", "2024-06-28")  # client, connection pool, caches
    load_before = os.getloadavg()[0]
    if processes > 1:
        # one pickled copy of the source per process, threads // processes threads each;
        # the processes start (and warm up) before the clock, then all run to one deadline
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
            list(pool.map(abs, range(processes)))
            time.sleep(1.5)
            server.reset()
            deadline = time.monotonic() + seconds
            per = max(1, threads // processes)
            blob = pickle.dumps(source)
            jobs = [(blob, per, deadline, i * per) for i in range(processes)]
            failures = sum(pool.map(_hammer_in_child, jobs))
    else:
        time.sleep(1.5)
        server.reset()
        failures = hammer(source, threads, time.monotonic() + seconds)
    load_after = os.getloadavg()[0]
    requests = server.requests()
    server.stop()
    ok = sorted(r.at for r in requests if r.status == 200)
    every = sorted(r.at for r in requests)
    span = ok[-1] - ok[0] if len(ok) > 1 else float("nan")
    return {
        "client_rate": client_rate,
        "processes": processes,
        "threads": threads,
        "requests": len(every),
        "ok": len(ok),
        "achieved": (len(ok) - 1) / span,
        "r429": sum(1 for r in requests if r.status == 429),
        "failed": failures,
        "max_1s": max_in_window(every, 1.0),
        "needed_burst": excess(every, rate),
        "load": (load_before, load_after),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20.0, help="the limit, requests/second")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--server-burst", type=int, default=2, help="server's jitter allowance")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without a limit")
    ap.add_argument(
        "--processes",
        type=int,
        default=4,
        help="also run the threads spread over this many worker processes (0: skip)",
    )
    ap.add_argument("--write", type=Path, help="write a markdown report here")
    args = ap.parse_args()

    configs = [(args.rate, args.seconds, 1)]  # (client limit, seconds, processes)
    if args.processes > 1:
        configs.append((args.rate, args.seconds, args.processes))
    if not args.no_baseline:
        configs.append((None, min(args.seconds, 5.0), 1))
    runs = [
        run(
            rate=args.rate,
            client_rate=client_rate,
            threads=args.threads,
            seconds=seconds,
            server_burst=args.server_burst,
            processes=processes,
        )
        for client_rate, seconds, processes in configs
    ]
    header = (
        "| client rate_limit | workers | requests | 200s | achieved req/s | vs limit | 429s | "
        "max in any 1 s | burst needed | load avg |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in runs:
        limit = "none" if r["client_rate"] is None else f"{r['client_rate']:g}/s"
        vs = f"{100 * r['achieved'] / args.rate - 100:+.1f} %"
        workers = (
            f"{r['processes']} processes × {max(1, r['threads'] // r['processes'])} threads"
            if r["processes"] > 1
            else f"{r['threads']} threads"
        )
        lines.append(
            f"| {limit} | {workers} | {r['requests']} | {r['ok']} | {r['achieved']:.2f} | {vs} | "
            f"{r['r429']} | {r['max_1s']} | {r['needed_burst']:.2f} | "
            f"{r['load'][0]:.1f} → {r['load'][1]:.1f} |"
        )
    table = "\n".join(lines)
    print(
        f"server limit {args.rate:g} req/s (burst {args.server_burst}), "
        f"{args.threads} threads, {args.seconds:g} s"
    )
    print(table)
    if args.write:
        command = (
            f".venv/bin/python benchmarks/bench_rate_limit.py --rate {args.rate:g} "
            f"--threads {args.threads} --seconds {args.seconds:g} "
            f"--processes {args.processes} --write {args.write}"
        )
        args.write.write_text(
            "# Sources benchmark: HTTP rate limit\n\n"
            f"One `yahoo` source shared by {args.threads} threads fetching for "
            f"{args.seconds:g} s from the local Yahoo-format server "
            f"(`tests/helpers/http_server.py`), which enforces {args.rate:g} requests/second "
            f"(GCRA, burst {args.server_burst} to absorb arrival jitter) and answers "
            "429 + `Retry-After: 1` beyond it. All numbers come from the server's request "
            "timestamps. *burst needed* is the largest `count - rate x duration` over any run "
            "of consecutive requests: what the server had to tolerate.\n\n"
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; load average shown (the machine was shared).\n\n"
            f"{table}\n\n"
            "With processes, each worker process gets a pickled copy of the one source; "
            "they share its limit through the machine-wide bucket (a state file under "
            "`flock`), so together they stay at the limit instead of a multiple of it. "
            "The last row is the same workload without tickvault's rate limit, relying on "
            "`Retry-After` alone: the server has to throttle it.\n\n"
            f"Reproduce:\n\n```\n{command}\n```\n"
        )
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
