"""Build docs/performance.md from the figures the benchmarks saved.

    python benchmarks/report.py

Every benchmark script calls this after saving its figures, so the page
always shows the latest run of each; run it alone to rebuild the page from
``benchmarks/results/*.json`` after editing the text below.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DOC, RESULTS, save, table

BLANK = "\n\n"  # between tables (f-strings in Python 3.11 cannot hold a backslash)

INTRO = """\
# Performance

What restauth-wsgi adds to each request, measured against the bare app in
the same process and run, against the floors of the work it must do, and
side by side with the alternatives. Speed is measured here, by the scripts
in `benchmarks/`, never by timed assertions in the tests.

Run them all with `make bench` (it installs the `bench` extra into `.venv`,
and Debian's `wrk` when run as root), or one at a time with
`make bench-inprocess`, `make bench-peers`, `make bench-gunicorn_load` or
`make bench-upstream`; in an environment that already has the `bench` extra,
`python benchmarks/<name>.py` runs one directly:

* `python benchmarks/inprocess.py`: the in-process cost per request, with
  its floors;
* `python benchmarks/peers.py`: PyJWT, joserfc and Authlib on one JWT, and
  flask-httpauth around a Flask app;
* `python benchmarks/gunicorn_load.py`: gunicorn serving the app, loaded by
  `wrk` from a second process;
* `python benchmarks/upstream.py`: calls to the provider, and memory, under
  a burst of first uses and a stream of bad tokens.

Each prints its table, saves its figures under `benchmarks/results/`, and
rewrites this page (`python benchmarks/report.py` rebuilds it from the saved
figures). The figures below are from the last run of each on the machine
named with it.

**How to read them.** The machine these were taken on is shared and its
speed drifts by up to 2x over minutes, so no figure is meaningful alone:
each case is timed in batches alternating with its baseline (the bare app)
and its floor, and the least disturbed batch of each is kept. Compare a
figure with the baseline and floor in the same row, not with another row or
another run; the ratios are what carry from one machine to another.
"""


def load(name: str) -> dict[str, Any] | None:
    """The figures one benchmark saved, or ``None`` if it has not been run."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def run_line(data: dict[str, Any]) -> str:
    """The command, machine and versions of one run."""
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    return f"Command: `{data['command']}`; {data['machine']}; {versions}."


def by_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["case"]: row for row in rows}


def inprocess_tables(data: dict[str, Any]) -> list[str]:
    """The in-process benchmark's table."""
    rows = [["case", "bare app", "wrapped", "added", "ratio", "floor (same batches)", "target"]]
    for r in data["rows"]:
        target = r.get("target", "")
        if "vs_decode" in r:
            target += f" (is {r['vs_decode']:.2f}x)"
        rows.append(
            [
                r["case"],
                f"{r['bare_us']:.2f} µs" if "bare_us" in r else "",
                f"{r['us']:.2f} µs",
                f"{r['added_us']:.2f} µs" if "added_us" in r else "",
                f"{r['ratio']:.1f}x" if "ratio" in r else "",
                f"{r['floor']}: {r['floor_us']:.2f} µs" if "floor" in r else "",
                target,
            ]
        )
    return [table(rows)]


def inprocess_section(data: dict[str, Any]) -> tuple[str, list[list[str]]]:
    cases = by_case(data["rows"])
    seen = cases["JWT seen before"]
    opaque = cases["introspected opaque token, from the cache"]
    bearer = cases["API token as Bearer (SQLite, read every request)"]
    basic = cases["API token as Basic user:token"]
    cached = cases["API token as Bearer, RESTAUTH_TOKEN_CACHE_TTL=5 (revocation within 5 s)"]
    public = cases["public path (the middleware's fixed cost)"]
    rs256 = cases["JWT seen for the first time, RS256"]
    targets = [
        [
            "a JWT seen before, in-process",
            "≤ 5 µs added",
            f"{seen['added_us']:.1f} µs ({seen['added_us'] / seen['floor_us']:.1f}x the floor)",
            verdict(seen["added_us"] <= 5),
        ],
        [
            "an introspected token from the cache, in-process",
            "≤ 5 µs added",
            f"{opaque['added_us']:.1f} µs"
            f" ({opaque['added_us'] / opaque['floor_us']:.1f}x the floor)",
            verdict(opaque["added_us"] <= 5),
        ],
        [
            "an API token (Bearer), revocation immediate",
            "≤ 12 µs added",
            f"{bearer['added_us']:.1f} µs"
            f" ({bearer['added_us'] / bearer['floor_us']:.1f}x one read)",
            verdict(bearer["added_us"] <= 12),
        ],
        [
            "an API token (Basic), revocation immediate",
            "≤ 12 µs added",
            f"{basic['added_us']:.1f} µs ({basic['added_us'] / basic['floor_us']:.1f}x one read)",
            verdict(basic["added_us"] <= 12),
        ],
        [
            "a first-seen RS256 JWT",
            "≤ 1.1x `jwt.decode`",
            f"{rs256['vs_decode']:.2f}x",
            verdict(rs256["vs_decode"] <= 1.1),
        ],
    ]
    text = f"""\
## In-process cost per request

{run_line(data)}

{inprocess_tables(data)[0]}

The floors: *header+hash+lookup* reads `HTTP_AUTHORIZATION`, SHA-256s it,
does one dict lookup and an expiry check, the least any cache of tokens seen
before can do; *SQLite read* is the token store's own primary-key read
(`store.get`) of the API token, the least an immediately revocable token can
cost. A public path ({public["added_us"]:.1f} µs) is the middleware's fixed
cost: removing the spoofable headers, matching the path, calling the app.

**Tokens seen before** cost the fixed cost plus the floor and a little more:
the header is read straight from the environ, the key is its SHA-256, and a
small bounded map in this process (`RESTAUTH_CACHE_MAX_ENTRIES` entries)
answers before the configured cache is consulted; the cached value is a ready identity, not
JSON to decode. What remains above the floor is building the environ
(`REMOTE_USER`, `AUTH_TYPE`, `restauth.identity`) and the access rules'
check.

**API tokens, revocation immediate**: every request reads the token's
record from the store, so a token revoked in one process is refused by
every process on its next request. The read alone is
{bearer["floor_us"]:.1f} µs here (WAL mode, one prepared statement on a
per-thread connection, the fastest SQLite offers short of keeping a read
transaction open, which would hide revocations). Above it the request
pays the fixed cost, checking the token's shape and CRC
(so a mistyped token never reaches the store), one SHA-256, a
constant-time comparison and the identity: each a microsecond or two of
Python, none of them removable without giving up a check. The target of
12 µs asks for the read plus about 5 µs, which is less than the fixed cost
and the token's own checks take together in CPython; it is
{"met" if bearer["added_us"] <= 12 else "missed, by " + f"{bearer['added_us'] - 12:.1f} µs"}.
Where a revocation may take a few seconds to reach every process,
`RESTAUTH_TOKEN_CACHE_TTL=5` keeps records in memory for 5 s and the same
request adds {cached["added_us"]:.1f} µs. Last-used times are written at
most once a minute per token (a write with commit costs 30-160 µs).

**A first-seen JWT** is parsed once (`restauth_wsgi/jwt/jws.py` splits and
decodes the token a single time, reads the key id from that parse, and
hands the same parse to the signature check and the claims check) and
verified with a key object loaded once per JWKS fetch, so it costs what
`jwt.decode` with the key in hand costs: {rs256["vs_decode"]:.2f}x. ES256
costs more than RS256 because verifying ECDSA is slower than verifying RSA.
"""
    return text, targets


def peers_tables(data: dict[str, Any]) -> list[str]:
    """The JOSE libraries' table and the Flask table."""
    jose = [["first-seen RS256 JWT, verified and claims checked", "per token"]]
    jose += [[r["case"], f"{r['us']:.1f} µs"] for r in data["jose"]]
    flask = [["around the same Flask app", "bare Flask", "wrapped", "added"]]
    flask += [
        [r["case"], f"{r['bare_us']:.1f} µs", f"{r['us']:.1f} µs", f"{r['added_us']:.1f} µs"]
        for r in data["flask"]
    ]
    return [table(jose), table(flask)]


def peers_section(data: dict[str, Any]) -> tuple[str, list[list[str]]]:
    cases = by_case(data["flask"])
    httpauth = cases["flask-httpauth, token callback (dict lookup)"]["added_us"]
    api = cases["restauth-wsgi, API token (SQLite read)"]["added_us"]
    seen = cases["restauth-wsgi, JWT seen before"]["added_us"]
    jose_cases = by_case(data["jose"])
    pyjwt = jose_cases["PyJWT jwt.decode (key in hand)"]["us"]
    verify = jose_cases["floor: cryptography's RSA verify alone"]["us"]
    ours_jose = jose_cases["restauth_wsgi.jwt.jws: parse, PyJWT's verify, claims"]["us"]
    ours = jose_cases["restauth-wsgi, whole middleware, added over the bare app"]["us"]
    joserfc = jose_cases["joserfc decode + JWTClaimsRegistry"]["us"]
    authlib = jose_cases["Authlib JsonWebToken decode + validate"]["us"]
    targets = [
        [
            "beat flask-httpauth: a JWT seen before",
            f"< {httpauth:.1f} µs added",
            f"{seen:.1f} µs",
            verdict(seen < httpauth),
        ],
        [
            "beat flask-httpauth: an API token, revocation immediate",
            f"< {httpauth:.1f} µs added",
            f"{api:.1f} µs",
            verdict(api < httpauth),
        ],
    ]
    text = f"""\
## Peers on the same work

{run_line(data)}

{BLANK.join(peers_tables(data))}

**flask-httpauth** with a token callback does a dict lookup in the app's
own memory: nothing is revocable from another process, nothing is hashed,
no headers are cleaned. A JWT seen before still costs less through
restauth-wsgi ({seen:.1f} µs against {httpauth:.1f} µs). An API token
costs more ({api:.1f} µs) because it is read from the token store on every
request, which is what makes revocation immediate across processes; with
`RESTAUTH_TOKEN_CACHE_TTL` it is a lookup in memory like flask-httpauth's
(see the in-process table).

Every figure in this Flask process is larger than the same work in the
in-process table, flask-httpauth's dict lookup included: the Flask request
around it leaves less of the CPU's caches to the authentication code, and
the comparison is fair only within this table.

**Authlib and joserfc against PyJWT.** Authlib ({authlib:.1f} µs) and
joserfc ({joserfc:.1f} µs) verify the same token faster than PyJWT's
`jwt.decode` ({pyjwt:.1f} µs), though the RSA verification in
`cryptography`, {verify:.1f} µs, is the same in all three: the difference is
the Python around it. Profiling `jwt.decode` showed where it goes: the token
is parsed through PyJWT's generic `api_jws`/`api_jwt` layers, checking each
base64url character in Python; a caller that must first read the header to
find the provider and the key (as a multi-provider middleware must) pays
that parse twice; and the claim options are merged and checked on every
call. Closing the gap took doing that part ourselves: `restauth_wsgi/jwt/jws.py`
parses the token once, strictly (canonical base64url only, UTF-8 JSON only),
hands the same parse to PyJWT's algorithm object for the signature (the
cryptography stays PyJWT's, on keys loaded once per key-set fetch) and
checks the registered claims itself, as RFC 7519 and RFC 8725 ask. That
work alone now costs {ours_jose:.1f} µs, less than Authlib's or joserfc's.
The whole middleware adds {ours:.1f} µs for a first-seen token: the
{ours - ours_jose:.1f} µs beyond the JOSE work are the request's other steps
(reading the credentials, routing the token to its provider by issuer,
mapping the claims to `REMOTE_USER`, groups and scopes, remembering the
answer, the access rules), which an app using Authlib or joserfc directly
would also write and pay for. Authlib's `authlib.jose` module now warns that
it is deprecated in favour of joserfc.
"""
    return text, targets


def gunicorn_tables(data: dict[str, Any]) -> list[str]:
    """The end-to-end table."""
    rows = [
        [
            "case",
            "requests/s",
            "ratio to bare",
            "rounds' ratios, range",
            "p50",
            "p90",
            "p99",
            "runs' requests/s, range",
        ]
    ]
    for r in data["rows"]:
        rounds = r.get("round_ratios")
        rows.append(
            [
                r["case"],
                f"{r['rps']:.0f}",
                f"{r['ratio']:.3f}",
                f"{min(rounds):.3f} - {max(rounds):.3f}" if rounds else "",
                f"{r['p50_ms']:.2f} ms",
                f"{r['p90_ms']:.2f} ms",
                f"{r['p99_ms']:.2f} ms",
                f"{min(r['runs'])} - {max(r['runs'])}",
            ]
        )
    return [table(rows)]


def gunicorn_section(data: dict[str, Any]) -> tuple[str, list[list[str]]]:
    cases = by_case(data["rows"])
    seen = cases["JWT seen before"]["ratio"]
    api = cases["API token (SQLite, read every request)"]["ratio"]
    cached = cases.get("API token, RESTAUTH_TOKEN_CACHE_TTL=5", {"ratio": float("nan")})["ratio"]
    targets = [
        [
            "under gunicorn, a JWT seen before",
            "≥ 0.95 of the bare app's requests/s",
            f"{seen:.3f}",
            verdict(seen >= 0.95),
        ],
    ]
    text = f"""\
## End to end: gunicorn

{run_line(data)} Load: {data["load"]}.

{gunicorn_tables(data)[0]}

The bare app here is as small as a WSGI app can be, so what the middleware
adds is the largest share of a request it can ever be; around a real
Flask or Django view the ratios are closer to 1. Both processes share the
machine's {data["machine"].split(",")[0]} with `wrk`, so a run is noisy:
every case is loaded for a short run in each round, in an order
that rotates, and a case's ratio is the median over the rounds of its
throughput over the bare app's in the same round, the bare app loaded with
the same `Authorization` header (gunicorn parses headers in Python, and a
JWT is ten times an API token's length). The range shows how much one round
alone can mislead. For scale, Apache's own
modules measured on this machine on the same app keep 0.48-0.61 of the
bare throughput (mod_auth_openidc, JWT) and 0.61-0.73 (mod_oauth2, whose
result cache accepts expired tokens).

A JWT seen before keeps {seen:.3f} of the bare app's throughput
({"the target is met" if seen >= 0.95 else "short of the 0.95 asked"}; one round alone
can be off by far more).
In a worker the middleware's share is larger than the in-process figures
suggest: py-spy puts it at 5-6% of a worker's time, about 13 µs a request,
where the in-process loop measures about 4 µs; with gunicorn's parser and
the network stack in between, its code and data no longer sit in the
CPU's caches from one request to the next.

An API token keeps {api:.2f}: under load, each worker's SQLite read costs
more than in the in-process loop (py-spy puts it near 27 µs: the WAL's
shared-memory lock calls contend between workers). There is no 0.95
target for it; where a few seconds' delay on revocation is acceptable,
`RESTAUTH_TOKEN_CACHE_TTL=5` keeps {cached:.2f}.
"""
    return text, targets


def growth_from_start(stream: dict[str, Any]) -> float:
    """How much the resident memory grew over the whole stream."""
    start = stream["samples"][0][1]
    return float(max(m for _, m in stream["samples"]) / start - 1)


def upstream_tables(data: dict[str, Any]) -> list[str]:
    """The burst's table and the stream's."""
    burst, stream = data["burst"], data["stream"]
    rows = [
        ["burst", "requests", "answered 200", "introspection calls", "seconds"],
        [
            "200 concurrent first uses of one opaque token",
            str(burst["requests"]),
            str(burst["ok"]),
            str(burst["introspection_calls"]),
            f"{burst['seconds']:.2f}",
        ],
    ]
    stream_rows = [
        ["stream of distinct invalid tokens", "figure"],
        ["tokens", str(stream["tokens"])],
        ["seconds", f"{stream['seconds']:.0f}"],
        ["RSS at the start", f"{stream['samples'][0][1]:.1f} MiB"],
        ["RSS once the caches are full (a quarter in)", f"{stream['rss_first_mib']:.1f} MiB"],
        ["RSS, most after that", f"{stream['rss_max_mib']:.1f} MiB"],
        ["growth after the caches are full", f"{100 * stream['growth']:.1f}%"],
        ["growth from the start", f"{100 * growth_from_start(stream):.1f}%"],
        ["JWKS fetches (forged key ids, 60 s cooldown)", str(stream["jwks_fetches"])],
        [
            "introspection calls (opaque tokens sent)",
            f"{stream['introspection_calls']} ({stream['opaque_tokens_sent']})",
        ],
    ]
    return [table(rows), table(stream_rows)]


def upstream_section(data: dict[str, Any]) -> tuple[str, list[list[str]]]:
    burst, stream = data["burst"], data["stream"]
    growth_all = growth_from_start(stream)
    targets = [
        [
            "one upstream call for 200 concurrent first uses",
            "1 call",
            f"{burst['introspection_calls']} call"
            + ("" if burst["introspection_calls"] == 1 else "s"),
            verdict(burst["introspection_calls"] == 1),
        ],
        [
            f"memory flat over {stream['tokens']:,} distinct invalid tokens",
            "within 10%",
            f"{100 * stream['growth']:.1f}% once full, {100 * growth_all:.1f}% from the start",
            verdict(stream["growth"] <= 0.10 and stream["tokens"] >= 100_000),
        ],
    ]
    text = f"""\
## Upstream discipline and memory

{run_line(data)}

{BLANK.join(upstream_tables(data))}

The burst's 200 threads wait on one barrier and the provider answers after
300 ms, so all of them overlap: one introspection is made and the other
199 requests wait for its answer (single flight per process and key). The
stream mixes forged JWTs under random key ids (60%), opaque tokens the
provider refuses (10%) and malformed API tokens (30%), each from its own
client address so that lockout's counters fill too. Every map is bounded
(the in-process map of recent answers and the cache, each
`RESTAUTH_CACHE_MAX_ENTRIES`; the lockout counters; the parsed client
addresses), so memory rises while they fill (by
{stream["rss_first_mib"] - stream["samples"][0][1]:.1f} MiB here, reached a quarter of the way
in: the most they can hold at the default `RESTAUTH_CACHE_MAX_ENTRIES`,
whatever the traffic) and then stays flat: the target is judged from there;
unknown key ids cause at most one JWKS fetch per `RESTAUTH_JWKS_COOLDOWN`,
and each refused opaque token is introspected once (its refusal is then
remembered for `RESTAUTH_NEGATIVE_CACHE_TTL`).
"""
    return text, targets


PROFILING = """\
## How the hot paths were profiled

Before optimising, each path was profiled in-process with cProfile and
under gunicorn with `py-spy record` (the `bench` extra installs py-spy).
What it found, and what was done:

* the JWT was parsed twice on a first sighting (once for the key id, once
  to verify); now once (`restauth_wsgi/jwt/jws.py`);
* werkzeug's `Request(environ).authorization` cost about 5 µs; the hot path
  reads `HTTP_AUTHORIZATION` and splits it itself;
* cachelib's `SimpleCache.get` pickles every value (about 2 µs); a bounded
  map of ready identities in each process answers first, and the configured
  cache stores JSON behind it;
* records, identities and decisions are named tuples, client addresses are
  parsed once per distinct header (a small LRU), and settings are read
  into attributes once, in the constructor: no regex is compiled, no
  setting parsed and no lock held across I/O on the hot path.
"""


def build() -> str:
    """The whole page, from whatever results exist."""
    parts = [INTRO]
    targets = [["target", "asked", "measured", "verdict"]]
    sections = []
    for name, (_, render) in SECTIONS.items():
        data = load(name)
        if data is None:
            sections.append(f"## {name}\n\nNot run yet: `python benchmarks/{name}.py`.\n")
            continue
        text, found = render(data)
        sections.append(text)
        targets += found
    parts.append("## The targets\n\n" + table(targets) + "\n")
    parts += sections
    parts.append(PROFILING)
    return "\n".join(parts)


def write() -> Path:
    """Rewrite docs/performance.md; return its path."""
    DOC.write_text(build())
    return DOC


def publish(name: str, data: dict[str, Any]) -> None:
    """What each benchmark does with its figures: save them, print their
    tables, and rewrite docs/performance.md with them."""
    saved = save(name, data)
    print(BLANK.join(SECTIONS[name][0](data)))
    print(f"\nfigures written to {saved} and {write()}")


Render = Callable[[dict[str, Any]], Any]
#: Each benchmark (its script's name): its tables, and its section of the page.
SECTIONS: dict[str, tuple[Render, Render]] = {
    "inprocess": (inprocess_tables, inprocess_section),
    "peers": (peers_tables, peers_section),
    "gunicorn_load": (gunicorn_tables, gunicorn_section),
    "upstream": (upstream_tables, upstream_section),
}


if __name__ == "__main__":
    print(f"written to {write()}")
