"""The mod_wsgi example under real Apache (Debian's apache2, mod_wsgi built for
this Python): a token from the CLI gets 200 with the user, no token 401."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .helpers import RESTAUTH, ROOT, cli_env, free_port, need

pytestmark = pytest.mark.slow
APACHE_USER = "www-data"


def _mod_wsgi_config() -> str | None:
    express = Path(sys.executable).with_name("mod_wsgi-express")
    if not express.exists():
        return None
    done = subprocess.run([str(express), "module-config"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _readable_by(user: str, path: str) -> bool:
    done = subprocess.run(["runuser", "-u", user, "--", "test", "-r", path], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def apache() -> Iterator[tuple[str, Path, dict[str, str]]]:
    need(shutil.which("apache2") is not None, "Apache is not installed (apt-get install apache2)")
    module = _mod_wsgi_config()
    need(module is not None, "mod_wsgi is not installed for this Python (pip install mod_wsgi)")
    need(os.geteuid() == 0, "starting Apache on its own needs root here")
    need(
        _readable_by(APACHE_USER, os.__file__),
        f"{APACHE_USER} cannot read this Python ({os.__file__}); grant it, as"
        " scripts/system-deps does",
    )
    # Not under pytest's own temporary root: that is private to root, and the
    # Apache user must reach the daemon's socket and the token store.
    tmp_path = Path(tempfile.mkdtemp(prefix="restauth-apache-"))
    tmp_path.chmod(0o755)
    store = tmp_path / "store"
    store.mkdir()
    settings_file = tmp_path / "restauth.env"
    settings_file.write_text(
        f"RESTAUTH_TOKEN_STORE=sqlite://{store}/tokens.db\nRESTAUTH_PUBLIC_PATHS=/health\n"
    )
    env = cli_env("unused", RESTAUTH_SETTINGS_FILE=str(settings_file))
    del env["RESTAUTH_TOKEN_STORE"]
    created = subprocess.run(
        [RESTAUTH, "token", "create", "--user", "alice"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.chown(store, APACHE_USER, APACHE_USER)
    for path in store.iterdir():
        shutil.chown(path, APACHE_USER, APACHE_USER)

    port = free_port()
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f"""ServerRoot /etc/apache2
DefaultRuntimeDir {tmp_path}
PidFile {tmp_path}/httpd.pid
ErrorLog {tmp_path}/error.log
LogLevel warn
ServerName 127.0.0.1
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
{module}
User {APACHE_USER}
Group {APACHE_USER}
WSGISocketPrefix {tmp_path}/wsgi
Define RESTAUTH_EXAMPLE_HOME {ROOT}
Define RESTAUTH_PYTHON_HOME {sys.prefix}
Define RESTAUTH_EXAMPLE_PORT {port}
Include {ROOT}/examples/mod_wsgi/restauth-example.conf
"""
    )
    apache_env = {**os.environ, "RESTAUTH_SETTINGS_FILE": str(settings_file)}
    subprocess.run(["apache2", "-f", str(conf), "-k", "start"], env=apache_env, check=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{url}/health", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url, tmp_path, {"token": created.stdout.splitlines()[-1]}
    finally:
        subprocess.run(["apache2", "-f", str(conf), "-k", "stop"], env=apache_env)
        pid_file = tmp_path / "httpd.pid"
        for _ in range(100):
            if not pid_file.exists():
                break
            time.sleep(0.1)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_example_under_apache(apache: tuple[str, Path, dict[str, str]]) -> None:
    url, tmp_path, made = apache
    token = made["token"]
    myself = f"{url}/rest/api/2/myself"
    with_bearer = requests.get(myself, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert with_bearer.status_code == 200, (tmp_path / "error.log").read_text()
    assert with_bearer.json()["name"] == "alice"
    assert requests.get(myself, auth=("alice", token), timeout=10).json()["name"] == "alice"

    without = requests.get(myself, timeout=10)
    assert without.status_code == 401
    assert without.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}

    for _ in range(6):  # a request without the header on each daemon process
        requests.get(myself, timeout=10)
    log = (tmp_path / "error.log").read_text()
    assert "'WSGIPassAuthorization On' is missing" in log
    assert log.count("'WSGIPassAuthorization On' is missing") <= 2, "once per process"
