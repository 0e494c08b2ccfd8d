"""Revocation latency: from ``restauth token revoke`` returning to the token's
first 401 on another host, under load.

    python -m benchmarks.revocation [--revocations 100]

Per store (a SQLite file; a PostgreSQL database when a server answers,
``RESTAUTH_BENCH_POSTGRES``, default the machine's own), two gunicorn
servers (2 workers of 4 threads each) stand for two hosts sharing it, each
loaded by ``wrk`` with another API token for the whole run. For each
revocation, a new token is issued and used on host B until every worker there
has answered it and remembered it (the change feed's epoch then vouches for
it), then revoked, one time in two with the CLI as an administrator types
it, in a process of its own, the other with the store's own call in this
process (which returns as soon as the change is committed, where the CLI's
process must also exit); from the moment the revocation returns, host B is asked again, on a new
connection each time (so that any of its workers may answer), until it has
refused the token 20 times in a row. Two figures per revocation: the time to
the first 401, and the time to the first 401 after the last 200 (from when
every worker refused it).
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import QUICK, ROOT, postgres_database, versions, work_dir
from benchmarks.gunicorn_load import served
from benchmarks.report import publish
from restauth_wsgi import Settings
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.store import open_store

#: A revoked token refused this many times in a row has been heard of everywhere.
REFUSED_IN_A_ROW = 20
#: Give up on one revocation after this long (the bound is 1 s; this is a runaway guard).
GIVE_UP_SECONDS = 10.0


def status(port: int, token: str) -> int:
    """One GET on a new connection: any of the host's workers may take it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/api/thing", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def nearest_rank(values: list[float], percent: float) -> float:
    """The nearest-rank percentile: a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)]


@contextmanager
def loaded(port: int, token: str, seconds: int) -> Iterator[None]:
    """wrk on the host for the block, with a token nobody revokes."""
    load = subprocess.Popen(
        [
            "wrk",
            "-t1",
            "-c8",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}/api/thing",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        load.terminate()
        load.wait(10)


#: How a token is revoked: as an administrator types it, or by the store's own
#: call in this process (what the self-service API's DELETE does), which
#: returns the moment the change is committed, without a CLI process's exit.
WAYS = ("restauth token revoke", "store.revoke(), in process")


def measure(store_url: str, revocations: int) -> list[dict[str, Any]]:
    """Revoke ``revocations`` tokens each way; how long host B took to refuse each."""
    store = open_store(store_url, timeout=5)
    policy = Settings(token_store=store_url).token_policy()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAUTH_")}
    env.update(RESTAUTH_TOKEN_STORE=store_url, PYTHONPATH=str(ROOT))
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    restauth = str(Path(sys.executable).with_name("restauth"))
    first: dict[str, list[float]] = {way: [] for way in WAYS}
    every: dict[str, list[float]] = {way: [] for way in WAYS}
    flaps = dict.fromkeys(WAYS, 0)
    with ExitStack() as stack:
        hosts = [
            stack.enter_context(served(gunicorn, env, "benchmarks.apps:wrapped")) for _ in "ab"
        ]
        ports = [int(url.split(":")[2].split("/")[0]) for url in hosts]
        steady, _ = issue_token(store, policy, owner="load")
        for port in ports:
            stack.enter_context(loaded(port, steady, revocations * 8 + 60))
        for number in range(2 * revocations):
            way = WAYS[number % 2]
            token, record = issue_token(store, policy, owner="alice")
            # Used until the issuing's change has reached host B's feeds, and
            # each worker has answered it since: every one remembers it.
            time.sleep(0.3)
            for _ in range(12):
                if status(ports[1], token) != 200:
                    raise RuntimeError("a new token was refused")
            if way == WAYS[0]:
                subprocess.run(
                    [restauth, "token", "revoke", record.token_id],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            else:
                store.revoke(record.token_id, now=int(time.time()))
            revoked = time.monotonic()
            first_refusal = refusing_since = None
            in_a_row = 0
            while in_a_row < REFUSED_IN_A_ROW:
                answer = status(ports[1], token)
                now = time.monotonic() - revoked
                if answer == 200:
                    refusing_since, in_a_row = None, 0
                    if first_refusal is not None:
                        flaps[way] += 1
                elif answer == 401:
                    if first_refusal is None:
                        first_refusal = now
                    if refusing_since is None:
                        refusing_since = now
                    in_a_row += 1
                else:
                    raise RuntimeError(f"host B answered {answer}")
                if now > GIVE_UP_SECONDS:
                    raise RuntimeError("a revoked token was still accepted after 10 s")
            assert first_refusal is not None
            assert refusing_since is not None
            first[way].append(first_refusal)
            every[way].append(refusing_since)
    store.close()
    return [
        {
            "revoked_by": way,
            "revocations": revocations,
            "first_401_ms": summary(first[way]),
            "every_worker_ms": summary(every[way]),
            "flaps": flaps[way],
        }
        for way in WAYS
    ]


def summary(seconds: list[float]) -> dict[str, float]:
    """Median, p99 and max, in milliseconds."""
    return {
        "p50": statistics.median(seconds) * 1e3,
        "p99": nearest_rank(seconds, 99) * 1e3,
        "max": max(seconds) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revocations", type=int, default=3 if QUICK else 100)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = work_dir("restauth-revoke-")
    stores = {"SQLite": f"sqlite://{work}/tokens.db"}
    postgres_url = postgres_database()
    if postgres_url is not None:
        stores["PostgreSQL"] = postgres_url
    rows = [
        {"store": name, **row}
        for name, url in stores.items()
        for row in measure(url, args.revocations)
    ]
    publish(
        "revocation",
        {"rows": rows, "versions": versions("restauth-wsgi", "gunicorn", "psycopg")},
    )


if __name__ == "__main__":
    main()
