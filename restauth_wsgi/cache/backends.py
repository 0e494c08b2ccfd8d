"""The backends ``RESTAUTH_CACHE`` names: cachelib caches kept JSON-only, and
counters on the same connection.

cachelib pickles by default and has no atomic counter that expires; here
every backend stores JSON text only (a writable shared cache must not be a
way to run code), and a :class:`Backend` pairs the cachelib cache with
counters made on the client this module itself created, so nothing reaches
into cachelib's private attributes.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

from cachelib import BaseCache, FileSystemCache, MemcachedCache, RedisCache, SimpleCache
from cachelib.serializers import JSONSerializer

from restauth_wsgi.urls import mask_url

if TYPE_CHECKING:
    import redis
    from pymemcache.client.hash import HashClient

log = logging.getLogger("restauth_wsgi.cache")


class Backend:
    """A cachelib cache, and counters that expire (the lockout's), on one connection.

    This base keeps its counters in the cache itself under a lock: atomic
    within one process, which is all the memory and file caches can offer.
    """

    def __init__(self, cache: BaseCache) -> None:
        #: The cachelib cache (JSON text only).
        self.cache = cache
        self._lock = threading.Lock()

    def count(self, key: str) -> int:
        """A counter's value (0 when absent or not a number)."""
        raw = self.cache.get(key)
        if isinstance(raw, int):  # Redis counters come back decoded
            return raw
        try:
            return int(json.loads(raw)) if raw is not None else 0
        except (TypeError, ValueError):
            return 0

    def incr(self, key: str, seconds: int) -> int:
        """Add one to a counter that lives ``seconds`` from its first count."""
        with self._lock:
            count = self.count(key) + 1
            self.cache.set(key, json.dumps(count), timeout=seconds)
        return count

    def decr(self, key: str) -> None:
        """Take one from a counter, never below zero."""
        with self._lock:
            count = self.count(key)
            if count > 0:
                # cachelib has no "keep the expiry": the counter lives on
                # without one until its next first count (harmless: it only shrinks).
                self.cache.set(key, json.dumps(count - 1))

    def close(self) -> None:
        """Close the connection, if the backend has one."""


class RedisBackend(Backend):
    """Redis: counters are ``INCR`` and ``EXPIRE``, atomic across hosts."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(_JsonRedisCache(host=client))
        self._client = client

    def incr(self, key: str, seconds: int) -> int:
        """``INCR``; the first count starts the window (``EXPIRE NX`` needs Redis 7)."""
        count = int(self._client.incr(key))
        if count == 1:
            self._client.expire(key, seconds)
        return count

    def decr(self, key: str) -> None:
        """``DECR`` (the key keeps its expiry)."""
        self._client.decr(key)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


class MemcachedBackend(Backend):
    """memcached: counters are ``add`` then ``incr``, atomic across hosts."""

    def __init__(self, client: HashClient) -> None:
        # No serializer on the cachelib side: the client's serde stores text as is.
        super().__init__(MemcachedCache(servers=client))
        self._client = client

    def incr(self, key: str, seconds: int) -> int:
        """``add`` starts the window (a no-op when the counter exists), ``incr`` counts."""
        self._client.add(key, b"0", expire=seconds, noreply=False)
        return int(self._client.incr(key, 1, noreply=False) or 0)

    def decr(self, key: str) -> None:
        """``decr``, which stops at zero by itself."""
        self._client.decr(key, 1, noreply=False)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


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


def open_backend(url: str, *, max_entries: int, timeout: float) -> Backend:
    """Connect to the cache ``url`` names (checked by :func:`check_cache_url`).

    :param timeout: seconds a network cache may take per call.
    """
    scheme = url.partition("://")[0]
    if url == "memory":
        return Backend(_JsonSimpleCache(threshold=max_entries))
    if scheme == "file":
        directory = url.removeprefix("file://")
        return Backend(_JsonFileSystemCache(directory, threshold=max_entries, mode=0o600))
    if scheme in ("redis", "rediss"):
        import redis  # the "redis" extra

        return RedisBackend(
            redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        )
    from pymemcache.client.hash import HashClient  # the "memcached" extra

    servers = [_host_port(s) for s in url.removeprefix("memcached://").split(",")]
    return MemcachedBackend(
        HashClient(
            servers,
            serde=_RawSerde(),
            connect_timeout=timeout,
            timeout=timeout,
            default_noreply=False,
            retry_attempts=1,
        )
    )


def _host_port(server: str) -> tuple[str, int] | None:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


class _QuietJSONSerializer(JSONSerializer):
    """cachelib's JSON serializer, without its warnings on the root logger.

    cachelib reports a miss (``loads(None)``) through ``logging.warning``,
    which writes to the application's root logger (configuring it on first
    use) for every unseen token: a client could flood the logs.
    """

    def _warn(self, e: Exception) -> None:
        log.debug("cache value not JSON: %s", e)


# The serializer is set on the class so that nothing, not even the file
# backend's entry counter written during construction, is ever pickled.
class _JsonSimpleCache(SimpleCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


class _JsonFileSystemCache(FileSystemCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


class _JsonRedisCache(RedisCache):
    serializer = _QuietJSONSerializer()  # type: ignore[assignment]


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
