"""The authenticator chain: from an ``Authorization`` header to an identity.

The middleware and ``restauth check`` both run exactly this.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence

from .authenticators import Authenticator
from .authenticators.api_token import ApiTokenAuthenticator
from .cache import RecentAnswers, Refusal
from .credentials import parse_authorization
from .errors import (
    AuthenticationError,
    InvalidCredentials,
    InvalidToken,
    MissingCredentials,
    ServiceUnavailable,
    TokenNotRecognised,
)
from .identity import Identity
from .providers.build import Providers
from .settings import Settings
from .tokens.store import open_store

# The order challenges are sent in: the scheme we recommend first.
_SCHEME_ORDER = ("Bearer", "Basic")


class Authentication:
    """Runs the configured authenticators over one request's credentials.

    :param recent: where provider answers are remembered (the hot path for a
        token seen before); ``None`` when no provider is configured.
    :param cache_ttls: per provider name, how long its identities are remembered.
    :param negative_ttl: how long a provider's refusal is remembered.
    """

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        *,
        providers: Providers | None = None,
        recent: RecentAnswers | None = None,
        cache_ttls: Mapping[str, float] | None = None,
        negative_ttl: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authenticators = tuple(authenticators)
        self.providers = providers
        enabled = {scheme for a in self.authenticators for scheme in a.schemes}
        #: The enabled schemes, one challenge each, in the order they are offered.
        self.schemes = tuple(s for s in _SCHEME_ORDER if s in enabled)
        self._accepted = frozenset(self.schemes)
        self._by_scheme = {
            scheme: tuple(a for a in self.authenticators if scheme in a.schemes)
            for scheme in self.schemes
        }
        self._recent = recent
        self._cache_ttls = dict(cache_ttls or {})
        self._negative_ttl = negative_ttl
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Authentication:
        """Build the chain the settings describe, without any I/O."""
        authenticators: list[Authenticator] = []
        if settings.api_tokens:
            store = open_store(settings.token_store, timeout=settings.token_store_timeout)
            authenticators.append(
                ApiTokenAuthenticator(
                    store,
                    cache_ttl=settings.token_cache_ttl,
                    cache_entries=settings.cache_max_entries,
                )
            )
        if not settings.providers:
            return cls(authenticators)
        providers = Providers(settings)
        return cls(
            [*authenticators, *providers.authenticators()],
            providers=providers,
            recent=RecentAnswers(settings.cache_max_entries),
            cache_ttls=providers.cache_ttls(),
            negative_ttl=settings.negative_cache_ttl,
        )

    def close(self) -> None:
        """Close the connections the authenticators hold (store, shared cache)."""
        for authenticator in self.authenticators:
            if isinstance(authenticator, ApiTokenAuthenticator):
                authenticator.store.close()
        if self.providers is not None:
            self.providers.shared.close()

    def authenticate(self, header: str | None) -> Identity:
        """Return the identity the ``Authorization`` header proves.

        :raises AuthenticationError: with the HTTP meaning of the refusal.
        """
        if header is None or not header.strip(" \t"):
            raise MissingCredentials(
                "Authentication is required: send 'Authorization: Bearer <token>'."
            )
        recent = self._recent
        if recent is None:
            return self._run_chain(header, None)
        key = hashlib.sha256(header.encode("utf-8", "surrogatepass")).digest()
        remembered = recent.get(key)
        if remembered is None:
            return self._run_chain(header, key)
        if isinstance(remembered, Identity):
            return remembered
        raise remembered.error()

    def _run_chain(self, header: str, key: bytes | None) -> Identity:
        credentials = parse_authorization(header, self._accepted)
        chain = self._by_scheme.get(credentials.scheme)
        if chain is None:
            offered = " or ".join(self.schemes) or "nothing"
            raise MissingCredentials(
                f"The {credentials.scheme[:20]!r} scheme is not accepted here; use {offered}."
            )
        unavailable: ServiceUnavailable | None = None
        not_recognised: TokenNotRecognised | None = None
        for authenticator in chain:
            try:
                identity = authenticator.authenticate(credentials)
            except AuthenticationError as exc:
                exc.scheme = exc.scheme or credentials.scheme
                if isinstance(exc, ServiceUnavailable):
                    # Another provider may still vouch for the token; if none
                    # does, the answer is 503, not 401: this one might have.
                    unavailable = unavailable or exc
                    continue
                if isinstance(exc, TokenNotRecognised):
                    not_recognised = not_recognised or exc
                    continue
                if getattr(authenticator, "remembers", False):
                    self._remember_refusal(key, exc)
                raise
            if identity is not None:
                self._remember(key, identity)
                return identity
        if unavailable is not None:
            raise unavailable
        if not_recognised is not None:
            self._remember_refusal(key, not_recognised)
            raise not_recognised
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

    def _remember(self, key: bytes | None, identity: Identity) -> None:
        if key is None or self._recent is None or identity.provider is None:
            return
        ttl = self._cache_ttls.get(identity.provider, 0.0)
        if identity.expires_at is not None:
            ttl = min(ttl, identity.expires_at - self._clock())
        self._recent.put(key, identity, ttl)

    def _remember_refusal(self, key: bytes | None, error: AuthenticationError) -> None:
        if key is not None and self._recent is not None:
            self._recent.put(key, Refusal.of(error), self._negative_ttl)
