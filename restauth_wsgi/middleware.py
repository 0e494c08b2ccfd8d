"""The WSGI middleware: authenticate every request before the application sees it.

Wrap any WSGI application::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)  # settings from RESTAUTH_*

The application reads ``REMOTE_USER`` (and ``AUTH_TYPE``, and the full
:class:`~restauth_wsgi.identity.Identity` at ``environ["restauth.identity"]``).
Requests that cannot be let through are answered here with a JSON error and
``WWW-Authenticate`` challenges; the application never sees them. Every
decision is written to the audit log and counted in the metrics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import audit, metrics
from .access import AccessPolicy, load_rules
from .audit import Decision
from .authentication import Authentication
from .cache import open_shared_cache
from .client_address import ClientAddress, client_address
from .errors import (
    AuthenticationError,
    Forbidden,
    InvalidCredentials,
    MalformedCredentials,
    MissingCredentials,
    ServiceUnavailable,
    TooManyFailures,
)
from .identity import Identity
from .lockout import Lockout
from .paths import PathGlobs
from .responses import error_response
from .settings import Settings, settings_environ, unknown_variables

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("restauth_wsgi")

#: The environ key of the authenticated :class:`Identity`.
IDENTITY_KEY = "restauth.identity"
#: Where a ``REMOTE_USER`` that was not trusted is kept, for debugging only.
UNTRUSTED_REMOTE_USER_KEY = "restauth.untrusted_remote_user"

# Identity headers that reverse proxies (oauth2-proxy, Apache, nginx auth
# modules) set and that applications are often told to trust. A client can
# send them too, so they are dropped before the application can be misled.
SPOOFABLE_HEADERS = (
    "HTTP_REMOTE_USER",
    "HTTP_X_REMOTE_USER",
    "HTTP_X_FORWARDED_USER",
    "HTTP_X_FORWARDED_EMAIL",
    "HTTP_X_AUTH_REQUEST_USER",
    "HTTP_X_AUTH_REQUEST_EMAIL",
)
# The refusals that count towards a lockout: credentials that were wrong or
# garbled. Not missing credentials (anonymous callers) and not outages.
_FAILURES = (InvalidCredentials, MalformedCredentials)


class RestAuthMiddleware:
    """Authenticates REST calls in front of a WSGI application.

    :param app: the WSGI application to protect.
    :param settings: the settings; by default read from ``RESTAUTH_*``
        environment variables. Invalid settings raise
        :class:`~restauth_wsgi.errors.ConfigurationError` here, naming the
        variable. Nothing is connected to until the first request.
    """

    def __init__(self, app: WSGIApplication, settings: Settings | None = None) -> None:
        self.app = app
        if settings is None:
            applied = settings_environ(os.environ)
            settings = Settings.from_mapping(applied)
            for variable in unknown_variables(applied):
                log.warning("%s is not a restauth-wsgi setting; is it misspelt?", variable)
        self.settings = settings
        shared = open_shared_cache(
            settings.cache, max_entries=settings.cache_max_entries, timeout=settings.cache_timeout
        )
        self.lockout = (
            Lockout(shared, threshold=settings.lockout_threshold, window=settings.lockout_window)
            if settings.lockout_threshold
            else None
        )
        self.authentication = Authentication.from_settings(
            settings, shared=shared, lockout=self.lockout
        )
        self.access = AccessPolicy(
            public=settings.public_paths,
            protected=settings.protected_paths,
            optional=settings.optional_paths,
            default=settings.default_access,
            networks=settings.allowed_networks,
            read_only_groups=settings.read_only_groups,
            rules=load_rules(settings.rules_file) if settings.rules_file else (),
        )
        self._password_paths = PathGlobs(settings.basic_password_paths)
        self._password_users = frozenset(settings.basic_password_users)
        self._hinted_mod_wsgi = False
        # The address is only worked out when something will use it.
        self._needs_address = self.access.needs_address or self.lockout is not None
        self._enabled = settings.enabled
        self._trust_remote_user = settings.trust_remote_user
        self._trusted_proxies = settings.trusted_proxies
        self._allow_preflight = settings.allow_preflight
        audit.configure(settings.audit_log)
        self._metrics_app = None
        if settings.metrics:
            metrics.enable()
            self._metrics_app = metrics.exposition_app()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate the request, then call the application or answer it here."""
        # The hot path: every request comes through here, so settings are read
        # from attributes set once in the constructor.
        if not self._enabled:
            return self.app(environ, start_response)
        pop = environ.pop
        for spoofable in SPOOFABLE_HEADERS:
            pop(spoofable, None)
        pop(IDENTITY_KEY, None)
        upstream_user = pop("REMOTE_USER", None)
        upstream_type = pop("AUTH_TYPE", None)
        if upstream_user is not None and not self._trust_remote_user:
            environ[UNTRUSTED_REMOTE_USER_KEY] = upstream_user
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        header: str | None = environ.get("HTTP_AUTHORIZATION")
        auditing = audit.log.isEnabledFor(logging.INFO)
        address = (
            client_address(environ, self._trusted_proxies)
            if self._needs_address or auditing
            else None
        )

        if upstream_user is not None and self._trust_remote_user:
            decision = Decision("allowed", _upstream(upstream_user, upstream_type))
        else:
            decision = self._decide(environ, method, path, header, address)

        if auditing:
            audit.emit(decision, method=method, path=path, client=address, header=header)
        identity = decision.identity
        if self._metrics_app is not None:
            metrics.METRICS.decision(
                decision.outcome,
                identity.method if identity else "-",
                (identity.provider or "-") if identity else "-",
            )
        if decision.error is not None:
            self._log_refusal(method, path, header, decision.error)
            response = error_response(
                decision.error, self.authentication.schemes, self.settings.realm
            )
            return response(environ, start_response)
        if identity is not None:
            environ["REMOTE_USER"] = identity.username
            environ["AUTH_TYPE"] = identity.auth_type
            environ[IDENTITY_KEY] = identity
        elif self._metrics_app is not None and path == self.settings.metrics_path:
            return self._metrics_app(environ, start_response)
        return self.app(environ, start_response)

    def _decide(
        self,
        environ: WSGIEnvironment,
        method: str,
        path: str,
        header: str | None,
        address: ClientAddress | None,
    ) -> Decision:
        """Who is asking, and may they: the whole of the middleware's judgement."""
        if self._is_preflight(environ, method):
            return _PUBLIC
        level = self.access.level(path)
        if level == "public":
            return _PUBLIC
        ip = None if address is None else address.ip
        try:
            self.access.check_network(ip)
            if self.lockout is not None and address is not None:
                self.lockout.check("address", address.text)
        except AuthenticationError as error:
            return _refusal(error)
        if level == "optional" and (header is None or not header.strip()):
            return _ANONYMOUS
        if header is None and not self._hinted_mod_wsgi and "mod_wsgi.version" in environ:
            self._hint_mod_wsgi()
        try:
            identity = self.authentication.authenticate(header)
            if identity.method == "password":
                self._check_password_allowed(identity, path)
            self.access.authorize(identity, method, path, ip)
        except AuthenticationError as error:
            if isinstance(error, _FAILURES) and self.lockout is not None:
                self._count_failure(error, address)
            return _refusal(error)
        return Decision("allowed", identity)

    def _check_password_allowed(self, identity: Identity, path: str) -> None:
        if (
            self.settings.block_basic_passwords
            and identity.username not in self._password_users
            and not self._password_paths.matches(path)
        ):
            error = InvalidCredentials(
                "Basic authentication with a password is not allowed here; use an API token.",
                reason=f"{identity.username!r} used a password (RESTAUTH_BLOCK_BASIC_PASSWORDS)",
                scheme="Basic",
            )
            error.username = identity.username
            raise error

    def _count_failure(self, error: AuthenticationError, address: ClientAddress | None) -> None:
        assert self.lockout is not None
        if address is not None:
            self.lockout.failed("address", address.text)
        if error.username:
            self.lockout.failed("user", error.username)

    def _is_preflight(self, environ: WSGIEnvironment, method: str) -> bool:
        return (
            method == "OPTIONS"
            and self._allow_preflight
            and "HTTP_ORIGIN" in environ
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        )

    def close(self) -> None:
        """Close this process's connections to the token store and the shared
        cache (for a graceful shutdown, or tests). Safe to call more than once;
        a later request opens them again."""
        self.authentication.close()
        if self.lockout is not None:
            self.lockout.shared.close()

    def _hint_mod_wsgi(self) -> None:
        # Apache drops Authorization unless told not to; a deployment that
        # forgot will refuse every client, so say why once per process.
        self._hinted_mod_wsgi = True
        log.warning(
            "a request under mod_wsgi arrived without an Authorization header; if clients"
            " do send one, 'WSGIPassAuthorization On' is missing from the Apache"
            " configuration (without it Apache drops the header)"
        )

    def _log_refusal(
        self, method: str, path: str, header: str | None, error: AuthenticationError
    ) -> None:
        level = logging.WARNING if isinstance(error, ServiceUnavailable) else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "refused %s %r: %s (%s) credentials=%s",
                method,
                path[:200],
                error.code,
                error.reason,
                audit.credential_tag(None, header) or "-",
            )


_PUBLIC = Decision("public")
_ANONYMOUS = Decision("anonymous")


def _refusal(error: AuthenticationError) -> Decision:
    outcome = "refused"
    if isinstance(error, ServiceUnavailable):
        outcome = "unavailable"
    elif isinstance(error, TooManyFailures):
        outcome = "locked"
    elif isinstance(error, Forbidden):
        outcome = "forbidden"
    elif isinstance(error, MissingCredentials):
        outcome = "unauthenticated"
    return Decision(outcome, error=error)


def _upstream(username: str, auth_type: object) -> Identity:
    return Identity(username=username, method="remote_user", auth_type=str(auth_type or "upstream"))
