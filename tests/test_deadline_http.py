"""The deadline of a provider call, below the middleware: with a receive
timeout far longer than the deadline, only the deadline can end the call,
so each test here fails if the watchdog does not cut where it should."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from restauth_wsgi.deadline_http import deadline, session

from .helpers import CONNECT_DRIP, TLS_HANDSHAKE_DRIP
from .helpers import dripping_server as dripping


@pytest.fixture
def dripping_server() -> Iterator[tuple[int, threading.Event]]:
    """A server that starts a TLS handshake record of 16 KiB, a byte at a time."""
    with dripping(*TLS_HANDSHAKE_DRIP) as server:
        yield server


@pytest.fixture
def dripping_proxy() -> Iterator[tuple[int, threading.Event]]:
    """A proxy that answers CONNECT a header line at a time."""
    with dripping(*CONNECT_DRIP) as server:
        yield server


def test_a_tls_handshake_sent_a_byte_at_a_time_is_cut_at_the_deadline(
    dripping_server: tuple[int, threading.Event],
) -> None:
    # While TLS is set up the connection's socket belongs to the TLS object
    # (its descriptor reads -1): shutting that one down did nothing, and the
    # call ran until the server stopped or the receive timeout came.
    port, cut_off = dripping_server
    with deadline(time.monotonic() + 1.0), pytest.raises(requests.RequestException):
        session().get(f"https://127.0.0.1:{port}/me", timeout=60)
    assert cut_off.wait(10), "the connection was shut down while the server still dripped"


def test_a_deadline_that_passed_before_the_socket_was_made_still_cuts_it(
    dripping_proxy: tuple[int, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline can pass during the name lookup or a slow connect, before
    # there is a socket to shut down; the cut must still reach the socket
    # made after it (here the proxy then answers CONNECT a line at a time).
    port, cut_off = dripping_proxy
    for name in ("NO_PROXY", "no_proxy"):  # loopback must go through the proxy
        monkeypatch.delenv(name, raising=False)
    proxies = {"https": f"http://127.0.0.1:{port}"}
    with deadline(time.monotonic() - 1), pytest.raises(requests.RequestException):
        session().get("https://127.0.0.1:9/me", proxies=proxies, timeout=60)
    assert cut_off.wait(10), "the connection was shut down while the proxy still dripped"
