"""Building the configured providers: their discovery, keys, lookups and authenticators."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from restauth_wsgi.authenticator import Authenticator
from restauth_wsgi.cache import SharedCache
from restauth_wsgi.jwt.keys import KeySet
from restauth_wsgi.jwt.validator import JwtAuthenticator, JwtValidator
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.opaque.authenticator import OpaqueTokenAuthenticator
from restauth_wsgi.opaque.lookups import Lookup, LookupAnswer, build_lookup
from restauth_wsgi.opaque.single_flight import SingleFlight
from restauth_wsgi.providers.discovery import Discovery
from restauth_wsgi.providers.presets import resolve
from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.settings import Settings
from restauth_wsgi.upstream import UpstreamClient


@dataclass
class Provider:
    """One configured provider and the parts that talk to it."""

    config: ProviderConfig
    discovery: Discovery
    keys: KeySet | None = None
    validator: JwtValidator | None = None
    lookup: Lookup | None = None
    authenticator: OpaqueTokenAuthenticator | None = None


class Providers:
    """Every configured provider, sharing one HTTP client, cache and flight table.

    Nothing is fetched here: discovery and keys wait for the first token.
    """

    def __init__(
        self,
        settings: Settings,
        shared: SharedCache | None = None,
        *,
        clock: Callable[[], float] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.http = UpstreamClient(
            timeout=settings.http_timeout,
            ca_bundle=settings.ca_bundle,
            allow_http=settings.allow_http,
            backoff=settings.upstream_backoff,
            clock=clock or time.monotonic,
            metrics=metrics,
        )
        self.shared: SharedCache = shared or settings.shared_cache(metrics)
        flights: SingleFlight[LookupAnswer] = SingleFlight()
        configs = [resolve(p, allow_http=settings.allow_http) for p in settings.providers]
        self.by_name: dict[str, Provider] = {}
        for config in configs:
            discovery = Discovery(config, self.http)
            provider = Provider(config, discovery)
            if config.validation == "jwt":
                provider.keys = KeySet(
                    _jwks_url(config, discovery),
                    self.http,
                    self.shared,
                    cooldown=settings.jwks_cooldown,
                    max_age=settings.jwks_max_age,
                    clock=clock or time.time,
                    metrics=metrics,
                )
                provider.validator = JwtValidator(config, provider.keys, clock or time.time)
            else:
                provider.lookup = build_lookup(config, self.http, discovery)
                provider.authenticator = OpaqueTokenAuthenticator(
                    config,
                    provider.lookup,
                    self.shared,
                    flights,
                    negative_ttl=settings.negative_cache_ttl,
                    # A follower waits out the leader's whole call, with room to spare.
                    wait=3 * settings.http_timeout + 1,
                    clock=clock or time.time,
                )
            self.by_name[config.name.lower()] = provider

    def authenticators(self) -> list[Authenticator]:
        """JWTs first (routed by issuer), then each opaque-token provider in order."""
        validators = [p.validator for p in self.by_name.values() if p.validator is not None]
        chain: list[Authenticator] = [JwtAuthenticator(validators)] if validators else []
        chain += [p.authenticator for p in self.by_name.values() if p.authenticator is not None]
        return chain

    def username_clashes(self) -> list[str]:
        """Warnings for providers that can map different people to one username.

        Providers share one namespace of usernames: two whose prefixes are
        equal, or where one prefix begins the other (``""`` begins every
        one), can both produce ``corp-alice``; and a service account's name
        can be a user of another provider whose prefix begins it.
        """
        configs = [p.config for p in self.by_name.values()]
        clashes = []
        for n, first in enumerate(configs):
            for second in configs[n + 1 :]:
                one, other = first.mapping.username_prefix, second.mapping.username_prefix
                if one.startswith(other) or other.startswith(one):
                    clashes.append(
                        f"providers {first.name} and {second.name} can map different people to"
                        f" the same REMOTE_USER (their username prefixes {one!r} and {other!r}:"
                        " one begins the other); give each a RESTAUTH_<NAME>_USERNAME_PREFIX"
                        " that begins no other (e.g. gh:)"
                    )
        for owner in configs:
            for account in sorted(set(owner.mapping.service_accounts.values())):
                for provider in configs:
                    if provider is owner or not account.startswith(
                        provider.mapping.username_prefix
                    ):
                        continue
                    clashes.append(
                        f"service account {account!r} of {owner.name} can also be a user of"
                        f" {provider.name}: a stranger there could become it; give"
                        f" {provider.name} a RESTAUTH_<NAME>_USERNAME_PREFIX the account"
                        " does not begin with"
                    )
        return clashes

    def issuers(self) -> tuple[str, ...]:
        """Every configured issuer, in the order the providers are named."""
        return tuple(i for p in self.by_name.values() for i in p.config.issuers)

    def cache_ttls(self) -> dict[str, float]:
        """How long each provider's validated tokens may be reused unasked."""
        return {p.config.name: float(p.config.cache_ttl) for p in self.by_name.values()}


def _jwks_url(config: ProviderConfig, discovery: Discovery) -> Callable[[], str]:
    if config.jwks_url is not None:
        url = config.jwks_url
        return lambda: url
    return lambda: discovery.endpoint("jwks_uri")
