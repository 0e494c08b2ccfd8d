"""The mod_wsgi example under real Apache (Debian's apache2, mod_wsgi built for
this Python): a token from the CLI gets 200 with the user, no token 401.

The Apache user must reach this Python, which lives under ``/root`` here: the
fixture grants the least access for the length of the test and restores every
ACL it touched (see ``system_access``). When Apache's Python cannot start, the
test fails within seconds with Apache's own error log, not a client timeout.
"""

from __future__ import annotations

import contextlib
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
from .system_access import can, reachable_by

pytestmark = pytest.mark.slow
APACHE_USER = "www-data"
# What Apache's log says when the daemon's Python cannot start: it never will.
PYTHON_FAILED = (
    "WSGI0036",
    "Fatal Python error",
    "No module named 'encodings'",
    "Python initialisation failed",
)


def _mod_wsgi_config() -> str | None:
    express = Path(sys.executable).with_name("mod_wsgi-express")
    if not express.exists():
        return None
    done = subprocess.run([str(express), "module-config"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(no error log)"


def wait_for_apache(url: str, error_log: Path, timeout: float = 20) -> None:
    """Wait until Apache's app answers ``/health``; fail fast, with the log, if it cannot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except requests.RequestException:
            # Connection refused (not yet listening) or a read timeout (the
            # daemon is starting, or its Python died and the client hangs).
            log = _log(error_log)
            if any(mark in log for mark in PYTHON_FAILED):
                raise AssertionError(
                    f"Apache's Python cannot start; its error log:\n{log}"
                ) from None
            time.sleep(0.1)
    raise AssertionError(
        f"Apache did not answer within {timeout} s; its error log:\n{_log(error_log)}"
    )


@contextlib.contextmanager
def apache_serving(tmp_path: Path, settings_file: Path, python_home: str) -> Iterator[str]:
    """Apache serving the example from ``python_home``; yields its URL."""
    module = _mod_wsgi_config()
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
Define RESTAUTH_PYTHON_HOME {python_home}
Define RESTAUTH_EXAMPLE_PORT {port}
Include {ROOT}/examples/mod_wsgi/restauth-example.conf
"""
    )
    apache_env = {**os.environ, "RESTAUTH_SETTINGS_FILE": str(settings_file)}
    subprocess.run(["apache2", "-f", str(conf), "-k", "start"], env=apache_env, check=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["apache2", "-f", str(conf), "-k", "stop"], env=apache_env)
        pid_file = tmp_path / "httpd.pid"
        for _ in range(100):
            if not pid_file.exists():
                break
            time.sleep(0.1)


@pytest.fixture
def apache_dir() -> Iterator[Path]:
    """A directory the Apache user can reach (pytest's own is private to root),
    with a settings file; the Apache user can reach this Python while it exists."""
    need(shutil.which("apache2") is not None, "Apache is not installed (apt-get install apache2)")
    need(
        _mod_wsgi_config() is not None,
        "mod_wsgi is not installed for this Python (pip install --no-cache-dir mod_wsgi)",
    )
    need(os.geteuid() == 0, "starting Apache on its own needs root here")
    tmp_path = Path(tempfile.mkdtemp(prefix="restauth-apache-"))
    tmp_path.chmod(0o755)
    stdlib = Path(os.__file__).parent
    try:
        with reachable_by(APACHE_USER, [stdlib, Path(sys.prefix), ROOT / "examples", tmp_path]):
            assert can(APACHE_USER, "r", Path(os.__file__)), f"{APACHE_USER} cannot read {stdlib}"
            yield tmp_path
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_example_under_apache(apache_dir: Path) -> None:
    store = apache_dir / "store"
    store.mkdir()
    settings_file = apache_dir / "restauth.env"
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
    token = created.stdout.splitlines()[-1]
    shutil.chown(store, APACHE_USER, APACHE_USER)
    for path in store.iterdir():
        shutil.chown(path, APACHE_USER, APACHE_USER)

    error_log = apache_dir / "error.log"
    with apache_serving(apache_dir, settings_file, sys.prefix) as url:
        wait_for_apache(url, error_log)
        myself = f"{url}/rest/api/2/myself"
        with_bearer = requests.get(myself, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert with_bearer.status_code == 200, _log(error_log)
        assert with_bearer.json()["name"] == "alice"
        assert requests.get(myself, auth=("alice", token), timeout=10).json()["name"] == "alice"

        without = requests.get(myself, timeout=10)
        assert without.status_code == 401
        assert without.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
        assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}

        # Health checks and anonymous probes among clients that authenticate,
        # as in real traffic: each daemon process judges by what it sees, so
        # each must see some of both (a process that saw only probes would
        # rightly wonder where the headers went).
        for _ in range(30):
            requests.get(f"{url}/health", timeout=10)
            requests.get(myself, timeout=10)
            requests.get(myself, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        log = _log(error_log)
        assert "WSGIPassAuthorization" not in log, "the directive is on: no hint crying wolf"


def test_an_apache_whose_python_cannot_start_fails_fast_with_its_log(apache_dir: Path) -> None:
    settings_file = apache_dir / "restauth.env"
    settings_file.write_text("")
    error_log = apache_dir / "error.log"
    # A Python home with no standard library: what www-data sees when it may
    # not list the real one.
    empty_home = apache_dir / "python-home"
    (empty_home / "lib").mkdir(parents=True)
    with apache_serving(apache_dir, settings_file, str(empty_home)) as url:
        started = time.monotonic()
        with pytest.raises(AssertionError, match="Apache's Python cannot start") as failed:
            wait_for_apache(url, error_log)
    assert time.monotonic() - started < 15
    assert "[wsgi:" in str(failed.value), "the message carries the log itself"
