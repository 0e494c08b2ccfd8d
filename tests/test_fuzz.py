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
from jwt.algorithms import RSAAlgorithm
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider
from .helpers import echo_app, serve_claims
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


# -- hostile claims and headers: nothing but a documented 503 is a 5xx ------------------------

RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


def signed(header_json: str, claims_json: str, key: SigningKey = KEY) -> str:
    """A compact JWS over exactly this JSON text (NaN, 400-digit numbers and all)."""
    signing_input = f"{_b64(header_json.encode())}.{_b64(claims_json.encode())}"
    signature = RS256.sign(signing_input.encode(), key.private)
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture
def every_router(fake_provider: FakeProvider, store_url: str) -> Iterator[Client]:
    """A JWT provider, an oauth2 userinfo provider of unknown issuer, and API tokens."""
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    fake_provider.route("/me", serve_claims)
    providers = (
        ProviderSettings(
            "idp",
            type="oidc",
            issuer=ISSUER,
            audience=("api",),
            jwks_url=f"{fake_provider.url}/jwks",
        ),
        ProviderSettings("up", type="oauth2", userinfo_url=f"{fake_provider.url}/me"),
    )
    middleware = RestAuthMiddleware(
        echo_app, settings=Settings(token_store=store_url, providers=providers)
    )
    yield Client(middleware)
    middleware.close()


def _answer(client: Client, token: str) -> int:
    response = client.get("/", environ_overrides={"HTTP_AUTHORIZATION": f"Bearer {token}"})
    assert response.status_code < 500, response.get_data()
    return response.status_code


HEADER = json.dumps({"alg": "RS256", "kid": KEY.kid})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOlsieCJdfQ.", id="unsigned-iss-list"),
        pytest.param(
            f"{_b64(HEADER.encode())}.{_b64(json.dumps({'iss': {'a': 1}}).encode())}.",
            id="unsigned-iss-object",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": "{ISSUER}", "aud": "api", "sub": "a", "exp": 1{"0" * 400}}}'),
            id="exp-400-digits",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": "{ISSUER}", "aud": "api", "sub": "a", "exp": NaN}}'),
            id="exp-nan",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": "{ISSUER}", "aud": "api", "sub": "a", "exp": Infinity}}'),
            id="exp-infinity",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": "{ISSUER}", "aud": "api", "sub": "a", "exp": 1e999}}'),
            id="exp-1e999",
        ),
        pytest.param(
            signed(
                HEADER,
                f'{{"iss": "{ISSUER}", "aud": "api", "sub": "a", "exp": 9e15, "nbf": -Infinity}}',
            ),
            id="nbf-minus-infinity",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": "{ISSUER}", "aud": "api", "sub": {{"a": 1}}, "exp": 9e15}}'),
            id="sub-object",
        ),
        pytest.param(
            signed(HEADER, f'{{"iss": ["{ISSUER}"], "aud": "api", "sub": "a", "exp": 9e15}}'),
            id="signed-iss-list",
        ),
        pytest.param(
            signed('{"alg": "RS256", "kid": ["x"]}', f'{{"iss": "{ISSUER}", "exp": 9e15}}'),
            id="kid-list",
        ),
        pytest.param(
            signed('{"alg": ["RS256"]}', f'{{"iss": "{ISSUER}", "exp": 9e15}}'), id="alg-list"
        ),
        pytest.param(signed("[1, 2]", f'{{"iss": "{ISSUER}"}}'), id="header-array"),
    ],
)
def test_hostile_claims_are_refused_never_a_500(every_router: Client, token: str) -> None:
    assert 400 <= _answer(every_router, token) < 500


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
CLAIM_NAMES = st.sampled_from(
    ["iss", "aud", "sub", "exp", "nbf", "iat", "scope", "scp", "groups", "nonce", "client_id"]
)


@settings(
    max_examples=300,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    claims=st.dictionaries(CLAIM_NAMES | st.text(max_size=8), JSON, max_size=8),
    extra_header=st.dictionaries(
        st.sampled_from(["kid", "typ", "crit", "b64", "jku", "x"]), JSON, max_size=3
    ),
    issuer=st.sampled_from([ISSUER, None, "https://other.example"]),
    alg=st.sampled_from(["RS256", "none", "HS256", "ES256"]),
)
def test_any_signed_claims_and_header_are_a_4xx_or_a_valid_token(
    every_router: Client,
    claims: dict[str, Any],
    extra_header: dict[str, Any],
    issuer: str | None,
    alg: str,
) -> None:
    if issuer is not None:
        claims["iss"] = issuer
    header = {"kid": KEY.kid, **extra_header, "alg": alg}
    token = signed(json.dumps(header), json.dumps(claims))
    status = _answer(every_router, token)
    if status == 200:
        now = time.time()
        audience = claims["aud"]
        assert alg == "RS256"
        assert header["kid"] == KEY.kid
        assert claims["iss"] == ISSUER
        assert "api" in ([audience] if isinstance(audience, str) else audience)
        assert isinstance(claims["exp"], int | float)
        assert now < claims["exp"] < 2**53
    else:
        assert 400 <= status < 500
