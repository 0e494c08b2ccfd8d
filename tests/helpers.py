"""Helpers the tests share: the echo app, free ports, the CLI, real-part checks."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from werkzeug.test import Client

    from restauth_wsgi import Settings
    from restauth_wsgi.decision import Gatekeeper
    from restauth_wsgi.tokens.store import TokenStore

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, why: str) -> None:
    """Skip when a real part is missing on a laptop; fail under CI=true."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that shows what the middleware handed it."""
    identity = environ.get("restauth.identity")
    body = json.dumps(
        {
            "remote_user": environ.get("REMOTE_USER"),
            "auth_type": environ.get("AUTH_TYPE"),
            "identity": identity.to_json() if identity is not None else None,
            "spoofable": {k: v for k, v in environ.items() if k.startswith("HTTP_X_")},
            "untrusted": environ.get("restauth.untrusted_remote_user"),
            "all": sorted(k for k in environ if k.isupper()),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_env(store_url: str, **extra: str) -> dict[str, str]:
    """The environment for a ``restauth`` subprocess on the given store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAUTH_")}
    env.update(RESTAUTH_TOKEN_STORE=store_url, **extra)
    return env


#: The console script, run the way a user types it.
RESTAUTH = str(Path(sys.executable).with_name("restauth"))


def run_restauth(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``restauth *args`` on the given store, as a user types it; its output
    captured as text, its exit status left for the caller to judge."""
    return subprocess.run(
        [RESTAUTH, *args], env=cli_env(store_url), capture_output=True, text=True, check=False
    )


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Wait until something listens on ``port``; fail if ``process`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}: {output}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@contextmanager
def server_process(
    command: list[str], port: int, env: dict[str, str], cwd: Path | None = None
) -> Iterator[str]:
    """Run a server command, wait for its port, yield its base URL, stop it."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def gunicorn_command(app: str, port: int, *options: str) -> list[str]:
    """gunicorn from this environment, serving ``app`` on loopback ``port``."""
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "--bind",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        *options,
        app,
    ]


def raw_request(port: int, request: bytes) -> bytes:
    """Send raw bytes as an HTTP request and return the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait until ``check()`` holds: for recoveries, whose speed is not the point."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def claims_token(**claims: Any) -> str:
    """An opaque token that :func:`serve_claims` answers with these claims."""
    import base64

    return "claims-" + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def serve_claims(request: Any) -> Any:
    """A userinfo handler for a fake provider: the claims a :func:`claims_token` carries."""
    import base64

    from .fake_provider import Reply

    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not token.startswith("claims-"):
        return Reply(401, {"error": "invalid_token"})
    encoded = token.removeprefix("claims-")
    return Reply(200, json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))))


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server on a free loopback port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def code_blocks(markdown: Path, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a Markdown file, as printed there.

    Tests run documentation snippets from here, so that the docs cannot drift
    from what works.
    """
    text = markdown.read_text(encoding="utf-8")
    fence = re.compile(rf"^```{re.escape(language)}\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return [match.group(1) for match in fence.finditer(text)]


def code_block(markdown: Path, language: str, containing: str) -> str:
    """The one block of ``language`` in ``markdown`` that contains ``containing``."""
    found = [block for block in code_blocks(markdown, language) if containing in block]
    assert len(found) == 1, f"{len(found)} {language} blocks in {markdown} contain {containing!r}"
    return found[0]


class ClockedTokens(NamedTuple):
    """A middleware on an SQLite token store, the change feed on, whose every
    clock reads ``now[0]`` (tests move it); and the store, to issue tokens."""

    now: list[float]
    settings: Settings
    gatekeeper: Gatekeeper
    client: Client
    store: TokenStore


def clocked_tokens(directory: Path) -> ClockedTokens:
    """:class:`ClockedTokens` with its store in ``directory``, the clock at a whole second."""
    from werkzeug.test import Client

    from restauth_wsgi import RestAuthMiddleware, Settings
    from restauth_wsgi.decision import Gatekeeper
    from restauth_wsgi.tokens.store import open_store

    now = [float(int(time.time()))]
    settings = Settings(token_store=f"sqlite://{directory}/tokens.db")
    gatekeeper = Gatekeeper.from_settings(settings, clock=lambda: now[0])
    client = Client(RestAuthMiddleware(echo_app, settings=settings, gatekeeper=gatekeeper))
    return ClockedTokens(
        now, settings, gatekeeper, client, open_store(settings.token_store, timeout=5)
    )


#: What a server that drips sends first, then a piece of every 0.3 s.
TLS_HANDSHAKE_DRIP = (b"\x16\x03\x03\x40\x00", b"\x02")  # a 16 KiB record, a byte at a time
CONNECT_DRIP = (b"HTTP/1.1 200 Connection established\r\n", b"X-Slow: a\r\n")


@contextmanager
def dripping_server(first: bytes, then: bytes) -> Iterator[tuple[int, threading.Event]]:
    """A loopback server that reads one request (a ClientHello, a CONNECT),
    answers ``first``, then ``then`` every 0.3 s for 15 s: its port, and an
    event set if the client's side was shut down while it dripped."""
    cut_off = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(first)
                for _ in range(50):
                    conn.sendall(then)
                    time.sleep(0.3)
            except OSError:
                cut_off.set()

    threading.Thread(target=drip, daemon=True).start()
    try:
        yield listener.getsockname()[1], cut_off
    finally:
        listener.close()
