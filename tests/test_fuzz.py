"""Hardening checked by machines: any bytes in any header give a 4xx and never
authenticate; and over valid JWTs and API tokens, a corpus of mutations (every
character changed, truncations, bit flips, re-signing with the wrong key,
changed claims) where nothing but the byte-for-byte original is accepted.

The budgets are fixed and the examples derandomized, so CI runs the same cases.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider
from .helpers import echo_app
from .oidc_provider import SigningKey

Issue = Callable[..., tuple[str, TokenRecord]]
KEY = SigningKey("RS256")
OTHER_KEY = SigningKey("RS256")
ISSUER = "https://idp.example.test"
LATIN1 = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
HEADERS = [
    "HTTP_AUTHORIZATION",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_ORIGIN",
    "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
    "HTTP_REMOTE_USER",
    "HTTP_X_REMOTE_USER",
    "HTTP_COOKIE",
    "HTTP_HOST",
    "REMOTE_USER",
    "AUTH_TYPE",
    "REMOTE_ADDR",
]


@pytest.fixture
def strict(fake_provider: FakeProvider, store_url: str) -> Iterator[Client]:
    """Every feature on: providers, rules on networks, lockout, trusted proxies."""
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    provider = ProviderSettings(
        "idp", type="oidc", issuer=ISSUER, audience=("api",), jwks_url=f"{fake_provider.url}/jwks"
    )
    middleware = RestAuthMiddleware(
        echo_app,
        settings=Settings(
            token_store=store_url,
            providers=(provider,),
            trusted_proxies=1,
            read_only_groups=("r",),
            lockout_threshold=1_000_000,
        ),
    )
    yield Client(middleware)
    middleware.close()


@settings(
    max_examples=400,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    environ=st.dictionaries(st.sampled_from(HEADERS), LATIN1, max_size=len(HEADERS)),
    method=st.sampled_from(["GET", "POST", "OPTIONS", "DELETE", "X\u00ff", ""]),
    path=LATIN1,
)
def test_any_bytes_in_any_header_is_a_4xx(
    strict: Client, environ: dict[str, str], method: str, path: str
) -> None:
    environ = {**environ, "PATH_INFO": "/" + path, "REQUEST_METHOD": method or "GET"}
    response = strict.open("/", environ_overrides=environ)
    body = json.loads(response.get_data())
    if response.status_code == 200:
        # Only a CORS preflight passes unauthenticated, and never as anyone.
        assert environ["REQUEST_METHOD"] == "OPTIONS"
        assert body["remote_user"] is None
        assert body["identity"] is None
    else:
        assert 400 <= response.status_code < 500, response.status_code
        assert body["error"]


# -- the mutation corpus -------------------------------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def substitutions(token: str, alphabet: str, skip: str = "._") -> Iterator[str]:
    """Every position changed to two other characters of the alphabet."""
    for i, char in enumerate(token):
        if char in skip:
            continue
        others = [c for c in alphabet if c != char]
        for replacement in (others[i % len(others)], others[-1 - i % len(others)]):
            yield token[:i] + replacement + token[i + 1 :]


def jwt_mutations(token: str, claims: dict[str, Any]) -> Iterator[str]:
    header_b64, payload_b64, signature_b64 = token.split(".")
    yield from substitutions(token, B64URL)
    for length in range(0, len(token), 7):
        yield token[:length]
    yield token + "A"
    yield token + "."
    # Bit flips inside the decoded header and claims, re-encoded.
    for segment_index, segment in ((0, header_b64), (1, payload_b64)):
        raw = bytearray(_unb64(segment))
        for i in range(0, len(raw), max(1, len(raw) // 24)):
            for bit in (1, 64):
                flipped = bytearray(raw)
                flipped[i] ^= bit
                parts = [header_b64, payload_b64, signature_b64]
                parts[segment_index] = _b64(bytes(flipped))
                yield ".".join(parts)
    # Re-signed with another key, under the real key's kid and under its own.
    yield OTHER_KEY.sign(claims, {"kid": KEY.kid})
    yield OTHER_KEY.sign(claims)
    # Changed claims, signed with the wrong key.
    for change in (
        {"sub": "root"},
        {"aud": "other"},
        {"exp": claims["exp"] + 3600},
        {"iss": ISSUER + "/"},
        {"scope": "admin"},
    ):
        yield OTHER_KEY.sign({**claims, **change}, {"kid": KEY.kid})
    # The header's algorithm changed, signature kept or dropped.
    for alg in ("none", "HS256", "RS384", "ES256", "PS256"):
        header = _b64(json.dumps({"alg": alg, "kid": KEY.kid, "typ": "JWT"}).encode())
        yield f"{header}.{payload_b64}.{signature_b64}"
        yield f"{header}.{payload_b64}."


def api_token_mutations(token: str) -> Iterator[str]:
    yield from substitutions(token, BASE62, skip="_")
    for length in range(0, len(token)):
        yield token[:length]
    yield token + "0"
    yield token.swapcase()
    yield token.replace("restauth_", "Restauth_")
    yield token.replace("_", "-")


def test_no_mutation_of_a_valid_jwt_is_accepted(strict: Client) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "api", "sub": "alice", "iat": now, "exp": now + 600}
    token = KEY.sign(claims)
    assert strict.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    mutations = set(jwt_mutations(token, claims)) - {token}
    assert len(mutations) > 1000
    accepted = [
        m
        for m in sorted(mutations)
        if strict.get("/", environ_overrides={"HTTP_AUTHORIZATION": f"Bearer {m}"}).status_code
        == 200
    ]
    assert accepted == []


def test_no_mutation_of_a_valid_api_token_is_accepted(strict: Client, issue: Issue) -> None:
    token, _ = issue("alice")
    for header in (
        f"Bearer {token}",
        "Basic " + base64.b64encode(f"alice:{token}".encode()).decode(),
    ):
        assert strict.get("/", headers={"Authorization": header}).status_code == 200
    mutations = set(api_token_mutations(token)) - {token}
    assert len(mutations) > 150
    accepted = []
    for mutated in sorted(mutations):
        for header in (
            f"Bearer {mutated}",
            "Basic " + base64.b64encode(f"alice:{mutated}".encode()).decode(),
        ):
            if strict.get("/", environ_overrides={"HTTP_AUTHORIZATION": header}).status_code == 200:
                accepted.append(header)
    assert accepted == []
