"""A small REST facade over Atlassian-style data, protected by restauth-wsgi.

It answers the Jira, Confluence and Bitbucket REST calls that their client
libraries make (``jira``: ``serverInfo`` when constructed, ``field`` before
a search; ``atlassian-python-api``: paged content and pull requests) from a
bundled sample data set (``data.json``), showing each caller only what its
``REMOTE_USER`` may see. The application does no authentication of its own:
the middleware has done it before a request gets here.

Run it (``examples/flask_app`` has the entry points)::

    restauth demo                                       # a demo token, a temporary store
    flask --app restauth_wsgi.example.app run           # Flask's server
    gunicorn -c examples/gunicorn/gunicorn.conf.py 'restauth_wsgi.example.app:create_app()'
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from flask import Flask, abort, jsonify, request

from restauth_wsgi import RestAuthMiddleware, Settings

#: What serverInfo reports: a Jira Server (not Cloud), so that clients use
#: the Server API (``search``, user names rather than account ids).
SERVER_INFO = {
    "version": "9.12.0",
    "versionNumbers": [9, 12, 0],
    "deploymentType": "Server",
    "buildNumber": 912000,
    "serverTitle": "restauth-wsgi example",
}

#: The issue fields the data has, as Jira's ``/rest/api/2/field`` lists them.
FIELDS = [
    {"id": "summary", "name": "Summary", "schema": {"type": "string", "system": "summary"}},
    {"id": "status", "name": "Status", "schema": {"type": "status", "system": "status"}},
    {"id": "assignee", "name": "Assignee", "schema": {"type": "user", "system": "assignee"}},
    {"id": "project", "name": "Project", "schema": {"type": "project", "system": "project"}},
]

# JQL is understood only this far: "project = KEY" (other clauses are ignored).
_JQL_PROJECT = re.compile(r"\bproject\s*=\s*\"?([A-Za-z][A-Za-z0-9_]*)\"?", re.IGNORECASE)
# Bitbucket's pull-request states; without one it lists the open ones.
_PR_STATES = ("OPEN", "MERGED", "DECLINED")


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


def _page_of(start_name: str, limit_name: str, default: int) -> tuple[int, int]:
    """The start and size of the page the query asks for (bounded, never negative)."""
    start = max(0, request.args.get(start_name, 0, type=int) or 0)
    limit = request.args.get(limit_name, default, type=int) or default
    return start, max(1, min(limit, 1000))


def _routes(app: Flask, data: dict[str, Any]) -> None:
    jira, wiki, bitbucket = data["jira"], data["confluence"], data["bitbucket"]

    @app.errorhandler(401)
    def unauthorized(_: Exception) -> Any:
        return _error(401, "unauthorized", "No authenticated user.")

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        # The same answer for "does not exist" and "you may not see it".
        return _error(404, "not_found", "No such resource.")

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/")
    def index() -> Any:
        username, _ = _current_user(data)
        return {
            "user": username,
            "endpoints": [
                "/rest/api/2/serverInfo",
                "/rest/api/2/myself",
                "/rest/api/2/field",
                "/rest/api/2/search?jql=project=ENG",
                "/rest/api/2/issue/ENG-1",
                "/wiki/rest/api/space",
                "/wiki/rest/api/content?spaceKey=TEAM&type=page",
                "/wiki/rest/api/content/2001",
                "/rest/api/1.0/projects/ENG/repos/api/pull-requests?state=ALL",
            ],
        }

    # -- Jira ----------------------------------------------------------------

    @app.get("/rest/api/2/serverInfo")
    def server_info() -> Any:
        return {"baseUrl": request.host_url.rstrip("/"), **SERVER_INFO}

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

    @app.get("/rest/api/2/field")
    def fields() -> Any:
        _current_user(data)
        return jsonify(
            [
                {
                    **field,
                    "custom": False,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [field["id"]],
                }
                for field in FIELDS
            ]
        )

    def visible_issues(username: str, groups: set[str]) -> list[dict[str, Any]]:
        projects = jira["projects"]
        return [
            issue
            for issue in jira["issues"]
            if _may_see(projects[_project_of(issue)], username, groups)
        ]

    @app.get("/rest/api/2/search")
    def search() -> Any:
        username, groups = _current_user(data)
        issues = visible_issues(username, groups)
        project = _JQL_PROJECT.search(request.args.get("jql", ""))
        if project is not None:
            issues = [i for i in issues if _project_of(i) == project.group(1).upper()]
        start, limit = _page_of("startAt", "maxResults", 50)
        return {
            "startAt": start,
            "maxResults": limit,
            "total": len(issues),
            "issues": [_jira_issue(i, jira) for i in issues[start : start + limit]],
        }

    @app.get("/rest/api/2/issue/<key>")
    def issue(key: str) -> Any:
        username, groups = _current_user(data)
        for found in visible_issues(username, groups):
            if found["key"] == key.upper():
                return _jira_issue(found, jira)
        abort(404)

    # -- Confluence ----------------------------------------------------------

    def visible_spaces(username: str, groups: set[str]) -> dict[str, dict[str, Any]]:
        return {k: s for k, s in wiki["spaces"].items() if _may_see(s, username, groups)}

    @app.get("/wiki/rest/api/space")
    def spaces() -> Any:
        username, groups = _current_user(data)
        found = [{"key": k, "name": s["name"]} for k, s in visible_spaces(username, groups).items()]
        start, limit = _page_of("start", "limit", 25)
        page = found[start : start + limit]
        return {"results": page, "start": start, "limit": limit, "size": len(page)}

    @app.get("/wiki/rest/api/content")
    def content() -> Any:
        username, groups = _current_user(data)
        spaces = visible_spaces(username, groups)
        results = [c for c in wiki["content"] if c["space"] in spaces]
        space_key = request.args.get("spaceKey")
        if space_key:
            results = [c for c in results if c["space"] == space_key.upper()]
        kind = request.args.get("type")
        if kind:
            results = [c for c in results if c["type"] == kind]
        start, limit = _page_of("start", "limit", 25)
        page = results[start : start + limit]
        links: dict[str, str] = {"base": request.host_url.rstrip("/") + "/wiki"}
        if start + limit < len(results):
            query = request.args.to_dict()
            query["start"] = str(start + limit)
            links["next"] = "/wiki/rest/api/content?" + "&".join(
                f"{k}={v}" for k, v in query.items()
            )
        return {
            "results": [_page(c, wiki) for c in page],
            "start": start,
            "limit": limit,
            "size": len(page),
            "_links": links,
        }

    @app.get("/wiki/rest/api/content/<content_id>")
    def page(content_id: str) -> Any:
        username, groups = _current_user(data)
        spaces = visible_spaces(username, groups)
        for found in wiki["content"]:
            if found["id"] == content_id and found["space"] in spaces:
                return _page(found, wiki)
        abort(404)

    # -- Bitbucket -----------------------------------------------------------

    @app.get("/rest/api/1.0/projects/<project>/repos/<repo>/pull-requests")
    def pull_requests(project: str, repo: str) -> Any:
        username, groups = _current_user(data)
        acl = bitbucket["projects"].get(project.upper(), {}).get("repos", {}).get(repo)
        if acl is None or not _may_see(acl, username, groups):
            abort(404)
        state = request.args.get("state", "OPEN").upper()
        if state != "ALL" and state not in _PR_STATES:
            return _error(
                400, "invalid_request", f"state must be ALL or one of {', '.join(_PR_STATES)}."
            )
        prs = [
            {
                "id": p["id"],
                "title": p["title"],
                "state": p["state"],
                "author": {"user": {"name": p["author"]}},
            }
            for p in bitbucket["pull_requests"]
            if p["project"] == project.upper()
            and p["repo"] == repo
            and state in ("ALL", p["state"])
        ]
        start, limit = _page_of("start", "limit", 25)
        page = prs[start : start + limit]
        last = start + limit >= len(prs)
        return {
            "size": len(page),
            "limit": limit,
            "start": start,
            "isLastPage": last,
            "values": page,
            **({} if last else {"nextPageStart": start + limit}),
        }


def _error(status: int, code: str, description: str) -> Any:
    """An error in the middleware's shape (RFC 6750's fields and Atlassian's)."""
    body = {
        "error": code,
        "error_description": description,
        "errorMessages": [description],
        "errors": {},
    }
    return jsonify(body), status


def _project_of(issue: dict[str, Any]) -> str:
    key: str = issue["key"]
    return key.split("-")[0]


def _jira_issue(issue: dict[str, Any], jira: dict[str, Any]) -> dict[str, Any]:
    assignee = issue["assignee"]
    project = _project_of(issue)
    return {
        "id": str(issue["id"]),
        "key": issue["key"],
        "self": f"{request.host_url}rest/api/2/issue/{issue['id']}",
        "fields": {
            "summary": issue["summary"],
            "status": {"name": issue["status"]},
            "assignee": {"name": assignee, "key": assignee} if assignee else None,
            "project": {"key": project, "name": jira["projects"][project]["name"]},
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
