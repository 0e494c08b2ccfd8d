"""The backends ``RESTAUTH_CACHE`` names: cachelib caches kept JSON-only, and
counters on the same connection.

cachelib pickles by default and has no atomic counter that expires; here
every backend stores JSON text only (a writable shared cache must not be a
way to run code), and a :class:`Backend` pairs the cachelib cache with
counters made on the client this module itself created, so nothing reaches
into cachelib's private attributes. Redis and memcached, each an extra,
live in modules of their own (``redis_backend``, ``memcached_backend``),
imported only when named.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse

from cachelib import BaseCache, FileSystemCache, SimpleCache
from cachelib.serializers import JSONSerializer

from restauth_wsgi.urls import mask_url

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
        from restauth_wsgi.cache.redis_backend import open_redis  # the "redis" extra

        return open_redis(url, timeout)
    from restauth_wsgi.cache.memcached_backend import open_memcached  # the "memcached" extra

    servers = [_host_port(s) for s in url.removeprefix("memcached://").split(",")]
    return open_memcached([server for server in servers if server is not None], timeout)


def _host_port(server: str) -> tuple[str, int] | None:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


class QuietJSONSerializer(JSONSerializer):
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
    serializer = QuietJSONSerializer()  # type: ignore[assignment]


class _JsonFileSystemCache(FileSystemCache):
    serializer = QuietJSONSerializer()  # type: ignore[assignment]
