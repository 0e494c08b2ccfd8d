"""JWT access tokens, validated locally (RFC 8725 and RFC 9068 practice).

A token is routed to its provider by its unverified ``iss``; then its
signature is checked with the provider's key for the token's ``kid``, with
``alg`` from an allow-list (asymmetric only unless HMAC is configured,
never ``none``), and its claims: ``iss`` exact, the audience, ``exp``
required, ``nbf`` and ``iat`` with leeway. Keys come only from the
provider's JWKS URL: ``jku``, ``x5u``, ``x5c`` and ``jwk`` headers are
never looked at, and a ``crit`` header (an extension we do not implement)
is refused. The token is parsed once (:mod:`restauth_wsgi.jwt.jws`); the
signature is verified by PyJWT's algorithm objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jwt.algorithms import get_default_algorithms

from restauth_wsgi.authenticator import Guard
from restauth_wsgi.errors import InvalidToken, ProviderUnavailable
from restauth_wsgi.identity import Identity
from restauth_wsgi.jwt import jws
from restauth_wsgi.jwt.jws import InvalidAudienceError, InvalidJwt, ParsedJwt
from restauth_wsgi.jwt.keys import KeySet, UnknownKey
from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.providers.settings import HMAC_ALGORITHMS
from restauth_wsgi.upstream import UpstreamError, retry_after_header

if TYPE_CHECKING:
    # Only named: the credentials module parses JWTs with this package's jws.
    from restauth_wsgi.credentials import Credentials

_INVALID = InvalidJwt.description


class JwtValidator:
    """Validates one provider's JWTs."""

    def __init__(
        self, config: ProviderConfig, keys: KeySet, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._clock = clock
        self.keys = keys
        self._algorithms = frozenset(config.algorithms)
        self._types = frozenset(t.lower() for t in config.access_token_types)
        self._audience = config.audience if config.audience_claim == "aud" else None
        self._id_token_marks = frozenset(config.id_token_claims)
        # Whether any of the provider's own rules beyond the ID-token marks
        # apply: most presets have none, and a first-seen token skips them.
        self._own_rules = bool(
            config.audience_claim != "aud" or config.claim_rules or config.any_of_claims
        )
        self._hmac: dict[str, tuple[Any, Any]] = {}
        if config.hmac_secret:
            for name in HMAC_ALGORITHMS:
                algorithm = get_default_algorithms()[name]
                self._hmac[name] = (algorithm, algorithm.prepare_key(config.hmac_secret))

    def validate(self, token: str, parsed: ParsedJwt) -> Identity:
        """The identity the token proves.

        :raises InvalidToken: for any token that is not one of this provider's
            valid access tokens for this API, or that maps to no user.
        :raises ServiceUnavailable: when no key set can be had.
        """
        try:
            claims = self.verified_claims(parsed)
            return self.config.mapping.identity(
                claims, method="jwt", provider=self.config.name, expires_at=float(claims["exp"])
            )
        except InvalidToken as error:
            error.provider = self.config.name
            raise

    def verified_claims(self, parsed: ParsedJwt) -> dict[str, Any]:
        """The token's claims once its signature and claims are checked.

        :raises InvalidToken: for any token that is not one of this provider's
            valid access tokens for this API.
        :raises ServiceUnavailable: when no key set can be had.
        """
        config = self.config
        header = parsed.header
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algorithms:
            raise _refuse(f"algorithm {str(alg)[:20]!r} is not allowed")
        if "crit" in header or header.get("b64") is False:
            raise _refuse("the token needs a JWS extension (crit, b64) that is not supported")
        if config.refuse_nonce_header and "nonce" in header:
            raise _refuse(
                "a token with a nonce header (Microsoft Graph's) cannot be verified;"
                " request a token for your own API",
            )
        if self._types and str(header.get("typ", "")).lower() not in self._types:
            raise _refuse(f"typ {str(header.get('typ'))[:20]!r} is not an access token type")
        algorithm, key = self._key(header, alg)
        try:
            jws.verify_signature(parsed, algorithm, key)
            jws.check_claims(
                parsed.claims,
                issuers=config.issuers,
                audience=self._audience,
                leeway=config.leeway,
                now=self._clock(),
            )
        except InvalidJwt as exc:
            raise _refuse(str(exc), exc.description) from None
        claims = parsed.claims
        if self._own_rules:
            self._check_claims(claims)
        if not self._id_token_marks.isdisjoint(claims):
            marks = ", ".join(sorted(self._id_token_marks.intersection(claims)))
            raise _refuse(f"the token carries {marks}: an ID token, not an access token")
        return claims

    def _key(self, header: dict[str, Any], alg: str) -> tuple[Any, Any]:
        if alg in HMAC_ALGORITHMS:
            return self._hmac[alg]
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _refuse("the kid header is not a string")
        try:
            key = self.keys.key(kid, alg)
        except UnknownKey as exc:
            # The next key-set fetch may know this kid (a rotation): never
            # answer it from memory.
            error = _refuse(str(exc))
            error.remember = False
            raise error from None
        except UpstreamError as exc:
            raise ProviderUnavailable(
                self.config.name, exc, retry_after=retry_after_header(exc.retry_after)
            ) from None
        return key.Algorithm, key.key

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """The provider's own rules: an audience in another claim, claims that
        must hold given values, claims one of which must be present."""
        config = self.config
        audience = claims.get(config.audience_claim)
        if config.audience_claim != "aud" and audience not in config.audience:
            raise _refuse(
                f"{config.audience_claim} {str(audience)[:60]!r} is not an accepted audience",
                InvalidAudienceError.description,
            )
        for rule in config.claim_rules:
            if not rule.holds(claims):
                raise _refuse(
                    f"claim {rule.claim} is {str(rule.found(claims))[:40]!r},"
                    f" not {' or '.join(rule.values)}: not an access token for this API"
                )
        if config.any_of_claims and not any(c in claims for c in config.any_of_claims):
            raise _refuse(
                f"none of {', '.join(config.any_of_claims)} is present: not an access token"
            )


class JwtAuthenticator:
    """Routes JWTs to their provider by issuer and validates them there.

    Several providers may share an issuer (two APIs of one Azure tenant, with
    their own audiences and prefixes): each is tried, and the first that
    accepts the token answers; if none does, the first one's refusal is
    the answer.
    """

    schemes = frozenset({"Bearer"})
    #: Its answers depend only on the token (and the provider), so they may be remembered.
    remembers = True

    def __init__(self, validators: list[JwtValidator]) -> None:
        self.validators: dict[str, list[JwtValidator]] = {}
        for validator in validators:
            for issuer in validator.config.issuers:
                self.validators.setdefault(issuer, []).append(validator)

    def authenticate(self, credentials: Credentials, guard: Guard) -> Identity | None:
        """The identity, or ``None`` if this is not a JWT of a configured issuer.

        Not guarded: a signature check costs no call, and a key-set fetch for
        an unknown ``kid`` is limited by its own cooldown.
        """
        parsed = credentials.unverified_jwt
        if parsed is None:
            return None
        issuer = parsed.claims.get("iss")
        validators = self.validators.get(issuer) if isinstance(issuer, str) else None
        if not validators:
            return None
        first: InvalidToken | None = None
        for validator in validators:
            try:
                return validator.validate(credentials.secret, parsed)
            except InvalidToken as error:
                first = first or error
        assert first is not None
        raise first

    def close(self) -> None:
        """Nothing to close: the key sets live in the shared cache."""


def _refuse(reason: str, description: str = _INVALID) -> InvalidToken:
    return InvalidToken(description, reason=reason, scheme="Bearer")
