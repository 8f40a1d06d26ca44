"""A real HTTP server on 127.0.0.1 that speaks the Yahoo chart and Stooq CSV formats.

Use the ``market_server`` fixture (tests/conftest.py) or the :class:`MarketServer`
directly (the rate-limit benchmark does). Bars come from the demo
source, so expected rows are easy to compute.

Scripted behaviours per ticker (consumed one per request, then normal data is served)::

    server.script("AAPL", Reply(status=500), Reply(status=429, headers={"Retry-After": "1"}))
    server.script("SLOW", Reply(delay=2.0))          # a slow response (to hit timeouts)
    server.script("BAD", Reply(body=b"{not json"))   # malformed body, status 200

Built-in tickers: ``NOPE*`` unknown (Yahoo 404 ``chart.error`` Not Found / Stooq ``No data``),
``EMPTY`` a known symbol with no bars, ``NULLS`` with null bars, ``*.NZ`` on the New
Zealand exchange (sessions open at 10:00 Auckland, 22:00 UTC the previous day), and
``RECORDED`` tickers (``ACME``: a chart v8 response with two dividends and a 4-for-1 split,
``tests/data/yahoo_chart_ACME.json``) answered with their recorded Yahoo body.
``rate_limit=`` makes the server answer 429 with Retry-After when clients exceed it. Every
request is recorded with its server-side monotonic arrival time.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import multiprocessing
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault.sources import DemoSource

AS_OF = "2024-06-28"
DATA = Path(__file__).resolve().parent.parent / "data"
#: tickers whose Yahoo answer is a recorded chart v8 body
RECORDED = {"ACME": DATA / "yahoo_chart_ACME.json"}
_TZ = {"NYSE": ("America/New_York", "09:30"), "NZX": ("Pacific/Auckland", "10:00")}


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted answer: ``status``, extra ``headers``, a ``body`` (None: normal data)
    and a ``delay`` in seconds before answering."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() on arrival
    api: str  # "yahoo" | "stooq" | "other"
    ticker: str
    status: int
    params: dict[str, str]


class MarketServer:
    def __init__(self, *, rate_limit: float | None = None, burst: int = 2) -> None:
        self.demo = DemoSource(as_of=AS_OF)
        self.requests: list[Request] = []
        self.scripts: dict[str, collections.deque[Reply]] = {}
        self.lock = threading.Lock()
        self.rate_limit = rate_limit
        self.burst = burst
        self._tat = float("-inf")
        self._bodies: dict[tuple[Any, ...], tuple[int, bytes]] = {}
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.market = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MarketServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def script(self, ticker: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts.setdefault(ticker, collections.deque()).extend(replies)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.scripts.clear()

    def times(self, ticker: str | None = None) -> list[float]:
        with self.lock:
            return [r.at for r in self.requests if ticker is None or r.ticker == ticker]

    def count(self, ticker: str | None = None, status: int | None = None) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (ticker is None or r.ticker == ticker) and (status is None or r.status == status)
            )

    # -- server-side rate limit (GCRA, like a real API's) ---------------------------------

    def _over_limit(self, now: float) -> bool:
        if self.rate_limit is None:
            return False
        interval = 1.0 / self.rate_limit
        tat = max(self._tat, now)
        if now < tat - (self.burst - 1) * interval:
            return True
        self._tat = tat + interval
        return False

    # -- responses --------------------------------------------------------------------------

    def answer(self, api: str, ticker: str, params: dict[str, str]) -> tuple[Reply, str]:
        now = time.monotonic()
        with self.lock:
            if self._over_limit(now):
                reply = Reply(status=429, headers={"Retry-After": "1"}, body=b"Too Many Requests")
            else:
                queue = self.scripts.get(ticker)
                reply = queue.popleft() if queue else Reply()
            self.requests.append(Request(now, api, ticker, reply.status, params))
        return reply, ticker

    def bars(self, ticker: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        if ticker == "EMPTY":
            return self.demo.fetch(ticker, "1990-01-01", "1990-01-02")
        return self.demo.fetch(ticker, start, end)

    def body(self, api: str, ticker: str, params: dict[str, str]) -> tuple[int, bytes]:
        """The normal answer (cached: the same request always gets the same bytes)."""
        key = (api, ticker, tuple(sorted(params.items())))
        with self.lock:
            cached = self._bodies.get(key)
        if cached is None:
            make = self.yahoo_body if api == "yahoo" else self.stooq_body
            cached = make(ticker, params)
            with self.lock:
                self._bodies[key] = cached
        return cached

    def yahoo_body(self, ticker: str, params: dict[str, str]) -> tuple[int, bytes]:
        if ticker.startswith("NOPE"):
            error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
            return 404, json.dumps({"chart": {"result": None, "error": error}}).encode()
        if ticker in RECORDED:
            return 200, RECORDED[ticker].read_bytes()
        p1, p2 = int(params.get("period1", 0)), int(params.get("period2", 2**31))
        if params.get("interval", "1d") != "1d":
            return self.yahoo_intraday(ticker, params["interval"], p1, p2)
        start = pd.Timestamp(max(p1, 0) - 86400 * 2, unit="s", tz="UTC")
        end = pd.Timestamp(p2 + 86400 * 2, unit="s", tz="UTC")
        df = self.bars(ticker, start, end)
        tz, opening = _TZ["NZX" if ticker.endswith(".NZ") else "NYSE"]
        local = pd.to_datetime(
            df["timestamp"].dt.strftime("%Y-%m-%d") + " " + opening
        ).dt.tz_localize(tz)
        epochs = local.dt.as_unit("s").astype("int64").to_numpy()
        keep = (epochs >= p1) & (epochs < p2)
        df, epochs = df[keep].reset_index(drop=True), epochs[keep]
        quote: dict[str, list[Any]] = {c: df[c].tolist() for c in ("open", "high", "low", "close")}
        quote["volume"] = df["volume"].astype("int64").tolist()
        adj = (df["close"] * 0.99).round(4).tolist()
        if ticker == "NULLS":
            for i in range(1, len(epochs), 3):  # every third bar is a null (holiday) bar
                for values in (*quote.values(), adj):
                    values[i] = None
        gmtoffset = int(local.iloc[0].utcoffset().total_seconds()) if len(local) else -14400
        result: dict[str, Any] = {
            "meta": {
                "currency": "USD",
                "symbol": ticker,
                "exchangeName": "NZE" if ticker.endswith(".NZ") else "NMS",
                "instrumentType": "EQUITY",
                "gmtoffset": gmtoffset,
                "timezone": "NZST" if ticker.endswith(".NZ") else "EDT",
                "exchangeTimezoneName": tz,
                "dataGranularity": "1d",
                "range": "",
            },
            "indicators": {"quote": [{}]},
        }
        if len(epochs):
            result["timestamp"] = [int(e) for e in epochs]
            result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": adj}]}
        return 200, json.dumps({"chart": {"result": [result], "error": None}}).encode()

    def yahoo_intraday(self, ticker: str, interval: str, p1: int, p2: int) -> tuple[int, bytes]:
        """Intraday bars (the demo's, up to the real now) like Yahoo serves them: only within
        its history limit and span per request (else 422 with Yahoo's message), with the
        live bar appended stamped with the current second."""
        ours = {"60m": "1h"}.get(interval, interval)
        days = {"1m": 30, "1h": 730}.get(ours, 60)
        span = 8 if ours == "1m" else days
        now = int(time.time())
        if p1 < now - days * 86400 or p2 - p1 > span * 86400 + 120:
            error = {
                "code": "Unprocessable Entity",
                "description": f"{interval} data not available for startTime={p1} and "
                f"endTime={p2}. The requested range must be within the last {days} days.",
            }
            return 422, json.dumps({"chart": {"result": None, "error": error}}).encode()
        start = pd.Timestamp(p1, unit="s", tz="UTC")
        end = pd.Timestamp(p2 - 1, unit="s", tz="UTC")
        df = DemoSource(interval=ours).fetch(ticker, start, end)
        epochs = (df["timestamp"].astype("int64") // 10**9).tolist()
        quote: dict[str, list[Any]] = {c: df[c].tolist() for c in ("open", "high", "low", "close")}
        quote["volume"] = df["volume"].astype("int64").tolist()
        if len(epochs) and p2 >= now:  # the live bar: stamped now, off the grid
            epochs.append(now if now % 60 else now + 1)
            for c in quote:
                quote[c].append(quote[c][-1])
        result: dict[str, Any] = {
            "meta": {
                "symbol": ticker,
                "exchangeTimezoneName": "America/New_York",
                "gmtoffset": -14400,
                "dataGranularity": interval,
            },
            "indicators": {"quote": [quote]},
        }
        if epochs:
            result["timestamp"] = epochs
        return 200, json.dumps({"chart": {"result": [result], "error": None}}).encode()

    def stooq_body(self, ticker: str, params: dict[str, str]) -> tuple[int, bytes]:
        if ticker.lower().startswith("nope"):
            return 200, b"No data"
        start = pd.Timestamp(params.get("d1", "19000101"), tz="UTC")
        end = pd.Timestamp(params.get("d2", "20991231"), tz="UTC")
        df = self.bars(ticker.upper(), start, end)
        if df.empty:
            return 200, b"No data"
        out = pd.DataFrame(
            {
                "Date": df["timestamp"].dt.strftime("%Y-%m-%d"),
                "Open": df["open"],
                "High": df["high"],
                "Low": df["low"],
                "Close": df["close"],
                "Volume": df["volume"].astype("int64"),
            }
        )
        return 200, out.to_csv(index=False, lineterminator="\r\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    market: MarketServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out close the connection mid-answer; that is the point


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        market = self.server.market
        if url.path.startswith("/v8/finance/chart/"):
            api, ticker = "yahoo", urllib.parse.unquote(url.path.rsplit("/", 1)[1])
        elif url.path.rstrip("/") == "/q/d/l":
            api, ticker = "stooq", params.get("s", "")
        elif url.path == "/_log":  # the request log, for a server in another process
            with market.lock:
                log = [dataclasses.asdict(r) for r in market.requests]
            self._send(200, "application/json", json.dumps(log).encode(), {})
            return
        elif url.path == "/_reset":
            market.reset()
            self._send(200, "text/plain", b"ok", {})
            return
        else:
            api, ticker = "other", ""
        reply, _ = market.answer(api, ticker, params)
        if reply.delay:
            time.sleep(reply.delay)
        status, body = reply.status, reply.body
        ctype = "application/json" if api == "yahoo" else "text/csv"
        if body is None and status != 200:
            body = f"HTTP {status}".encode()
        elif body is None:
            if api in ("yahoo", "stooq"):
                status, body = market.body(api, ticker, params)
            else:
                status, body = 404, b"not found"
        self._send(status, ctype, body, reply.headers)

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class MarketServerProcess:
    """A :class:`MarketServer` in its own process, so its request timestamps do not wait
    for the GIL of the process under test (used to measure rate limits precisely)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.base_url = ""

    def start(self) -> MarketServerProcess:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.options), daemon=True)
        self._proc.start()
        self.base_url = self._conn.recv()
        return self

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        self._conn.close()

    def requests(self) -> list[Request]:
        with urllib.request.urlopen(self.base_url + "/_log") as response:
            return [Request(**r) for r in json.loads(response.read())]

    def reset(self) -> None:
        with urllib.request.urlopen(self.base_url + "/_reset") as response:
            response.read()

    def times(self) -> list[float]:
        return [r.at for r in self.requests()]

    def count(self, status: int | None = None) -> int:
        return sum(1 for r in self.requests() if status is None or r.status == status)


def _serve(conn: Any, options: dict[str, Any]) -> None:
    server = MarketServer(**options).start()
    conn.send(server.base_url)
    conn.recv()
    server.stop()


def gaps(times: list[float]) -> list[float]:
    """Seconds between consecutive request times."""
    return [float(b - a) for a, b in itertools.pairwise(times)]


def max_in_window(times: list[float], window: float) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    t = np.sort(np.asarray(times))
    ends = np.searchsorted(t, t + window, side="left")
    return int((ends - np.arange(len(t))).max()) if len(t) else 0
