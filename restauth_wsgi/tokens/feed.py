"""The change feed: how every process learns, within a fraction of a second,
that the token store changed, so that it can keep the API tokens it has
checked and still refuse a revoked one promptly.

The store keeps a change counter that its triggers bump whenever a token is
created, revoked, changed or deleted, by any writer (``restauth token
revoke``, an older release, plain SQL), and not when a last-used time is
recorded. One thread per process polls it every :data:`POLL_SECONDS`, and
each time the counter reads differently (up, or down after a restore from a
backup) the feed starts a new *epoch*: an object of this process alone. A
request's answer is remembered under the epoch it was read in
(:meth:`ChangeFeed.current`), and stands only while that epoch lasts; a
counter that comes back to an earlier value later never revives an answer.

It fails closed on the feed, never on the user: when the last successful poll
is older than :data:`STALE_SECONDS` (the store is unreachable, the thread is
behind), :meth:`~ChangeFeed.current` is ``None`` and every request reads the
store again until the feed catches up. A revocation is therefore seen by every
process within ``POLL_SECONDS + STALE_SECONDS`` at worst (under a second), and
usually within one poll. A poll also fails when the store's triggers are
missing or disabled, or its counter row is gone (see the stores'
``generation()``). After a fork the child starts its own thread and its own
epochs, so nothing its parent remembered matches them.

The same thread records last-used times, at most one write per token per
``LAST_USED_INTERVAL``, off the request path.

Why polling rather than PostgreSQL's ``LISTEN``/``NOTIFY``: it is the same
for SQLite and PostgreSQL, it detects a dead connection by itself (a poll
fails), and ten trivial reads a second per process are nothing to either.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable

from restauth_wsgi import fork_safety
from restauth_wsgi.tokens.store import TokenStore

log = logging.getLogger(__name__)

# Freshness is measured on a clock that keeps counting while the machine is
# suspended (Linux's CLOCK_BOOTTIME): after a resume, a poll from before the
# suspend is as old as it really is. Elsewhere, the monotonic clock.
# A partial of the C function, not a Python function around it: it is read
# on every request that an answer is recalled for.
_boot_clock: Callable[[], float]
if hasattr(time, "CLOCK_BOOTTIME"):
    _boot_clock = functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
else:  # pragma: no cover - not Linux
    _boot_clock = time.monotonic

#: How often each process reads the change counter.
POLL_SECONDS = 0.1
#: How old the last successful poll may be before the feed vouches for nothing.
STALE_SECONDS = 0.5
#: A token's last-used time is written at most this often (seconds).
LAST_USED_INTERVAL = 60


class _Process:
    """The feed's state in one process (a forked child makes its own)."""

    def __init__(self) -> None:
        # (epoch, time it was read): one attribute, so a request never sees
        # an epoch with another poll's time.
        self.seen: tuple[object, float] | None = None
        # The store's change mark as last read, and the epoch it began.
        self.mark: Hashable = None
        self.epoch: object = object()
        self.pending: dict[str, int] = {}  # token id -> time of the latest use
        self.written: dict[str, int] = {}  # token id -> last-used time written
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None


class ChangeFeed:
    """One store's change counter, as this process last saw it.

    :param store: the token store (its ``generation()`` and ``touch()``).
    :param poll: seconds between polls; :param stale: how old a poll may be.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        poll: float = POLL_SECONDS,
        stale: float = STALE_SECONDS,
        clock: Callable[[], float] = _boot_clock,
    ) -> None:
        self.store = store
        self.poll = poll
        self.stale = stale
        self._clock = clock
        self._lock = threading.Lock()
        self._process = _Process()
        self._fork = -1
        _FEEDS.add(self)

    def current(self) -> object | None:
        """The epoch as of the last poll (compare with ``is``), or ``None`` if
        that poll is too old to vouch that nothing changed since (then read
        the store), or this process's feed has not started (:meth:`start`)."""
        seen = self._process.seen
        if (
            seen is None
            or self._fork != fork_safety._generation  # a forked child's is not started yet
            or self._clock() - seen[1] > self.stale
        ):
            return None
        return seen[0]

    def stands(self, epoch: object, token_id: str, now: float) -> bool:
        """Whether an answer remembered under ``epoch`` still stands: the
        store has not changed since, and the last poll is fresh enough to
        vouch for that. If it stands, the use of ``token_id`` at ``now`` is
        noted, as :meth:`used` does.

        :meth:`current` and :meth:`used` in one call: this is the hot path
        of every API token seen before.
        """
        process = self._process
        seen = process.seen
        if (
            seen is None
            or seen[0] is not epoch
            or self._fork != fork_safety._generation
            or self._clock() - seen[1] > self.stale
        ):
            return False
        if now - process.written.get(token_id, -LAST_USED_INTERVAL) >= LAST_USED_INTERVAL:
            process.pending[token_id] = int(now)
        return True

    def used(self, token_id: str, now: int) -> None:
        """Note a use of a token: its last-used time is written by the feed's thread."""
        process = self._process
        if now - process.written.get(token_id, -LAST_USED_INTERVAL) >= LAST_USED_INTERVAL:
            process.pending[token_id] = now

    def close(self) -> None:
        """Stop this process's thread (for a graceful shutdown, or tests)."""
        with self._lock:
            process = self._process
            process.stop.set()
            thread = process.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        with self._lock:
            self._process = _Process()
            self._fork = -1

    def start(self) -> None:
        """Start this process's thread if it is not running (a token was
        accepted: there is something to remember). The first poll follows."""
        # The module's global read directly: this is asked on every API
        # token read from the store.
        if self._fork != fork_safety._generation:
            self._start()

    def _start(self) -> _Process:
        with self._lock:
            if self._fork == fork_safety.fork_generation():
                return self._process
            # A parent's state (and thread) does not exist here.
            process = _Process()
            process.thread = threading.Thread(
                target=self._run, args=(process,), name="restauth-token-feed", daemon=True
            )
            self._process, self._fork = process, fork_safety.fork_generation()
            process.thread.start()
            return process

    def _run(self, process: _Process) -> None:
        failing = False
        while not process.stop.is_set():
            # The time before the read: the counter read is at least this fresh,
            # however long the read (or this thread's turn) takes.
            started = self._clock()
            _POLLING.acquire()
            try:
                mark = self.store.generation()
                if mark != process.mark:
                    # Any difference, down as well as up: a new epoch, never
                    # an earlier one again.
                    process.mark, process.epoch = mark, object()
                process.seen = (process.epoch, started)
            except Exception as exc:  # any failure: the feed just goes stale
                # And the next good poll starts a new epoch, whatever the mark
                # reads then: a change made while the store could not announce
                # it (a trigger dropped, then made again) left the mark as it was.
                process.mark = object()
                if not failing:
                    log.warning(
                        "token change feed cannot read the store (%s); API tokens"
                        " are read from the store on every request until it can",
                        exc,
                    )
                failing = True
            else:
                if failing:
                    log.warning("token change feed reads the store again")
                failing = False
                try:
                    self._write_last_used(process)
                except Exception as exc:  # the thread must outlive any write
                    log.debug("last-used times not recorded: %s", exc)
            finally:
                _POLLING.release()
            process.stop.wait(self.poll)

    def _after_fork(self) -> None:
        # A fork taken while another thread held the lock leaves it held in
        # the child, where no thread will ever release it.
        self._lock = threading.Lock()

    def _write_last_used(self, process: _Process) -> None:
        while process.pending:
            token_id, now = process.pending.popitem()
            process.written[token_id] = now
            self.store.touch(token_id, now=now, min_interval=LAST_USED_INTERVAL)
        if len(process.written) > 100_000:  # forget old notes, bounded
            process.written.clear()


# Every feed of this process, to give each a fresh lock in a forked child.
_FEEDS: weakref.WeakSet[ChangeFeed] = weakref.WeakSet()

# Held by a feed's thread while it talks to a store. A fork waits for it (a
# little): a child forked while that thread was inside SQLite would inherit
# SQLite's own locks held, and hang on its first connection.
_POLLING = threading.Lock()
_FORK_WAIT_SECONDS = 2.0
_held_for_fork = False


def _before_fork() -> None:
    global _held_for_fork
    _held_for_fork = _POLLING.acquire(timeout=_FORK_WAIT_SECONDS)


def _after_fork_in_parent() -> None:
    if _held_for_fork:
        _POLLING.release()


def _after_fork_in_child() -> None:
    global _POLLING
    _POLLING = threading.Lock()
    for feed in list(_FEEDS):
        feed._after_fork()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
