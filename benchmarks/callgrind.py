"""Counting instructions under valgrind's callgrind: a yardstick this machine's noise does not move.

A counting script runs itself twice: as ``python -m benchmarks.<name>`` it
starts ``python -m benchmarks.<name> --child`` under callgrind, which counts
only what runs inside ``functools.reduce`` (``--toggle-collect``) and dumps
each reduce call on its own (``--dump-after``); the child builds its cases,
runs each once to warm up, then hands them to :func:`collect`, one reduce
call per case. The same code on the same inputs gives the same count twice,
whatever else the machine is doing.

An instruction is not a unit of time: C code that valgrind runs without the
processor's SHA extensions (the SHA-256 of a JWT's signing input, of an API
token's secret) counts more than it costs, and Python's interpreter runs
fewer instructions per cycle on many small functions than on a tight loop.
Read the counts as the relative size of steps, and time only as
``benchmarks.inprocess`` measures it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def collect(cases: Mapping[str, Sequence[Callable[[], object]]]) -> None:
    """In the child: run each case's calls inside one ``functools.reduce``
    call (the stretch callgrind counts), in the mapping's order."""
    for calls in cases.values():
        functools.reduce(lambda _, call: call(), calls, None)


def count(module: str, names: Sequence[str], calls: int) -> dict[str, float]:
    """Run ``python -m module --child`` under callgrind and return each case's
    instructions per call, by name (``names`` in the order the child collects).

    :raises SystemExit: without valgrind, or when the dumps do not match ``names``.
    """
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
                module,
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
            counts.append(int(found.group(1)) / calls)
    if len(counts) != len(names):
        sys.exit(f"expected {len(names)} dumps from callgrind, found {len(counts)}")
    return dict(zip(names, counts, strict=True))
