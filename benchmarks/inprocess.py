"""In-process cost per request: the middleware against the bare app, same process.

    python benchmarks/inprocess.py

Each case times the bare hello app and the wrapped one on the same prepared
request, in alternating batches; the difference is what authentication
adds, the ratio how much slower the wrapped request is. Floors: PyJWT's own
``jwt.decode`` with the key in hand, and the bare cost of reading the
header, hashing it and one dict lookup with an expiry check.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    DISTINCT_TOKENS,
    environ,
    hello,
    interleaved,
    versions,
    work_dir,
    wsgi_call,
)
from benchmarks.fake_idp import ISSUER, FakeIdp
from benchmarks.report import publish
from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.store import open_store


def keys() -> dict[str, Any]:
    """An RSA and an EC key, and their public JWKS."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = []
    for kid, private, algorithm in (("rsa", rsa_key, RSAAlgorithm), ("ec", ec_key, ECAlgorithm)):
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, use="sig", alg="RS256" if kid == "rsa" else "ES256")
        jwks.append(jwk)
    return {"rsa": rsa_key, "ec": ec_key, "jwks": {"keys": jwks}}


def main() -> None:
    work = work_dir("restauth-bench-")
    store_url = f"sqlite://{work}/tokens.db"
    made = keys()
    idp = FakeIdp(made["jwks"])
    # The defaults otherwise: lockout on, audit off (no INFO handler), metrics off.
    settings = Settings(
        token_store=store_url, providers=idp.providers(), public_paths=("/public/*",)
    )
    wrapped = RestAuthMiddleware(hello, settings=settings)
    store = open_store(store_url, timeout=5)
    api_token, _ = issue_token(store, settings.token_policy(), owner="alice")
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "api", "sub": "alice", "iat": now, "exp": now + 3600}

    def signer(key: Any, alg: str, kid: str) -> Callable[[int], str]:
        return lambda n: jwt.encode({**claims, "jti": str(n)}, key, alg, {"kid": kid})

    rs256, es256 = signer(made["rsa"], "RS256", "rsa"), signer(made["ec"], "ES256", "ec")
    seen_jwt = rs256(0)
    opaque = "opaque-token-for-the-benchmark"
    basic = "Basic " + base64.b64encode(f"alice:{api_token}".encode()).decode()

    rows: list[dict[str, Any]] = []
    lookup_header = f"Bearer {seen_jwt}"
    lookup = {hashlib.sha256(lookup_header.encode()).digest(): (time.time() + 60, "identity")}
    lookup_env = environ(lookup_header)

    def floor_lookup() -> None:
        """Read the header, SHA-256 it, one dict lookup, an expiry check."""
        entry = lookup.get(hashlib.sha256(lookup_env["HTTP_AUTHORIZATION"].encode()).digest())
        if entry is None or entry[0] <= time.time():
            raise AssertionError

    token_id = api_token.split("_")[1]

    def floor_store() -> None:
        """One SQLite primary-key read of the token's record."""
        store.get(token_id)

    def case(
        name: str,
        header: str,
        target: str,
        floor: Any,
        floor_name: str,
        path: str = "/api/thing",
        app: Any = wrapped,
    ) -> None:
        env = environ(header, PATH_INFO=path)
        wsgi_call(app, env)()  # a first request fills whatever the case reads from memory
        bare, seconds, floored = interleaved(
            wsgi_call(hello, env), wsgi_call(app, env), floor, rounds=21
        )
        rows.append(
            {
                "case": name,
                "bare_us": bare * 1e6,
                "us": seconds * 1e6,
                "added_us": (seconds - bare) * 1e6,
                "ratio": seconds / bare,
                "floor": floor_name,
                "floor_us": floored * 1e6,
                "target": target,
            }
        )

    case(
        "public path (the middleware's fixed cost)",
        "Bearer x",
        "",
        floor_lookup,
        "header+hash+lookup",
        path="/public/x",
    )
    case(
        "API token as Bearer (SQLite, read every request)",
        f"Bearer {api_token}",
        "<= 12 us added",
        floor_store,
        "SQLite read",
    )
    case("API token as Basic user:token", basic, "<= 12 us added", floor_store, "SQLite read")
    cached_tokens = RestAuthMiddleware(
        hello, settings=dataclasses.replace(settings, token_cache_ttl=5)
    )
    case(
        "API token as Bearer, RESTAUTH_TOKEN_CACHE_TTL=5 (revocation within 5 s)",
        f"Bearer {api_token}",
        "",
        floor_store,
        "SQLite read",
        app=cached_tokens,
    )
    cached_tokens.close()
    case(
        "JWT seen before", f"Bearer {seen_jwt}", "<= 5 us added", floor_lookup, "header+hash+lookup"
    )
    case(
        "introspected opaque token, from the cache",
        f"Bearer {opaque}",
        "<= 5 us added",
        floor_lookup,
        "header+hash+lookup",
    )

    public_key = made["rsa"].public_key()

    def decode() -> object:
        return jwt.decode(
            seen_jwt,
            public_key,
            algorithms=["RS256"],
            audience="api",
            issuer=ISSUER,
        )

    recent = wrapped.authentication._recent
    assert recent is not None

    def cycling(app: Any, tokens: list[str]) -> Callable[[], None]:
        """A new token on each call, the in-process memory emptied: a first sighting."""
        counter = iter(range(10**9))

        def call() -> None:
            recent._entries.clear()  # in the bare case too, so both do the same extra work
            wsgi_call(app, environ(f"Bearer {tokens[next(counter) % len(tokens)]}"))()

        return call

    for name, make in (("RS256", rs256), ("ES256", es256)):
        tokens = [make(n) for n in range(1, DISTINCT_TOKENS + 1)]
        bare, seconds, decoded = interleaved(
            cycling(hello, tokens), cycling(wrapped, tokens), decode, rounds=9
        )
        row = {
            "case": f"JWT seen for the first time, {name}",
            "bare_us": bare * 1e6,
            "us": seconds * 1e6,
            "added_us": (seconds - bare) * 1e6,
            "ratio": seconds / bare,
            "target": "<= 1.1x jwt.decode" if name == "RS256" else "",
        }
        if name == "RS256":
            row["vs_decode"] = (seconds - bare) / decoded
            rows.append({"case": "floor: jwt.decode, RS256, key in hand", "us": decoded * 1e6})
        rows.append(row)

    publish(
        "inprocess",
        {
            "rows": rows,
            "versions": versions("restauth-wsgi", "PyJWT", "cryptography", "werkzeug", "cachelib"),
        },
    )
    wrapped.close()
    idp.stop()


if __name__ == "__main__":
    main()
