"""A provider's resolved configuration: everything the authenticators need,
with the preset's defaults and the user's overrides already applied."""

from __future__ import annotations

from dataclasses import dataclass

from restauth_wsgi.providers.claims import IdentityMapping


@dataclass(frozen=True)
class ClaimRule:
    """A claim that must hold one of ``values`` (only for tokens of ``issuer``, if set).

    :param fallback: a claim read instead when ``claim`` is absent (B2C's
        ``acr`` for ``tfp``).
    :param ignore_case: compare without regard to letter case.
    """

    claim: str
    values: tuple[str, ...]
    issuer: str | None = None
    fallback: str | None = None
    ignore_case: bool = False

    def holds(self, claims: dict[str, object]) -> bool:
        """Whether ``claims`` satisfy the rule (always, for another issuer's tokens)."""
        if self.issuer is not None and claims.get("iss") != self.issuer:
            return True
        value = claims.get(self.claim)
        if value is None and self.fallback is not None:
            value = claims.get(self.fallback)
        if not isinstance(value, str):
            return False
        if self.ignore_case:
            return value.casefold() in {v.casefold() for v in self.values}
        return value in self.values

    def found(self, claims: dict[str, object]) -> object:
        """The value the rule looked at, for messages."""
        value = claims.get(self.claim)
        return claims.get(self.fallback) if value is None and self.fallback else value


@dataclass(frozen=True)
class ProviderConfig:
    """How to validate one provider's tokens and map them to identities.

    URLs left ``None`` come from the provider's discovery document.
    """

    name: str
    kind: str
    #: ``jwt``, ``introspection``, ``userinfo`` or ``check``.
    validation: str
    #: The ``iss`` values of this provider's tokens; JWTs are routed by them.
    issuers: tuple[str, ...]
    discovery_url: str | None
    jwks_url: str | None
    introspection_url: str | None
    userinfo_url: str | None
    #: The provider's own token-check endpoint (``github``, ``google``...), for ``check``.
    check: str | None
    #: The base of the provider's API, for check endpoints and userinfo variants.
    api_url: str | None
    audience: tuple[str, ...]
    #: The claim the audience is in: ``aud``, or ``client_id`` for Cognito.
    audience_claim: str
    client_id: str | None
    client_secret: str | None
    introspection_auth: str
    algorithms: tuple[str, ...]
    hmac_secret: str | None
    leeway: int
    claim_rules: tuple[ClaimRule, ...]
    #: At least one of these claims must be present (marks access tokens apart).
    any_of_claims: tuple[str, ...]
    #: Accepted JWT ``typ`` headers (e.g. ``at+jwt``); empty: any.
    access_token_types: tuple[str, ...]
    #: Refuse JWTs with a ``nonce`` header (Azure's Microsoft Graph tokens).
    refuse_nonce_header: bool
    mapping: IdentityMapping
    #: Longest time a validated answer is reused without asking again, seconds.
    cache_ttl: int
    #: Opaque tokens are only sent to this provider if they start with one of these.
    token_prefixes: tuple[str, ...]
    #: How to read a userinfo answer: ``oidc``, or ``slack`` (``"ok": true`` required).
    userinfo_dialect: str = "oidc"
    #: Claims that mark an ID token; a JWT carrying one is refused as an access token.
    id_token_claims: tuple[str, ...] = ()
    #: The token family (``github``, ``gitlab``, ``slack``, ``google``, ``facebook``)
    #: whose prefixed tokens this provider may receive; ``None`` for others.
    family: str | None = None
    #: The administrator accepts tokens of any client of the provider (ANY_CLIENT).
    any_client: bool = False
    #: A digest of everything that decides this provider's answers (not its
    #: secrets): part of every shared-cache key, so that an answer is only
    #: reused by a configuration that would have given the same answer.
    fingerprint: str = ""

    @property
    def uses_discovery(self) -> bool:
        """Whether some endpoint must come from the discovery document."""
        needed = {
            "jwt": self.jwks_url,
            "introspection": self.introspection_url,
            "userinfo": self.userinfo_url,
        }
        return self.validation in needed and needed[self.validation] is None
