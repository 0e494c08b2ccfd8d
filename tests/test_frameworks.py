"""Where users wrap their apps: a Paste Deploy pipeline (Pyramid's way), gunicorn
wrapping any app from the command line, and Django's request.user."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware
from restauth_wsgi.tokens.store import TokenRecord
from restauth_wsgi.wrap import wrap

from .apps import hello
from .helpers import ROOT, cli_env, free_port, gunicorn_command, server_process

Issue = Callable[..., tuple[str, TokenRecord]]


def hello_factory(global_conf: dict[str, str], **local_conf: str) -> Any:
    """A Paste app factory for the pipeline test."""

    def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"hello {environ.get('REMOTE_USER')}".encode()]

    return hello


INI = """
[pipeline:main]
pipeline = restauth hello

[filter:restauth]
use = {use}
token_store = {store}
public_paths = /health, /static/*
{extra}

[app:hello]
use = call:tests.test_frameworks:hello_factory
"""


def load(tmp_path: Path, store_url: str, use: str = "egg:restauth-wsgi", extra: str = "") -> Any:
    from paste.deploy import loadapp

    ini = tmp_path / "site.ini"
    ini.write_text(INI.format(use=use, store=store_url, extra=extra))
    return loadapp(f"config:{ini}")


@pytest.mark.parametrize("use", ["egg:restauth-wsgi", "egg:restauth-wsgi#main"])
def test_paste_pipeline(tmp_path: Path, store_url: str, issue: Issue, use: str) -> None:
    app = load(tmp_path, store_url, use)
    assert isinstance(app, RestAuthMiddleware)
    assert app.settings.public_paths == ("/health", "/static/*")
    client = Client(app)
    token, _ = issue("alice")
    answer = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert answer.get_data(as_text=True) == "hello alice"
    assert client.get("/").status_code == 401
    assert client.get("/health").get_data(as_text=True) == "hello None"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            "enabled = perhaps",
            "enabled (RESTAUTH_ENABLED): 'perhaps' is not a boolean",
            id="bad-value",
        ),
        pytest.param("public_path = /x", "public_path (RESTAUTH_PUBLIC_PATH): is not a", id="typo"),
        pytest.param("providers = okta", "RESTAUTH_OKTA_DOMAIN: required", id="provider"),
    ],
)
def test_paste_errors_name_the_key(
    tmp_path: Path, store_url: str, extra: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load(tmp_path, store_url, extra=extra)
    assert message in str(raised.value)


def test_wrap_names_an_app(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    assert wrap("tests.apps:hello").app is hello
    assert wrap("tests.apps:create_hello()").app is hello
    for bad in ("tests.apps", "tests.apps:nothing", ":hello", "tests.apps:ROOT"):
        with pytest.raises((ValueError, ImportError)):
            wrap(bad)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("tests.apps:application", id="middleware"),
        pytest.param("tests.apps:create_protected_flask()", id="flask-wsgi_app"),
    ],
)
def test_wrap_refuses_an_app_already_wrapped(
    monkeypatch: pytest.MonkeyPatch, store_url: str, target: str
) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    with pytest.raises(ValueError, match="is already behind RestAuthMiddleware; serve it as it is"):
        wrap(target)


@pytest.mark.slow
def test_gunicorn_wraps_any_app_from_the_command_line(store_url: str, issue: Issue) -> None:
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command(
        'restauth_wsgi.wrap:wrap("tests.apps:hello")', port, "--workers", "2"
    )
    with server_process(command, port, cli_env(store_url), cwd=ROOT) as url:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.text == "hello alice via Bearer"
        assert requests.get(url, timeout=10).status_code == 401


@pytest.mark.slow
def test_django_request_user_from_remote_user(tmp_path: Path, store_url: str, issue: Issue) -> None:
    site = ROOT / "examples" / "django_site"
    env = cli_env(store_url, DJANGO_DB_PATH=str(tmp_path / "django.sqlite3"))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=site, env=env, check=True
    )
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command("django_site.wsgi:application", port, "--workers", "2")
    with server_process(command, port, env, cwd=site) as url:
        whoami = f"{url}/whoami"
        answer = requests.get(whoami, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert json.loads(answer.text) == {
            "username": "alice",
            "is_authenticated": True,
            "method": "api_token",
        }
        spoofed = requests.get(whoami, headers={"Remote-User": "admin"}, timeout=10)
        assert spoofed.status_code == 401


@pytest.mark.slow
def test_documented_gunicorn_configuration(store_url: str, issue: Issue) -> None:
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command(
        "tests.apps:application",
        port,
        "-c",
        str(ROOT / "examples/gunicorn/gunicorn.conf.py"),
        "--workers",
        "2",
    )
    with server_process(command, port, cli_env(store_url), cwd=ROOT) as url:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.text == "hello alice via Bearer"
        # A 12 KB bearer token reaches the middleware (gunicorn's default
        # refuses header lines over 8 KB with 431 before it gets there).
        big = requests.get(url, headers={"Authorization": "Bearer " + "a" * 12_000}, timeout=10)
        assert big.status_code == 401
