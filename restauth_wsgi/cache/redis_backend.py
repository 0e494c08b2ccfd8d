"""Redis as the shared cache (the ``redis`` extra): JSON only, lockout
counters that always expire, and replies cut at their deadline.

redis-py bounds each receive by ``socket_timeout``, not a reply: a server
(or a path to it) that answers a byte at a time, each byte within the
timeout, would hold the request for as long as it likes. Each reply read
here arms the process's watchdog on that connection's own socket, so only
the slow call is cut; other threads' calls on other pooled connections go
on. The deadline is the call's, not each reply's: twice the timeout from
the call's start, a new connection's handshake, each reply of a
transaction and a retry included. A cut call fails at once, without
redis-py's retry; an answer's call whose connection failed (a restarted
server, a silent one) is tried once more within the same deadline, and a
counter's never (a transaction whose reply came late may have run).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import redis
from cachelib import RedisCache
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

from restauth_wsgi.cache.backends import Backend, QuietJSONSerializer
from restauth_wsgi.watchdog import watch_socket


class CutOff(redis.exceptions.RedisError):
    """A call still waiting for its reply at its deadline; not retried (it
    would wait the deadline again), and its connection is closed."""


_local = threading.local()


@contextlib.contextmanager
def _within(limit: float) -> Iterator[None]:
    """The replies this thread reads in the block are due ``limit`` from now
    (an enclosing block's deadline stands): the handshake of a new
    connection, each reply of a transaction and a retry all count."""
    if getattr(_local, "at", None) is not None:
        yield
        return
    _local.at = time.monotonic() + limit
    try:
        yield
    finally:
        _local.at = None


class _JsonRedisCache(RedisCache):
    serializer = QuietJSONSerializer()  # type: ignore[assignment]

    def __init__(self, client: redis.Redis, limit: float) -> None:
        super().__init__(host=client)
        self._limit = limit

    def get(self, key: str) -> Any:
        with _within(self._limit):
            return super().get(key)

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> Any:
        with _within(self._limit):
            return super().set(key, value, timeout)

    def delete(self, key: str) -> Any:
        with _within(self._limit):
            return super().delete(key)


class RedisBackend(Backend):
    """Redis: counters are atomic across hosts and always carry their expiry.

    :param client: for answers (one retry on a failed connection).
    :param counters: for the lockout's counters, never retried: a
        transaction whose reply came late may have run, and running it
        again would count one failure twice.
    :param limit: seconds a call may take in all.
    """

    def __init__(self, client: redis.Redis, counters: redis.Redis, limit: float) -> None:
        super().__init__(_JsonRedisCache(client, limit))
        self._client = client
        self._counters = counters
        self._limit = limit

    def count(self, key: str) -> int:
        """A counter's value (0 when absent or not a number)."""
        with _within(self._limit):
            return super().count(key)

    def incr(self, key: str, seconds: int) -> int:
        """``SET NX EX`` (the first count starts the window) and ``INCR`` in
        one transaction: no failure between them can leave a counter that
        never expires (which would lock its user out for good)."""
        with _within(self._limit), self._counters.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=seconds, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
            if ttl == -1:  # a counter an older release left without an expiry
                self._counters.expire(key, seconds)
        return int(count)

    def decr(self, key: str) -> None:
        """``DECR``, in a transaction that first gives an absent counter a
        short life: a plain ``DECR`` on a counter that has just expired
        would make one that never does."""
        with _within(self._limit), self._counters.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=1, nx=True)
            pipe.decr(key)
            pipe.execute()

    def close(self) -> None:
        """Close the clients' connections."""
        self._client.close()
        self._counters.close()


def _read_within(
    conn: AbstractConnection, limit: float, read: Any, *args: Any, **kwargs: Any
) -> Any:
    own = conn._sock  # redis-py's socket while connected
    if own is None:
        return read(*args, **kwargs)
    at: float | None = getattr(_local, "at", None)
    watch = watch_socket(own.fileno(), at if at is not None else time.monotonic() + limit)

    def stop() -> bool:
        cut = watch()
        if cut:  # its socket is shut: the connection must not serve again
            conn.disconnect()
        return cut

    try:
        reply = read(*args, **kwargs)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        if stop():
            raise CutOff(f"no reply within {limit:g} s") from exc
        raise
    except BaseException:
        stop()
        raise
    stop()  # too late (the reply came just as the socket was shut): it disconnects
    return reply


class _CutReplies(AbstractConnection):
    """Mixed into redis-py's connection classes: every reply is read within
    its call's deadline."""

    reply_limit = 1.0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return _read_within(self, self.reply_limit, super().read_response, *args, **kwargs)


def open_redis(url: str, timeout: float) -> RedisBackend:
    """Connect to the ``redis://`` or ``rediss://`` ``url``."""
    base = redis.SSLConnection if url.startswith("rediss:") else redis.Connection
    limit = 2 * timeout
    # The limit rides on a class of this client's own: redis-py hands every
    # keyword to the connection's constructor, which takes no unknown ones.
    connection = type(base.__name__, (_CutReplies, base), {"reply_limit": limit})

    def client(retries: int) -> redis.Redis:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            connection_class=connection,
            # redis-py's default of ten tries, with backoff, held a request
            # for seconds.
            retry=Retry(NoBackoff(), retries),
        )

    # Answers get one more try on a failed connection (a server restarted
    # while a connection was lent); counters get none.
    return RedisBackend(client(1), client(0), limit)
