"""Lockout that heals itself, aimed at guessing, not at users.

Failed attempts are counted in the shared cache, in fixed windows of
``RESTAUTH_LOCKOUT_WINDOW``; with Redis or memcached every worker and host
counts together. What is counted, and what a lockout refuses:

* per **address**: every wrong or garbled credential. A locked address is
  refused only what costs or could be guessed: passwords, and opaque
  tokens that would need a provider call. A credential that checks out
  without cost (an API token, a JWT with a valid signature, an answer
  already cached) is never refused for its address's failures: behind a
  proxy every client may share one address.
* per **user and address**: wrong passwords. Past ``RESTAUTH_LOCKOUT_THRESHOLD``
  that user's passwords are refused from that address only, so a stranger's
  guesses cannot lock the user's right password out from the user's own
  machines.
* per **user**: wrong passwords from anywhere, against a much higher
  ceiling (``RESTAUTH_LOCKOUT_USER_THRESHOLD``), for guessing spread over
  many addresses. Even then an address the user signed in from with the
  right password in the last 30 days keeps working.

Nobody has to unlock anything: the window ends, and ``Retry-After`` says
when. ``restauth lockout list`` and ``restauth lockout clear`` show and lift
lockouts early. A process trusts its note of whether a subject is locked for
at most a second (and never past the window's end), so the hot path does
not pay a round trip each time, and a lockout lifted early is seen promptly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import metrics
from .cache import ExpiringMap, SharedCache
from .errors import TooManyFailures

#: How long a process trusts its note of whether a subject is locked.
_NOTE_SECONDS = 1.0
#: How long a right password makes its address a known one for that user.
KNOWN_ADDRESS_SECONDS = 30 * 86400
#: The kinds of subject, as ``restauth lockout list`` shows them.
KINDS = ("address", "user-address", "user")


@dataclass(frozen=True)
class Locked:
    """A subject that is locked out now."""

    kind: str  # one of KINDS
    subject: str  # an address, a username, or "user from address"
    failures: int
    retry_after: int
    user: str | None = None
    address: str | None = None


class Lockout:
    """Counts failures and says what is locked out.

    :param threshold: failures per window of an address, or of a user from
        one address, before they are locked.
    :param user_threshold: failed passwords per window of one user from
        anywhere before the user's passwords are refused from unknown
        addresses (0: no such ceiling).
    :param window: the window's length in seconds.
    """

    def __init__(
        self,
        shared: SharedCache,
        *,
        threshold: int,
        window: int,
        user_threshold: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shared = shared
        self.threshold = threshold
        self.user_threshold = user_threshold
        self.window = window
        self._clock = clock
        # kind\0subject -> whether it is locked, until the note expires.
        self._notes: ExpiringMap[str, bool] = ExpiringMap(10_000, clock)

    def check_address(self, address: str | None) -> None:
        """Before something costly (an opaque token's provider call, a password).

        :raises TooManyFailures: if the address is locked out.
        """
        if address is not None:
            self._check("address", (address,), self.threshold, "this address")

    def check_password(self, user: str, address: str | None) -> None:
        """Before a password is checked (or a remembered one accepted).

        :raises TooManyFailures: if the address, the user from this address,
            or (from an address the user has not signed in from) the user is locked out.
        """
        self.check_address(address)
        if address is not None:
            self._check("user-address", (user, address), self.threshold, "this user")
        if self.user_threshold and not self._known(user, address):
            self._check("user", (user,), self.user_threshold, "this user")

    def failed(self, address: str | None, password_user: str | None = None) -> None:
        """Count a failure of the address; and of a user whose password was wrong."""
        if address is not None:
            self._count("address", (address,), self.threshold)
        if password_user is not None:
            if address is not None:
                self._count("user-address", (password_user, address), self.threshold)
            if self.user_threshold:
                self._count("user", (password_user,), self.user_threshold)

    def password_accepted(self, user: str, address: str | None) -> None:
        """Remember that ``user`` signed in from ``address`` with the right password."""
        if address is not None and not self._known(user, address):
            self.shared.set("lockout-known", _key(user, address), {"known": True}, _KNOWN)

    def locked(self) -> list[Locked]:
        """Everything locked out in the current window."""
        index = self.shared.get("lockout-index", self._window_name()) or {}
        found = []
        entries = index.get("subjects")
        for entry in entries if isinstance(entries, list) else []:
            if not (isinstance(entry, list) and entry and entry[0] in KINDS):
                continue
            kind, parts = str(entry[0]), tuple(str(p) for p in entry[1:])
            failures = self.shared.count("lockout", self._key(kind, parts))
            if failures >= self._threshold(kind):
                user = parts[0] if kind != "address" else None
                address = parts[-1] if kind != "user" else None
                subject = " from ".join(parts)
                found.append(Locked(kind, subject, failures, self.retry_after(), user, address))
        return found

    def clear(self, subject: str | None = None) -> int:
        """Lift the lockouts of ``subject`` (an address or a username), or all; return how many."""
        lifted = 0
        for entry in self.locked():
            if subject is None or subject in (entry.user, entry.address):
                parts = tuple(p for p in (entry.user, entry.address) if p is not None)
                self.shared.delete("lockout", self._key(entry.kind, parts))
                self._notes.put(_key(entry.kind, *parts), False, _NOTE_SECONDS)
                lifted += 1
        return lifted

    def retry_after(self) -> int:
        """Whole seconds until the current window ends, when every lockout lifts."""
        return max(1, math.ceil(self.window - self._clock() % self.window))

    def _check(self, kind: str, parts: tuple[str, ...], threshold: int, what: str) -> None:
        note = _key(kind, *parts)
        locked = self._notes.get(note)
        if locked is None:
            failures = self.shared.count("lockout", self._key(kind, parts))
            locked = failures >= threshold
            # Never past the window's end: Retry-After must be what this
            # process will actually do.
            self._notes.put(note, locked, self._note_seconds())
        if locked:
            raise TooManyFailures(
                f"Too many failed attempts for {what}; try again later.",
                retry_after=self.retry_after(),
                reason=f"{kind} {' from '.join(parts)!r} is locked out in this window",
            )

    def _count(self, kind: str, parts: tuple[str, ...], threshold: int) -> None:
        failures = self.shared.incr("lockout", self._key(kind, parts), self._window_left())
        if failures is not None and failures >= threshold:
            self._notes.put(_key(kind, *parts), True, self._note_seconds())
            if failures == threshold:
                metrics.METRICS.lockout(kind)
                self._remember(kind, parts)

    def _known(self, user: str, address: str | None) -> bool:
        if address is None:
            return False
        return self.shared.get("lockout-known", _key(user, address)) is not None

    def _threshold(self, kind: str) -> int:
        return self.user_threshold if kind == "user" else self.threshold

    def _note_seconds(self) -> float:
        return min(_NOTE_SECONDS, self._window_left())

    def _window_left(self) -> float:
        return self.window - self._clock() % self.window

    def _key(self, kind: str, parts: tuple[str, ...]) -> str:
        return _key(kind, *parts, self._window_name())

    def _window_name(self) -> str:
        return str(int(self._clock() // self.window))

    def _remember(self, kind: str, parts: tuple[str, ...]) -> None:
        name = self._window_name()
        index = self.shared.get("lockout-index", name) or {}
        subjects = index.get("subjects")
        if not isinstance(subjects, list):
            subjects = []
        entry = [kind, *parts]
        if entry not in subjects:
            subjects.append(entry)
            self.shared.set("lockout-index", name, {"subjects": subjects}, self.window)


_KNOWN = float(KNOWN_ADDRESS_SECONDS)


def _key(*parts: str) -> str:
    return "\0".join(parts)
