"""The hot path's in-process map of answers: what a token seen before costs.

A hash of the header (BLAKE2b), one dict lookup, an expiry check. It is bounded, so
a stream of distinct invalid tokens cannot grow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from restauth_wsgi.errors import AuthenticationError


@dataclass(frozen=True, slots=True)
class Refusal:
    """A remembered refusal; :meth:`error` makes a fresh exception to raise."""

    error_type: type[AuthenticationError]
    description: str
    reason: str
    scheme: str | None
    username: str | None
    provider: str | None
    password: bool

    @classmethod
    def of(cls, error: AuthenticationError) -> Refusal:
        """Remember ``error``."""
        return cls(
            type(error),
            error.description,
            error.reason,
            error.scheme,
            error.username,
            error.provider,
            error.password,
        )

    def error(self) -> AuthenticationError:
        """The refusal as a new exception (a remembered failure still counts)."""
        error = self.error_type(
            self.description, reason=f"{self.reason} (remembered)", scheme=self.scheme
        )
        error.username = self.username
        error.provider = self.provider
        error.password = self.password
        return error


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    """A bounded in-process map whose entries expire.

    When full, the oldest entry goes: cheaper than LRU bookkeeping on every
    hit, and fair for tokens, which are used in bursts. Plain dict operations
    are atomic, so threads share it without a lock.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        #: The clock the entries' expiry times are on.
        self.clock = clock
        #: Key -> (expires at, value). Public for the one hot path that reads
        #: it directly (``Authentication.recall``: every token seen before),
        #: where the call to :meth:`get` and its own clock read are a
        #: measurable share; it forgets an expired entry it finds, as
        #: :meth:`get` does.
        self.entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The value for ``key`` if it has not expired."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self.entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds."""
        if ttl > 0:
            self.put_until(key, value, self.clock() + ttl)

    def put_until(self, key: K, value: V, expires_at: float) -> None:
        """Keep ``value`` until ``expires_at`` on this map's clock (an end
        computed from one clock read, such as a token's own expiry, is kept
        exactly: a second read would push it later)."""
        entries = self.entries
        while len(entries) >= self.max_entries:
            try:
                entries.pop(next(iter(entries)), None)
            except (StopIteration, RuntimeError):  # emptied or resized by another thread
                break
        entries[key] = (expires_at, value)

    def discard(self, key: K) -> None:
        """Forget ``key``, if it is kept."""
        self.entries.pop(key, None)

    def __len__(self) -> int:
        return len(self.entries)


#: The hot path's map: a credential's hash to the identity or refusal it got
#: (for an API token, its identity under the store's change counter).
RecentAnswers = ExpiringMap[bytes, Any]
