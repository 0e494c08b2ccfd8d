"""A real OpenID provider on loopback: the npm package oidc-provider, run by Node.

The fixture owns the provider's signing keys (written to a JWKS file the
provider loads), so tests can rotate them across a restart and sign hostile
tokens with the very key the provider uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .helpers import free_port, wait_for_port

OIDC_DIR = Path(__file__).with_name("oidc")
RESOURCE_JWT = "https://api.example.test/jwt"
RESOURCE_OPAQUE = "https://api.example.test/opaque"
RESOURCE_OTHER = "https://other.example.test/opaque"
CLIENT = ("api-client", "api-client-secret")
RESOURCE_SERVER = ("resource-server", "resource-server-secret")
RESOURCE_SERVER_POST = ("resource-server-post", "resource-server-post-secret")
REDIRECT_URI = "http://127.0.0.1/callback"


def node_available() -> str | None:
    """Why the provider cannot run here, or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run 'npm ci' in tests/oidc"
    return None


class SigningKey:
    """A private key with its kid, as the provider and the tests both use it."""

    def __init__(self, kind: str = "RS256") -> None:
        self.alg = kind
        self.kid = secrets.token_hex(8)
        if kind == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private))
        self.jwk.pop("key_ops", None)  # RFC 7517: not together with "use"
        self.jwk.update(kid=self.kid, alg=kind, use="sig")

    def public_jwk(self) -> dict[str, Any]:
        """The public half, as a JWKS would publish it."""
        private_members = {"d", "p", "q", "dp", "dq", "qi"}
        return {k: v for k, v in self.jwk.items() if k not in private_members}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """A JWT signed with this key (kid set unless the headers say otherwise)."""
        merged = {"kid": self.kid, **(headers or {})}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=merged)


class OidcProvider:
    """One oidc-provider process on a free loopback port."""

    def __init__(self, workdir: Path, access_ttl: int = 300) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.access_ttl = access_ttl
        self.keys = [SigningKey("RS256")]
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "oidc-provider.log"

    # -- the process ---------------------------------------------------------------

    def start(self) -> None:
        """Start the provider with the current keys and wait until it answers."""
        keys_file = self.workdir / "provider-keys.json"
        keys_file.write_text(json.dumps({"keys": [k.jwk for k in self.keys]}))
        env = {
            **os.environ,
            "PORT": str(self.port),
            "KEYS_FILE": str(keys_file),
            "ACCESS_TTL": str(self.access_ttl),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["node", "server.mjs"], cwd=OIDC_DIR, env=env, stdout=log, stderr=log
            )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        """Stop the provider: it forgets every opaque token it issued."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def rotate_keys(self) -> SigningKey:
        """Restart with a new signing key first and the old one still published."""
        new = SigningKey("RS256")
        self.keys.insert(0, new)
        self.stop()
        self.start()
        return new

    @property
    def signing_key(self) -> SigningKey:
        """The key the provider signs with now."""
        return self.keys[0]

    # -- tokens ------------------------------------------------------------------------

    def client_credentials(
        self, resource: str, scope: str = "read", client: tuple[str, str] = CLIENT
    ) -> str:
        """An access token for ``resource`` from the client-credentials grant."""
        answer = requests.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            auth=client,
            timeout=10,
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def user_tokens(
        self, user: str, *, resource: str | None = None, scope: str = "openid email profile"
    ) -> dict[str, Any]:
        """Log ``user`` in through the authorization-code flow (PKCE, the dev
        login and consent forms, driven over plain HTTP) and return the token
        response: ``access_token``, ``id_token``..."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        params = {
            "client_id": CLIENT[0],
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": secrets.token_hex(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if resource:
            params["resource"] = resource
        with requests.Session() as browser:
            location = f"{self.issuer}/auth?{urllib.parse.urlencode(params)}"
            for _ in range(10):
                answer = browser.get(location, allow_redirects=False, timeout=10)
                if answer.status_code == 200 and "/interaction/" in answer.url:
                    answer.url.rstrip("/").rsplit("/", 1)[1]
                    form = {"prompt": "login", "login": user, "password": "x"}
                    if 'name="prompt" value="consent"' in answer.text:
                        form = {"prompt": "consent"}
                    answer = browser.post(answer.url, data=form, allow_redirects=False, timeout=10)
                location = urllib.parse.urljoin(answer.url, answer.headers.get("Location", ""))
                if location.startswith(REDIRECT_URI):
                    break
            else:
                raise AssertionError("the authorization-code flow did not finish")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
        assert "code" in query, query
        exchange = {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        if resource:
            exchange["resource"] = resource
        answer = requests.post(f"{self.issuer}/token", data=exchange, auth=CLIENT, timeout=10)
        answer.raise_for_status()
        tokens: dict[str, Any] = answer.json()
        return tokens

    def revoke(self, token: str) -> None:
        """Revoke a token at the provider (RFC 7009)."""
        answer = requests.post(
            f"{self.issuer}/token/revocation", data={"token": token}, auth=CLIENT, timeout=10
        )
        answer.raise_for_status()

    def mint(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """A JWT signed with the provider's current key, with ``claims`` over
        sensible defaults (this provider's iss, the JWT resource as aud, a
        five-minute exp); a claim set to None is left out."""
        now = int(time.time())
        merged: dict[str, Any] = {
            "iss": self.issuer,
            "aud": RESOURCE_JWT,
            "sub": "alice",
            "client_id": CLIENT[0],
            "scope": "read",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            **claims,
        }
        merged = {k: v for k, v in merged.items() if v is not None}
        return self.signing_key.sign(merged, {"typ": "at+jwt", **(headers or {})})
