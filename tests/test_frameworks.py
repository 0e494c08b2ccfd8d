"""Where users wrap their apps: a Paste Deploy pipeline (Pyramid's way), gunicorn
wrapping any app from the command line, and Django's request.user."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware
from restauth_wsgi.cli import main
from restauth_wsgi.paste import settings_from_ini
from restauth_wsgi.tokens.store import TokenRecord
from restauth_wsgi.wrap import wrap

from .apps import hello
from .helpers import ROOT, cli_env, code_block, free_port, gunicorn_command, server_process

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
        pytest.param(
            "providers = okat\nokta_domain = dev-123456.okta.com",
            "providers (RESTAUTH_PROVIDERS): is 'okat' misspelt? okta_domain configures"
            " a provider 'okta', which is not listed",
            id="misspelt-provider",
        ),
        pytest.param(
            "providers = github\nokta_domain = dev-123456.okta.com",
            "okta_domain (RESTAUTH_OKTA_DOMAIN): is not a restauth-wsgi setting: it would"
            " configure a provider 'okta', which is not in providers (github)",
            id="stray-provider-key",
        ),
    ],
)
def test_paste_errors_name_the_key(
    tmp_path: Path, store_url: str, extra: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load(tmp_path, store_url, extra=extra)
    assert message in str(raised.value)


def test_paste_section_over_the_settings_file_over_defaults(tmp_path: Path) -> None:
    settings_file = tmp_path / "restauth.env"
    settings_file.write_text("RESTAUTH_PUBLIC_PATHS=/health\nRESTAUTH_REALM=from-file\n")
    settings = settings_from_ini(
        {"realm": "from-ini"}, {"RESTAUTH_SETTINGS_FILE": str(settings_file)}
    )
    assert settings.public_paths == ("/health",), "the file applies under the section"
    assert settings.realm == "from-ini", "the section wins"


def test_cli_reads_the_paste_filter_section(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load(tmp_path, store_url)  # writes site.ini, a pipeline on store_url
    ini = str(tmp_path / "site.ini")
    assert main(["--paste-ini", ini, "token", "create", "--user", "alice"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Token store: {store_url}", "the INI's store, not the default"
    app = load(tmp_path, store_url)
    answer = Client(app).get("/", headers={"Authorization": f"Bearer {out.splitlines()[-1]}"})
    assert answer.get_data(as_text=True) == "hello alice"
    assert main(["--paste-ini", f"{ini}#restauth", "config"]) == 0
    shown = capsys.readouterr().out
    assert re.search(rf"^  \* RESTAUTH_TOKEN_STORE +{re.escape(store_url)}$", shown, re.M)
    assert re.search(r"^  \* RESTAUTH_PUBLIC_PATHS +/health,/static/\*$", shown, re.M)


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        pytest.param(
            "[app:main]\nuse = call:tests.test_frameworks:hello_factory\n",
            "",
            "has no [filter:...] section with 'use = egg:restauth-wsgi'",
            id="no-filter",
        ),
        pytest.param(
            INI.format(use="egg:restauth-wsgi", store="sqlite:///x.db", extra=""),
            "#other",
            "no filter 'other' can be read",
            id="wrong-name",
        ),
        pytest.param(
            INI.format(use="egg:restauth-wsgi", store="sqlite:///x.db", extra="enabled = perhaps"),
            "",
            "enabled (RESTAUTH_ENABLED): 'perhaps' is not a boolean",
            id="bad-value",
        ),
    ],
)
def test_cli_paste_ini_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, suffix: str, message: str
) -> None:
    ini = tmp_path / "site.ini"
    ini.write_text(text)
    assert main(["--paste-ini", f"{ini}{suffix}", "token", "list"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_cli_paste_ini_without_pastedeploy_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "paste.deploy", None)
    assert main(["--paste-ini", str(tmp_path / "site.ini"), "config"]) == 2
    assert "pip install 'restauth-wsgi[paste]'" in capsys.readouterr().err


@pytest.mark.slow
def test_pyramid_project_from_the_docs_as_printed(tmp_path: Path) -> None:
    """docs/deployment.md's INI file, application and commands, served by pserve."""
    page = ROOT / "docs" / "deployment.md"
    (tmp_path / "development.ini").write_text(code_block(page, "ini", "[filter:restauth]"))
    (tmp_path / "myapi").mkdir()
    (tmp_path / "myapi" / "__init__.py").write_text(
        code_block(page, "python", "class RestAuthSecurityPolicy")
    )
    commands = code_block(page, "sh", "pserve development.ini").splitlines()
    assert commands[0].startswith("pip install"), "installing is not re-run here"
    serve, create, ask = commands[1:]

    port = free_port()
    env = cli_env("unused")
    del env["RESTAUTH_TOKEN_STORE"]  # the INI file names the store
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    on_port = str(port)
    with server_process(["bash", "-c", serve.replace("6543", on_port)], port, env, tmp_path) as url:
        done = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{create}\n{ask.replace('6543', on_port)}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"user": "alice", "method": "api_token"}
        assert (tmp_path / "tokens.db").exists(), "the store %(here)s names"
        anonymous = requests.get(f"{url}/whoami", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "missing_credentials"
        assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}


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


def _no_sessions(database: Path) -> None:
    """No session table, so no session row: the API never logged anyone in."""
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        users = [row[0] for row in db.execute("SELECT username FROM auth_user")]
    assert "django_session" not in tables
    assert users == ["alice"], "created once, on the first request"


@pytest.mark.slow
def test_django_request_user_from_remote_user(tmp_path: Path, store_url: str, issue: Issue) -> None:
    site = ROOT / "examples" / "django_site"
    database = tmp_path / "django.sqlite3"
    env = cli_env(store_url, DJANGO_DB_PATH=str(database))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=site, env=env, check=True
    )
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command("django_site.wsgi:application", port, "--workers", "2")
    with server_process(command, port, env, cwd=site) as url:
        whoami = f"{url}/whoami"
        for _ in range(5):  # cookie-less API calls, as a client makes them
            answer = requests.get(whoami, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert json.loads(answer.text) == {
                "username": "alice",
                "is_authenticated": True,
                "method": "api_token",
            }
            assert "Set-Cookie" not in answer.headers
        spoofed = requests.get(whoami, headers={"Remote-User": "admin"}, timeout=10)
        assert spoofed.status_code == 401
    _no_sessions(database)


def test_django_example_uses_the_documented_middleware() -> None:
    documented = code_block(ROOT / "docs" / "deployment.md", "python", "# myapi/restauth.py")
    example = (ROOT / "examples/django_site/django_site/restauth.py").read_text()
    assert example.endswith(documented.removeprefix("# myapi/restauth.py\n"))


# What a Django project has besides the documented lines (docs/deployment.md
# shows only the lines about authentication).
_DJANGO_SETTINGS = """
import os

SECRET_KEY = "test-only"
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
ROOT_URLCONF = "myapi.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DB_PATH"]}
}
USE_TZ = True
"""


@pytest.mark.slow
def test_django_project_from_the_docs_as_printed(
    tmp_path: Path, store_url: str, issue: Issue
) -> None:
    page = ROOT / "docs" / "deployment.md"
    project = tmp_path / "myapi"
    project.mkdir()
    (project / "__init__.py").write_text("")
    for name, marker in [
        ("restauth.py", "# myapi/restauth.py"),
        ("urls.py", "# myapi/urls.py"),
        ("wsgi.py", "# myapi/wsgi.py"),
    ]:
        (project / name).write_text(code_block(page, "python", marker))
    settings = code_block(page, "python", "# myapi/settings.py")
    (project / "settings.py").write_text(_DJANGO_SETTINGS + "\n" + settings)

    database = tmp_path / "django.sqlite3"
    env = cli_env(store_url, DJANGO_DB_PATH=str(database), PYTHONPATH=str(tmp_path))
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--settings", "myapi.settings", "-v", "0"],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command("myapi.wsgi:application", port, "--workers", "2")
    with server_process(command, port, env, cwd=tmp_path) as url:
        for _ in range(5):
            answer = requests.get(f"{url}/whoami", auth=("alice", token), timeout=10)
            assert answer.json() == {"user": "alice", "authenticated": True, "method": "api_token"}
            assert "Set-Cookie" not in answer.headers
        assert requests.get(f"{url}/whoami", timeout=10).status_code == 401
    _no_sessions(database)


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
