"""A setting that needs an optional extra which is not installed is refused at
start-up and by ``restauth config``, with the ``pip install`` line to run.

The extras are installed here, so their modules are hidden from this process
(``sys.modules[name] = None`` is how Python spells "no such module"). The
same is checked for real, in a virtualenv with only the ``demo`` extra, in
``test_installed_package.py``.
"""

from __future__ import annotations

import os
import sys

import pytest

from restauth_wsgi import ConfigurationError, RestAuthMiddleware
from restauth_wsgi.cli import main

from .helpers import echo_app, free_port

CASES = [
    pytest.param("RESTAUTH_METRICS", "true", ("prometheus_client",), "metrics", id="metrics"),
    pytest.param("RESTAUTH_CACHE", "redis://127.0.0.1:6379/0", ("redis",), "redis", id="redis"),
    pytest.param(
        "RESTAUTH_CACHE",
        "memcached://127.0.0.1:11211",
        ("pymemcache",),
        "memcached",
        id="memcached",
    ),
    pytest.param(
        "RESTAUTH_TOKEN_STORE",
        "postgresql://postgres@127.0.0.1/restauth",
        ("psycopg", "psycopg_pool"),
        "postgresql",
        id="postgresql",
    ),
    pytest.param(
        "RESTAUTH_PASSWORD_FILE", "/etc/restauth/passwords", ("bcrypt",), "passwords", id="bcrypt"
    ),
    pytest.param(
        "RESTAUTH_PASSWORD_FILE", "/etc/restauth/passwords", ("argon2",), "passwords", id="argon2"
    ),
]


@pytest.fixture
def hide(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Clear RESTAUTH_* so that only what a test sets applies."""
    for name in [k for k in os.environ if k.startswith("RESTAUTH_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("variable", "value", "modules", "extra"), CASES)
def test_missing_extra_stops_start_up_with_the_pip_line(
    hide: pytest.MonkeyPatch,
    store_url: str,
    variable: str,
    value: str,
    modules: tuple[str, ...],
    extra: str,
) -> None:
    hide.setenv("RESTAUTH_TOKEN_STORE", store_url)
    hide.setenv(variable, value)
    for module in modules:
        hide.setitem(sys.modules, module, None)
    with pytest.raises(ConfigurationError) as raised:
        RestAuthMiddleware(echo_app)
    assert raised.value.variable == variable
    assert f"pip install 'restauth-wsgi[{extra}]'" in str(raised.value)
    assert modules[0] in str(raised.value)


@pytest.mark.parametrize(("variable", "value", "modules", "extra"), CASES)
def test_config_reports_a_missing_extra(
    hide: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    variable: str,
    value: str,
    modules: tuple[str, ...],
    extra: str,
) -> None:
    hide.setenv("RESTAUTH_TOKEN_STORE", store_url)
    hide.setenv(variable, value)
    for module in modules:
        hide.setitem(sys.modules, module, None)
    assert main(["config"]) == 2
    out = capsys.readouterr().out
    assert "No problems found" not in out
    assert f"{variable}: " in out
    assert f"pip install 'restauth-wsgi[{extra}]'" in out


def test_lockout_list_without_redis_is_an_error_not_an_empty_list(
    hide: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    hide.setenv("RESTAUTH_TOKEN_STORE", store_url)
    hide.setenv("RESTAUTH_CACHE", "redis://127.0.0.1:6379/0")
    hide.setitem(sys.modules, "redis", None)
    assert main(["lockout", "list"]) == 2
    out, err = capsys.readouterr()
    assert "Nobody is locked out" not in out
    assert "pip install 'restauth-wsgi[redis]'" in err


@pytest.mark.parametrize(
    "cache",
    [pytest.param("redis://127.0.0.1:{port}/0", id="redis"), "memcached://127.0.0.1:{port}"],
)
def test_lockout_list_with_an_unreachable_cache_says_so(
    hide: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_url: str, cache: str
) -> None:
    hide.setenv("RESTAUTH_TOKEN_STORE", store_url)
    hide.setenv("RESTAUTH_CACHE", cache.format(port=free_port()))  # nothing listens there
    assert main(["lockout", "list"]) == 1
    out, err = capsys.readouterr()
    assert "Nobody is locked out" not in out
    assert "cannot be reached" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        pytest.param(["--to", "postgresql://postgres@127.0.0.1/x"], "--to", id="to"),
        pytest.param(
            ["--from", "postgresql://postgres@127.0.0.1/x", "--to", "sqlite:///tmp/x.db"],
            "--from",
            id="from",
        ),
    ],
)
def test_migrate_names_the_option_the_url_came_from(
    hide: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    argv: list[str],
    named: str,
) -> None:
    hide.setenv("RESTAUTH_TOKEN_STORE", store_url)
    hide.setitem(sys.modules, "psycopg", None)
    assert main(["store", "migrate", *argv]) == 2
    err = capsys.readouterr().err
    assert f"restauth: {named}: a PostgreSQL store needs psycopg" in err
    assert "RESTAUTH_TOKEN_STORE" not in err
    assert "pip install 'restauth-wsgi[postgresql]'" in err
