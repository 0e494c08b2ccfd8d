"""Opaque bearer tokens, vouched for by the provider that issued them.

By introspection, userinfo or the provider's own check endpoint (see
:mod:`restauth_wsgi.opaque.lookups`). Every answer, yes or no, is kept in
the shared cache: a yes until the token expires but no longer than the
provider's cache TTL, a no for the negative TTL. Concurrent first requests
for the same token make one call between them (per process).

A token is only ever sent to a provider that could have issued it
(:mod:`restauth_wsgi.providers.routing`). Answers are kept under the
provider's fingerprint, so a service with another audience, client or
endpoint never reuses them. A call for a token not seen before is guarded:
an address locked out for guessing gets 429 instead of a call.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from restauth_wsgi.authenticator import Guard
from restauth_wsgi.cache import SharedCache
from restauth_wsgi.credentials import Credentials
from restauth_wsgi.errors import InvalidToken, ProviderUnavailable, TokenNotRecognised
from restauth_wsgi.identity import Identity
from restauth_wsgi.opaque.lookups import Lookup, LookupAnswer
from restauth_wsgi.opaque.single_flight import SingleFlight
from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.providers.routing import may_receive
from restauth_wsgi.upstream import UpstreamError, retry_after_header


class OpaqueTokenAuthenticator:
    """Checks bearer tokens with one provider's lookup."""

    schemes = frozenset({"Bearer"})
    remembers = True

    def __init__(
        self,
        config: ProviderConfig,
        lookup: Lookup,
        shared: SharedCache,
        flights: SingleFlight[LookupAnswer],
        *,
        negative_ttl: float,
        wait: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self.lookup = lookup
        self.shared = shared
        self.flights = flights
        self.negative_ttl = negative_ttl
        self.wait = wait
        self._kind = f"{config.validation}:{config.name}:{config.fingerprint}"

    def authenticate(self, credentials: Credentials, guard: Guard) -> Identity | None:
        """The identity, ``None`` if the token cannot be this provider's.

        :raises TokenNotRecognised: the provider does not vouch for it.
        :raises ServiceUnavailable: the provider cannot be asked.
        :raises TooManyFailures: the token needs a call and the guard forbids it.
        """
        if not self.might_have_issued(credentials):
            return None
        token = credentials.secret
        answer = self._cached(token)
        if answer is None:
            guard.before_costly_call()
            answer = self._answer(token, guard)
        try:
            if not answer.active:
                raise TokenNotRecognised(
                    "The access token is invalid.",
                    reason=f"{self.config.name}: {answer.reason}",
                    scheme="Bearer",
                )
            return self.config.mapping.identity(
                answer.claims,
                method=self.config.validation,
                provider=self.config.name,
                expires_at=answer.expires_at,
                scopes=answer.scopes,
            )
        except InvalidToken as error:
            error.provider = self.config.name
            raise

    def close(self) -> None:
        """Nothing to close here: the providers' shared cache is closed with them."""

    def might_have_issued(self, credentials: Credentials) -> bool:
        """Whether sending this token to this provider could make sense."""
        unverified = credentials.unverified_jwt
        if unverified is None:
            return may_receive(
                credentials.secret, family=self.config.family, prefixes=self.config.token_prefixes
            )
        issuer = unverified.claims.get("iss")
        if issuer is not None:
            # A JWT that names its issuer goes to that provider only (an iss
            # that is a list or an object, or a near miss of a configured one,
            # goes nowhere): never to a provider that could not have issued it.
            return isinstance(issuer, str) and issuer in self.config.issuers
        # A JWT-shaped token without an issuer may be a generic oauth2
        # provider's opaque token; the presets never issue such tokens.
        return self.config.kind == "oauth2" and not self.config.issuers

    def _answer(self, token: str, guard: Guard) -> LookupAnswer:
        key = hashlib.sha256(f"{self._kind}\0{token}".encode()).hexdigest()
        return self.flights.run(
            key, lambda: self._ask(token, guard), wait=self.wait, timed_out=self._timed_out
        )

    def _cached(self, token: str) -> LookupAnswer | None:
        entry = self.shared.get(self._kind, token)
        answer = None if entry is None else LookupAnswer.from_json(entry)
        # An answer past its own expiry is none: a host whose clock runs
        # behind kept it longer than it holds (another release, or anyone who
        # can write to the cache, may have too).
        if (
            answer is not None
            and answer.active
            and answer.expires_at is not None
            and not answer.expires_at > self._clock()
        ):
            return None
        return answer

    def _ask(self, token: str, guard: Guard) -> LookupAnswer:
        cached = self._cached(token)  # another process may have asked meanwhile
        if cached is not None:
            return cached
        # Only the request that makes the call counts it: one token, one guess,
        # however many requests wait for its answer.
        guard.making_costly_call()
        try:
            answer = self.lookup(token)
        except UpstreamError as exc:
            raise ProviderUnavailable(
                self.config.name, exc, retry_after=retry_after_header(exc.retry_after)
            ) from None
        answer = LookupAnswer(
            answer.active,
            _without(answer.claims, token),
            answer.expires_at,
            answer.scopes,
            answer.reason,
        )
        if answer.active:
            ttl: float = self.config.cache_ttl
            if answer.expires_at is not None:
                ttl = min(ttl, answer.expires_at - self._clock())
        else:
            ttl = self.negative_ttl
        if ttl >= 1:
            self.shared.set(self._kind, token, answer.to_json(), ttl)
        return answer

    def _timed_out(self) -> LookupAnswer:
        raise ProviderUnavailable(self.config.name, "waited too long for another request's answer")


def _without(claims: dict[str, object], token: str) -> dict[str, object]:
    """``claims`` without any value that is the token itself (nothing stores a token)."""
    cleaned: dict[str, object] = {}
    for name, value in claims.items():
        if value == token:
            continue
        cleaned[name] = _without(value, token) if isinstance(value, dict) else value
    return cleaned
