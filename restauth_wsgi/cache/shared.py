"""Answers shared between processes and hosts, through the cache ``RESTAUTH_CACHE`` names.

Provider answers (introspection, userinfo, key sets) and the lockout's
counters live here. Keys are hashes, never tokens; values are JSON text,
never pickle; and a backend that fails is treated as a miss, never as an
error, then left alone for a while.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from cachelib import BaseCache

from restauth_wsgi import strict_json
from restauth_wsgi.cache.backends import Backend, check_cache_url, open_backend
from restauth_wsgi.fork_safety import PerProcess
from restauth_wsgi.metrics import NO_METRICS, Metrics

log = logging.getLogger("restauth_wsgi.cache")


class SharedCache:
    """JSON answers and counters in a backend, under hashed keys; failures are misses.

    After a backend failure the backend is left alone for ``retry_after``
    seconds (requests go on without a cache, at no extra cost), then tried
    again: an outage needs no restart to recover from.

    :param backend: makes this process's backend (called on first use, and
        again in a forked child).
    :param clock: monotonic seconds, for the retry interval (tests pass their own).
    """

    def __init__(
        self,
        backend: Callable[[], Backend],
        *,
        namespace: str = "restauth:v2:default:",
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        # Made on first use, once per process: a constructor does no I/O,
        # and a forked worker never shares its parent's sockets.
        self._backend = PerProcess(backend)
        self.namespace = namespace
        self.retry_after = retry_after
        self.metrics = metrics
        self._clock = clock
        self._down_until = 0.0

    @property
    def backend(self) -> BaseCache:
        """The cachelib cache of this process."""
        return self._backend.get().cache

    def key(self, kind: str, secret: str) -> str:
        """The backend key for ``secret`` (a token, a URL) of a kind of answer.

        A hash, so no token is ever a key, and keys stay short (memcached
        refuses keys over 250 bytes).
        """
        digest = hashlib.sha256(f"{kind}\0{secret}".encode()).hexdigest()
        return f"{self.namespace}{kind.split(':', 1)[0]}:{digest}"

    def get(self, kind: str, secret: str) -> dict[str, Any] | None:
        """The cached answer, or ``None`` (also when the backend fails)."""
        if self._down():
            return None
        try:
            raw = self._backend.get().cache.get(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)
            return None
        value = None
        if isinstance(raw, str | bytes):
            # Strictly (no NaN, no key twice): another release, or anyone who
            # can write to the cache, wrote it.
            try:
                value = strict_json.loads_unique(raw if isinstance(raw, str) else raw.decode())
            except (ValueError, RecursionError):
                value = None
        hit = isinstance(value, dict)
        self.metrics.cache("shared", hit)
        return value if hit else None

    def set(self, kind: str, secret: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` as JSON for ``ttl`` seconds (whole seconds, at least one)."""
        if self._down():
            return
        try:
            self._backend.get().cache.set(
                self.key(kind, secret), json.dumps(value), timeout=max(1, int(ttl))
            )
        except Exception as exc:
            self._failed(exc)

    def incr(self, kind: str, secret: str, ttl: float) -> int | None:
        """Add one to a counter that lives ``ttl`` seconds from its first count.

        Atomic across processes and hosts on Redis and memcached; within one
        process on the memory and file caches. ``None`` when the backend fails.
        """
        if self._down():
            return None
        try:
            return self._backend.get().incr(self.key(kind, secret), max(1, int(ttl)))
        except Exception as exc:
            self._failed(exc)
            return None

    def decr(self, kind: str, secret: str) -> None:
        """Take one back from a counter (a reservation not needed after all)."""
        if self._down():
            return
        try:
            self._backend.get().decr(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)

    def count(self, kind: str, secret: str) -> int:
        """A counter's value (0 when absent or the backend fails)."""
        if self._down():
            return 0
        try:
            return self._backend.get().count(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)
            return 0

    def delete(self, kind: str, secret: str) -> None:
        """Forget an answer (best effort)."""
        try:
            self._backend.get().cache.delete(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)

    def probe(self) -> None:
        """Ask the backend once, letting its failure through (``restauth lockout``
        must not read an outage as "nobody is locked out")."""
        self._backend.get().cache.get(self.key("probe", "restauth"))

    def close(self) -> None:
        """Close this process's connections to the backend, if it made any."""
        backend = self._backend.discard()
        if backend is not None:
            backend.close()

    def _down(self) -> bool:
        return self._down_until > self._clock()

    def _failed(self, exc: Exception) -> None:
        self._down_until = self._clock() + self.retry_after
        log.warning(
            "shared cache unavailable (%s: %s); going on without it for %g s",
            type(exc).__name__,
            exc,
            self.retry_after,
        )


def open_shared_cache(
    url: str,
    *,
    max_entries: int,
    timeout: float,
    namespace: str = "default",
    metrics: Metrics = NO_METRICS,
) -> SharedCache:
    """The shared cache ``RESTAUTH_CACHE`` names. No connection is made here.

    :param timeout: seconds a network cache may take per call.
    :param namespace: the service's name in the cache (``RESTAUTH_CACHE_NAMESPACE``):
        services with different ones share nothing.
    :raises ValueError: if ``url`` names no supported cache.
    """
    check_cache_url(url)
    return SharedCache(
        lambda: open_backend(url, max_entries=max_entries, timeout=timeout),
        namespace=f"restauth:v2:{namespace}:",
        metrics=metrics,
    )
