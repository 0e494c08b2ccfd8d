"""What the self-service tests share: the API's path, Atlassian's time format,
credentials, and one call through the WSGI interface.

Atlassian's PAT REST API, as "Using Personal Access Tokens" documents it
(https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html,
section "Creating PATs using REST API"): ``POST /rest/pat/latest/tokens``
with ``{"name": "tokenName", "expirationDuration": 90}`` answers 201 with
``id``, ``name``, ``createdAt``, ``expiringAt`` (``2021-07-27T13:31:56.766+0000``)
and ``rawToken``; ``GET`` lists tokens with ``lastAccessedAt``; ``DELETE
…/{id}`` revokes one; the page's "EXPIRES SOON" shows 5 days before expiry.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from typing import Any, NamedTuple

from werkzeug.test import Client

API = "/rest/pat/latest/tokens"
#: Atlassian's time format: 2021-07-27T13:31:56.766+0000.
ATLASSIAN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
DAY = 86400
CREATED_FIELDS = {"id", "name", "user", "createdAt", "expiringAt", "rawToken"}
LISTED_FIELDS = {
    "id",
    "name",
    "user",
    "createdAt",
    "expiringAt",
    "lastAccessedAt",
    "status",
    "expiresSoon",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def parse_time(text: str) -> float:
    """An Atlassian time as a Unix time."""
    assert ATLASSIAN_TIME.fullmatch(text), text
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Answer(NamedTuple):
    """What a call answered: the status, the JSON body (or the text), the headers."""

    status: int
    body: Any
    headers: Any


def call(
    client: Client,
    method: str,
    path: str = API,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    **kwargs: Any,
) -> Answer:
    """One request through the WSGI interface, from 127.0.0.1, with
    ``PATH_INFO`` exactly as given (as a server hands it on)."""
    if json_body is not None:
        kwargs.setdefault("data", json.dumps(json_body))
        kwargs.setdefault("content_type", "application/json")
    response = client.open(
        "/",
        method=method,
        headers=headers or {},
        environ_overrides={"PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1"},
        **kwargs,
    )
    text = response.get_data(as_text=True)
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    return Answer(response.status_code, body, response.headers)
