"""A local HTTP server that stands in for an identity provider.

It serves canned answers per path (discovery, JWKS, userinfo, check
endpoints), counts every call, forwards the rest to a real provider when
asked (a counting proxy in front of oidc-provider), and misbehaves on
demand: slow, garbage, 500s, huge or trickled answers, redirects, or down.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class Request:
    """What the fake provider received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Reply]


class FakeProvider:
    """One fake provider on a free loopback port."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[Request] = []
        #: ok, slow, stall, slow-head, truncated, bad-gzip, gzip-bomb, garbage, error, huge,
        #: trickle, redirect
        self.mode = "ok"
        self.delay = 5.0
        #: Whether a client hung up on a "slow-head" answer before its head was done.
        self.cut_off = False
        self.proxy_to: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                fake._connections.add(self.connection)

            def finish(self) -> None:
                fake._connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = _serve

        _Handler.protocol_version = "HTTP/1.1"
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        server = self._server
        threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), daemon=True
        ).start()

    def stop(self) -> None:
        """Stop listening and cut open connections, as a crashed provider would."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    # -- configuring answers ----------------------------------------------------------

    def route(self, path: str, handler: Handler, method: str = "GET") -> None:
        self.routes[(method, path)] = handler

    def json(
        self,
        path: str,
        body: Any,
        status: int = 200,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``path`` with fixed JSON."""
        self.route(path, lambda _: Reply(status, body, headers or {}), method)

    # -- serving ----------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=dict(urllib.parse.parse_qsl(parts.query)),
            headers={k: v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        self.calls[parts.path] += 1
        self.requests.append(request)
        reply = self._reply(request, handler.path)
        mode = self.mode
        if mode == "slow":
            time.sleep(self.delay)
        elif mode == "garbage":
            reply = Reply(200, b"<html>this is not JSON</html>")
        elif mode == "error":
            reply = Reply(500, {"error": "internal"})
        elif mode == "huge":
            reply = Reply(200, b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
        elif mode == "gzip-bomb":
            # 64 MiB of JSON in 64 KiB on the wire: the limit is on what it
            # inflates to.
            inflated = b'{"x": "' + b"a" * (64 * 1024 * 1024) + b'"}'
            reply = Reply(200, gzip.compress(inflated), {"Content-Encoding": "gzip"})
        elif mode == "bad-gzip":
            reply = Reply(200, b"this is no gzip stream", {"Content-Encoding": "gzip"})
        elif mode == "redirect":
            reply = Reply(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"})
        body = reply.encoded()
        if mode == "slow-head":
            # The status line, then a header line every 0.3 s, each within any
            # per-receive timeout, for `delay` seconds; then a good answer.
            try:
                handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
                ends = time.monotonic() + self.delay
                while time.monotonic() < ends:
                    handler.wfile.write(b"X-Slow: a\r\n")
                    handler.wfile.flush()
                    time.sleep(0.3)
                handler.wfile.write(
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
            except OSError:
                self.cut_off = True  # the client hung up before the head was done
            handler.close_connection = True
            return
        try:
            handler.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if mode == "stall":
                # Headers at once, then nothing past the reader's timeout.
                handler.wfile.flush()
                time.sleep(self.delay)
                handler.wfile.write(body)
            elif mode == "truncated":
                # Fewer bytes than Content-Length promised, then hang up.
                handler.wfile.write(body[: len(body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            elif mode == "trickle":
                for byte in body:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(0.2)
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reply(self, request: Request, raw_path: str) -> Reply:
        handler = self.routes.get((request.method, request.path))
        if handler is not None:
            return handler(request)
        if self.proxy_to is not None:
            forwarded = requests.request(
                request.method,
                self.proxy_to + raw_path,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                data=request.body,
                allow_redirects=False,
                timeout=10,
            )
            return Reply(
                forwarded.status_code,
                forwarded.content,
                {"Content-Type": forwarded.headers.get("Content-Type", "application/json")},
            )
        return Reply(404, {"error": "not_found"})
