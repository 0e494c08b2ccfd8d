"""The WSGI middleware: authenticate every request before the application sees it.

Wrap any WSGI application::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)  # settings from RESTAUTH_*

The application reads ``REMOTE_USER`` (and ``AUTH_TYPE``, and the full
:class:`~restauth_wsgi.identity.Identity` at ``environ["restauth.identity"]``).
Requests that cannot be let through are answered here with a JSON error and
``WWW-Authenticate`` challenges; the application never sees them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .authentication import Authentication
from .errors import AuthenticationError, ServiceUnavailable
from .identity import Identity
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
        self.authentication = Authentication.from_settings(settings)
        self._public = PathGlobs(settings.public_paths)
        self._hinted_mod_wsgi = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate the request, then call the application or answer it here."""
        if not self.settings.enabled:
            return self.app(environ, start_response)
        for spoofable in SPOOFABLE_HEADERS:
            environ.pop(spoofable, None)
        environ.pop(IDENTITY_KEY, None)
        upstream_user = environ.pop("REMOTE_USER", None)
        if upstream_user is not None:
            if self.settings.trust_remote_user:
                return self._call_app(environ, start_response, _upstream(environ, upstream_user))
            environ[UNTRUSTED_REMOTE_USER_KEY] = upstream_user
        environ.pop("AUTH_TYPE", None)
        if self._passes_unauthenticated(environ):
            return self.app(environ, start_response)
        header: str | None = environ.get("HTTP_AUTHORIZATION")
        if header is None and not self._hinted_mod_wsgi and "mod_wsgi.version" in environ:
            self._hint_mod_wsgi()
        try:
            identity = self.authentication.authenticate(header)
        except AuthenticationError as error:
            self._log_refusal(environ, header, error)
            response = error_response(error, self.authentication.schemes, self.settings.realm)
            return response(environ, start_response)
        return self._call_app(environ, start_response, identity)

    def close(self) -> None:
        """Close this process's connections to the token store and the shared
        cache (for a graceful shutdown, or tests). Safe to call more than once;
        a later request opens them again."""
        self.authentication.close()

    def _call_app(
        self, environ: WSGIEnvironment, start_response: StartResponse, identity: Identity
    ) -> Iterable[bytes]:
        environ["REMOTE_USER"] = identity.username
        environ["AUTH_TYPE"] = identity.auth_type
        environ[IDENTITY_KEY] = identity
        return self.app(environ, start_response)

    def _hint_mod_wsgi(self) -> None:
        # Apache drops Authorization unless told not to; a deployment that
        # forgot will refuse every client, so say why once per process.
        self._hinted_mod_wsgi = True
        log.warning(
            "a request under mod_wsgi arrived without an Authorization header; if clients"
            " do send one, 'WSGIPassAuthorization On' is missing from the Apache"
            " configuration (without it Apache drops the header)"
        )

    def _passes_unauthenticated(self, environ: WSGIEnvironment) -> bool:
        if (
            self.settings.allow_preflight
            and environ.get("REQUEST_METHOD") == "OPTIONS"
            and "HTTP_ORIGIN" in environ
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        ):
            return True
        return self._public.matches(environ.get("PATH_INFO", ""))

    def _log_refusal(
        self, environ: WSGIEnvironment, header: str | None, error: AuthenticationError
    ) -> None:
        level = logging.WARNING if isinstance(error, ServiceUnavailable) else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "refused %s %r: %s (%s) credentials=%s",
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                error.code,
                error.reason,
                fingerprint(header),
            )


def fingerprint(secret: str | None) -> str:
    """A short, non-reversible tag of a secret for logs: never the secret itself."""
    if not secret:
        return "-"
    digest = hashlib.sha256(secret.encode("latin-1", "replace")).hexdigest()
    return f"sha256:{digest[:12]}"


def _upstream(environ: WSGIEnvironment, username: str) -> Identity:
    auth_type = environ.get("AUTH_TYPE") or "upstream"
    return Identity(username=username, method="remote_user", auth_type=str(auth_type))
