"""Every benchmark runs, as a user types it, briefly (BENCH_QUICK=1).

The figures of a quick run mean nothing and are written to a temporary
directory (BENCH_OUTPUT), never over the recorded ones; what is checked is
that each script still runs to the end, prints its table, saves its
figures and renders its section of docs/performance.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, need

pytestmark = pytest.mark.slow

RUNS = {
    "inprocess": ([], "## In-process cost per request"),
    "peers": ([], "## Peers on the same work"),
    "gunicorn_load": (["--seconds", "1", "--rounds", "1"], "## End to end: gunicorn"),
    "upstream": (["--invalid", "400"], "## Upstream discipline and memory"),
    "revocation": (["--revocations", "2"], "## Revocation across processes and hosts"),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_benchmark_runs_and_reports(name: str, tmp_path: Path) -> None:
    arguments, heading = RUNS[name]
    if name in ("gunicorn_load", "revocation"):
        need(shutil.which("wrk") is not None, "wrk is not installed (apt-get install wrk)")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RESTAUTH_")},
        "BENCH_QUICK": "1",
        "BENCH_OUTPUT": str(tmp_path),
        "TMPDIR": str(temp),  # where its temporary store goes, to see it removed
    }
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("|"), done.stdout  # the table comes first
    assert f"figures written to {tmp_path / name}.json" in done.stdout
    figures = json.loads((tmp_path / f"{name}.json").read_text())
    assert figures["command"] == " ".join(["python", "-m", f"benchmarks.{name}", *arguments])
    page = (tmp_path / "performance.md").read_text()
    assert heading in page
    assert "## The targets" in page
    assert f"Command: `{figures['command']}`" in page, "its figures were written into the page"
    assert not list(temp.glob("restauth-*")), "the benchmark removed its temporary store"


def test_the_profile_of_a_first_sighting_runs() -> None:
    """The profile docs/performance.md cites still runs, as a user types it."""
    done = _quick("profile_first_seen")
    assert "verify" in done.stdout, "the signature check is among the profiled calls"
    assert "claims.py" in done.stdout, "so is the claims mapping"


def test_the_instruction_count_of_a_first_sighting_runs() -> None:
    """The callgrind count docs/performance.md cites still runs, as a user types it,
    and its counts add up: a first sighting is more than its JOSE work, and a
    JWT seen before far less."""
    need(
        shutil.which("valgrind") is not None, "valgrind is not installed (apt-get install valgrind)"
    )
    counts = _counts(_quick("count_first_seen"))
    first, jose = counts["middleware, first sighting"], counts["JOSE work alone"]
    assert first > jose + counts["bare app"]
    assert counts["middleware, JWT seen before"] < first / 3


def test_the_instruction_count_of_an_api_token_runs() -> None:
    """The callgrind count of an API token's paths docs/performance.md cites
    still runs, and its counts say what the paths do: after a change the
    record alone is read, less than the whole check a request without the
    feed makes; a first use does that check and remembers; a token seen
    before reads nothing."""
    need(
        shutil.which("valgrind") is not None, "valgrind is not installed (apt-get install valgrind)"
    )
    counts = _counts(_quick("count_api_token"))
    unfed = counts["read from the store on every request (RESTAUTH_TOKEN_FEED=false)"]
    assert counts["first request after a change"] < unfed
    assert counts["first use in this process"] > unfed, "it also remembers"
    assert counts["seen before"] < counts["first request after a change"] / 2


def _counts(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """A count's table: instructions per request, by case."""
    return {
        cells[0]: int(cells[1].replace(",", ""))
        for line in done.stdout.splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
        and cells[1].replace(",", "").isdigit()
    }


def _quick(name: str) -> subprocess.CompletedProcess[str]:
    """One of the scripts that only print, run briefly as a user types it; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}"],
        cwd=ROOT,
        env={**os.environ, "BENCH_QUICK": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done
