"""The audit log: one JSON line per decision.

Fields (docs/audit.md): ``time`` (UTC, ISO 8601), ``outcome`` (``allowed``,
``anonymous``, ``public``, ``refused``, ``unauthenticated``, ``forbidden``,
``locked``, ``unavailable``, ``malformed``), ``status`` (the middleware's
own answer, or ``null`` when the request went on to the application),
``method``, ``path``, ``client`` (the address), ``username``, ``auth`` (how
the credentials were checked), ``provider``, ``token`` (``id:<public id>``
for an API token, ``sha256:<12 hex>`` of a bearer token; nothing for a
password: no password-derived value is ever logged, not even a short hash,
which would let anyone with the logs test guesses offline), ``error`` (the
JSON body's code) and ``reason``.

Tokens created and revoked through the self-service API
(:mod:`restauth_wsgi.self_service`) get a line of their own, with ``event``
(``token_created``, ``token_revoked``) in place of ``outcome``: see
:meth:`AuditLog.token_event`.

Lines go to the ``restauth.audit`` logger at INFO, to be configured like any
logger; or ``RESTAUTH_AUDIT_LOG=stderr`` (or a file path) gives one
middleware its own handler, without touching the shared logger (two
middlewares in one process do not interfere).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys

from restauth_wsgi.credentials import fingerprint, parse_authorization
from restauth_wsgi.decision import Decision
from restauth_wsgi.errors import AuthenticationError
from restauth_wsgi.identity import Identity
from restauth_wsgi.request.client_address import ClientAddress
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.store import TokenRecord

#: The logger audit lines go to unless a middleware has its own target.
LOGGER_NAME = "restauth.audit"


class AuditLog:
    """Writes audit lines: to ``target`` (``stderr`` or a file) if given,
    else to the ``restauth.audit`` logger."""

    def __init__(self, target: str | None = None) -> None:
        if not target:
            self.logger = logging.getLogger(LOGGER_NAME)
            return
        # A logger of our own, outside logging's registry: adding a handler
        # here changes nothing for anyone else in the process.
        self.logger = logging.Logger(LOGGER_NAME, logging.INFO)
        handler: logging.Handler = (
            logging.StreamHandler(sys.stderr) if target == "stderr" else logging.FileHandler(target)
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.logger.addHandler(handler)

    @property
    def enabled(self) -> bool:
        """Whether lines are kept (checked before any work is done for one)."""
        return self.logger.isEnabledFor(logging.INFO)

    def emit(
        self,
        decision: Decision,
        *,
        method: str,
        path: str,
        client: ClientAddress | None,
        header: str | None,
    ) -> None:
        """Write the decision's line."""
        identity, error = decision.identity, decision.error
        line = {
            "time": _now(),
            "outcome": decision.outcome,
            "status": None if error is None else error.status,
            "method": redact_tokens(method)[:40],
            "path": redact_tokens(path)[:500],  # redacted first: a cut could split a token
            "client": None if client is None else client.text,
            "username": identity.username if identity else getattr(error, "username", None),
            "auth": _auth(identity, error),
            "provider": identity.provider if identity else getattr(error, "provider", None),
            "token": credential_tag(identity, header),
            "error": None if error is None else error.code,
            "reason": None if error is None else error.reason[:300],
        }
        # ensure_ascii: a method or path with control characters cannot
        # forge or hide a line.
        self.logger.info(json.dumps(line, ensure_ascii=True))

    def token_event(
        self,
        event: str,
        *,
        actor: Identity,
        record: TokenRecord,
        client: ClientAddress | None,
    ) -> None:
        """Write the line of a change to a token made through the self-service
        API: ``token_created`` or ``token_revoked``, by whom (``actor``, how they
        signed in, the API token they used if one), for whom (``owner``), which
        token (``token``: its public id) and its ``name``; never a secret."""
        if not self.enabled:
            return
        self.logger.info(token_event_line(event, actor=actor, record=record, client=client))

    def close(self) -> None:
        """Close a handler of our own (a file)."""
        if self.logger.name == LOGGER_NAME and self.logger is not logging.getLogger(LOGGER_NAME):
            for handler in self.logger.handlers:
                handler.close()


def token_event_line(
    event: str, *, actor: Identity, record: TokenRecord, client: ClientAddress | None
) -> str:
    """The JSON line of a change to a token (see :meth:`AuditLog.token_event`)."""
    restrictions = record.restrictions
    line = {
        "time": _now(),
        "event": event,
        "actor": actor.username,
        "auth": actor.method,
        "provider": actor.provider,
        "actor_token": credential_tag(actor, None),
        "owner": record.owner,
        "token": f"id:{record.token_id}",
        # Both chosen by the caller, who may paste a token into either.
        "name": redact_tokens(record.name),
        "expires_at": record.expires_at,
        "restrictions": (
            None if restrictions is None else redact_tokens(restrictions.describe())[:500]
        ),
        "client": None if client is None else client.text,
    }
    # ensure_ascii: a name with control characters cannot forge or hide a line.
    return json.dumps(line, ensure_ascii=True)


# Looser than the secret scanners' pattern on purpose: no word boundaries (a
# token glued to other characters, "x<token>_y") and any length of secret (a
# token cut short by a length limit still holds part of its secret).
_TOKEN_IN_TEXT = re.compile(
    rf"{token_format.PREFIX}[0-9A-Za-z]{{{token_format.ID_LENGTH}}}_[0-9A-Za-z]+"
)
# What of a token may be shown: its prefix and public id.
_SHOWN = len(token_format.PREFIX) + token_format.ID_LENGTH + 1


def redact_tokens(text: str) -> str:
    """``text`` with every API token in it cut to its public id
    (``restauth_<id>_…``): a client may paste a whole token into a path
    (``DELETE …/tokens/restauth_…``), which must not reach a log."""
    if token_format.PREFIX not in text:
        return text
    return _TOKEN_IN_TEXT.sub(lambda found: found.group(0)[:_SHOWN] + "…", text)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _auth(identity: Identity | None, error: AuthenticationError | None) -> str | None:
    if identity is not None:
        return identity.method
    if error is not None and error.password:
        return "password"
    return None


def credential_tag(identity: Identity | None, header: str | None) -> str | None:
    """The API token's public id, or a fingerprint of a bearer token.

    Never anything derived from a password (Basic credentials that are not
    an API token get no tag: the username is logged on its own).
    """
    if identity is not None and identity.token_id is not None:
        return f"id:{identity.token_id}"
    if not header:
        return None
    try:
        credentials = parse_authorization(header, frozenset({"Bearer", "Basic"}))
    except AuthenticationError:
        return None
    secret = credentials.secret
    if token_format.looks_like_token(secret):
        try:
            return f"id:{token_format.parse(secret).token_id}"
        except token_format.MalformedToken:
            pass
    if credentials.scheme != "Bearer" or not secret:
        return None  # a Basic password, or what could be one
    return fingerprint(secret)
