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
    """``create_app`` as examples/flask_app/app.py offers it."""
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
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests?state=ALL",
            200,
            {7, 8},
            id="alice-prs",
        ),
        pytest.param(
            "alice",
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests",
            200,
            {7},
            id="prs-open-by-default",
        ),
        pytest.param(
            "alice",
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests?state=merged",
            200,
            {8},
            id="prs-merged",
        ),
        pytest.param(
            "bob",
            "/rest/api/1.0/projects/ENG/repos/api/pull-requests?state=ALL",
            200,
            {7, 8},
            id="bob-repo-member",
        ),
        pytest.param(
            "alice",
            "/wiki/rest/api/content?spaceKey=TEAM",
            200,
            {"2001", "2002"},
            id="content-of-a-space",
        ),
        pytest.param(
            "alice",
            "/wiki/rest/api/content?spaceKey=TEAM&type=page",
            200,
            {"2001"},
            id="pages-of-a-space",
        ),
        pytest.param(
            "alice", "/wiki/rest/api/content?spaceKey=HR", 200, set(), id="hidden-space-is-empty"
        ),
        pytest.param(
            "alice",
            "/rest/api/2/search?jql=project = ENG ORDER BY key&startAt=1&maxResults=1",
            200,
            {"ENG-2"},
            id="jql-paged",
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
        assert response.get_json()["errorMessages"] == ["No such resource."]
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


def test_what_jira_clients_ask_first(
    app_client: Callable[[str], tuple[FlaskClient, dict[str, str]]],
) -> None:
    client, headers = app_client("alice")
    info = client.get("/rest/api/2/serverInfo", headers=headers).get_json()
    assert info["deploymentType"] == "Server"
    assert info["versionNumbers"] == [9, 12, 0]
    fields = client.get("/rest/api/2/field", headers=headers).get_json()
    assert {f["id"] for f in fields} >= {"summary", "status", "assignee"}
    assert all(f["clauseNames"] for f in fields)


def test_paging_follows_the_products_conventions(
    app_client: Callable[[str], tuple[FlaskClient, dict[str, str]]],
) -> None:
    client, headers = app_client("alice")
    first = client.get("/wiki/rest/api/content?limit=3", headers=headers).get_json()
    assert first["size"] == 3
    following = client.get(first["_links"]["next"], headers=headers).get_json()
    assert following["start"] == 3
    assert "next" not in following["_links"]
    assert {c["id"] for c in first["results"] + following["results"]} == {
        "1001",
        "1002",
        "2001",
        "2002",
    }
    prs = "/rest/api/1.0/projects/ENG/repos/api/pull-requests?state=ALL&limit=1"
    page = client.get(prs, headers=headers).get_json()
    assert page["isLastPage"] is False
    assert page["nextPageStart"] == 1
    rest = client.get(f"{prs}&start=1", headers=headers).get_json()
    assert rest["isLastPage"] is True
    assert [p["id"] for p in page["values"] + rest["values"]] == [7, 8]
    bad = client.get(prs.replace("ALL", "SOMETIMES"), headers=headers)
    assert bad.status_code == 400
