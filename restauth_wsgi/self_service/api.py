"""The personal access token API: from an authenticated request to its answer.

Served by the middleware (:class:`~restauth_wsgi.middleware.RestAuthMiddleware`)
for every spelling of a path under ``RESTAUTH_SELF_SERVICE_PATH``, after its
decision (:class:`~restauth_wsgi.decision.Gatekeeper`), which always
requires credentials there, whatever the path levels say. The application
never sees these requests. With ``P`` the path (``/rest/pat/latest/tokens``):

========================  =====================================================
``POST P``                create a token for the caller: 201 with ``rawToken``
``GET P``                 the caller's tokens (``?user=NAME``: an admin's view)
``DELETE P/{id}``         revoke one of the caller's tokens (an admin: anyone's)
``OPTIONS P`` preflight   CORS, for the listed origins only
========================  =====================================================

Only the canonical spelling is served (with or without a trailing slash):
``//rest/pat/...``, ``/x/../rest/pat/...``, ``.../tokens/%2e%2e/x`` are 404
here and never reach the application with another meaning. A request with a
method-override header is refused rather than guessed at. Someone else's
token id is 404, as an unknown one is: the API does not tell whose a token is.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Response

from restauth_wsgi.audit import AuditLog, redact_tokens
from restauth_wsgi.errors import (
    AuthenticationError,
    Forbidden,
    MissingCredentials,
    TokenLimitExceeded,
)
from restauth_wsgi.identity import Identity
from restauth_wsgi.request.description import Request, judged, judged_as
from restauth_wsgi.request.paths import PathGlobs, RequestPath
from restauth_wsgi.responses import CONTENT_TYPE, error_response
from restauth_wsgi.self_service import wire
from restauth_wsgi.self_service.body import read_creation
from restauth_wsgi.self_service.cors import Cors
from restauth_wsgi.self_service.grants import Grants
from restauth_wsgi.self_service.refusals import (
    ApiRefusal,
    LimitReached,
    MethodNotAllowed,
    NotFound,
    refusal_response,
)
from restauth_wsgi.settings import DEFAULT_API_PATH, Settings, api_globs
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.issuing import check_owner, issue_token
from restauth_wsgi.tokens.store import TokenRecord, TokenStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("restauth_wsgi")
_COLLECTION = ("GET", "POST")
_ITEM = ("DELETE",)


class SelfServiceApi:
    """Creates, lists and revokes API tokens for authenticated callers.

    :param store: the token store the tokens go to (opened lazily).
    :param grants: who may create, and what.
    :param audit: where ``token_created`` and ``token_revoked`` lines go.
    :param path: where the API is served (``RESTAUTH_SELF_SERVICE_PATH``).
    :param admin_groups: groups whose members list and revoke anyone's tokens.
    :param cors_origins: origins whose browser preflights are answered.
    :param schemes: the enabled schemes, for a 401's challenges.
    :param realm: the challenges' realm.
    :param clock: the time.
    """

    def __init__(
        self,
        store: TokenStore,
        grants: Grants,
        audit: AuditLog,
        *,
        path: str = DEFAULT_API_PATH,
        admin_groups: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        schemes: tuple[str, ...] = ("Bearer", "Basic"),
        realm: str = "api",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.grants = grants
        self.audit = audit
        self.path = path
        self.admin_groups = frozenset(admin_groups)
        self.cors = Cors(cors_origins)
        self._globs = PathGlobs(api_globs(path))
        self._schemes = schemes
        self._realm = realm
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        audit: AuditLog,
        *,
        schemes: tuple[str, ...],
        clock: Callable[[], float] = time.time,
    ) -> SelfServiceApi:
        """The API the settings describe (no connection is made here)."""
        return cls(
            settings.open_token_store(),
            Grants(
                settings.token_policy(),
                groups=settings.self_service_groups,
                from_tokens=settings.self_service_from_tokens,
            ),
            audit,
            path=settings.self_service_path,
            admin_groups=settings.self_service_admin_groups,
            cors_origins=settings.self_service_cors_origins,
            schemes=schemes,
            realm=settings.realm,
            clock=clock,
        )

    def serves(self, path: RequestPath) -> bool:
        """Whether a request to ``path`` is this API's: any spelling that could
        resolve to a path under it (so none reaches the application)."""
        return self._globs.covers(path)

    def __call__(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        request: Request,
        identity: Identity | None,
    ) -> Iterable[bytes]:
        """Answer one request the middleware's decision let through."""
        try:
            response = self._answer(environ, request, identity)
        except AuthenticationError as error:
            log.info(
                "self-service refused %s %r: %s (%s)",
                request.method,
                redact_tokens(request.path.text)[:200],
                error.code,
                redact_tokens(error.reason),
            )
            if isinstance(error, MissingCredentials):
                response = error_response(error, self._schemes, self._realm)
            else:
                response = refusal_response(error)
        if not request.preflight:
            origin = environ.get("HTTP_ORIGIN")
            response.headers.update(self.cors.headers(None if origin is None else str(origin)))
        return response(environ, start_response)

    def close(self) -> None:
        """Close this process's connections to the token store."""
        self.store.close()

    # -- routing -------------------------------------------------------------------

    def _answer(
        self, environ: WSGIEnvironment, request: Request, identity: Identity | None
    ) -> Response:
        token_id = self._target(request.path)
        if request.preflight:
            return self.cors.preflight(environ)
        if identity is None:  # the decision requires credentials here: never expected
            raise MissingCredentials("Authentication is required.")
        method = judged(request.method)
        if request.methods != judged_as(request.method):
            raise ApiRefusal(
                "Method-override headers are not accepted here; send the method itself.",
                reason=f"{request.method} judged as {sorted(request.methods)}",
            )
        if token_id is None:
            if method == "GET":
                return self._list(environ, identity)
            if method == "POST":
                return self._create(environ, request, identity)
            raise MethodNotAllowed(method, _COLLECTION)
        if method == "DELETE":
            self._no_query(environ)
            return self._revoke(request, identity, token_id)
        raise MethodNotAllowed(method, _ITEM)

    def _target(self, path: RequestPath) -> str | None:
        """``None`` for the collection, a token id for one token.

        :raises NotFound: for any other path, and for any spelling but the canonical.
        """
        text = path.text.removesuffix("/")
        if path.canonical:
            if text == self.path:
                return None
            token_id = text.removeprefix(self.path + "/")
            if token_id != text and token_format.is_token_id(token_id):
                return token_id
        raise NotFound(
            f"Not found: the API's paths are {self.path} and {self.path}/{{id}}.",
            reason=f"no such path under the API: {redact_tokens(path.text)[:200]!r}",
        )

    # -- the operations ------------------------------------------------------------

    def _list(self, environ: WSGIEnvironment, caller: Identity) -> Response:
        owner = self._listed_user(environ, caller)
        now = self._clock()
        tokens = [wire.listed(r, now) for r in self.store.list(owner) if r.revoked_at is None]
        return _json(200, tokens)

    def _create(self, environ: WSGIEnvironment, request: Request, caller: Identity) -> Response:
        self.grants.check_creator(caller)
        try:
            check_owner(caller.username)
        except ValueError as exc:
            raise Forbidden(
                "Your user name cannot own an API token.", reason=f"owner: {exc}"
            ) from None
        self._no_query(environ)
        creation = read_creation(environ)
        now = int(self._clock())
        restrictions = self.grants.restrictions(caller, creation.restrictions)
        lifetime = self.grants.lifetime(caller, creation.days, now)
        try:
            raw, record = issue_token(
                self.store,
                self.grants.policy,
                owner=caller.username,
                name=creation.name,
                lifetime=lifetime,
                now=now,
                restrictions=restrictions,
            )
        except TokenLimitExceeded as exc:
            raise LimitReached(
                f"You already have {self.grants.policy.max_per_user} active API tokens, the"
                " most allowed here; revoke one first.",
                reason=str(exc),
            ) from None
        self._audit("token_created", caller, record, request)
        return _json(201, wire.created(record, raw))

    def _revoke(self, request: Request, caller: Identity, token_id: str) -> Response:
        record = self.store.get(token_id)
        if (
            record is None
            or record.revoked_at is not None
            or (record.owner != caller.username and not self._admin(caller))
        ):
            raise NotFound(
                "You have no token with this id.",
                reason=f"token {token_id} is not {caller.username[:60]!r}'s to revoke"
                " (unknown, revoked, or another user's)",
            )
        revoked = self.store.revoke(token_id, now=int(self._clock()))
        self._audit("token_revoked", caller, revoked or record, request)
        return _no_content()

    # -- what the operations share -------------------------------------------------

    def _admin(self, caller: Identity) -> bool:
        return not self.admin_groups.isdisjoint(caller.groups)

    def _listed_user(self, environ: WSGIEnvironment, caller: Identity) -> str:
        """Whose tokens a ``GET`` lists: the caller's, or ``?user=``'s for an admin."""
        query = _query(environ)
        unknown = sorted(set(query) - {"user"})
        if unknown:
            raise ApiRefusal(
                f"{unknown[0][:40]!r} is not a parameter here; use user.", field=unknown[0][:40]
            )
        users = query.get("user", [caller.username])
        if len(users) != 1 or not users[0]:
            raise ApiRefusal("Give user once, with a user name.", field="user")
        if users[0] != caller.username and not self._admin(caller):
            raise Forbidden(
                "Only administrators may list other users' tokens.",
                reason=f"{caller.username[:60]!r} is in none of RESTAUTH_SELF_SERVICE_ADMIN_GROUPS",
            )
        return users[0]

    def _no_query(self, environ: WSGIEnvironment) -> None:
        if _query(environ):
            raise ApiRefusal("This request takes no query parameters.")

    def _audit(self, event: str, caller: Identity, record: TokenRecord, request: Request) -> None:
        self.audit.token_event(event, actor=caller, record=record, client=request.client)


def _query(environ: WSGIEnvironment) -> dict[str, list[str]]:
    text = str(environ.get("QUERY_STRING", ""))
    try:
        # PEP 3333: the query's bytes as latin-1; its escapes decode as UTF-8.
        decoded = text.encode("latin-1").decode("utf-8")
        pairs = urllib.parse.parse_qsl(
            decoded, keep_blank_values=True, errors="strict", max_num_fields=10
        )
    except (UnicodeError, ValueError):
        raise ApiRefusal("The query string cannot be read (UTF-8, at most 10 fields).") from None
    query: dict[str, list[str]] = {}
    for key, value in pairs:
        query.setdefault(key, []).append(value)
    return query


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # there is no content to have a type
    response.headers["Cache-Control"] = "no-store"
    return response


def _json(status: int, data: Any) -> Response:
    response = Response(json.dumps(data), status=status, content_type=CONTENT_TYPE)
    # An answer about one user's tokens (with a secret, once): never cached;
    # and never sniffed as HTML (a token's name is the user's own text).
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
