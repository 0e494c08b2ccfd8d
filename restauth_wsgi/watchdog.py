"""One thread per process that cuts calls which outlast their deadline.

Outbound calls (a provider's answer, a PostgreSQL statement, a shared
cache's reply) block in a receive that their own timeouts bound only per
receive, or not at all. Each such call arms the watchdog with its deadline
and what to do then (shut its socket down, which wakes the receive with an
error), and disarms it when it returns. A ``threading.Timer`` per call would
do the same at the price of a thread started per call (a few hundred
microseconds); arming here is a heap push under a lock.
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
import weakref
from collections.abc import Callable
from functools import partial

Action = Callable[[], None]

log = logging.getLogger(__name__)

_ARMED, _DISARMED, _FIRED = 0, 1, 2

# Disarmed entries wait in the heap until their deadline comes up; once they
# are more than half of it (and more than this many), the heap is rebuilt
# without them, so that a busy process with long timeouts does not hold a
# deadline's worth of finished calls.
_COMPACT_AFTER = 64


def shut_down(sock: socket.socket) -> None:
    """The usual action: shut ``sock`` down, which wakes a receive blocked on
    it with an error (closing it from another thread would not)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Entry:
    __slots__ = ("action", "at", "order", "state")

    def __init__(self, at: float, order: int, action: Action) -> None:
        self.at, self.order, self.action, self.state = at, order, action, _ARMED

    def __lt__(self, other: _Entry) -> bool:
        return (self.at, self.order) < (other.at, other.order)


class _Heap:
    """What the thread and the callers share: the entries, and two locks.

    ``ready`` guards the heap and every entry's state; ``firing`` is held
    while due actions run, so that a disarm that comes too late can wait
    for its action to have run before its caller closes what the action
    touches.
    """

    __slots__ = ("dead", "entries", "firing", "ready")

    def __init__(self) -> None:
        self.ready = threading.Condition()
        self.firing = threading.Lock()
        self.entries: list[_Entry] = []
        self.dead = 0  # disarmed entries still in ``entries``

    def renew_locks(self) -> None:
        # In a forked child: a lock another thread of the parent held at the
        # fork would stay held for ever.
        self.ready = threading.Condition()
        self.firing = threading.Lock()


class Watchdog:
    """Runs each armed action at its deadline (``time.monotonic``), unless
    disarmed first. Its thread starts at the first arming in each process
    (a forked child starts its own)."""

    def __init__(self) -> None:
        self._pid = -1
        self._order = itertools.count()
        self._starting = threading.Lock()
        self._heap = _Heap()
        # Held weakly, so that a watchdog made in a test can go.
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(me))

    def _forget_parent(self) -> None:
        self._starting = threading.Lock()
        self._heap.renew_locks()  # for disarms of calls the fork copied
        self._pid = -1

    def _start(self) -> None:
        with self._starting:
            if self._pid == os.getpid():
                return
            heap = _Heap()
            thread = threading.Thread(
                target=_run, args=(heap,), name="restauth-watchdog", daemon=True
            )
            thread.start()
            self._heap, self._pid = heap, os.getpid()

    def arm(self, at: float, action: Action) -> Callable[[], bool]:
        """Run ``action`` at ``at``; return what disarms it.

        The disarm returns ``True`` when it came too late: the action has
        run (it waits for a running one to finish), so whatever it cut, a
        pooled connection say, must not be used again. Disarming twice is
        harmless. An action must be quick and must not disarm anything
        (the thread runs actions one at a time, holding the lock a late
        disarm waits for).
        """
        if self._pid != os.getpid():
            self._start()
        heap = self._heap
        entry = _Entry(at, next(self._order), action)
        with heap.ready:
            heapq.heappush(heap.entries, entry)
            if heap.entries[0] is entry:  # sooner than what the thread waits for
                heap.ready.notify()

        def disarm() -> bool:
            with heap.ready:
                if entry.state == _ARMED:
                    entry.state = _DISARMED
                    heap.dead += 1
                    if heap.dead > _COMPACT_AFTER and heap.dead * 2 > len(heap.entries):
                        heap.entries[:] = [e for e in heap.entries if e.state == _ARMED]
                        heapq.heapify(heap.entries)
                        heap.dead = 0
                    return False
                if entry.state == _DISARMED:  # disarmed before: nothing ran
                    return False
            # Fired: the thread took ``firing`` before marking it, under
            # ``ready``; once we hold ``firing`` the action has run.
            with heap.firing:
                return True

        return disarm


def _after_fork(ref: weakref.ref[Watchdog]) -> None:
    watchdog = ref()
    if watchdog is not None:
        watchdog._forget_parent()


def _run(heap: _Heap) -> None:
    while True:
        with heap.ready:
            while heap.entries and heap.entries[0].state != _ARMED:
                heapq.heappop(heap.entries)
                heap.dead -= 1
            if not heap.entries:
                heap.ready.wait()
                continue
            wait = heap.entries[0].at - time.monotonic()
            if wait > 0:
                heap.ready.wait(wait)
                continue
            due = heapq.heappop(heap.entries)
            due.state = _FIRED
            heap.firing.acquire()
        try:
            due.action()
        except Exception:  # one action's failure must not stop the others
            log.warning("watchdog action failed", exc_info=True)
        finally:
            heap.firing.release()


#: The process's watchdog.
WATCHDOG = Watchdog()


def watch_socket(fileno: int, at: float) -> Callable[[], bool]:
    """Shut the socket ``fileno`` down at ``at`` (``time.monotonic``) unless
    stopped first; return what stops the watch, which says ``True`` when the
    socket was cut (its connection must not serve again).

    The watchdog holds a socket of its own on the descriptor: it never shuts
    down a number that the owner closed and the system reused, and never
    touches a TLS object a thread is reading inside.
    """
    sock = socket.socket(fileno=os.dup(fileno))
    disarm = WATCHDOG.arm(at, partial(shut_down, sock))

    def stop() -> bool:
        cut = disarm()
        sock.close()
        return cut

    return stop
