"""Rewrite the figures in docs/performance.md from what the benchmarks saved.

    python -m benchmarks.report

The page's prose is its own, edited as Markdown; this script only rewrites
the blocks between ``<!-- figures: NAME -->`` and ``<!-- /figures -->`` (a
benchmark's run line and tables, ``NAME`` its module) and the targets table
(``<!-- figures: targets -->``), from ``benchmarks/results/*.json``. Every
benchmark calls it after saving its figures, so the page always shows the
latest run of each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import DOC, RESULTS, ROOT, save, table

BLANK = "\n\n"  # between tables
#: A marked block: what this script may rewrite.
BLOCK = re.compile(r"(<!-- figures: (?P<name>[a-z_]+) -->\n).*?(<!-- /figures -->)", re.DOTALL)


def load(name: str) -> dict[str, Any] | None:
    """The figures one benchmark saved, or ``None`` if it has not been run."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(met: bool) -> str:
    """The verdict column of the targets table."""
    return "**met**" if met else "**missed**"


def run_line(data: dict[str, Any]) -> str:
    """The command, machine and versions of one run."""
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    load = f" Load: {data['load']}." if "load" in data else ""
    return f"Command: `{data['command']}`; {data['machine']}; {versions}.{load}"


def by_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A benchmark's rows by their case name."""
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


def gunicorn_tables(data: dict[str, Any]) -> list[str]:
    """The end-to-end table."""
    rows = [
        [
            "case",
            "requests/s",
            "ratio to bare",
            "rounds' ratios, range",
            "CPU per call in a worker",
            "middleware, in a worker",
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
                f"{r['worker_cpu_us']:.1f} µs" if "worker_cpu_us" in r else "",
                f"{r['middleware_cpu_us']:.1f} µs"
                if r.get("middleware_cpu_us") is not None
                else "",
                f"{r['p50_ms']:.2f} ms",
                f"{r['p90_ms']:.2f} ms",
                f"{r['p99_ms']:.2f} ms",
                f"{min(r['runs'])} - {max(r['runs'])}",
            ]
        )
    return [table(rows)]


def revocation_tables(data: dict[str, Any]) -> list[str]:
    """The revocation latency table."""
    rows = [
        [
            "store shared by the two hosts",
            "revoked by",
            "revocations",
            "first 401: median",
            "p99",
            "max",
            "every worker refuses: median",
            "p99",
            "max",
            "200 after a 401",
        ]
    ]
    for r in data["rows"]:
        first, last = r["first_401_ms"], r["every_worker_ms"]
        rows.append(
            [
                r["store"],
                f"`{r['revoked_by']}`",
                str(r["revocations"]),
                *(f"{first[k]:.0f} ms" for k in ("p50", "p99", "max")),
                *(f"{last[k]:.0f} ms" for k in ("p50", "p99", "max")),
                str(r["flaps"]),
            ]
        )
    return [table(rows)]


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
        ["RESTAUTH_CACHE_MAX_ENTRIES", str(stream.get("max_entries", "10000 (the default)"))],
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


Targets = list[list[str]]


def inprocess_targets(data: dict[str, Any]) -> Targets:
    """The in-process targets: tokens seen before, first uses, first-seen JWTs."""
    cases = by_case(data["rows"])

    def within(label: str, case: str, limit: float = 5) -> Targets:
        row = cases.get(case)
        if row is None:
            return []
        ratio = row["added_us"] / row["floor_us"]
        measured = f"{row['added_us']:.1f} µs ({ratio:.1f}x the floor)"
        return [[label, f"≤ {limit:g} µs added", measured, verdict(row["added_us"] <= limit)]]

    found = within("a JWT seen before, in-process", "JWT seen before")
    found += within(
        "an introspected token from the cache, in-process",
        "introspected opaque token, from the cache",
    )
    for store, case in (
        ("SQLite", "API token seen before, SQLite, change feed (the default)"),
        ("PostgreSQL", "API token seen before, PostgreSQL, change feed"),
    ):
        found += within(f"an API token seen before, {store}, in-process", case)
    for store in ("SQLite", "PostgreSQL"):
        for what in ("first use in this process", "first request after a change"):
            row = cases.get(f"API token, {what}, {store}, change feed")
            if row is not None:
                found.append(
                    [
                        f"an API token's {what}, {store}",
                        "no slower than without the feed",
                        f"{row['vs_no_feed']:.2f}x the time added without it",
                        # Two runs of one case differ by a few percent here.
                        verdict(row["vs_no_feed"] <= 1.05),
                    ]
                )
    rs256 = cases["JWT seen for the first time, RS256"]
    found += [
        [
            "a first-seen RS256 JWT",
            "≤ 1.1x `jwt.decode`",
            f"{rs256['vs_decode']:.2f}x",
            verdict(rs256["vs_decode"] <= 1.1),
        ],
        [
            "a first-seen RS256 JWT, beyond its JOSE work",
            "≤ 10 µs",
            f"{rs256['beyond_jose_us']:.1f} µs (the JOSE work: {rs256['jose_us']:.1f} µs)",
            verdict(rs256["beyond_jose_us"] <= 10),
        ],
    ]
    return found


def peers_targets(data: dict[str, Any]) -> Targets:
    """Beating flask-httpauth's dict lookup around the same Flask app."""
    cases = by_case(data["flask"])
    httpauth = cases["flask-httpauth, token callback (dict lookup)"]["added_us"]
    return [
        [
            f"beat flask-httpauth: {label}",
            f"< {httpauth:.1f} µs added",
            f"{cases[case]['added_us']:.1f} µs",
            verdict(cases[case]["added_us"] < httpauth),
        ]
        for label, case in (
            ("a JWT seen before", "restauth-wsgi, JWT seen before"),
            (
                "an API token seen before",
                "restauth-wsgi, API token seen before (SQLite, change feed)",
            ),
        )
    ]


def gunicorn_load_targets(data: dict[str, Any]) -> Targets:
    """≥ 0.95 of the bare app's throughput for a token seen before."""
    cases = by_case(data["rows"])
    return [
        [label, "≥ 0.95 of the bare app's requests/s", f"{ratio:.3f}", verdict(ratio >= 0.95)]
        for label, case in (
            ("under gunicorn, a JWT seen before", "JWT seen before"),
            (
                "under gunicorn, an API token, SQLite",
                "API token, SQLite, change feed (the default)",
            ),
            ("under gunicorn, an API token, PostgreSQL", "API token, PostgreSQL, change feed"),
        )
        if case in cases
        for ratio in [cases[case]["ratio"]]
    ]


def upstream_targets(data: dict[str, Any]) -> Targets:
    """One upstream call per burst; memory flat under a stream of bad tokens."""
    burst, stream = data["burst"], data["stream"]
    calls = burst["introspection_calls"]
    return [
        [
            "one upstream call for 200 concurrent first uses",
            "1 call",
            f"{calls} call" + ("" if calls == 1 else "s"),
            verdict(calls == 1),
        ],
        [
            f"memory flat over {stream['tokens']:,} distinct invalid tokens",
            "within 10%",
            f"{100 * stream['growth']:.1f}% once full,"
            f" {100 * growth_from_start(stream):.1f}% from the start",
            verdict(stream["growth"] <= 0.10 and stream["tokens"] >= 100_000),
        ],
    ]


def revocation_targets(data: dict[str, Any]) -> Targets:
    """Every worker of another host refuses a revoked token within 1 s."""
    return [
        [
            f"revocation seen on another host, {r['store']}, `{r['revoked_by']}`",
            "≤ 1 s max over ≥ 100 revocations under load",
            f"p99 {r['first_401_ms']['p99']:.0f} ms, max {r['first_401_ms']['max']:.0f} ms"
            f" (every worker: max {r['every_worker_ms']['max']:.0f} ms;"
            f" {r['revocations']} revocations)",
            verdict(r["every_worker_ms"]["max"] <= 1000 and r["revocations"] >= 100),
        ]
        for r in data["rows"]
    ]


Render = Callable[[dict[str, Any]], Any]
#: Each benchmark (its module's name): its tables, and its targets.
SECTIONS: dict[str, tuple[Render, Render]] = {
    "inprocess": (inprocess_tables, inprocess_targets),
    "peers": (peers_tables, peers_targets),
    "gunicorn_load": (gunicorn_tables, gunicorn_load_targets),
    "upstream": (upstream_tables, upstream_targets),
    "revocation": (revocation_tables, revocation_targets),
}


def figures(name: str, data: dict[str, Any] | None) -> str:
    """What goes between one benchmark's markers."""
    if data is None:
        return f"Not run yet: `python -m benchmarks.{name}`."
    return run_line(data) + BLANK + BLANK.join(SECTIONS[name][0](data))


def build(page: str) -> str:
    """The page with every marked block rewritten from the saved figures.

    :raises ValueError: if a benchmark's or the targets' markers are missing,
        so that an edit of the prose cannot silently drop a table.
    """
    results = {name: load(name) for name in SECTIONS}
    targets = [["target", "asked", "measured", "verdict"]]
    for name, data in results.items():
        if data is not None:
            targets += SECTIONS[name][1](data)
    blocks = {name: figures(name, data) for name, data in results.items()}
    blocks["targets"] = table(targets)
    missing = set(blocks) - {m.group("name") for m in BLOCK.finditer(page)}
    if missing:
        raise ValueError(f"docs/performance.md lacks the markers of {sorted(missing)}")

    def rewrite(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise ValueError(f"docs/performance.md marks figures nobody makes: {name}")
        return f"{match.group(1)}{blocks[name]}\n{match.group(3)}"

    return BLOCK.sub(rewrite, page)


def write() -> Path:
    """Rewrite the marked blocks of docs/performance.md (or of its copy under
    ``BENCH_OUTPUT``, made from the repository's page on first use); return its path."""
    source = DOC if DOC.exists() else ROOT / "docs" / "performance.md"
    DOC.write_text(build(source.read_text()))
    return DOC


def publish(name: str, data: dict[str, Any]) -> None:
    """What each benchmark does with its figures: save them, print their
    tables, and rewrite docs/performance.md with them."""
    saved = save(name, data)
    print(BLANK.join(SECTIONS[name][0](data)))
    print(f"\nfigures written to {saved} and {write()}")


if __name__ == "__main__":
    print(f"written to {write()}")
