"""Snippets of the README run as printed, so that they cannot drift from what works.

The Pyramid and Django snippets of docs/deployment.md run in
``test_frameworks.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from restauth_wsgi import RestAuthMiddleware, Settings

from .helpers import ROOT, cli_env, code_block, echo_app, served

# The snippets' example host is replaced by the test server on loopback.
_CURL_TO_LOOPBACK = """
curl() {
    local args=()
    for arg in "$@"; do args+=("${arg/https:\\/\\/api.example/$BASE}"); done
    command curl --silent --show-error --fail "${args[@]}"
}
"""


def test_readme_api_token_block_runs_as_printed(tmp_path: Path, store_url: str) -> None:
    block = code_block(ROOT / "README.md", "sh", "TOKEN=$(restauth token create")
    app = RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url))
    with served(app) as base:
        env = cli_env(store_url, BASE=base)
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        done = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{_CURL_TO_LOOPBACK}\n{block}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    # Both curl commands reached the app as alice, then the token was revoked.
    assert done.stdout.count('"remote_user": "alice"') == 2, done.stdout
    assert "Revoked token" in done.stdout
    assert "ACCEPTED" in done.stdout
