"""The Flask example answers only what REMOTE_USER may see."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from restauth_wsgi import Settings
from restauth_wsgi.tokens.store import TokenRecord

from .helpers import ROOT

Issue = Callable[..., tuple[str, TokenRecord]]


def _create_app() -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location(
        "example_app", ROOT / "examples" / "flask_app" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    create: Callable[..., Any] = module.create_app
    return create


@pytest.fixture
def app_client(
    settings: Settings, issue: Issue
) -> Callable[[str], tuple[FlaskClient, dict[str, str]]]:
    import dataclasses

    app = _create_app()(dataclasses.replace(settings, public_paths=("/health",)))

    def as_user(user: str) -> tuple[FlaskClient, dict[str, str]]:
        token, _ = issue(user)
        return app.test_client(), {"Authorization": f"Bearer {token}"}

    return as_user


@pytest.mark.parametrize(
    ("user", "path", "status", "keys"),
    [
        pytest.param(
            "alice",
            "/rest/api/2/search",
            200,
            {"ENG-1", "ENG-2", "OPS-1", "OPS-2"},
            id="alice-issues",
        ),
        pytest.param("bob", "/rest/api/2/search", 200, {"OPS-1", "OPS-2"}, id="bob-issues"),
        pytest.param("carol", "/rest/api/2/search", 200, {"HR-1"}, id="carol-issues"),
        pytest.param("dave", "/rest/api/2/search", 200, set(), id="unknown-user-issues"),
        pytest.param(
            "alice",
            "/rest/api/2/search?jql=project = OPS",
            200,
            {"OPS-1", "OPS-2"},
            id="jql-project",
        ),
        pytest.param("alice", "/rest/api/2/issue/ENG-1", 200, {"ENG-1"}, id="visible-issue"),
        pytest.param("bob", "/rest/api/2/issue/ENG-1", 404, None, id="hidden-issue"),
        pytest.param("bob", "/rest/api/2/issue/NOPE-9", 404, None, id="missing-issue"),
        pytest.param(
            "alice",
            "/wiki/rest/api/content",
            200,
            {"1001", "1002", "2001", "2002"},
            id="alice-content",
        ),
        pytest.param(
            "dave", "/wiki/rest/api/content", 200, {"2001", "2002"}, id="everyone-content"
        ),
        pytest.param("carol", "/wiki/rest/api/content/3001", 200, {"3001"}, id="carol-page"),
        pytest.param("alice", "/wiki/rest/api/content/3001", 404, None, id="restricted-page"),
        pytest.param(
            "alice",
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests",
            200,
            {7, 8},
            id="alice-prs",
        ),
        pytest.param(
            "bob",
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests",
            200,
            {7, 8},
            id="bob-repo-member",
        ),
        pytest.param(
            "bob",
            "/rest/api/1.0/projects/ENG/repos/web/pull-requests",
            404,
            None,
            id="bob-hidden-repo",
        ),
    ],
)
def test_each_user_sees_only_their_data(
    app_client: Callable[[str], tuple[FlaskClient, dict[str, str]]],
    user: str,
    path: str,
    status: int,
    keys: set[Any] | None,
) -> None:
    client, headers = app_client(user)
    response = client.get(path, headers=headers)
    assert response.status_code == status
    if keys is None:
        assert response.get_json()["error"] == "not_found"
        return
    body = response.get_json()
    listed = [body[k] for k in ("issues", "results", "values") if k in body]
    items = listed[0] if listed else [body]
    assert {item.get("key", item.get("id")) for item in items} == keys


def test_myself_and_health(
    app_client: Callable[[str], tuple[FlaskClient, dict[str, str]]],
) -> None:
    client, headers = app_client("alice")
    me = client.get("/rest/api/2/myself", headers=headers).get_json()
    assert me["name"] == "alice"
    assert me["displayName"] == "Alice Able"
    assert me["authenticatedBy"] == "api_token"
    assert client.get("/rest/api/2/myself").status_code == 401
    assert client.get("/health").get_json() == {"status": "ok"}


def test_unprotected_app_refuses_without_remote_user() -> None:
    app = _create_app()(protect=False)
    response = app.test_client().get("/rest/api/2/myself")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
