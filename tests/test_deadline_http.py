"""The deadline of a provider call, below the middleware: with a receive
timeout far longer than the deadline, only the deadline can end the call,
so each test here fails if the watchdog does not cut where it should."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.exceptions import LocationParseError

from restauth_wsgi.deadline_http import deadline, session

from .fake_provider import FakeProvider
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


def test_a_name_lookup_that_hangs_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # getaddrinfo cannot be interrupted: a resolver that does not answer
    # held the call for as long as it took. The resolver is the one part
    # played here (no loopback DNS server can stand in for the system's).
    answer = threading.Event()
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-lookup.test":
            answer.wait(60)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            with deadline(time.monotonic() + 1.0):
                session().get("http://slow-lookup.test:9/me", timeout=60)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(15)
    finished = not caller.is_alive()
    answer.set()
    assert finished, "the call still waited for the lookup 15 s on (its deadline: 1 s)"
    assert isinstance(outcome[0], requests.ConnectionError), outcome


def test_a_name_with_several_addresses_is_tried_address_by_address(
    fake_provider: FakeProvider,
) -> None:
    # localhost may resolve to ::1 before 127.0.0.1, where the server
    # listens: the next address is tried, as urllib3 would, and the
    # certificate's and the request's names are the host's, not an address.
    fake_provider.json("/me", {"sub": "alice"})
    port = fake_provider.url.rsplit(":", 1)[1]
    with deadline(time.monotonic() + 10):
        answer = session().get(f"http://localhost:{port}/me", timeout=5)
    assert answer.status_code == 200
    assert fake_provider.requests[-1].headers["Host"] == f"localhost:{port}"


def test_tls_to_a_name_checks_the_certificate_for_the_name(tmp_path: Path) -> None:
    # The lookup hands urllib3 one address at a time; the certificate must
    # still be checked (and SNI sent) for the name, never the address: the
    # certificate here names localhost only.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    seen_names: list[str | None] = []
    context.sni_callback = lambda sock, server_name, ctx: seen_names.append(server_name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    try:
        with deadline(time.monotonic() + 10):
            answer = session().get(f"https://localhost:{port}/", verify=str(cert_file), timeout=5)
        assert answer.text == "ok"
        assert seen_names == ["localhost"]
    finally:
        listener.close()


def test_a_name_the_idna_codec_refuses_is_urllib3s_parse_error() -> None:
    # As urllib3 words it without the bounded lookup (the provider call makes
    # it a 503): not a UnicodeError from deep in getaddrinfo.
    with deadline(time.monotonic() + 5), pytest.raises(LocationParseError):
        session().get("http://a..b/x", timeout=5)
