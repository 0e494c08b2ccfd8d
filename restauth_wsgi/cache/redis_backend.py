"""Redis as the shared cache (the ``redis`` extra): JSON only, lockout
counters that always expire, and replies cut at their deadline.

redis-py bounds each receive by ``socket_timeout``, not a reply: a server
(or a path to it) that answers a byte at a time, each byte within the
timeout, would hold the request for as long as it likes. Each reply read
here arms the process's watchdog on that connection's own socket, so only
the slow call is cut; other threads' calls on other pooled connections go
on. A cut call fails at once, without redis-py's retry; a connection that
fails (a restarted server, a silent one) is tried once more, so a call
lasts at most about twice the timeout.
"""

from __future__ import annotations

import os
import socket
import time
from functools import partial
from typing import Any

import redis
from cachelib import RedisCache
from redis.backoff import NoBackoff
from redis.retry import Retry

from restauth_wsgi.cache.backends import Backend, QuietJSONSerializer
from restauth_wsgi.watchdog import WATCHDOG, shut_down


class CutOff(redis.exceptions.RedisError):
    """A reply still arriving at its deadline; not retried (it would wait
    the deadline again), and its connection is closed."""


class _JsonRedisCache(RedisCache):
    serializer = QuietJSONSerializer()  # type: ignore[assignment]


class RedisBackend(Backend):
    """Redis: counters are atomic across hosts and always carry their expiry."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(_JsonRedisCache(host=client))
        self._client = client

    def incr(self, key: str, seconds: int) -> int:
        """``SET NX EX`` (the first count starts the window) and ``INCR`` in
        one transaction: no failure between them can leave a counter that
        never expires (which would lock its user out for good)."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=seconds, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
        if ttl == -1:  # a counter an older release left without an expiry
            self._client.expire(key, seconds)
        return int(count)

    def decr(self, key: str) -> None:
        """``DECR``, in a transaction that first gives an absent counter a
        short life: a plain ``DECR`` on a counter that has just expired
        would make one that never does."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=1, nx=True)
            pipe.decr(key)
            pipe.execute()

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _read_within(conn: redis.Connection, limit: float, read: Any, *args: Any, **kwargs: Any) -> Any:
    # A socket of our own on the connection's: the watchdog then never
    # shuts down a descriptor number that was closed and reused, and never
    # touches the TLS object the reading thread is inside.
    own = conn._sock  # redis-py's socket while connected
    if own is None:
        return read(*args, **kwargs)
    sock = socket.socket(fileno=os.dup(own.fileno()))
    disarm = WATCHDOG.arm(time.monotonic() + limit, partial(shut_down, sock))

    def stop() -> bool:
        cut = disarm()
        sock.close()
        if cut:  # its socket is shut: the connection must not serve again
            conn.disconnect()
        return cut

    try:
        reply = read(*args, **kwargs)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        if stop():
            raise CutOff(f"no whole reply within {limit:g} s") from exc
        raise
    except BaseException:
        stop()
        raise
    stop()  # too late (the reply came just as the socket was shut): it disconnects
    return reply


class _Connection(redis.Connection):
    reply_limit = 1.0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return _read_within(self, self.reply_limit, super().read_response, *args, **kwargs)


class _SSLConnection(redis.SSLConnection):
    reply_limit = 1.0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return _read_within(self, self.reply_limit, super().read_response, *args, **kwargs)


def open_redis(url: str, timeout: float) -> RedisBackend:
    """Connect to the ``redis://`` or ``rediss://`` ``url``."""
    base = _SSLConnection if url.startswith("rediss:") else _Connection
    # The limit rides on a class of this client's own: redis-py hands every
    # keyword to the connection's constructor, which takes no unknown ones.
    connection = type(base.__name__, (base,), {"reply_limit": 2 * timeout})
    return RedisBackend(
        redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            connection_class=connection,
            # One more try on a failed connection (a restarted server leaves
            # dead ones in the pool); redis-py's default of ten, with backoff,
            # held a request for seconds.
            retry=Retry(NoBackoff(), 1),
        )
    )
