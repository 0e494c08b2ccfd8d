"""The errors of restauth-wsgi, each carrying its HTTP meaning.

Authenticators and stores raise these; only the middleware turns them into
responses, in one place (:mod:`restauth_wsgi.responses`). ``code`` is the
stable machine-readable value of the JSON body's ``error`` member and
``description`` the message shown to the caller, so neither may contain a
secret or reveal whether a user exists.
"""

from __future__ import annotations


class RestAuthError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(RestAuthError, ValueError):
    """A setting is missing or invalid.

    The message always starts with the environment variable that names the
    setting, so a user can find what to fix whichever way it was set.
    """

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class AuthenticationError(RestAuthError):
    """The request cannot be let through; carries the HTTP answer's meaning.

    :param description: a sentence for the caller that helps fix the request
        without revealing secrets or whether a user exists.
    :param reason: a more precise note for logs and ``restauth check``; it
        may name the token id but never the token.
    """

    status: int = 401
    code: str = "invalid_credentials"

    def __init__(
        self, description: str, *, reason: str | None = None, scheme: str | None = None
    ) -> None:
        self.description = description
        self.reason = reason or description
        #: The scheme the refused credentials used (``Bearer``, ``Basic``), if any:
        #: only that scheme's challenge carries the ``error`` attribute.
        self.scheme = scheme
        #: The Basic username of the refused credentials, for lockout and audit.
        self.username: str | None = None
        #: The configured provider that refused a token, for audit.
        self.provider: str | None = None
        #: Whether a password was checked and found wrong: counted per user.
        self.password = False
        #: Whether the refusal may be remembered for these credentials (not when
        #: the same credentials could pass moments later: an unknown key id).
        self.remember = True
        super().__init__(self.reason)


class MissingCredentials(AuthenticationError):
    """No credentials, or only ones in a scheme that is not enabled.

    RFC 6750 section 3.1: the challenge then carries no ``error`` attribute.
    """

    code = "missing_credentials"


class MalformedCredentials(AuthenticationError):
    """The ``Authorization`` header is not valid syntax for its scheme."""

    status = 400
    code = "invalid_request"


class MalformedRequest(AuthenticationError):
    """The request itself cannot be judged: a method that is not an HTTP method."""

    status = 400
    code = "invalid_request"


class InvalidCredentials(AuthenticationError):
    """Well-formed credentials that are wrong, expired or revoked."""

    code = "invalid_credentials"


class PasswordsBlocked(InvalidCredentials):
    """Basic with a password where passwords are blocked; decided before any
    password is checked, so the answer says nothing about the password."""


class InvalidToken(InvalidCredentials):
    """A bearer token that is wrong, expired or revoked (RFC 6750 ``invalid_token``)."""

    code = "invalid_token"


class TokenNotRecognised(InvalidToken):
    """A provider does not know the token; another configured provider may.

    The chain tries the next provider and answers with this only if none
    accepts the token.
    """


class Forbidden(AuthenticationError):
    """The caller is known but may not do this (a rule, a group, a network)."""

    status = 403
    code = "forbidden"


class InsufficientScope(Forbidden):
    """The token lacks a scope the resource needs (RFC 6750 ``insufficient_scope``)."""

    code = "insufficient_scope"

    def __init__(self, description: str, *, scopes: tuple[str, ...], reason: str | None = None):
        super().__init__(description, reason=reason, scheme="Bearer")
        #: The scopes the resource needs, for the challenge's ``scope`` attribute.
        self.scopes = scopes


class TooManyFailures(AuthenticationError):
    """Too many failed attempts from this client (or for this user): try later."""

    status = 429
    code = "too_many_failures"

    def __init__(self, description: str, *, retry_after: int, reason: str | None = None):
        super().__init__(description, reason=reason)
        self.retry_after = retry_after


class ServiceUnavailable(AuthenticationError):
    """Something that must vouch for the credentials cannot be reached.

    Answered with 503 and ``Retry-After``, never 401: the caller's
    credentials may well be valid.
    """

    status = 503
    code = "temporarily_unavailable"

    def __init__(
        self,
        description: str,
        *,
        reason: str | None = None,
        scheme: str | None = None,
        retry_after: int = 5,
    ) -> None:
        super().__init__(description, reason=reason, scheme=scheme)
        self.retry_after = retry_after


class ProviderUnavailable(ServiceUnavailable):
    """An identity provider that must vouch for a token cannot be asked."""

    def __init__(self, provider: str, problem: object, *, retry_after: int = 5) -> None:
        super().__init__(
            "The identity provider cannot be reached; try again shortly.",
            reason=f"{provider}: {problem}",
            scheme="Bearer",
            retry_after=retry_after,
        )
        self.provider = provider


class TokenStoreUnavailable(ServiceUnavailable):
    """The API token store cannot be read or written."""


class TokenError(RestAuthError):
    """An API token operation that the store refused (limits, unknown id)."""


class TokenLimitExceeded(TokenError):
    """Issuing the token would break a limit the administrator set."""


class TokenNotFound(TokenError):
    """No token with that id exists in the store."""
