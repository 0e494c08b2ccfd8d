"""Lockout that heals itself, aimed at guessing, not at users.

Failed attempts are counted in the shared cache, in fixed windows of
``RESTAUTH_LOCKOUT_WINDOW``; with Redis or memcached every worker and host
counts together. What is counted, and what a lockout refuses:

* per **address** (an IPv6 client by its /64, the block one client usually
  has; clients without an address together as one): every wrong or garbled
  credential. A locked address is refused only what costs or could be
  guessed: passwords, and opaque tokens that would need a provider call. A
  credential that checks out without cost (an API token, a JWT with a valid
  signature, an answer already cached) is never refused for its address's
  failures: behind a proxy every client may share one address.
* per **user and address**: wrong passwords. Past ``RESTAUTH_LOCKOUT_THRESHOLD``
  that user's passwords are refused from that address only, so a stranger's
  guesses cannot lock the user's right password out from the user's own
  machines.
* per **user**: wrong passwords from anywhere, against a much higher
  ceiling (``RESTAUTH_LOCKOUT_USER_THRESHOLD``), for guessing spread over
  many addresses. Even then an address the user signed in from with the
  right password in the last 30 days keeps working.

A guess is counted **before** it is checked (a :class:`Reservation`) and
given back if it was right, so requests in flight at once cannot get more
guesses through than the threshold allows.

Nobody has to unlock anything: the window ends, and ``Retry-After`` says
when. ``restauth lockout list`` and ``restauth lockout clear`` show and lift
lockouts early. A process trusts its note that a subject is locked for at
most a second (and never past the window's end).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from restauth_wsgi.cache import ExpiringMap, SharedCache
from restauth_wsgi.errors import TooManyFailures
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.request.client_address import ClientAddress

if TYPE_CHECKING:
    from restauth_wsgi.settings import LockoutSettings

#: How long a process trusts its note that a subject is locked.
_NOTE_SECONDS = 1.0
#: How long a right password makes its address a known one for that user.
KNOWN_ADDRESS_SECONDS = 30 * 86400
#: The kinds of subject, as ``restauth lockout list`` shows them.
KINDS = ("address", "user-address", "user")
#: The subject of clients whose address cannot be told.
UNKNOWN_ADDRESS = "unknown"


def address_subject(client: ClientAddress | None) -> str:
    """What a client's failures are counted against: its address, an IPv6
    client's /64 (one client can use every address in it), or ``unknown``."""
    if client is None:
        return UNKNOWN_ADDRESS
    if client.ip.version == 6:
        return str(ipaddress.ip_network(f"{client.ip}/64", strict=False))
    return client.text


@dataclass(frozen=True)
class Locked:
    """A subject that is locked out now."""

    kind: str  # one of KINDS
    subject: str  # an address, a username, or "user from address"
    failures: int
    retry_after: int
    user: str | None = None
    address: str | None = None


class Reservation:
    """Attempts counted before a guessable check; given back if it passed."""

    __slots__ = ("_counted", "_lockout")

    def __init__(self, lockout: Lockout, counted: list[tuple[str, tuple[str, ...], int]]) -> None:
        self._lockout = lockout
        self._counted = counted  # (kind, parts, count after ours)

    def settle(self, *, failed: bool) -> None:
        """Keep the counts as failures, or give them back."""
        if failed:
            for kind, parts, count in self._counted:
                self._lockout.counted_failure(kind, parts, count)
        else:
            for kind, parts, _ in self._counted:
                self._lockout.shared.decr("lockout", self._lockout.key(kind, parts))
        self._counted = []


class Lockout:
    """Counts failures and says what is locked out.

    :param settings: the ``RESTAUTH_LOCKOUT_*`` settings (the whole
        :class:`~restauth_wsgi.settings.Settings` will do): the failures per
        window of an address, or of a user from one address, before they are
        locked; the failed passwords per window of one user from anywhere
        before the user's passwords are refused from unknown addresses (0: no
        such ceiling); the window's length in seconds.
    """

    def __init__(
        self,
        shared: SharedCache,
        settings: LockoutSettings,
        *,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.shared = shared
        self.metrics = metrics
        self.threshold = settings.lockout_threshold
        self.user_threshold = settings.lockout_user_threshold
        self.window = settings.lockout_window
        self._clock = clock
        # kind\0subject -> locked, until the note expires.
        self._notes: ExpiringMap[str, bool] = ExpiringMap(10_000, clock)

    # -- guarding one attempt -------------------------------------------------------

    def reserve_costly(self, address: str) -> Reservation:
        """Count a costly attempt (a provider call for an unseen token) first.

        :raises TooManyFailures: if the address is locked out.
        """
        return self._reserve([("address", (address,), self.threshold)])

    def reserve_password(self, user: str, address: str) -> Reservation:
        """Count a password attempt first: the address, the user from it and,
        from an address the user has not signed in from, the user.

        :raises TooManyFailures: if any of them is locked out.
        """
        return self._reserve(self._password_subjects(user, address))

    def check_address(self, address: str) -> None:
        """Refuse a locked address without counting anything (``restauth check``).

        :raises TooManyFailures: if it is locked out.
        """
        if self._count("address", (address,)) >= self.threshold:
            raise self._locked("address", (address,))

    def check_password(self, user: str, address: str) -> None:
        """For a password already known right (remembered): refuse it where
        locked, without counting anything.

        :raises TooManyFailures: if any of its subjects is locked out.
        """
        for kind, parts, threshold in self._password_subjects(user, address):
            if self._count(kind, parts) >= threshold:
                raise self._locked(kind, parts)

    def failed(self, address: str, password_user: str | None = None) -> None:
        """Count a failure that was not reserved: a wrong API token, a bad JWT,
        or a wrong password answered from memory (then for its user too)."""
        subjects = (
            self._password_subjects(password_user, address)
            if password_user is not None
            else [("address", (address,), self.threshold)]
        )
        for kind, parts, _ in subjects:
            count = self.shared.incr("lockout", self.key(kind, parts), self._window_left())
            if count is not None:
                self.counted_failure(kind, parts, count)

    def password_accepted(self, user: str, address: str) -> None:
        """Remember that ``user`` signed in from ``address`` with the right password."""
        if not self._known(user, address):
            self.shared.set("lockout-known", _key(user, address), {"known": True}, _KNOWN)

    # -- what the CLI shows ---------------------------------------------------------

    def locked(self) -> list[Locked]:
        """Everything locked out in the current window."""
        index = self.shared.get("lockout-index", self._window_name()) or {}
        found = []
        entries = index.get("subjects")
        for entry in entries if isinstance(entries, list) else []:
            if not (isinstance(entry, list) and entry and entry[0] in KINDS):
                continue
            kind, parts = str(entry[0]), tuple(str(p) for p in entry[1:])
            failures = self._count(kind, parts)
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
                self.shared.delete("lockout", self.key(entry.kind, parts))
                self._notes.put(_key(entry.kind, *parts), False, _NOTE_SECONDS)
                lifted += 1
        return lifted

    def retry_after(self) -> int:
        """Whole seconds until the current window ends, when every lockout lifts."""
        return max(1, math.ceil(self.window - self._clock() % self.window))

    # -- the counters ---------------------------------------------------------------

    def key(self, kind: str, parts: tuple[str, ...]) -> str:
        """The counter's name in the shared cache, for the current window."""
        return _key(kind, *parts, self._window_name())

    def counted_failure(self, kind: str, parts: tuple[str, ...], count: int) -> None:
        """A failure was counted: note and list the subject once it is locked."""
        if count >= self._threshold(kind):
            self._notes.put(_key(kind, *parts), True, self._note_seconds())
            if count == self._threshold(kind):
                self.metrics.lockout(kind)
                self._remember(kind, parts)

    def _password_subjects(self, user: str, address: str) -> list[tuple[str, tuple[str, ...], int]]:
        subjects = [
            ("address", (address,), self.threshold),
            ("user-address", (user, address), self.threshold),
        ]
        if self.user_threshold and not self._known(user, address):
            subjects.append(("user", (user,), self.user_threshold))
        return subjects

    def _reserve(self, subjects: list[tuple[str, tuple[str, ...], int]]) -> Reservation:
        counted: list[tuple[str, tuple[str, ...], int]] = []
        for kind, parts, threshold in subjects:
            if self._notes.get(_key(kind, *parts)):
                Reservation(self, counted).settle(failed=False)
                raise self._locked(kind, parts)
            count = self.shared.incr("lockout", self.key(kind, parts), self._window_left())
            if count is None:  # no shared cache right now: no lockout, never a 500
                continue
            counted.append((kind, parts, count))
            if count > threshold:
                self._notes.put(_key(kind, *parts), True, self._note_seconds())
                Reservation(self, counted).settle(failed=False)
                raise self._locked(kind, parts)
        return Reservation(self, counted)

    def _locked(self, kind: str, parts: tuple[str, ...]) -> TooManyFailures:
        what = "this address" if kind == "address" else "this user"
        return TooManyFailures(
            f"Too many failed attempts for {what}; try again later.",
            retry_after=self.retry_after(),
            reason=f"{kind} {' from '.join(parts)!r} is locked out in this window",
        )

    def _count(self, kind: str, parts: tuple[str, ...]) -> int:
        return self.shared.count("lockout", self.key(kind, parts))

    def _known(self, user: str, address: str) -> bool:
        return self.shared.get("lockout-known", _key(user, address)) is not None

    def _threshold(self, kind: str) -> int:
        return self.user_threshold if kind == "user" else self.threshold

    def _note_seconds(self) -> float:
        return min(_NOTE_SECONDS, self._window_left())

    def _window_left(self) -> float:
        return self.window - self._clock() % self.window

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
