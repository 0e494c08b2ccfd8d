"""What the package exports is what users need, and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import restauth_wsgi
from restauth_wsgi import ProviderSettings, RestAuthMiddleware, Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_exports_are_what_users_need() -> None:
    assert sorted(restauth_wsgi.__all__) == [
        "ConfigurationError",
        "Identity",
        "ProviderSettings",
        "RestAuthError",
        "RestAuthMiddleware",
        "Settings",
        "__version__",
    ]
    for name in restauth_wsgi.__all__:
        assert getattr(restauth_wsgi, name) is not None


def test_providers_configured_in_code_as_the_docs_show(store_url: str) -> None:
    """docs/providers.md: a provider in code is a ProviderSettings."""
    middleware = RestAuthMiddleware(
        lambda environ, start_response: [],
        settings=Settings(
            token_store=store_url,
            providers=(
                ProviderSettings("okta", domain="example.okta.com", allowed_clients=("0oa1",)),
            ),
        ),
    )
    assert middleware.authentication.providers is not None
    assert middleware.authentication.providers.issuers() == (
        "https://example.okta.com/oauth2/default",
    )
    middleware.close()


def test_the_api_reference_is_current() -> None:
    """docs/api.md is generated from the docstrings; a change to either without
    running the generator fails here."""
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api-reference"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
