"""Where a first-seen JWT spends its time: cProfile over first sightings.

    python -m benchmarks.profile_first_seen

Sends distinct RS256 JWTs through the middleware, the in-process memory of
answers emptied before each (so each is a first sighting, as in
``benchmarks.inprocess``), under cProfile, and prints the functions by their
own time. cProfile inflates Python-heavy steps against the C work of the
signature check, so read the shares of the steps beyond the JOSE work, not
the totals (docs/performance.md, "Where a first-seen JWT spends its time").
"""

from __future__ import annotations

import cProfile
import pstats
import time
from typing import Any, NamedTuple

import jwt

from benchmarks.common import DISTINCT_TOKENS, environ, hello, work_dir, wsgi_call
from benchmarks.fake_idp import ISSUER, FakeIdp
from benchmarks.inprocess import keys
from restauth_wsgi import RestAuthMiddleware, Settings


class FirstSightings(NamedTuple):
    """A middleware in front of the fake provider, and distinct JWTs it has not seen."""

    made: dict[str, Any]
    idp: FakeIdp
    app: RestAuthMiddleware
    tokens: list[str]
    now: int


def first_sightings(count: int, prefix: str) -> FirstSightings:
    """``count`` distinct RS256 JWTs of the fake provider, and a middleware for them
    on the defaults (its token store in a temporary directory named ``prefix``)."""
    made = keys()
    idp = FakeIdp(made["jwks"])
    work = work_dir(prefix)
    settings = Settings(token_store=f"sqlite://{work}/tokens.db", providers=idp.providers())
    app = RestAuthMiddleware(hello, settings=settings)
    now = int(time.time())
    tokens = [
        jwt.encode(
            {"iss": ISSUER, "aud": "api", "sub": "alice", "iat": now, "exp": now + 3600}
            | {"jti": str(n)},
            made["rsa"],
            "RS256",
            {"kid": "rsa"},
        )
        for n in range(count)
    ]
    return FirstSightings(made, idp, app, tokens, now)


def main() -> None:
    _, idp, app, tokens, _ = first_sightings(DISTINCT_TOKENS, "restauth-profile-")
    calls = [wsgi_call(app, environ(f"Bearer {token}")) for token in tokens]
    recent = app.authentication._recent
    assert recent is not None

    def sightings() -> None:
        for call in calls:
            recent.entries.clear()
            call()

    sightings()  # keys fetched, code warm
    profile = cProfile.Profile()
    profile.enable()
    sightings()
    sightings()
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    app.close()
    idp.stop()


if __name__ == "__main__":
    main()
