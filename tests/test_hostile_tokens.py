"""Hostile JWTs: each is refused with 401, and none makes a key fetch beyond
the one that warmed the key set (forged kids cannot drive fetches, jku/x5u
are never followed). Signed with the real provider's own key where the
attack needs it, since the fixture owns that key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from werkzeug.test import Client

from restauth_wsgi import Settings
from restauth_wsgi.providers.settings import ASYMMETRIC_ALGORITHMS, ProviderSettings

from .fake_provider import FakeProvider
from .oidc_provider import CLIENT, RESOURCE_JWT, OidcProvider, SigningKey

pytestmark = pytest.mark.slow


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = unsigned(header, claims)[:-1]
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def default_claims(op: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": op.issuer,
        "aud": RESOURCE_JWT,
        "sub": "alice",
        "client_id": CLIENT[0],
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


class Attack:
    """A hostile token, built once the provider and the attacker's server exist."""

    def __init__(self, build: Callable[[OidcProvider, FakeProvider], str]) -> None:
        self.build = build


def _public_pem(op: OidcProvider) -> bytes:
    return op.signing_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


ATTACKER_KEY = SigningKey("RS256")

ATTACKS = [
    pytest.param(
        lambda op, evil: unsigned({"alg": "none", "typ": "at+jwt"}, default_claims(op)),
        id="alg-none",
    ),
    pytest.param(
        lambda op, evil: unsigned({"alg": "None", "typ": "at+jwt"}, default_claims(op)),
        id="alg-None",
    ),
    pytest.param(
        lambda op, evil: hs256(
            _public_pem(op),
            {"alg": "HS256", "typ": "at+jwt", "kid": op.signing_key.kid},
            default_claims(op),
        ),
        id="hs256-with-public-key",
    ),
    pytest.param(
        lambda op, evil: ATTACKER_KEY.sign(default_claims(op), {"typ": "at+jwt"}),
        id="unknown-kid",
    ),
    pytest.param(
        lambda op, evil: ATTACKER_KEY.sign(
            default_claims(op),
            {"typ": "at+jwt", "jku": f"{evil.url}/jwks", "x5u": f"{evil.url}/cert"},
        ),
        id="jku-x5u-elsewhere",
    ),
    pytest.param(
        lambda op, evil: ATTACKER_KEY.sign(
            default_claims(op), {"typ": "at+jwt", "jwk": ATTACKER_KEY.public_jwk()}
        ),
        id="embedded-jwk",
    ),
    pytest.param(
        lambda op, evil: ATTACKER_KEY.sign(
            default_claims(op), {"typ": "at+jwt", "kid": op.signing_key.kid}
        ),
        id="other-key-same-kid",
    ),
    pytest.param(
        lambda op, evil: op.mint({"iat": int(time.time()) - 600, "exp": int(time.time()) - 300}),
        id="expired",
    ),
    pytest.param(lambda op, evil: op.mint({"nbf": int(time.time()) + 600}), id="nbf-future"),
    pytest.param(lambda op, evil: op.mint({"iat": int(time.time()) + 600}), id="iat-future"),
    pytest.param(lambda op, evil: op.mint({"iss": "https://evil.example"}), id="wrong-iss"),
    pytest.param(lambda op, evil: op.mint({"iss": op.issuer + "/"}), id="iss-trailing-slash"),
    pytest.param(lambda op, evil: op.mint({"aud": "https://other.example/api"}), id="wrong-aud"),
    pytest.param(lambda op, evil: op.mint({"aud": None}), id="no-aud"),
    pytest.param(lambda op, evil: op.mint({"exp": None}), id="no-exp"),
    pytest.param(lambda op, evil: op.mint({"exp": "tomorrow"}), id="exp-not-a-number"),
    pytest.param(lambda op, evil: op.mint({}, {"typ": "JWT"}), id="id-token-typ"),
    pytest.param(lambda op, evil: op.user_tokens("alice")["id_token"], id="real-id-token"),
    pytest.param(lambda op, evil: op.mint({})[:-4] + "AAAA", id="bad-signature"),
    pytest.param(lambda op, evil: op.mint({}) + "." + "x", id="four-segments"),
    pytest.param(lambda op, evil: "ab+/cd.ef+/gh.ij+/kl", id="non-base64-segments"),
    pytest.param(
        lambda op, evil: b64url(b'{"alg":"RS256"}') + ".bm90IGpzb24." + "c2ln", id="not-json"
    ),
    pytest.param(lambda op, evil: op.mint({"pad": "x" * 1_000_000}), id="1mb-token"),
]


@pytest.fixture
def attacker() -> Iterator[FakeProvider]:
    evil = FakeProvider()
    evil.json("/jwks", {"keys": [ATTACKER_KEY.public_jwk()]})
    yield evil
    evil.stop()


@pytest.mark.parametrize("build", ATTACKS)
def test_hostile_tokens_are_refused_without_key_fetches(
    oidc_provider: OidcProvider,
    fake_provider: FakeProvider,
    attacker: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    build: Callable[[OidcProvider, FakeProvider], str],
) -> None:
    fake_provider.proxy_to = oidc_provider.issuer
    provider = ProviderSettings(
        "op",
        type="oidc",
        issuer=oidc_provider.issuer,
        # The real ID token's audience is the client: accept it too, so that
        # only the access-token type tells the ID token apart.
        audience=(RESOURCE_JWT, CLIENT[0]),
        access_token_type=("at+jwt",),
        jwks_url=f"{fake_provider.url}/jwks",
    )
    client = make_client(Settings(token_store=settings.token_store, providers=(provider,)))
    warm = oidc_provider.mint({})
    assert client.get("/", headers={"Authorization": f"Bearer {warm}"}).status_code == 200
    assert fake_provider.calls["/jwks"] == 1

    hostile = build(oidc_provider, attacker)
    for _ in range(2):  # twice: a refusal must not be "fixed" by a second try
        response = client.get("/", headers={"Authorization": f"Bearer {hostile}"})
        assert response.status_code == 401, response.get_data(as_text=True)
        assert json.loads(response.get_data())["error"] == "invalid_token"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # The first unknown kid after a routine fetch may fetch once (a key rotated
    # just after it must work); the cooldown holds every later one.
    header = _header(hostile)
    unknown_kid = (
        header.get("alg") in ASYMMETRIC_ALGORITHMS
        and isinstance(header.get("kid"), str)
        and header["kid"] not in {k.kid for k in oidc_provider.keys}
    )
    assert fake_provider.calls["/jwks"] == (2 if unknown_kid else 1), "no fetch beyond that"


def _header(token: str) -> dict[str, Any]:
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


def test_forged_kids_drive_at_most_one_fetch_per_cooldown(
    oidc_provider: OidcProvider,
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    fake_provider.proxy_to = oidc_provider.issuer
    provider = ProviderSettings(
        "op",
        type="oidc",
        issuer=oidc_provider.issuer,
        audience=(RESOURCE_JWT,),
        jwks_url=f"{fake_provider.url}/jwks",
    )
    # The default cooldown (60 s): the routine warm-up fetch does not use it up,
    # so the first unknown kid fetches at once, and none after it.
    client = make_client(Settings(token_store=settings.token_store, providers=(provider,)))
    assert (
        client.get("/", headers={"Authorization": f"Bearer {oidc_provider.mint({})}"}).status_code
        == 200
    )
    for _ in range(50):
        forged = oidc_provider.mint({"jti": secrets.token_hex(4)}, {"kid": secrets.token_hex(8)})
        assert client.get("/", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert fake_provider.calls["/jwks"] == 2, "the warm-up and one refetch for unknown kids"
