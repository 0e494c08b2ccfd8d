"""A tiny local identity provider for the benchmarks: a JWKS and an
introspection endpoint that counts its calls and can be slowed down."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from restauth_wsgi.providers.settings import ProviderSettings

#: The issuer of the JWTs the benchmarks sign.
ISSUER = "https://idp.bench.test"


class FakeIdp:
    """Serves ``/jwks`` and ``/introspect`` on a free loopback port."""

    def providers(self) -> tuple[ProviderSettings, ProviderSettings]:
        """The providers it stands for: JWTs from :data:`ISSUER` for audience
        ``api``, checked against its JWKS, and opaque tokens it introspects."""
        return (
            ProviderSettings(
                "idp",
                type="oidc",
                issuer=ISSUER,
                audience=("api",),
                jwks_url=f"{self.url}/jwks",
                username_prefix="idp:",
            ),
            ProviderSettings(
                "opq",
                type="oauth2",
                introspection_url=f"{self.url}/introspect",
                client_id="rs",
                client_secret="rs-secret",
                issuer="https://opaque.test",
                audience=("api",),
                # Each provider's users apart from the other's: otherwise every
                # middleware made warns that the two could map to one user.
                username_prefix="opq:",
            ),
        )

    def __init__(self, jwks: dict[str, Any], delay: float = 0.0) -> None:
        self.jwks = jwks
        self.delay = delay
        self.calls: dict[str, int] = {}
        idp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                idp.calls[path] = idp.calls.get(path, 0) + 1
                if idp.delay:
                    time.sleep(idp.delay)
                if path == "/jwks":
                    answer: dict[str, Any] = idp.jwks
                else:
                    token = dict(urllib.parse.parse_qsl(body.decode())).get("token", "")
                    answer = (
                        {
                            "active": True,
                            "sub": "alice",
                            "aud": "api",
                            "exp": int(time.time()) + 3600,
                            "scope": "read",
                        }
                        if token.startswith("opaque")
                        else {"active": False}
                    )
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
