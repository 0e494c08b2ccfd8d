"""``restauth demo`` started as a user starts it and queried over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .helpers import RESTAUTH, cli_env

pytestmark = pytest.mark.slow


@pytest.fixture
def demo() -> Iterator[tuple[str, str, str, subprocess.Popen[str]]]:
    env = cli_env("unused")
    del env["RESTAUTH_TOKEN_STORE"]
    process = subprocess.Popen(
        [RESTAUTH, "demo", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
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
        yield base.group(1), token.group(1), store.group(1), process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join(5)
        process.stdout.close()


def test_demo_serves_the_protected_example(
    demo: tuple[str, str, str, subprocess.Popen[str]],
) -> None:
    base, token, store_url, process = demo
    myself = f"{base}/rest/api/2/myself"
    with_bearer = requests.get(myself, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert with_bearer.status_code == 200
    assert with_bearer.json()["name"] == "alice"
    with_basic = requests.get(myself, auth=("alice", token), timeout=10)
    assert with_basic.status_code == 200
    without = requests.get(myself, timeout=10)
    assert without.status_code == 401
    assert without.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}

    # The printed store is the demo's: a token made there for bob works at once.
    made = subprocess.run(
        [RESTAUTH, "token", "create", "--user", "bob"],
        env=cli_env(store_url),
        capture_output=True,
        text=True,
        check=True,
    )
    bob = made.stdout.splitlines()[-1]
    issues = requests.get(
        f"{base}/rest/api/2/search", headers={"Authorization": f"Bearer {bob}"}, timeout=10
    ).json()
    assert {i["key"] for i in issues["issues"]} == {"OPS-1", "OPS-2"}

    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert not os.path.exists(Path(store_url.removeprefix("sqlite://")).parent), "cleaned up"
