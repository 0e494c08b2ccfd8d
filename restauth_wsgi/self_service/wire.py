"""Tokens as the API shows them: Atlassian's field names and date format.

Jira and Confluence Data Center answer a creation with ``id``, ``name``,
``createdAt``, ``expiringAt`` and ``rawToken``, and list tokens with
``id``, ``name``, ``createdAt``, ``lastAccessedAt`` and ``expiringAt``,
times written ``2021-07-27T13:31:56.766+0000`` (see "Using Personal Access
Tokens", https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html).
Scripts written for them read those fields, so these are those fields. What
Atlassian has no field for is ours, in the same style (documented in
docs/self-service.md):

* ``id`` is the token's public id, a 12-character string (Atlassian's is a
  number): it is what ``DELETE …/{id}`` takes, what ``restauth token list``
  shows and what the logs name;
* ``status`` is what Atlassian's page shows, ``ACTIVE``, ``EXPIRES_SOON``
  (from 5 days before the expiry, as there) or ``EXPIRED``, and
  ``expiresSoon`` the same as a boolean;
* ``restrictions`` (when the token has any), ``user`` (the owner), and
  ``madeBy``, the id of the API token a token was made with (it stands only
  while that one does).

A token without expiry has ``"expiringAt": null``; one never used
``"lastAccessedAt": null``.
"""

from __future__ import annotations

import time
from typing import Any

from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.tokens.store import TokenRecord

#: Atlassian's "EXPIRES SOON" shows from this long before the expiry.
EXPIRES_SOON = 5 * 86400


def atlassian_time(timestamp: float | None) -> str | None:
    """A Unix time as Atlassian writes times: ``2021-07-27T13:31:56.766+0000``."""
    if timestamp is None:
        return None
    whole = int(timestamp)
    millis = int((timestamp - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}+0000"


def status(record: TokenRecord, now: float) -> str:
    """``ACTIVE``, ``EXPIRES_SOON`` or ``EXPIRED`` (the API lists no revoked token)."""
    if record.expires_at is None or now < record.expires_at - EXPIRES_SOON:
        return "ACTIVE"
    return "EXPIRES_SOON" if now < record.expires_at else "EXPIRED"


def listed(record: TokenRecord, now: float) -> dict[str, Any]:
    """One token of a ``GET`` answer: never a secret, nor its hash."""
    shown = _common(record)
    shown["lastAccessedAt"] = atlassian_time(record.last_used_at)
    shown["status"] = status(record, now)
    shown["expiresSoon"] = shown["status"] == "EXPIRES_SOON"
    return shown


def created(record: TokenRecord, raw: str) -> dict[str, Any]:
    """The answer to a creation: the token itself, this once."""
    return {**_common(record), "rawToken": raw}


def restrictions_json(restrictions: TokenRestrictions) -> dict[str, Any]:
    """The ``restrictions`` field, in the shape a creation asks for them."""
    return {
        "readOnly": restrictions.read_only,
        "allow": [f"{method} {glob}" for method, glob in restrictions.allow],
        "networks": list(restrictions.networks),
        "scopes": list(restrictions.scopes),
    }


def _common(record: TokenRecord) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": record.token_id,
        "name": record.name,
        "user": record.owner,
        "createdAt": atlassian_time(record.created_at),
        "expiringAt": atlassian_time(record.expires_at),
    }
    if record.restrictions is not None:
        shown["restrictions"] = restrictions_json(record.restrictions)
        if record.restrictions.made_by is not None:
            shown["madeBy"] = record.restrictions.made_by
    return shown
