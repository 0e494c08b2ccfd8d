"""One thread per process that cuts calls which outlast their deadline.

Outbound calls (a provider's answer, a PostgreSQL statement) block in a
receive that their own timeouts bound only per receive, or not at all. Each
such call arms the watchdog with its deadline and what to do then (shut its
socket down, which wakes the receive with an error), and disarms it when it
returns. A ``threading.Timer`` per call would do the same at the price of a
thread started per call (a few hundred microseconds); arming here is a heap
push under a lock.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

Action = Callable[[], None]

log = logging.getLogger(__name__)


def shut_down(sock: socket.socket) -> None:
    """The usual action: shut ``sock`` down, which wakes a receive blocked on
    it with an error (closing it from another thread would not)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Entry:
    __slots__ = ("action", "armed", "at", "order")

    def __init__(self, at: float, order: int, action: Action) -> None:
        self.at, self.order, self.action, self.armed = at, order, action, True

    def __lt__(self, other: _Entry) -> bool:
        return (self.at, self.order) < (other.at, other.order)


class Watchdog:
    """Runs each armed action at its deadline (``time.monotonic``), unless
    disarmed first. Its thread starts at the first arming in each process
    (a forked child starts its own)."""

    def __init__(self) -> None:
        self._pid = -1
        self._order = itertools.count()
        self._starting = threading.Lock()
        self._ready = threading.Condition()
        self._heap: list[_Entry] = []

    def _start(self) -> None:
        with self._starting:
            if self._pid == os.getpid():
                return
            # A forked child has the parent's heap but not its thread.
            self._ready = threading.Condition()
            self._heap = []
            thread = threading.Thread(
                target=self._run,
                args=(self._ready, self._heap),
                name="restauth-watchdog",
                daemon=True,
            )
            thread.start()
            self._pid = os.getpid()

    def arm(self, at: float, action: Action) -> Action:
        """Run ``action`` at ``at``; return what disarms it."""
        if self._pid != os.getpid():
            self._start()
        entry = _Entry(at, next(self._order), action)
        with self._ready:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # sooner than what the thread waits for
                self._ready.notify()

        def disarm() -> None:
            entry.armed = False

        return disarm

    @staticmethod
    def _run(ready: threading.Condition, heap: list[_Entry]) -> None:
        while True:
            due: list[_Entry] = []
            with ready:
                while heap and not heap[0].armed:
                    heapq.heappop(heap)
                if not heap:
                    ready.wait()
                    continue
                wait = heap[0].at - time.monotonic()
                if wait > 0:
                    ready.wait(wait)
                    continue
                due.append(heapq.heappop(heap))
            for entry in due:
                if entry.armed:
                    try:
                        entry.action()
                    except Exception:  # one action's failure must not stop the others
                        log.warning("watchdog action failed", exc_info=True)


#: The process's watchdog.
WATCHDOG = Watchdog()
