"""memcached as the shared cache (the ``memcached`` extra): text stored as
is and never unpickled, a pool of connections the threads share safely, and
replies cut at their deadline.

pymemcache's plain client is not safe to share between threads (two
threads' commands and replies interleave on its one socket), so each server
gets a pooled client that lends a connection to one call at a time. Its
timeout bounds each receive, not a reply: a server that answers a byte at a
time would hold the request. Here each connection's socket gives the reply
to a command a deadline when the command is sent, and each receive waits
only for what is left of it.
"""

from __future__ import annotations

import socket
import time
import types
from typing import Any

from cachelib import MemcachedCache
from pymemcache.client.hash import HashClient

from restauth_wsgi.cache.backends import Backend


class MemcachedBackend(Backend):
    """memcached: counters are ``add`` then ``incr``, atomic across hosts."""

    def __init__(self, client: HashClient) -> None:
        # No serializer on the cachelib side: the client's serde stores text as is.
        super().__init__(MemcachedCache(servers=client))
        self._client = client

    def incr(self, key: str, seconds: int) -> int:
        """``add`` starts the window (a no-op when the counter exists), ``incr`` counts."""
        for _ in range(2):
            self._client.add(key, b"0", expire=seconds, noreply=False)
            count = self._client.incr(key, 1, noreply=False)
            if count is not None:
                return int(count)
            # The counter expired between the two: start its window again.
        raise RuntimeError(f"memcached lost the counter {key!r} twice in a row")

    def decr(self, key: str) -> None:
        """``decr``, which stops at zero by itself (and creates nothing)."""
        self._client.decr(key, 1, noreply=False)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


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


class _HashClient(HashClient):  # type: ignore[misc]  # pymemcache ships no types
    """pymemcache's client over several servers, without its failure handling.

    Its own handling answered calls to a server that had failed a moment
    ago with a default (a miss, a count of 0: the lockout silently off),
    and took a failed server out of the key mapping and put it back with a
    new pool, closing connections other threads were using and sending
    their keys to another server meanwhile, all on dictionaries shared by
    the threads without a lock. Here a failure is only raised: the call's
    own connection is dropped by its pool, and SharedCache decides how
    long to leave the cache alone.
    """

    def _mark_failed_server(self, server: Any) -> None:
        pass

    def _retry_dead(self) -> None:
        pass


class _DeadlineSocket(socket.socket):
    """A socket on which a reply must arrive whole within ``reply_limit`` of
    the command that asked for it (pymemcache sends each command with one
    ``sendall`` and reads its reply with ``recv``)."""

    receive_limit = 0.5
    reply_limit = 1.0
    _due = 0.0

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send a command; its reply is due ``reply_limit`` from now."""
        self.settimeout(self.receive_limit)
        super().sendall(data, flags)
        self._due = time.monotonic() + self.reply_limit

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Receive, waiting no longer than is left until the reply is due."""
        left = self._due - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no whole reply within {self.reply_limit:g} s")
        self.settimeout(min(self.receive_limit, left))
        return super().recv(bufsize, flags)


class _Sockets(types.ModuleType):
    """The ``socket`` module as pymemcache uses it, making deadline sockets."""

    def __init__(self, timeout: float) -> None:
        super().__init__("restauth_wsgi_memcached_sockets")
        self._made = type(
            "_DeadlineSocket",
            (_DeadlineSocket,),
            {"receive_limit": timeout, "reply_limit": 2 * timeout},
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)

    def socket(self, *args: Any) -> socket.socket:
        """A deadline socket, made as ``socket.socket(*args)`` would be."""
        sock: socket.socket = self._made(*args)
        return sock


def open_memcached(servers: list[tuple[str, int]], timeout: float) -> MemcachedBackend:
    """Connect to memcached ``servers`` (host, port)."""
    return MemcachedBackend(
        _HashClient(
            servers,
            serde=_RawSerde(),
            connect_timeout=timeout,
            timeout=timeout,
            default_noreply=False,
            use_pooling=True,
            socket_module=_Sockets(timeout),
        )
    )
