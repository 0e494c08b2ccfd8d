"""Lockout that heals itself: too many failures, then 429 for a while.

Failed attempts are counted per client address and per username in the
shared cache, in fixed windows of ``RESTAUTH_LOCKOUT_WINDOW``; with Redis or
memcached every worker and host counts together. Past
``RESTAUTH_LOCKOUT_THRESHOLD`` failures in a window:

* an address gets 429 with ``Retry-After`` for everything until the window
  ends, so guessing stops; other addresses are unaffected;
* a username gets 429 for *password* attempts only: the user's API tokens
  and provider tokens keep working, so a stranger guessing a password cannot
  lock a CI job out (what users of the Atlassian apps' CAPTCHA lockout hate).

Nobody has to unlock anything: the window ends. ``restauth lockout list``
and ``restauth lockout clear`` show and lift lockouts early.

A request checks its address against a per-process note that is at most a
second old, so the hot path does not pay a shared-cache round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import metrics
from .cache import ExpiringMap, SharedCache
from .errors import TooManyFailures

#: How long a process trusts its note that an address is not locked.
_NOTE_SECONDS = 1.0


@dataclass(frozen=True)
class Locked:
    """A subject that is locked out now."""

    kind: str  # "address" or "user"
    subject: str
    failures: int
    retry_after: int


class Lockout:
    """Counts failures and says who is locked out."""

    def __init__(
        self,
        shared: SharedCache,
        *,
        threshold: int,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shared = shared
        self.threshold = threshold
        self.window = window
        self._clock = clock
        self._unlocked: ExpiringMap[str, bool] = ExpiringMap(10_000, clock)

    def check(self, kind: str, subject: str) -> None:
        """Raise :class:`TooManyFailures` if ``subject`` is locked out now."""
        note = f"{kind}:{subject}"
        if self._unlocked.get(note):
            return
        failures = self.shared.count("lockout", self._key(kind, subject))
        if failures < self.threshold:
            self._unlocked.put(note, True, _NOTE_SECONDS)
            return
        what = "address" if kind == "address" else "user"
        raise TooManyFailures(
            f"Too many failed attempts from this {what}; try again later.",
            retry_after=self._retry_after(),
            reason=f"{kind} {subject!r} has {failures} failures in this window",
        )

    def failed(self, kind: str, subject: str) -> None:
        """Count a failure; remember who reached the threshold (for ``list``)."""
        failures = self.shared.incr("lockout", self._key(kind, subject), self.window)
        if failures is not None and failures >= self.threshold:
            self._unlocked.put(f"{kind}:{subject}", False, self.window)
            if failures == self.threshold:
                metrics.METRICS.lockout(kind)
                self._remember(kind, subject)

    def locked(self) -> list[Locked]:
        """Everyone locked out in the current window."""
        index = self.shared.get("lockout-index", self._window_name()) or {}
        found = []
        for entry in index.get("subjects", []):
            kind, subject = str(entry[0]), str(entry[1])
            failures = self.shared.count("lockout", self._key(kind, subject))
            if failures >= self.threshold:
                found.append(Locked(kind, subject, failures, self._retry_after()))
        return found

    def clear(self, subject: str | None = None) -> int:
        """Lift the lockout of ``subject`` (an address or username), or of all; return how many."""
        lifted = 0
        for entry in self.locked():
            if subject is None or entry.subject == subject:
                self.shared.delete("lockout", self._key(entry.kind, entry.subject))
                lifted += 1
        return lifted

    def _key(self, kind: str, subject: str) -> str:
        return f"{kind}\0{subject}\0{self._window_name()}"

    def _window_name(self) -> str:
        return str(int(self._clock() // self.window))

    def _retry_after(self) -> int:
        now = self._clock()
        return max(1, int(self.window - now % self.window) + 1)

    def _remember(self, kind: str, subject: str) -> None:
        name = self._window_name()
        index = self.shared.get("lockout-index", name) or {"subjects": []}
        if [kind, subject] not in index["subjects"]:
            index["subjects"].append([kind, subject])
            self.shared.set("lockout-index", name, index, self.window)
