"""What a first sighting costs, in instructions: a yardstick the machine's noise does not move.

    python -m benchmarks.count_first_seen

Runs the first sightings of ``benchmarks.inprocess`` (distinct RS256 JWTs,
the in-process memory of answers emptied before each; an API token's first
use, and its first request after a change to the store) under valgrind's
callgrind, which counts the instructions a process executes rather than the
time it takes: the same code on the same inputs gives the same count twice,
whatever else the machine is doing. Timings on a shared 2-core machine swing
by a factor of two between runs; a change of a few per cent in the
middleware's own steps is seen here, and then confirmed in time by
``benchmarks.inprocess``.

Each case runs inside one ``functools.reduce`` call, the only stretch
callgrind collects (``--toggle-collect``), and is dumped on its own
(``--dump-after``): the bare app sent the same requests, the middleware, the
JOSE work alone on the same tokens (``restauth_wsgi.jwt.jws``'s parse, PyJWT's
signature check, the registered claims), the claims mapping alone on their
claims (the largest of the middleware's own steps), and a JWT seen before. What the
middleware adds beyond its JOSE work is the middleware's count less the
bare app's and the JOSE work's. The API token's cases (SQLite) are each
compared with a request of the same token without the change feed
(``RESTAUTH_TOKEN_FEED=false``), which reads the store every time; the feed's
thread is stopped for them and its last poll held fresh, so that every
request counts the same steps.

An instruction is not a unit of time: C code that valgrind runs without the
processor's SHA extensions (the SHA-256 of a JWT's signing input, of an API
token's secret) counts more than it costs, and Python's interpreter runs
fewer instructions per cycle on a first sighting's many functions than on a
tight loop. Read the counts as the
relative size of the steps, and time only as ``benchmarks.inprocess`` measures it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jwt.algorithms import RSAAlgorithm

from benchmarks.common import QUICK, environ, hello, table, wsgi_call
from benchmarks.fake_idp import ISSUER
from benchmarks.profile_first_seen import first_sightings
from restauth_wsgi import RestAuthMiddleware
from restauth_wsgi.jwt import jws
from restauth_wsgi.tokens.issuing import issue_token

#: Requests counted per case (a first sighting each, but for the seen case).
CALLS = 20 if QUICK else 400
CASES = (
    "bare app",
    "middleware, first sighting",
    "JOSE work alone",
    "claims mapping alone",
    "middleware, JWT seen before",
    "API token, without the feed",
    "API token, first use in this process",
    "API token, first request after a change",
)
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


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
            recent._entries.clear()  # in the bare case too: both do the same extra work
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

    # An API token, used once by each middleware so that its code is warm.
    api = app.authentication._api
    assert api is not None
    assert api.feed is not None
    token, _ = issue_token(api.store, app.settings.token_policy(), owner="alice")
    api_header = environ(f"Bearer {token}")
    unfed = RestAuthMiddleware(hello, dataclasses.replace(app.settings, token_feed=False))
    fed_call, unfed_call = wsgi_call(app, api_header), wsgi_call(unfed, api_header)
    fed_call()
    time.sleep(0.3)  # the feed's first poll
    process = api.feed._process
    process.stop.set()  # no thread polling while the count runs, and its poll
    assert process.thread is not None
    process.thread.join()
    process.seen = (process.epoch, float("inf"))  # ... held fresh

    def after_a_change() -> None:
        process.seen = (object(), float("inf"))  # a poll that saw a change
        fed_call()

    cases = {
        "bare app": [sighting(call) for call in bare],
        "middleware, first sighting": [sighting(call) for call in first],
        "JOSE work alone": [jose(token) for token in tokens],
        "claims mapping alone": [mapped(c) for c in claims],
        "middleware, JWT seen before": [seen] * CALLS,
        "API token, without the feed": [unfed_call] * CALLS,
        "API token, first use in this process": [sighting(fed_call)] * CALLS,
        "API token, first request after a change": [after_a_change] * CALLS,
    }
    for calls in cases.values():
        for call in calls:
            call()  # keys fetched, code and caches warm
    for name in CASES:
        if name == "middleware, JWT seen before":
            seen()  # remembered again: the sightings emptied the memory
        # The only calls callgrind collects, each case dumped on its own.
        functools.reduce(lambda _, call: call(), cases[name], None)
    app.close()
    unfed.close()
    idp.stop()


def main() -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="restauth-callgrind-") as out:
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.count_first_seen",
                "--child",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # One dump per reduce call, numbered in order (callgrind.out.1, .2, ...).
        dumps = sorted(
            (p for p in Path(out).iterdir() if re.fullmatch(r"callgrind\.out\.\d+", p.name)),
            key=lambda p: int(p.suffix[1:]),
        )
        counts = []
        for dump in dumps:
            found = _TOTAL.search(dump.read_bytes())
            assert found is not None, f"no total in {dump}"
            counts.append(int(found.group(1)) / CALLS)
    if len(counts) != len(CASES):
        sys.exit(f"expected {len(CASES)} dumps from callgrind, found {len(counts)}")
    per = dict(zip(CASES, counts, strict=True))
    beyond = per["middleware, first sighting"] - per["bare app"] - per["JOSE work alone"]
    rows = [["case", "instructions per request"]]
    rows += [[name, f"{count:,.0f}"] for name, count in per.items()]
    rows.append(["first sighting beyond the bare app and the JOSE work", f"{beyond:,.0f}"])
    unfed = per["API token, without the feed"] - per["bare app"]
    for name in ("API token, first use in this process", "API token, first request after a change"):
        rows.append(
            [
                f"{name}, over the bare app, per request without the feed",
                f"{(per[name] - per['bare app']) / unfed:.3f}",
            ]
        )
    print(table(rows))
    print(
        f"\n{CALLS} requests per case, counted by callgrind (python -m benchmarks.count_first_seen)"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
