"""The WSGI middleware: authenticate every request before the application sees it.

Wrap any WSGI application::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)  # settings from RESTAUTH_*

The application reads ``REMOTE_USER`` (and ``AUTH_TYPE``, and the full
:class:`~restauth_wsgi.identity.Identity` at ``environ["restauth.identity"]``).
Requests that cannot be let through are answered here with a JSON error and
``WWW-Authenticate`` challenges; the application never sees them.

This is an adapter, as werkzeug's dispatcher is: it strips what a client
could spoof, describes the request once (:mod:`restauth_wsgi.request.description`),
asks the :class:`~restauth_wsgi.decision.Gatekeeper`, writes the audit line
and the metrics, and answers or hands on (to the application, or to the
self-service token API for its paths). No decision is made here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from restauth_wsgi.audit import AuditLog, credential_tag, redact_tokens
from restauth_wsgi.decision import Decision, Gatekeeper, refusal
from restauth_wsgi.errors import AuthenticationError, MalformedRequest, ServiceUnavailable
from restauth_wsgi.metrics import exposition_app
from restauth_wsgi.request.description import Request, describe_environ
from restauth_wsgi.responses import error_response
from restauth_wsgi.self_service.api import SelfServiceApi
from restauth_wsgi.settings import Settings, settings_environ, unknown_variables

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("restauth_wsgi")
_INFO = logging.INFO

#: The environ key of the authenticated :class:`Identity`.
IDENTITY_KEY = "restauth.identity"
#: Where a ``REMOTE_USER`` that was not trusted is kept, for debugging only.
UNTRUSTED_REMOTE_USER_KEY = "restauth.untrusted_remote_user"

# Identity headers that auth proxies and gateways set and that applications
# are often told to trust (oauth2-proxy, Apache's mod_auth_openidc and
# mod_auth_*, nginx auth modules, AWS ALB, Google IAP, Azure App Service,
# Cloudflare Access, Kong, Envoy, Grafana's auth proxy, TLS client-certificate
# forwarding). A client can send them too, so they never reach the application.
SPOOFABLE_HEADERS = frozenset(
    {
        "HTTP_REMOTE_USER",
        "HTTP_X_REMOTE_USER",
        "HTTP_X_REMOTE_GROUP",
        "HTTP_X_REMOTE_GROUPS",
        "HTTP_X_REMOTE_EMAIL",
        "HTTP_X_REMOTE_ROLES",
        "HTTP_X_USER",
        "HTTP_X_EMAIL",
        "HTTP_X_USERINFO",
        "HTTP_X_PROXY_USER",
        "HTTP_X_AUTH_USER",
        "HTTP_X_AUTH_USERNAME",
        "HTTP_X_ID_TOKEN",
        "HTTP_X_ACCESS_TOKEN",
        "HTTP_X_CLIENT_CERT",
        "HTTP_X_CREDENTIAL_IDENTIFIER",
        "HTTP_X_FORWARDED_USER",
        "HTTP_X_FORWARDED_EMAIL",
        "HTTP_X_FORWARDED_LOGIN",
        "HTTP_X_FORWARDED_PREFERRED_USERNAME",
        "HTTP_X_FORWARDED_GROUPS",
        "HTTP_X_FORWARDED_ACCESS_TOKEN",
        "HTTP_X_FORWARDED_ID_TOKEN",
        "HTTP_X_FORWARDED_CLIENT_CERT",
        "HTTP_X_GOOG_IAP_JWT_ASSERTION",
        # Not an identity, but it moves what the application serves: Pyramid's
        # traversal prepends it to the path, so a client could send
        # `/health` with `X-Vhm-Root: /rest/admin` and be judged on /health.
        "HTTP_X_VHM_ROOT",
    }
)
# Whole families of them.
SPOOFABLE_PREFIXES = (
    "HTTP_X_AUTH_REQUEST_",  # oauth2-proxy
    "HTTP_OIDC_",  # mod_auth_openidc: OIDC-Claim-*, OIDC_access_token...
    "HTTP_X_AMZN_OIDC_",  # AWS ALB
    "HTTP_X_GOOG_AUTHENTICATED_USER_",  # Google IAP
    "HTTP_X_MS_CLIENT_PRINCIPAL",  # Azure App Service
    "HTTP_X_MS_TOKEN_",  # Azure App Service token store
    "HTTP_CF_ACCESS_",  # Cloudflare Access
    "HTTP_X_CONSUMER_",  # Kong
    "HTTP_X_WEBAUTH_",  # Grafana's auth proxy
    "HTTP_X_AUTHENTICATED_",
    "HTTP_SSL_CLIENT_",
    "HTTP_X_SSL_CLIENT_",
)


# How many distinct sets of request keys SpoofableHeaders remembers, and the
# most text one may hold (a real server's keys: about 1 KB).
_FOUND_LIMIT = 256
_FOUND_KEYS_SIZE = 4096


class SpoofableHeaders:
    """Finds the identity headers of a request, in one pass over its keys.

    The hot path cannot afford a Python loop over every key: the keys are
    joined once and searched by one compiled pattern (a request without any
    such header, the usual case, costs that and nothing more).

    :param extra: more header names (``X-My-User``) or prefixes (``X-My-*``)
        to remove (``RESTAUTH_STRIP_HEADERS``).
    """

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        names = set(SPOOFABLE_HEADERS)
        prefixes = list(SPOOFABLE_PREFIXES)
        for header in extra:
            key = "HTTP_" + header.upper().replace("-", "_")
            if key.endswith("*"):
                prefixes.append(key[:-1])
            else:
                names.add(key)
        exact = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        starts = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
        self._pattern = re.compile(f"\n((?:{exact})(?=\n)|(?:{starts})[^\n]*)")
        # The keys a server sends repeat from request to request (only values
        # change), so the answer for one set of keys is remembered: a tuple
        # hash and a dictionary lookup instead of a join and a search.
        self._found: dict[tuple[object, ...], tuple[str, ...]] = {}

    def strip(self, environ: WSGIEnvironment) -> None:
        """Remove them (and our own identity key) from ``environ``."""
        environ.pop(IDENTITY_KEY, None)
        keys = tuple(environ)
        found = self._found.get(keys)
        if found is None:
            found = self._search(keys)
        for key in found:
            environ.pop(key, None)

    def _search(self, keys: tuple[object, ...]) -> tuple[str, ...]:
        # A key that is not a string may be set by a server in front.
        joined = "\n" + "\n".join(k for k in keys if isinstance(k, str)) + "\n"
        found = tuple(self._pattern.findall(joined))
        # Bounded in size as well as number: a client chooses the header
        # names, and a remembered set of them holds every one.
        if len(joined) <= _FOUND_KEYS_SIZE:
            if len(self._found) >= _FOUND_LIMIT:
                self._found.clear()
            self._found[keys] = found
        return found


# How many protected requests a process under mod_wsgi serves without ever
# seeing an Authorization header before it says WSGIPassAuthorization may be off.
MOD_WSGI_EVIDENCE = 20


class RestAuthMiddleware:
    """Authenticates REST calls in front of a WSGI application.

    :param app: the WSGI application to protect.
    :param settings: the settings; by default read from ``RESTAUTH_*``
        environment variables. Invalid settings raise
        :class:`~restauth_wsgi.errors.ConfigurationError` here, naming the
        variable. Nothing is connected to until the first request.
    :param gatekeeper: the decision to use, if not the one the settings
        describe (tests give it a clock).
    :param audit: where the audit lines go, if not where
        ``RESTAUTH_AUDIT_LOG`` says (tests and embedding applications give
        their own); the decision's lines and the self-service API's alike.
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: Settings | None = None,
        *,
        gatekeeper: Gatekeeper | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
        if settings is None:
            applied = settings_environ(os.environ)
            settings = Settings.from_mapping(applied)
            for variable in unknown_variables(applied):
                log.warning("%s is not a restauth-wsgi setting; is it misspelt?", variable)
        self.settings = settings
        self.gatekeeper = gatekeeper or Gatekeeper.from_settings(settings)
        self.authentication = self.gatekeeper.authentication
        self._decide = self.gatekeeper.decide  # bound once: called by every request
        self.audit = audit if audit is not None else AuditLog(settings.audit_log)
        self._own_audit = audit is None  # a log given to us is its giver's to close
        # Read per request, where the logger's own cache makes it cheap.
        self._audit_enabled = self.audit.logger.isEnabledFor
        self._spoofable = SpoofableHeaders(settings.strip_headers)
        self._enabled = settings.enabled
        self._trust_remote_user = settings.trust_remote_user
        self._trusted_proxies = settings.trusted_proxies
        self._schemes = self.authentication.schemes
        self._realm = settings.realm
        self._self_service: SelfServiceApi | None = None
        if settings.self_service:
            self._self_service = SelfServiceApi.from_settings(
                settings, self.audit, schemes=self._schemes
            )
        self._metrics_app = None
        if settings.metrics:
            self._metrics_app = exposition_app()
        self._warned_forwarded = False
        # mod_wsgi: protected requests seen without any Authorization header,
        # or -1 once one arrived (then the directive is evidently on).
        self._mod_wsgi_bare = 0
        # Whether a hint may still be logged (each is logged once per process).
        self._watching = True

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate the request, then call the application or answer it here."""
        if not self._enabled:
            return self.app(environ, start_response)
        self._spoofable.strip(environ)
        upstream_user = environ.pop("REMOTE_USER", None)
        upstream_type = environ.pop("AUTH_TYPE", None)
        if upstream_user is not None and not self._trust_remote_user:
            environ[UNTRUSTED_REMOTE_USER_KEY] = upstream_user
            upstream_user = upstream_type = None
        request = None
        try:
            if upstream_user is None:
                request = describe_environ(environ, trusted_proxies=self._trusted_proxies)
            else:
                request = describe_environ(
                    environ,
                    trusted_proxies=self._trusted_proxies,
                    upstream_user=str(upstream_user),
                    upstream_auth_type=None if upstream_type is None else str(upstream_type),
                )
        except MalformedRequest as malformed:
            decision = refusal(malformed)
        else:
            decision = self._decide(request)
        if self._watching and (
            request is None
            or request.client is None
            or "HTTP_X_FORWARDED_FOR" in environ
            or "mod_wsgi.version" in environ
        ):
            self._note(environ, decision, request)
        identity, error = decision.identity, decision.error
        if self._audit_enabled(_INFO):
            self.audit.emit(
                decision,
                method=str(environ.get("REQUEST_METHOD", "")),
                path=str(environ.get("PATH_INFO", "")),
                client=None if request is None else request.client,
                header=environ.get("HTTP_AUTHORIZATION"),
            )
        if self._metrics_app is not None:
            self.gatekeeper.metrics.decision(
                decision.outcome,
                identity.method if identity else "-",
                (identity.provider or "-") if identity else "-",
            )
        if error is not None:
            self._log_refusal(environ, error)
            return error_response(error, self._schemes, self._realm)(environ, start_response)
        if identity is not None:
            environ["REMOTE_USER"] = identity.username
            environ["AUTH_TYPE"] = identity.auth_type
            environ[IDENTITY_KEY] = identity
        if (
            self._self_service is not None
            and request is not None
            and self._self_service.serves(request.path)
        ):
            return self._self_service(environ, start_response, request, identity)
        if (
            self._metrics_app is not None
            and request is not None
            and request.path.canonical
            and request.path.text == self.settings.metrics_path
        ):
            return self._metrics_app(environ, start_response)
        return self.app(environ, start_response)

    def close(self) -> None:
        """Close this process's connections to the token store and the shared
        cache (for a graceful shutdown, or tests). Safe to call more than once;
        a later request opens them again."""
        self.gatekeeper.close()
        if self._self_service is not None:
            self._self_service.close()
        if self._own_audit:
            self.audit.close()

    def _note(self, environ: WSGIEnvironment, decision: Decision, request: Request | None) -> None:
        """Hints for the operator, each logged once per process."""
        if not self._warned_forwarded and request is not None:
            self._note_address(environ, request)
        self._watching = not self._warned_forwarded or self._mod_wsgi_bare >= 0
        if self._mod_wsgi_bare >= 0 and "mod_wsgi.version" in environ:
            self._count_mod_wsgi(environ, decision)

    def _note_address(self, environ: WSGIEnvironment, request: Request) -> None:
        forwarded = "HTTP_X_FORWARDED_FOR" in environ
        if forwarded and not self._trusted_proxies:
            self._warned_forwarded = True
            log.warning(
                "requests arrive with X-Forwarded-For but RESTAUTH_TRUSTED_PROXIES=0: every"
                " client looks like the proxy in front (lockout, networks and the audit log"
                " see %s); set RESTAUTH_TRUSTED_PROXIES to the number of proxies",
                "its address" if request.client is not None else "no address at all",
            )
        elif request.client is None:
            self._warned_forwarded = True
            log.warning(
                "a request's client address cannot be told (%s): lockouts count such clients"
                " together, as one 'unknown' address, and RESTAUTH_ALLOWED_NETWORKS refuses them",
                "the X-Forwarded-For entry of the trusted proxy is not an address"
                if forwarded and self._trusted_proxies
                else "REMOTE_ADDR is empty or not an address: a unix socket?",
            )

    def _count_mod_wsgi(self, environ: WSGIEnvironment, decision: Decision) -> None:
        # Apache drops Authorization unless WSGIPassAuthorization is on. One
        # request with the header proves it is on; only many protected
        # requests without one, and none with, point to it being off.
        if "HTTP_AUTHORIZATION" in environ:
            self._mod_wsgi_bare = -1
        elif decision.outcome == "unauthenticated":
            self._mod_wsgi_bare += 1
            if self._mod_wsgi_bare == MOD_WSGI_EVIDENCE:
                log.warning(
                    "%d protected requests under mod_wsgi arrived without an Authorization"
                    " header, and none with one: if clients do send it, 'WSGIPassAuthorization"
                    " On' is missing from the Apache configuration (without it Apache drops"
                    " the header)",
                    MOD_WSGI_EVIDENCE,
                )

    def _log_refusal(self, environ: WSGIEnvironment, error: AuthenticationError) -> None:
        level = logging.WARNING if isinstance(error, ServiceUnavailable) else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "refused %r %r: %s (%s) credentials=%s",
                redact_tokens(str(environ.get("REQUEST_METHOD", "")))[:40],
                redact_tokens(str(environ.get("PATH_INFO", "")))[:200],
                error.code,
                redact_tokens(error.reason),
                credential_tag(None, environ.get("HTTP_AUTHORIZATION")) or "-",
            )
