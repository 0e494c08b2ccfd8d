"""What a first-seen JWT costs, in instructions: a yardstick the machine's noise does not move.

    python -m benchmarks.count_first_seen

Runs the first sightings of ``benchmarks.inprocess`` (distinct RS256 JWTs,
the in-process memory of answers emptied before each) under valgrind's
callgrind, which counts the instructions a process executes rather than the
time it takes: the same code on the same inputs gives the same count twice,
whatever else the machine is doing. Timings on a shared 2-core machine swing
by a factor of two between runs; a change of a few per cent in the
middleware's own steps is seen here, and then confirmed in time by
``benchmarks.inprocess``.

Each case is counted on its own (:mod:`benchmarks.callgrind`): the bare
app sent the same requests, the middleware, the JOSE work alone on the same
tokens (``restauth_wsgi.jwt.jws``'s parse, PyJWT's signature check, the
registered claims), the claims mapping alone on their claims (the largest
of the middleware's own steps), and a JWT seen before. What the middleware
adds beyond its JOSE work is the middleware's count less the bare app's and
the JOSE work's. ``benchmarks.count_api_token`` counts an API token's paths
the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from jwt.algorithms import RSAAlgorithm

from benchmarks.callgrind import collect, count
from benchmarks.common import QUICK, environ, hello, table, wsgi_call
from benchmarks.fake_idp import ISSUER
from benchmarks.profile_first_seen import first_sightings
from restauth_wsgi.jwt import jws

#: Requests counted per case (a first sighting each, but for the seen case).
CALLS = 20 if QUICK else 400
CASES = (
    # First: every case after it empties the memory of answers before each call.
    "middleware, JWT seen before",
    "bare app",
    "middleware, first sighting",
    "JOSE work alone",
    "claims mapping alone",
)


def _child() -> None:
    """Under callgrind: each case once to warm up, then once inside reduce."""
    made, idp, app, tokens, now = first_sightings(CALLS, "restauth-count-")
    recent = app.authentication._recent
    assert recent is not None
    public_key = made["rsa"].public_key()
    rs256 = RSAAlgorithm(RSAAlgorithm.SHA256)
    first = [wsgi_call(app, environ(f"Bearer {token}")) for token in tokens]
    bare = [wsgi_call(hello, environ(f"Bearer {token}")) for token in tokens]
    seen = wsgi_call(app, environ(f"Bearer {tokens[0]}"))

    def sighting(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            recent.entries.clear()  # in the bare case too: both do the same extra work
            call()

        return run

    def jose(token: str) -> Callable[[], None]:
        def run() -> None:
            parsed = jws.parse(token)
            assert parsed is not None
            jws.verify_signature(parsed, rs256, public_key)
            jws.check_claims(parsed.claims, issuers=(ISSUER,), audience=("api",), leeway=0)

        return run

    providers = app.gatekeeper.authentication.providers
    assert providers is not None
    mapping = providers.by_name["idp"].config.mapping
    claims = [parsed.claims for parsed in map(jws.parse, tokens) if parsed is not None]

    def mapped(claims: dict[str, object]) -> Callable[[], None]:
        def run() -> None:
            mapping.identity(claims, method="jwt", provider="idp", expires_at=float(now + 3600))

        return run

    cases = {
        "bare app": [sighting(call) for call in bare],
        "middleware, first sighting": [sighting(call) for call in first],
        "JOSE work alone": [jose(token) for token in tokens],
        "claims mapping alone": [mapped(c) for c in claims],
        "middleware, JWT seen before": [seen] * CALLS,
    }
    for calls in cases.values():
        for call in calls:
            call()  # keys fetched, code and caches warm
    seen()  # remembered again: the sightings emptied the memory
    collect({name: cases[name] for name in CASES})
    app.close()
    idp.stop()


def main() -> None:
    per = count("benchmarks.count_first_seen", CASES, CALLS)
    beyond = per["middleware, first sighting"] - per["bare app"] - per["JOSE work alone"]
    rows = [["case", "instructions per request"]]
    rows += [[name, f"{instructions:,.0f}"] for name, instructions in per.items()]
    rows.append(["first sighting beyond the bare app and the JOSE work", f"{beyond:,.0f}"])
    print(table(rows))
    print(
        f"\n{CALLS} requests per case, counted by callgrind (python -m benchmarks.count_first_seen)"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
