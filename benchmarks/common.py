"""What the benchmarks share: timing, the hello app, keys, tables, docs output."""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
# The tests run every benchmark briefly (BENCH_QUICK=1) to prove it still runs,
# with their figures written elsewhere (BENCH_OUTPUT): the recorded ones stay.
QUICK = os.environ.get("BENCH_QUICK") == "1"
_OUTPUT = os.environ.get("BENCH_OUTPUT")
RESULTS = Path(_OUTPUT) if _OUTPUT else ROOT / "benchmarks" / "results"
DOC = Path(_OUTPUT) / "performance.md" if _OUTPUT else ROOT / "docs" / "performance.md"
#: How many distinct JWTs a first-sighting case cycles through.
DISTINCT_TOKENS = 100 if QUICK else 4000


def work_dir(prefix: str) -> Path:
    """A temporary directory for a benchmark's store, removed when the benchmark exits."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


#: The PostgreSQL server the PostgreSQL cases use (a database of their own is made on it).
POSTGRES_ADMIN = os.environ.get(
    "RESTAUTH_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def postgres_database() -> str | None:
    """A fresh PostgreSQL database for a benchmark's token store, dropped when
    the benchmark exits; ``None`` (and why, on stderr) if no server answers."""
    try:
        import psycopg
    except ImportError:
        print("psycopg is not installed: the PostgreSQL cases are left out", file=sys.stderr)
        return None
    name = f"restauth_bench_{os.getpid()}"
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"no PostgreSQL at {POSTGRES_ADMIN} ({exc}): its cases are left out", file=sys.stderr)
        return None

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    return urlunsplit(urlsplit(POSTGRES_ADMIN)._replace(path=f"/{name}"))


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The bare app every case wraps."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def interleaved(*calls: Callable[[], object], rounds: int = 15, budget: float = 0.8) -> list[float]:
    """Seconds per call of each, timed in alternating batches so that drift in
    the machine's speed (a shared 2-core machine drifts) hits all alike; the
    best batch of each is kept, the least disturbed."""
    if QUICK:
        rounds, budget = 2, 0.02
    slowest = calls[-1]
    count = 1
    while True:
        started = time.perf_counter()
        for _ in range(count):
            slowest()
        elapsed = time.perf_counter() - started
        if elapsed > 0.002:
            break
        count *= 4
    per = elapsed / count
    batch = max(1, int(budget / rounds / len(calls) / max(per, 1e-9)))
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for index, call in enumerate(calls):
            started = time.perf_counter()
            for _ in range(batch):
                call()
            best[index] = min(best[index], (time.perf_counter() - started) / batch)
    return best


def wsgi_call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Callable[[], None]:
    """One request to ``app``; the environ is copied, since WSGI apps may change it."""

    def call() -> None:
        body = app(dict(environ), _start_response)
        for _ in body:
            pass

    return call


def environ(authorization: str | None = None, **extra: str) -> dict[str, Any]:
    """A plain GET environ."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/thing",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    if authorization is not None:
        env["HTTP_AUTHORIZATION"] = authorization
    env.update(extra)
    return env


def versions(*packages: str) -> dict[str, str]:
    """The versions of the packages a run used."""
    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def machine() -> str:
    """A line describing the machine."""
    return f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}"


def table(rows: list[list[str]]) -> str:
    """A Markdown table; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def save(name: str, data: dict[str, Any]) -> Path:
    """Write a run's figures as JSON under benchmarks/results (read by docs/performance.md)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "command": " ".join(["python", "-m", f"benchmarks.{name}", *sys.argv[1:]]),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)
