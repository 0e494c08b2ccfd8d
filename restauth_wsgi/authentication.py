"""The authenticator chain: from an ``Authorization`` header to an identity.

The middleware and ``restauth check`` both run exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence

from .authenticators import Authenticator
from .authenticators.api_token import ApiTokenAuthenticator
from .credentials import parse_authorization
from .errors import AuthenticationError, InvalidCredentials, InvalidToken, MissingCredentials
from .identity import Identity
from .settings import Settings
from .tokens.store import open_store

# The order challenges are sent in: the scheme we recommend first.
_SCHEME_ORDER = ("Bearer", "Basic")


class Authentication:
    """Runs the configured authenticators over one request's credentials."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self.authenticators = tuple(authenticators)
        enabled = {scheme for a in self.authenticators for scheme in a.schemes}
        #: The enabled schemes, one challenge each, in the order they are offered.
        self.schemes = tuple(s for s in _SCHEME_ORDER if s in enabled)
        self._accepted = frozenset(self.schemes)
        self._by_scheme = {
            scheme: tuple(a for a in self.authenticators if scheme in a.schemes)
            for scheme in self.schemes
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Authentication:
        """Build the chain the settings describe, without any I/O."""
        authenticators: list[Authenticator] = []
        if settings.api_tokens:
            store = open_store(settings.token_store, timeout=settings.token_store_timeout)
            authenticators.append(ApiTokenAuthenticator(store))
        return cls(authenticators)

    def authenticate(self, header: str | None) -> Identity:
        """Return the identity the ``Authorization`` header proves.

        :raises AuthenticationError: with the HTTP meaning of the refusal.
        """
        if header is None or not header.strip(" \t"):
            raise MissingCredentials(
                "Authentication is required: send 'Authorization: Bearer <token>'."
            )
        credentials = parse_authorization(header, self._accepted)
        chain = self._by_scheme.get(credentials.scheme)
        if chain is None:
            offered = " or ".join(self.schemes) or "nothing"
            raise MissingCredentials(
                f"The {credentials.scheme[:20]!r} scheme is not accepted here; use {offered}."
            )
        for authenticator in chain:
            try:
                identity = authenticator.authenticate(credentials)
            except AuthenticationError as exc:
                exc.scheme = exc.scheme or credentials.scheme
                raise
            if identity is not None:
                return identity
        if credentials.scheme == "Bearer":
            raise InvalidToken(
                "The access token is invalid.",
                reason="no authenticator recognised the token",
                scheme="Bearer",
            )
        raise InvalidCredentials(
            "The username or password is invalid.",
            reason="no authenticator accepted the Basic credentials",
            scheme=credentials.scheme,
        )
