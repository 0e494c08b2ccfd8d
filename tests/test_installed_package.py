"""The package as a user gets it: an sdist and a wheel built with ``python -m
build`` (the wheel from the sdist), installed with only the ``demo`` extra
into a new virtualenv, away from this checkout.

- ``restauth demo`` runs from the installed wheel and answers over HTTP;
- a setting whose extra is not installed stops start-up and ``restauth``
  commands with the ``pip install`` line (no module is hidden here: the
  extras are really missing);
- the sdist holds what its tests need (tests/, the OpenID provider's lock
  file, the examples, the LICENSE) and nothing of a working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .helpers import ROOT, cli_env
from .test_demo import Demo, check_serves_the_protected_example, start_demo

pytestmark = pytest.mark.slow

# Never copied into the build: what a working tree has beyond its sources.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "__pycache__", "*.egg-info", "build", "dist", ".*_cache"
)


_WORKING_TREE_JUNK = (
    "tests/oidc/node_modules/oidc-provider/package.json",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "examples/django_site/db.sqlite3",
    "examples/flask_app/tokens.db",
)


@dataclass(frozen=True)
class Installed:
    """The built distributions and a virtualenv with the wheel installed."""

    sdist: Path
    wheel: Path
    venv: Path
    home: Path  # a directory outside the checkout, to run commands from

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.home,
            env=_env(self, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )


def _env(installed: Installed, **extra: str) -> dict[str, str]:
    env = cli_env(f"sqlite://{installed.home}/tokens.db")
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    # What a working tree that ran the tests and the examples has: the sdist
    # must leave it out (MANIFEST.in), which test_the_sdist_... checks.
    for junk in _WORKING_TREE_JUNK:
        (source / junk).parent.mkdir(parents=True, exist_ok=True)
        (source / junk).write_text("junk")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = (work / "dist").glob("*.tar.gz")
    (wheel,) = (work / "dist").glob("*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[demo]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    home = work / "home"
    home.mkdir()
    return Installed(sdist, wheel, venv, home)


def test_the_package_comes_from_the_wheel(installed: Installed) -> None:
    where = installed.run(
        installed.bin("python"), "-c", "import restauth_wsgi; print(restauth_wsgi.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(installed.venv)), "not this checkout"
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    assert "restauth_wsgi/example/app.py" in names
    assert "restauth_wsgi/example/data.json" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "benchmarks/"))]


@pytest.fixture
def installed_demo(installed: Installed) -> Iterator[Demo]:
    env = _env(installed)
    del env["RESTAUTH_TOKEN_STORE"]
    yield from start_demo([installed.bin("restauth"), "demo", "--port", "0"], env)


def test_demo_runs_from_the_installed_wheel(installed_demo: Demo) -> None:
    check_serves_the_protected_example(installed_demo)
    issues = requests.get(
        f"{installed_demo.base}/rest/api/2/search?jql=project=ENG",
        auth=("alice", installed_demo.token),
        timeout=10,
    )
    assert {i["key"] for i in issues.json()["issues"]} == {"ENG-1", "ENG-2"}


@pytest.mark.parametrize(
    ("argv", "variable", "value", "extra"),
    [
        pytest.param(["restauth", "config"], "RESTAUTH_METRICS", "true", "metrics", id="metrics"),
        pytest.param(
            ["restauth", "lockout", "list"],
            "RESTAUTH_CACHE",
            "redis://127.0.0.1:6379/0",
            "redis",
            id="redis",
        ),
        pytest.param(
            ["restauth", "config"],
            "RESTAUTH_CACHE",
            "memcached://127.0.0.1:11211",
            "memcached",
            id="memcached",
        ),
        pytest.param(
            ["restauth", "token", "list"],
            "RESTAUTH_TOKEN_STORE",
            "postgresql://postgres@127.0.0.1/restauth",
            "postgresql",
            id="postgresql",
        ),
        pytest.param(
            ["restauth", "config"],
            "RESTAUTH_PASSWORD_FILE",
            "/etc/restauth/passwords",
            "passwords",
            id="passwords",
        ),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_line(
    installed: Installed, argv: list[str], variable: str, value: str, extra: str
) -> None:
    pip_line = f"pip install 'restauth-wsgi[{extra}]'"
    command = installed.run(installed.bin(argv[0]), *argv[1:], **{variable: value})
    assert command.returncode == 2, command.stdout + command.stderr
    assert pip_line in command.stdout + command.stderr
    assert "No problems found" not in command.stdout
    assert "Nobody is locked out" not in command.stdout

    start_up = installed.run(
        installed.bin("python"),
        "-c",
        "from restauth_wsgi import RestAuthMiddleware\nRestAuthMiddleware(lambda e, s: [])",
        **{variable: value},
    )
    assert start_up.returncode == 1
    last = start_up.stderr.strip().splitlines()[-1]
    assert last.startswith(f"restauth_wsgi.errors.ConfigurationError: {variable}: "), last
    assert pip_line in last
    assert "ModuleNotFoundError" not in start_up.stderr


def test_the_sdist_holds_what_its_tests_need(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "MANIFEST.in",
        "Makefile",
        "tests/conftest.py",
        "tests/helpers.py",
        "tests/services.py",
        "tests/apps.py",
        "tests/oidc/package.json",
        "tests/oidc/package-lock.json",
        "tests/oidc/server.mjs",
        ".ci/run",
        "scripts/system-deps",
        "benchmarks/inprocess.py",
        "examples/flask_app/app.py",
        "examples/django_site/manage.py",
        "examples/mod_wsgi/restauth-example.conf",
        "examples/gunicorn/gunicorn.conf.py",
        "restauth_wsgi/example/data.json",
        "docs/deployment.md",
    ):
        assert needed in names, needed
    assert not [n for n in names if "node_modules" in n or "__pycache__" in n]
    assert not [n for n in names if n.endswith((".db", ".sqlite3"))]
    assert not set(_WORKING_TREE_JUNK) & names
