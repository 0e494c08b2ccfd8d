"""A ``requests`` session whose calls cannot outlast their deadline.

requests' timeouts apply to each receive, so a server that sends its status
line and headers a byte at a time, each byte within the timeout, holds a
call for as long as it likes (``http.client`` reads up to 100 header lines
of 64 KiB each): a slow or hostile provider would hold the request, and a
key-set refresh would hold every request waiting for its lock. Here, once
a call's request is sent, the process's watchdog stands ready to shut the
connection's socket down at the call's deadline; the read then fails at
once, and the call is the provider failing, within its time. It stays
armed while the body is read, so a body sent a byte at a time is cut
at the same deadline; it is armed while the connection is made too (a
proxy's answer to ``CONNECT``, the TLS handshake). The same holds for calls
through ``HTTP_PROXY``/``HTTPS_PROXY``. The name lookup, which nothing
interrupts, runs on a thread of its own and is waited for only until the
deadline (:mod:`restauth_wsgi.bounded_lookup`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.response import BaseHTTPResponse

from restauth_wsgi.bounded_lookup import LookupTimeout, addresses
from restauth_wsgi.watchdog import WATCHDOG, shut_down

_local = threading.local()


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Calls this thread makes within the block end by ``at`` (``time.monotonic``):
    past it, the connection of each is shut down, until the block ends."""
    _local.at, _local.disarms = at, []
    try:
        yield
    finally:
        for disarm in _local.disarms:
            disarm()
        _local.at, _local.disarms = None, []


def _watched(conn: HTTPConnection, read_head: Callable[[], BaseHTTPResponse]) -> BaseHTTPResponse:
    at: float | None = getattr(_local, "at", None)
    sock = conn.sock
    if at is not None and sock is not None:
        # Armed until the block ends: the body, read after this returns, is
        # held to the same deadline.
        _local.disarms.append(WATCHDOG.arm(at, partial(shut_down, sock)))
    return read_head()


class _HTTPConnection(HTTPConnection):
    """A connection held to the thread's :func:`deadline` while it is made
    (a proxy's answer to ``CONNECT``, the TLS handshake) and while its
    answer's head is read (the body, by the block's end)."""

    _raw: socket.socket | None = None
    _cut_due = False

    def _new_conn(self) -> socket.socket:
        at: float | None = getattr(_local, "at", None)
        if at is None:
            return super()._new_conn()
        sock = self._connect_by_address(at)
        # A socket of our own on the connection's: while TLS is set up, the
        # connection's own socket has been handed to the TLS object (its
        # descriptor reads -1), and only this one can be shut down.
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        self._raw = raw
        if self._cut_due:  # the deadline passed while the socket was made
            shut_down(raw)
        return sock

    def _connect_by_address(self, at: float) -> socket.socket:
        # The name looked up within the deadline (urllib3 would call
        # getaddrinfo, which nothing interrupts), then urllib3 connecting to
        # each address in turn, as it would have.
        name = self._dns_host
        try:
            found = addresses(name, self.port or 80, within=at - time.monotonic())
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except UnicodeError:  # as urllib3 words a name the IDNA codec refuses
            raise LocationParseError(f"'{name}', label empty or too long") from None
        except LookupTimeout as exc:
            raise ConnectTimeoutError(self, str(exc)) from exc
        failure: Exception | None = None
        try:
            for address in found:
                # Read by create_connection only; self.host (SNI, the
                # certificate's name) is restored before TLS begins.
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    failure = exc
        finally:
            self._dns_host = name
        raise failure or NewConnectionError(self, f"{name} has no address")

    def _cut_while_connecting(self) -> None:
        # The flag first: _new_conn sets the socket, then reads the flag, so
        # whichever comes second shuts the socket down.
        self._cut_due = True
        raw = self._raw
        if raw is not None:
            shut_down(raw)

    def connect(self) -> None:
        at: float | None = getattr(_local, "at", None)
        if at is None:
            super().connect()
            return
        self._cut_due = False
        disarm = WATCHDOG.arm(at, self._cut_while_connecting)
        try:
            super().connect()
        finally:
            disarm()  # waits for a running cut, so the socket is closed after it
            raw, self._raw = self._raw, None
            if raw is not None:
                raw.close()

    def getresponse(self) -> Any:  # the head of the answer, against the deadline
        return _watched(self, super().getresponse)


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):
    """An HTTPS connection held to the deadline as :class:`_HTTPConnection` is."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Calls through HTTP_PROXY/HTTPS_PROXY are pooled by a manager of
        # their own (made here on first use), held to the same deadline. A
        # SOCKS proxy's manager keeps its own connection classes.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def session() -> requests.Session:
    """A session whose connections honour :func:`deadline`."""
    made = requests.Session()
    adapter = _Adapter()
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made
