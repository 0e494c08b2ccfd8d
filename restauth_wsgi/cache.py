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
import threading
import time
import urllib.parse
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cachelib import BaseCache, FileSystemCache, MemcachedCache, RedisCache, SimpleCache
from cachelib.serializers import JSONSerializer

from . import metrics
from .errors import AuthenticationError
from .per_thread import PerProcess
from .values import mask_url

log = logging.getLogger(__name__)


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
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The value for ``key`` if it has not expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds."""
        if ttl <= 0:
            return
        entries = self._entries
        while len(entries) >= self.max_entries:
            try:
                entries.pop(next(iter(entries)), None)
            except (StopIteration, RuntimeError):  # emptied or resized by another thread
                break
        entries[key] = (self._clock() + ttl, value)

    def __len__(self) -> int:
        return len(self._entries)


#: The hot path's map: a credential's hash to the identity or refusal it got
#: (for an API token, its identity under the store's change counter).
RecentAnswers = ExpiringMap[bytes, Any]


class SharedCache:
    """JSON answers in a cachelib backend, under hashed keys; failures are misses.

    After a backend failure the backend is left alone for ``retry_after``
    seconds (requests go on without a cache, at no extra cost), then tried
    again: an outage needs no restart to recover from.
    """

    def __init__(
        self,
        backend: Callable[[], BaseCache],
        *,
        namespace: str = "restauth:v2:default:",
        retry_after: float = 5.0,
    ) -> None:
        # Made on first use, once per process: a constructor does no I/O,
        # and a forked worker never shares its parent's sockets.
        self._backend = PerProcess(backend)
        self.namespace = namespace
        self.retry_after = retry_after
        self._down_until = 0.0
        self._count_lock = threading.Lock()

    @property
    def backend(self) -> BaseCache:
        """The cachelib backend of this process."""
        return self._backend.get()

    def key(self, kind: str, secret: str) -> str:
        """The backend key for ``secret`` (a token, a URL) of a kind of answer.

        A hash, so no token is ever a key, and keys stay short (memcached
        refuses keys over 250 bytes).
        """
        digest = hashlib.sha256(f"{kind}\0{secret}".encode()).hexdigest()
        return f"{self.namespace}{kind.split(':', 1)[0]}:{digest}"

    def get(self, kind: str, secret: str) -> dict[str, Any] | None:
        """The cached answer, or ``None`` (also when the backend fails)."""
        if self._down_until > time.monotonic():
            return None
        try:
            raw = self._backend.get().get(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)
            return None
        value = None
        if isinstance(raw, str | bytes):
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
        hit = isinstance(value, dict)
        metrics.METRICS.cache("shared", hit)
        return value if hit else None

    def set(self, kind: str, secret: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` as JSON for ``ttl`` seconds (whole seconds, at least one)."""
        if self._down_until > time.monotonic():
            return
        try:
            self._backend.get().set(
                self.key(kind, secret), json.dumps(value), timeout=max(1, int(ttl))
            )
        except Exception as exc:
            self._failed(exc)

    def incr(self, kind: str, secret: str, ttl: float) -> int | None:
        """Add one to a counter that lives ``ttl`` seconds from its first count.

        Atomic across processes and hosts on Redis and memcached; within one
        process on the memory and file caches. ``None`` when the backend fails.
        """
        if self._down_until > time.monotonic():
            return None
        key, seconds = self.key(kind, secret), max(1, int(ttl))
        try:
            backend = self._backend.get()
            if isinstance(backend, RedisCache):
                count = int(backend._write_client.incr(key))
                if count == 1:  # the first count starts the window (EXPIRE NX needs Redis 7)
                    backend._write_client.expire(key, seconds)
                return count
            if isinstance(backend, MemcachedCache):
                client = backend._client
                client.add(key, b"0", expire=seconds, noreply=False)
                return int(client.incr(key, 1, noreply=False) or 0)
            with self._count_lock:
                count = self.count(kind, secret) + 1
                backend.set(key, json.dumps(count), timeout=seconds)
            return count
        except Exception as exc:
            self._failed(exc)
            return None

    def decr(self, kind: str, secret: str) -> None:
        """Take one back from a counter (a reservation not needed after all)."""
        if self._down_until > time.monotonic():
            return
        key = self.key(kind, secret)
        try:
            backend = self._backend.get()
            if isinstance(backend, RedisCache):
                backend._write_client.decr(key)
                return
            if isinstance(backend, MemcachedCache):
                backend._client.decr(key, 1, noreply=False)  # stops at zero by itself
                return
            with self._count_lock:
                count = self.count(kind, secret)
                if count > 0:
                    backend.set(key, json.dumps(count - 1))
        except Exception as exc:
            self._failed(exc)

    def count(self, kind: str, secret: str) -> int:
        """A counter's value (0 when absent or the backend fails)."""
        if self._down_until > time.monotonic():
            return 0
        try:
            raw = self._backend.get().get(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)
            return 0
        if isinstance(raw, int):  # Redis counters come back decoded
            return raw
        try:
            return int(json.loads(raw)) if raw is not None else 0
        except (TypeError, ValueError):
            return 0

    def delete(self, kind: str, secret: str) -> None:
        """Forget an answer (best effort)."""
        try:
            self._backend.get().delete(self.key(kind, secret))
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        """Close this process's connections to the backend, if it made any."""
        backend = self._backend.discard()
        client = getattr(backend, "_client", None) or getattr(backend, "_write_client", None)
        if client is not None and hasattr(client, "close"):
            client.close()

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self.retry_after
        log.warning(
            "shared cache unavailable (%s: %s); going on without it for %g s",
            type(exc).__name__,
            exc,
            self.retry_after,
        )


class _RawSerde:
    """pymemcache (de)serialization that stores text as is and never unpickles.

    Values here are always JSON text. Ignoring the flags on the way back
    matters: a client that honours a "pickled" flag would run whatever a
    writer of the shared memcached put there.
    """

    def serialize(self, key: str, value: Any) -> tuple[bytes, int]:
        return (value.encode() if isinstance(value, str) else bytes(value)), 0

    def deserialize(self, key: str, value: bytes, flags: int) -> bytes:
        return value


def check_cache_url(url: str) -> None:
    """Check that ``url`` names a supported cache, without connecting.

    :raises ValueError: saying what is wrong.
    """
    scheme, sep, rest = url.partition("://")
    if url == "memory":
        return
    if sep and scheme == "file" and rest.startswith("/") and rest.strip("/"):
        return
    if sep and scheme in ("redis", "rediss") and urllib.parse.urlsplit(url).hostname:
        return
    if sep and scheme == "memcached" and all(_host_port(s) for s in rest.split(",")):
        return
    raise ValueError(
        f"{mask_url(url)!r} is not a supported cache; use memory, file:///dir,"
        " redis://host:6379/0 (rediss:// for TLS) or memcached://host:11211"
    )


def _host_port(server: str) -> tuple[str, int] | None:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def open_shared_cache(
    url: str, *, max_entries: int, timeout: float, namespace: str = "default"
) -> SharedCache:
    """The shared cache ``RESTAUTH_CACHE`` names. No connection is made here.

    :param timeout: seconds a network cache may take per call.
    :param namespace: the service's name in the cache (``RESTAUTH_CACHE_NAMESPACE``):
        services with different ones share nothing.
    """
    check_cache_url(url)
    return SharedCache(
        lambda: _backend(url, max_entries=max_entries, timeout=timeout),
        namespace=f"restauth:v2:{namespace}:",
    )


class _QuietJSONSerializer(JSONSerializer):
    """cachelib's JSON serializer, without its warnings on the root logger.

    cachelib reports a miss (``loads(None)``) through ``logging.warning``,
    which writes to the application's root logger (configuring it on first
    use) for every unseen token: a client could flood the logs.
    """

    def _warn(self, e: Exception) -> None:
        log.debug("cache value not JSON: %s", e)


# cachelib pickles by default; these JSON-only variants keep a shared cache
# data only. The serializer is set on the class so that nothing, not even the
# file backend's entry counter written during construction, is ever pickled.
class _JsonSimpleCache(SimpleCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


class _JsonFileSystemCache(FileSystemCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


class _JsonRedisCache(RedisCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


def _backend(url: str, *, max_entries: int, timeout: float) -> BaseCache:
    scheme = url.partition("://")[0]
    backend: BaseCache
    if url == "memory":
        backend = _JsonSimpleCache(threshold=max_entries)
    elif scheme == "file":
        directory = url.removeprefix("file://")
        backend = _JsonFileSystemCache(directory, threshold=max_entries, mode=0o600)
    elif scheme in ("redis", "rediss"):
        import redis  # the "redis" extra

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        backend = _JsonRedisCache(host=client)
    else:
        from pymemcache.client.hash import HashClient  # the "memcached" extra

        servers = [_host_port(s) for s in url.removeprefix("memcached://").split(",")]
        client = HashClient(
            servers,
            serde=_RawSerde(),
            connect_timeout=timeout,
            timeout=timeout,
            default_noreply=False,
            retry_attempts=1,
        )
        # No serializer here: the client's serde (above) stores text as is.
        backend = MemcachedCache(servers=client)
    return backend
