"""``restauth demo`` started as a user starts it and queried over HTTP; each
hint it prints is followed as printed.

The demo from a wheel installed in a fresh virtualenv is in
``test_installed_package.py``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .helpers import RESTAUTH, cli_env

pytestmark = pytest.mark.slow


@dataclass
class Demo:
    """A running demo and what it printed."""

    process: subprocess.Popen[str]
    lines: list[str]
    base: str
    token: str
    store: str

    @property
    def text(self) -> str:
        return "".join(self.lines)


def start_demo(command: list[str], env: dict[str, str]) -> Iterator[Demo]:
    """Start ``command`` (a demo), wait for its instructions, stop it at the end."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "the demo did not start"
        text = "".join(lines)
        base = re.search(r"Flask example at (http://127\.0\.0\.1:\d+)/", text)
        token = re.search(r"Bearer (restauth_\w+)", text)
        store = re.search(r"RESTAUTH_TOKEN_STORE=(\S+)", text)
        assert base, text
        assert token, text
        assert store, text
        yield Demo(process, lines, base.group(1), token.group(1), store.group(1))
    finally:
        if process.poll() is None:
            process.terminate()  # as Ctrl+C does: the demo removes its store
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()
        reader.join(5)
        process.stdout.close()


def path_without_the_virtualenv() -> str:
    """PATH as in a shell where the virtualenv was never activated."""
    return os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )


@pytest.fixture
def demo() -> Iterator[Demo]:
    env = cli_env("unused", PATH=path_without_the_virtualenv())
    del env["RESTAUTH_TOKEN_STORE"]
    yield from start_demo([RESTAUTH, "demo", "--port", "0"], env)


def check_serves_the_protected_example(demo: Demo) -> None:
    """What the demo's first curl commands promise."""
    myself = f"{demo.base}/rest/api/2/myself"
    with_bearer = requests.get(
        myself, headers={"Authorization": f"Bearer {demo.token}"}, timeout=10
    )
    assert with_bearer.status_code == 200
    assert with_bearer.json()["name"] == "alice"
    with_basic = requests.get(myself, auth=("alice", demo.token), timeout=10)
    assert with_basic.status_code == 200
    without = requests.get(myself, timeout=10)
    assert without.status_code == 401
    assert without.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert requests.get(f"{demo.base}/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_serves_the_protected_example(demo: Demo, stop: signal.Signals) -> None:
    check_serves_the_protected_example(demo)

    # "Every endpoint, with alice's token": the printed command answers.
    (index_command,) = re.findall(r"^  curl -u (alice:\S+) (\S+/)$", demo.text, re.MULTILINE)
    user, token = index_command[0].split(":", 1)
    index = requests.get(index_command[1], auth=(user, token), timeout=10)
    assert index.status_code == 200
    for path in index.json()["endpoints"]:
        answer = requests.get(demo.base + path, auth=(user, token), timeout=10)
        assert answer.status_code == 200, path

    # "from another shell": the two printed lines, in a shell whose PATH does
    # not have the virtualenv (it was never activated).
    hint = demo.text.split("from another shell:\n\n", 1)[1].split("\n\n", 1)[0]
    assert f"  {RESTAUTH} token create --user bob" in hint, "the path that works"
    made = subprocess.run(
        ["bash", "-c", f"set -e\n{hint}"],
        env=cli_env("unused", PATH=path_without_the_virtualenv()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    bob = made.stdout.splitlines()[-1]
    issues = requests.get(
        f"{demo.base}/rest/api/2/search", headers={"Authorization": f"Bearer {bob}"}, timeout=10
    ).json()
    assert {i["key"] for i in issues["issues"]} == {"OPS-1", "OPS-2"}

    demo.process.send_signal(stop)
    assert demo.process.wait(15) == 0
    assert demo.lines[-1] == "restauth demo: stopped; its token store was removed.\n"
    assert not os.path.exists(Path(demo.store.removeprefix("sqlite://")).parent), "cleaned up"


def test_a_busy_port_gets_the_demos_advice() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [RESTAUTH, "demo", "--port", str(port)],
            env=cli_env("unused"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"restauth: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "try --port 0" in done.stderr
    assert "is in use by another program" not in done.stderr, "not werkzeug's message"
    assert "Traceback" not in done.stderr
