"""Slowing down token guessing: after a few wrong tokens, each further wrong try waits.

A wrong try is a request that carries a token which could have been right (an
``Authorization: Bearer`` value, the cookie, ``?token=``) and is not; a request with no
token at all (a browser's first visit) is not a guess. Each client address may make
:data:`FREE_PER_CLIENT` wrong tries a minute, and all clients together
:data:`FREE_OVERALL` (so changing addresses does not buy more); beyond that every wrong
try waits :data:`DELAY` seconds, one at a time, before its 401 — guessing runs at about one
try per second. A request with the right token never waits, so an attacker cannot lock
anyone out. Memory is bounded: at most :data:`MAX_CLIENTS` addresses are remembered.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque

__all__ = ["DELAY", "FREE_OVERALL", "FREE_PER_CLIENT", "WrongTokens"]

#: seconds in which wrong tries are counted
WINDOW = 60.0
#: wrong tries per client address per WINDOW that are answered at once
FREE_PER_CLIENT = 10
#: wrong tries of all clients together per WINDOW that are answered at once
FREE_OVERALL = 50
#: seconds each further wrong try waits, one at a time
DELAY = 1.0
#: client addresses remembered (the least recently seen are forgotten first)
MAX_CLIENTS = 10_000


class WrongTokens:
    """Counts wrong tokens per client address and slows those beyond the free ones."""

    def __init__(self) -> None:
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._overall: deque[float] = deque(maxlen=FREE_OVERALL + 1)
        self._queue: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _count(self, client: str, now: float) -> tuple[int, int]:
        """Record a wrong try; (tries of this client, tries overall) in the window."""
        tries = self._clients.pop(client, None) or deque(maxlen=FREE_PER_CLIENT + 1)
        tries.append(now)
        while tries[0] < now - WINDOW:
            tries.popleft()
        self._clients[client] = tries
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        self._overall.append(now)
        while self._overall[0] < now - WINDOW:
            self._overall.popleft()
        return len(tries), len(self._overall)

    async def wrong(self, client: str) -> None:
        """A wrong token from ``client``: returns at once while it is within the free
        tries, else after :data:`DELAY` seconds, behind every other slowed try."""
        mine, overall = self._count(client, time.monotonic())
        if mine <= FREE_PER_CLIENT and overall <= FREE_OVERALL:
            return
        loop = asyncio.get_running_loop()
        if self._queue is None or self._queue[0] is not loop:  # a lock serves one loop
            self._queue = (loop, asyncio.Lock())
        async with self._queue[1]:
            await asyncio.sleep(DELAY)
