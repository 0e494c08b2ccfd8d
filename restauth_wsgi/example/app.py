"""A small REST facade over Atlassian-style data, protected by restauth-wsgi.

It answers Jira-, Confluence- and Bitbucket-shaped REST calls from a bundled
sample data set (``data.json``), showing each caller only what its
``REMOTE_USER`` may see. The application does no authentication of its own:
the middleware has done it before a request gets here.

Run it (``examples/flask_app`` has the entry points)::

    restauth demo                                       # a demo token, a temporary store
    flask --app restauth_wsgi.example.app run           # Flask's server
    gunicorn --no-control-socket 'restauth_wsgi.example.app:create_app()'
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Flask, abort, jsonify, request

from restauth_wsgi import RestAuthMiddleware, Settings


def load_data() -> dict[str, Any]:
    """The bundled sample data (users, Jira, Confluence, Bitbucket)."""
    text = resources.files(__package__).joinpath("data.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def create_app(settings: Settings | None = None, *, protect: bool = True) -> Flask:
    """The Flask application; wrapped in the middleware unless ``protect`` is false.

    :param settings: restauth-wsgi settings; by default from ``RESTAUTH_*``.
    """
    data = load_data()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _routes(app, data)
    if protect:
        # Flask's own way to add WSGI middleware: wrap wsgi_app, so `flask run`,
        # gunicorn and the test client all go through it.
        app.wsgi_app = RestAuthMiddleware(app.wsgi_app, settings=settings)  # type: ignore[method-assign]
    return app


def _current_user(data: dict[str, Any]) -> tuple[str, set[str]]:
    """The caller's username and groups. Unknown users (say, from an identity
    provider) still see what every authenticated user may see."""
    username = request.environ.get("REMOTE_USER")
    if not username:
        abort(401)
    groups = set(data["users"].get(username, {}).get("groups", ()))
    identity = request.environ.get("restauth.identity")
    if identity is not None:
        groups |= set(identity.groups)
    return username, groups


def _may_see(acl: dict[str, Any], username: str, groups: set[str]) -> bool:
    return username in acl["users"] or "*" in acl["groups"] or bool(groups & set(acl["groups"]))


def _routes(app: Flask, data: dict[str, Any]) -> None:
    jira, wiki, bitbucket = data["jira"], data["confluence"], data["bitbucket"]

    @app.errorhandler(401)
    def unauthorized(_: Exception) -> Any:
        return jsonify(error="unauthorized", error_description="No authenticated user."), 401

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        # The same answer for "does not exist" and "you may not see it".
        return jsonify(error="not_found", error_description="No such resource."), 404

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/")
    def index() -> Any:
        username, _ = _current_user(data)
        return {
            "user": username,
            "endpoints": [
                "/rest/api/2/myself",
                "/rest/api/2/search?jql=project=ENG",
                "/rest/api/2/issue/ENG-1",
                "/wiki/rest/api/content",
                "/wiki/rest/api/content/2001",
                "/rest/api/1.0/projects/ENG/repos/api/pull-requests",
            ],
        }

    @app.get("/rest/api/2/myself")
    def myself() -> Any:
        username, groups = _current_user(data)
        user = data["users"].get(username, {})
        identity = request.environ.get("restauth.identity")
        return {
            "name": username,
            "key": username,
            "displayName": user.get("displayName", username),
            "emailAddress": user.get("emailAddress"),
            "active": True,
            "groups": {"size": len(groups), "items": [{"name": g} for g in sorted(groups)]},
            "authenticatedBy": identity.method if identity else None,
        }

    def visible_issues(username: str, groups: set[str]) -> list[dict[str, Any]]:
        projects = jira["projects"]
        return [
            issue
            for issue in jira["issues"]
            if _may_see(projects[issue["key"].split("-")[0]], username, groups)
        ]

    @app.get("/rest/api/2/search")
    def search() -> Any:
        username, groups = _current_user(data)
        issues = visible_issues(username, groups)
        jql = request.args.get("jql", "").replace(" ", "")
        if jql.lower().startswith("project="):
            project = jql.split("=", 1)[1].upper()
            issues = [i for i in issues if i["key"].startswith(project + "-")]
        return {
            "startAt": 0,
            "maxResults": 50,
            "total": len(issues),
            "issues": [_jira_issue(i) for i in issues],
        }

    @app.get("/rest/api/2/issue/<key>")
    def issue(key: str) -> Any:
        username, groups = _current_user(data)
        for found in visible_issues(username, groups):
            if found["key"] == key.upper():
                return _jira_issue(found)
        abort(404)

    def visible_content(username: str, groups: set[str]) -> list[dict[str, Any]]:
        spaces = wiki["spaces"]
        return [c for c in wiki["content"] if _may_see(spaces[c["space"]], username, groups)]

    @app.get("/wiki/rest/api/content")
    def content() -> Any:
        username, groups = _current_user(data)
        results = visible_content(username, groups)
        return {
            "results": [_page(c, wiki) for c in results],
            "start": 0,
            "limit": 25,
            "size": len(results),
        }

    @app.get("/wiki/rest/api/content/<content_id>")
    def page(content_id: str) -> Any:
        username, groups = _current_user(data)
        for found in visible_content(username, groups):
            if found["id"] == content_id:
                return _page(found, wiki)
        abort(404)

    @app.get("/rest/api/1.0/projects/<project>/repos/<repo>/pull-requests")
    def pull_requests(project: str, repo: str) -> Any:
        username, groups = _current_user(data)
        acl = bitbucket["projects"].get(project.upper(), {}).get("repos", {}).get(repo)
        if acl is None or not _may_see(acl, username, groups):
            abort(404)
        prs = [
            {
                "id": p["id"],
                "title": p["title"],
                "state": p["state"],
                "author": {"user": {"name": p["author"]}},
            }
            for p in bitbucket["pull_requests"]
            if p["project"] == project.upper() and p["repo"] == repo
        ]
        return {"size": len(prs), "limit": 25, "isLastPage": True, "values": prs, "start": 0}


def _jira_issue(issue: dict[str, Any]) -> dict[str, Any]:
    assignee = issue["assignee"]
    return {
        "key": issue["key"],
        "fields": {
            "summary": issue["summary"],
            "status": {"name": issue["status"]},
            "assignee": {"name": assignee} if assignee else None,
        },
    }


def _page(content: dict[str, Any], wiki: dict[str, Any]) -> dict[str, Any]:
    space = content["space"]
    return {
        "id": content["id"],
        "type": content["type"],
        "title": content["title"],
        "space": {"key": space, "name": wiki["spaces"][space]["name"]},
    }
