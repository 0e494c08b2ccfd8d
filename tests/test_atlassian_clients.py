"""The Flask example driven by the real Atlassian client libraries, over HTTP
on loopback: ``jira`` (pycontribs) and ``atlassian-python-api``, each with an
API token sent as Basic ``user:token`` (as Atlassian Cloud clients send it)
and as a Bearer token, and each showing why a revoked token was refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from atlassian import Bitbucket, Confluence, Jira
from jira import JIRA, JIRAError

from restauth_wsgi import Settings
from restauth_wsgi.example.app import create_app
from restauth_wsgi.tokens.store import TokenRecord, TokenStore

from .helpers import served

Issue = Callable[..., tuple[str, TokenRecord]]
REVOKED = "The API token has been revoked."


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    """The Flask example, behind the middleware, on a loopback port."""
    app = create_app(dataclasses.replace(settings, public_paths=("/health",)))
    with served(app) as url:
        yield url


def jira_client(base: str, how: str, token: str) -> JIRA:
    if how == "basic":
        return JIRA(server=base, basic_auth=("alice", token), timeout=10)
    return JIRA(server=base, token_auth=token, timeout=10)


def atlassian_auth(how: str, token: str) -> dict[str, Any]:
    if how == "basic":
        return {"username": "alice", "password": token}
    return {"token": token}


HOW = pytest.mark.parametrize("how", ["basic", "bearer"])


@HOW
def test_jira_library(base: str, issue: Issue, how: str) -> None:
    token, _ = issue("alice")
    jira = jira_client(base, how, token)  # asks serverInfo first
    assert jira.myself()["name"] == "alice"
    found = jira.search_issues("project = ENG ORDER BY key")  # asks for the fields first
    assert [i.key for i in found] == ["ENG-1", "ENG-2"]
    assert found[0].fields.summary == "Rotate the API signing keys"
    assert jira.issue("OPS-2").fields.assignee.name == "alice"
    with pytest.raises(JIRAError) as hidden:
        jira.issue("HR-1")
    assert hidden.value.status_code == 404
    assert hidden.value.text == "No such resource."


@HOW
def test_jira_library_shows_why_a_token_was_refused(
    base: str, issue: Issue, store: TokenStore, how: str
) -> None:
    token, record = issue("alice")
    store.revoke(record.token_id, now=record.created_at)
    with pytest.raises(JIRAError) as refused:
        jira_client(base, how, token)
    assert refused.value.status_code == 401
    assert refused.value.text == REVOKED


@HOW
def test_atlassian_python_api(base: str, issue: Issue, how: str) -> None:
    token, _ = issue("alice")
    auth = atlassian_auth(how, token)

    jira = Jira(url=base, **auth)
    assert jira.myself()["name"] == "alice"
    assert [i["key"] for i in jira.jql("project = OPS")["issues"]] == ["OPS-1", "OPS-2"]

    wiki = Confluence(url=f"{base}/wiki", **auth)
    pages = list(wiki.get_all_pages_from_space("TEAM"))
    assert [p["title"] for p in pages] == ["Welcome"], "spaceKey and type honoured"
    assert [p["id"] for p in wiki.get_all_pages_from_space("ENG")] == ["1001", "1002"]
    assert wiki.get_page_by_id("2001")["title"] == "Welcome"

    bitbucket = Bitbucket(url=base, **auth)
    assert [p["id"] for p in bitbucket.get_pull_requests("ENG", "api")] == [7], "OPEN"
    merged = bitbucket.get_pull_requests("ENG", "api", state="MERGED")
    assert [p["title"] for p in merged] == ["Fix pagination"]
    every = bitbucket.get_pull_requests("ENG", "api", state="ALL", limit=1)  # one a page
    assert [p["id"] for p in every] == [7, 8]


@HOW
def test_atlassian_python_api_shows_why_a_token_was_refused(
    base: str, issue: Issue, store: TokenStore, how: str
) -> None:
    token, record = issue("alice")
    store.revoke(record.token_id, now=record.created_at)
    jira = Jira(url=base, **atlassian_auth(how, token))
    with pytest.raises(requests.HTTPError) as refused:
        jira.myself()
    assert refused.value.response is not None
    assert refused.value.response.status_code == 401
    assert str(refused.value) == REVOKED, "not 'Unauthorized (401)'"
    wiki = Confluence(url=f"{base}/wiki", **atlassian_auth(how, token))
    with pytest.raises(requests.HTTPError) as refused_wiki:
        list(wiki.get_all_pages_from_space("TEAM"))
    assert str(refused_wiki.value) == REVOKED
