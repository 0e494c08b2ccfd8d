"""Caches: the hot path's in-process map, and answers shared through cachelib.

:class:`RecentAnswers` is what a request for a token seen before costs: a
SHA-256 of the header, one dict lookup, an expiry check. It is bounded, so a
stream of distinct invalid tokens cannot grow it, and holds only provider
answers: API tokens are read from the store every time, so revocation is
immediate.

:class:`SharedCache` holds provider answers (introspection, userinfo, key
sets) where other processes can see them, through a cachelib backend named
by ``RESTAUTH_CACHE``. Keys are hashes, never tokens; values are JSON text,
never pickle (a writable shared cache must not be a way to run code); and a
backend that fails is treated as a miss, never as an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachelib import BaseCache, SimpleCache
from cachelib.serializers import JSONSerializer

from .errors import AuthenticationError
from .identity import Identity

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A remembered refusal; :meth:`error` makes a fresh exception to raise."""

    error_type: type[AuthenticationError]
    description: str
    reason: str
    scheme: str | None

    @classmethod
    def of(cls, error: AuthenticationError) -> Refusal:
        """Remember ``error``."""
        return cls(type(error), error.description, error.reason, error.scheme)

    def error(self) -> AuthenticationError:
        """The refusal as a new exception."""
        return self.error_type(
            self.description, reason=f"{self.reason} (remembered)", scheme=self.scheme
        )


class RecentAnswers:
    """A bounded map from a credential's hash to an identity or a refusal.

    When full, the oldest entry goes: cheaper than LRU bookkeeping on every
    hit, and fair for tokens, which are used in bursts. Plain dict operations
    are atomic, so threads share it without a lock.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Identity | Refusal]] = {}

    def get(self, key: bytes) -> Identity | Refusal | None:
        """The answer for ``key`` if it is still valid."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: bytes, answer: Identity | Refusal, ttl: float) -> None:
        """Remember ``answer`` for ``ttl`` seconds."""
        if ttl <= 0:
            return
        entries = self._entries
        while len(entries) >= self.max_entries:
            try:
                entries.pop(next(iter(entries)), None)
            except (StopIteration, RuntimeError):  # emptied or resized by another thread
                break
        entries[key] = (self._clock() + ttl, answer)

    def __len__(self) -> int:
        return len(self._entries)


class SharedCache:
    """JSON answers in a cachelib backend, under hashed keys; failures are misses."""

    def __init__(self, backend: BaseCache, *, namespace: str = "restauth:v1:") -> None:
        self.backend = backend
        self.namespace = namespace
        self._warned_at = 0.0

    def key(self, kind: str, secret: str) -> str:
        """The backend key for ``secret`` (a token, a URL) of a kind of answer."""
        digest = hashlib.sha256(f"{kind}\0{secret}".encode()).hexdigest()
        return f"{self.namespace}{kind}:{digest}"

    def get(self, kind: str, secret: str) -> dict[str, Any] | None:
        """The cached answer, or ``None`` (also when the backend fails)."""
        try:
            raw = self.backend.get(self.key(kind, secret))
        except Exception as exc:
            self._warn(exc)
            return None
        if not isinstance(raw, str | bytes):
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set(self, kind: str, secret: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` as JSON for ``ttl`` seconds (whole seconds, at least one)."""
        try:
            self.backend.set(self.key(kind, secret), json.dumps(value), timeout=max(1, int(ttl)))
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:  # once a minute, not once a request
            self._warned_at = now
            log.warning("shared cache unavailable, carrying on without it: %s", exc)


def open_shared_cache(url: str, *, max_entries: int) -> SharedCache:
    """The shared cache ``RESTAUTH_CACHE`` names. No connection is made here."""
    if url != "memory":
        raise ValueError(f"{url!r} is not a supported cache")
    backend = SimpleCache(threshold=max_entries)
    # cachelib pickles by default; JSON text in and out keeps it data only.
    backend.serializer = JSONSerializer()  # type: ignore[assignment]
    return SharedCache(backend)
