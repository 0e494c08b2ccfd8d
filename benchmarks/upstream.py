"""Upstream discipline under load, and memory over a stream of bad tokens.

    python -m benchmarks.upstream [--invalid 100000]

1. A burst of 200 concurrent first requests for one new opaque token, the
   provider slowed to 300 ms so that all 200 overlap: introspection calls
   counted (one process).
2. A stream of distinct invalid tokens (forged JWTs under unknown key ids,
   opaque tokens the provider refuses, garbage API tokens), with the calls
   to the provider counted and the process's resident memory sampled: every
   cache is bounded, so memory must stay flat once they are full.
"""

from __future__ import annotations

import argparse
import gc
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from benchmarks.common import environ, hello, versions, work_dir, wsgi_call
from benchmarks.fake_idp import ISSUER, FakeIdp
from benchmarks.inprocess import keys
from benchmarks.report import publish
from restauth_wsgi import RestAuthMiddleware, Settings


def rss_mib() -> float:
    """Resident memory of this process (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def middleware(idp: FakeIdp, work: Path, **changes: Any) -> RestAuthMiddleware:
    settings = Settings(
        token_store=f"sqlite://{work}/tokens.db",
        providers=idp.providers(),
        http_timeout=5,
        upstream_backoff=0,
        **changes,
    )
    return RestAuthMiddleware(hello, settings=settings)


def burst(idp: FakeIdp, work: Path) -> dict[str, Any]:
    wrapped = middleware(idp, work)
    idp.delay = 0.3
    token = "opaque-" + secrets.token_hex(16)
    barrier = threading.Barrier(200)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)

    def request() -> None:
        barrier.wait()
        body = wrapped(environ(f"Bearer {token}"), start_response)
        for _ in body:
            pass

    before = idp.calls.get("/introspect", 0)
    threads = [threading.Thread(target=request) for _ in range(200)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    idp.delay = 0.0
    wrapped.close()
    return {
        "requests": len(statuses),
        "ok": statuses.count("200 OK"),
        "introspection_calls": idp.calls.get("/introspect", 0) - before,
        "seconds": elapsed,
    }


#: RESTAUTH_CACHE_MAX_ENTRIES for the stream (see :func:`stream`).
STREAM_MAX_ENTRIES = 2_000


def stream(idp: FakeIdp, work: Path, count: int, signer: Any) -> dict[str, Any]:
    """``signer`` is the provider's own key; forged tokens use another."""
    # Every bounded map full within the first quarter, so that the rest of the
    # stream shows whether anything else grows: at the default 10,000 entries
    # the map of provider answers, fed by the 10% of opaque tokens, would fill
    # only at the 100,000th token.
    wrapped = middleware(idp, work, jwks_cooldown=60, cache_max_entries=STREAM_MAX_ENTRIES)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "api", "exp": now + 600}
    warm = jwt.encode(claims, signer, "RS256", {"kid": "rsa"})
    wsgi_call(wrapped, environ(f"Bearer {warm}"))()
    calls_before = dict(idp.calls)
    samples: list[tuple[int, float]] = []
    opaque_sent = 0
    started = time.monotonic()
    for n in range(count):
        kind = n % 10
        if kind < 6:  # a forged JWT under an unknown kid: no fetch within the cooldown
            token = jwt.encode(
                {"iss": ISSUER, "aud": "api", "exp": now + 600, "n": n},
                forger,
                "RS256",
                {"kid": secrets.token_hex(6)},
            )
        elif kind < 7:  # an opaque token the provider refuses: one introspection each
            token = "bogus-" + secrets.token_hex(12)
            opaque_sent += 1
        else:  # a garbage API token: refused by its checksum, no store lookup
            token = "restauth_" + secrets.token_urlsafe(37)[:50]
        # From many clients, so that lockout (on, as by default) counts them
        # all and its bounded counters are part of what is measured.
        client = f"10.{n % 256}.{(n // 256) % 256}.{(n // 65536) % 256}"
        wsgi_call(wrapped, environ(f"Bearer {token}", REMOTE_ADDR=client))()
        if n % (count // 20) == 0:
            gc.collect()
            samples.append((n, rss_mib()))
    gc.collect()
    samples.append((count, rss_mib()))
    seconds = time.monotonic() - started
    settled = [m for n, m in samples if n >= count // 4]  # the caches are full by then
    calls = {k: v - calls_before.get(k, 0) for k, v in idp.calls.items()}
    wrapped.close()
    return {
        "tokens": count,
        "max_entries": STREAM_MAX_ENTRIES,
        "seconds": seconds,
        "samples": samples,
        "rss_first_mib": settled[0],
        "rss_max_mib": max(settled),
        "growth": max(settled) / settled[0] - 1,
        "jwks_fetches": calls.get("/jwks", 0),
        "introspection_calls": calls.get("/introspect", 0),
        "opaque_tokens_sent": opaque_sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invalid", type=int, default=100_000)
    args = parser.parse_args()
    made = keys()
    idp = FakeIdp(made["jwks"])
    work = work_dir("restauth-upstream-")
    burst_result = burst(idp, work)
    stream_result = stream(idp, work, args.invalid, made["rsa"])
    publish(
        "upstream",
        {
            "burst": burst_result,
            "stream": stream_result,
            "versions": versions("restauth-wsgi", "cachelib", "requests"),
        },
    )
    idp.stop()


if __name__ == "__main__":
    main()
