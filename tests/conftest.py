"""Shared fixtures: settings on a fresh SQLite store, a wrapped echo app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.store import TokenRecord, TokenStore, open_store

from .dot_provider import DotProvider, dot_available
from .fake_provider import FakeProvider
from .helpers import echo_app, need
from .oidc_provider import OidcProvider, node_available
from .services import postgres_database

# Property tests judge answers, never speed: Hypothesis's per-example deadline
# is a timed assertion, which a busy machine fails (speed is benchmarks/' job).
hypothesis_settings.register_profile("restauth", deadline=None)
hypothesis_settings.load_profile("restauth")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A store URL for a fresh SQLite file."""
    return f"sqlite://{tmp_path}/tokens.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url_any(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each kind: an SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/tokens.db"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def settings(store_url: str) -> Settings:
    """Default settings on the fresh store."""
    return Settings(token_store=store_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[TokenStore]:
    """The fresh store itself."""
    opened = open_store(settings.token_store, timeout=settings.token_store_timeout)
    yield opened
    opened.close()


@pytest.fixture
def make_client() -> Callable[..., Client]:
    """Build a test client for the echo app wrapped with the given settings."""

    def build(settings: Settings, app: Any = echo_app) -> Client:
        return Client(LintMiddleware(RestAuthMiddleware(app, settings=settings)))

    return build


@pytest.fixture
def client(settings: Settings, make_client: Callable[..., Client]) -> Client:
    """The echo app behind the middleware on default settings."""
    return make_client(settings)


@pytest.fixture
def issue(store: TokenStore, settings: Settings) -> Callable[..., tuple[str, TokenRecord]]:
    """Issue a token straight into the store."""

    def make(owner: str = "alice", **kwargs: Any) -> tuple[str, TokenRecord]:
        return issue_token(store, settings.token_policy(), owner=owner, **kwargs)

    return make


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """A real OpenID provider (oidc-provider on Node) shared by the session."""
    why = node_available()
    need(why is None, f"no OpenID provider to test against: {why}")
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def own_oidc_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """A real OpenID provider for one test, which may stop, restart or rotate it."""
    why = node_available()
    need(why is None, f"no OpenID provider to test against: {why}")
    provider = OidcProvider(tmp_path)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def dot_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DotProvider]:
    """A second real provider (django-oauth-toolkit under gunicorn) shared by the session."""
    why = dot_available()
    need(why is None, f"no django-oauth-toolkit to test against: {why}")
    provider = DotProvider(tmp_path_factory.mktemp("dot"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A local server standing in for a provider (or a counting proxy to one)."""
    fake = FakeProvider()
    yield fake
    fake.stop()
