"""The audit log: one JSON line per decision, to the ``restauth.audit`` logger.

Fields (docs/audit.md): ``time`` (UTC, ISO 8601), ``outcome`` (``allowed``,
``anonymous``, ``public``, ``refused``, ``forbidden``, ``locked``,
``unavailable``), ``status`` (the middleware's own answer, or ``null`` when
the request went on to the application), ``method``, ``path``, ``client``
(the address), ``username``, ``auth`` (how the credentials were checked),
``provider``, ``token`` (``id:<public id>`` for an API token, else
``sha256:<12 hex>`` of the credential: never the credential itself),
``error`` (the JSON body's code) and ``reason``.

Lines go to the logger at INFO; configure it like any logger, or set
``RESTAUTH_AUDIT_LOG=stderr`` (or a file path) to have a handler added.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import sys
from typing import NamedTuple

from .client_address import ClientAddress
from .credentials import parse_authorization
from .errors import AuthenticationError
from .identity import Identity
from .tokens import format as token_format

log = logging.getLogger("restauth.audit")


class Decision(NamedTuple):
    """What the middleware decided about one request."""

    outcome: str
    identity: Identity | None = None
    error: AuthenticationError | None = None


def emit(
    decision: Decision,
    *,
    method: str,
    path: str,
    client: ClientAddress | None,
    header: str | None,
) -> None:
    """Write the decision's line (the caller checks that the logger keeps INFO)."""
    identity, error = decision.identity, decision.error
    line = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        "outcome": decision.outcome,
        "status": None if error is None else error.status,
        "method": method,
        "path": path[:500],
        "client": None if client is None else client.text,
        "username": identity.username if identity else getattr(error, "username", None),
        "auth": identity.method if identity else None,
        "provider": identity.provider if identity else None,
        "token": credential_tag(identity, header),
        "error": None if error is None else error.code,
        "reason": None if error is None else error.reason[:300],
    }
    log.info(json.dumps(line, ensure_ascii=True))


def credential_tag(identity: Identity | None, header: str | None) -> str | None:
    """The API token's public id, or a fingerprint of the credential."""
    if identity is not None and identity.token_id is not None:
        return f"id:{identity.token_id}"
    if not header:
        return None
    try:
        credentials = parse_authorization(header, frozenset({"Bearer", "Basic"}))
    except AuthenticationError:
        credentials = None
    secret = credentials.secret if credentials is not None else header
    if credentials is not None and token_format.looks_like_token(secret):
        try:
            return f"id:{token_format.parse(secret).token_id}"
        except token_format.MalformedToken:
            pass
    if not secret:
        return None
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:12]}"


def configure(target: str | None) -> None:
    """Send audit lines to ``stderr`` or a file (``RESTAUTH_AUDIT_LOG``), once."""
    if not target or any(getattr(h, "_restauth", False) for h in log.handlers):
        return
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if target == "stderr" else logging.FileHandler(target)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._restauth = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
