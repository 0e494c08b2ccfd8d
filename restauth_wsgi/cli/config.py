"""``restauth config``: show the effective settings and what is wrong with them."""

from __future__ import annotations

import argparse
import time
from contextlib import suppress
from typing import Any

from restauth_wsgi.access.policy import load_rules
from restauth_wsgi.cli.output import settings_values
from restauth_wsgi.errors import ConfigurationError, TokenStoreUnavailable
from restauth_wsgi.jwt.keys import UnknownKey
from restauth_wsgi.passwords import PasswordFile
from restauth_wsgi.provider_chain import Provider, Providers
from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.settings import Settings, field_problems, unknown_variables
from restauth_wsgi.tokens.store import TokenStoreMissing
from restauth_wsgi.upstream import UpstreamError
from restauth_wsgi.urls import mask_url


def register(commands: Any) -> None:
    """Add the ``config`` command to the ``restauth`` parser."""
    config = commands.add_parser(
        "config",
        help="show the effective settings (secrets masked) and check them",
        description="Print every setting as the middleware would see it in this"
        " environment, secrets masked, then check it: invalid values, unknown"
        " RESTAUTH_* variables, and whether the token store can be opened."
        " Exit 0: all good; 1: something cannot be reached; 2: invalid settings.",
    )
    config.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    environ = settings_values()
    try:
        settings = Settings.from_mapping(environ)
    except ConfigurationError as first:
        print("Invalid settings:")
        for problem in field_problems(environ) or [first]:
            print(f"  {problem}")
        for variable in unknown_variables(environ):
            print(f"  {variable} is not a setting; is it misspelt?")
        return 2
    files = []
    try:
        if settings.rules_file:
            files.append(
                f"Rules: {len(load_rules(settings.rules_file))} rule(s) in {settings.rules_file}"
            )
        if settings.password_file:
            passwords = PasswordFile.load(settings.password_file)
            files.append(f"Passwords: {len(passwords.hashes)} user(s) in {settings.password_file}")
    except ConfigurationError as exc:
        print(f"Invalid settings:\n  {exc}")
        return 2
    print(
        "Settings (* = set in the environment, RESTAUTH_SETTINGS_FILE or --paste-ini;"
        " secrets masked):"
    )
    for variable, value in settings.masked().items():
        mark = "*" if variable in environ else " "
        print(f"  {mark} {variable:<32} {value}")
    warnings = [f"{v} is not a setting; is it misspelt?" for v in unknown_variables(environ)]
    if not settings.enabled:
        warnings.append("RESTAUTH_ENABLED is false: every request passes unauthenticated")
    if settings.allow_preflight:
        warnings.append(
            "RESTAUTH_ALLOW_PREFLIGHT is true: CORS preflights reach the application with no"
            " user; a view that does not look at the method (a Django function view, a Pyramid"
            " view without request_method) runs its code for them"
        )
    if not settings.api_tokens and not settings.providers:
        warnings.append(
            "RESTAUTH_API_TOKENS is false and no provider is configured:"
            " every request outside the public paths is refused"
        )
    if settings.api_tokens and settings.token_feed and settings.token_cache_ttl:
        warnings.append(
            "RESTAUTH_TOKEN_CACHE_TTL has no effect while RESTAUTH_TOKEN_FEED is on (API tokens"
            " are remembered under the change feed and a revocation is seen within a second);"
            " it applies with RESTAUTH_TOKEN_FEED=false"
        )
    failures: list[str] = []
    if settings.api_tokens:
        # Looking must not make a store at a mistyped path.
        store = settings.open_token_store(create=False)
        try:
            records = store.list()
        except TokenStoreMissing:
            warnings.append(
                f"token store {mask_url(store.url)} does not exist yet: every API token is"
                " refused until 'restauth token create' makes it (is the path right?)"
            )
        except TokenStoreUnavailable as exc:
            failures.append(f"token store: {exc.reason}")
        else:
            now = time.time()
            active = sum(1 for r in records if r.status(now) == "active")
            print(f"Token store: {store.url}: {len(records)} token(s), {active} active")
    for line in files:
        print(line)
    if settings.providers:
        providers = Providers(settings)
        for provider in providers.by_name.values():
            lines, problems = check_provider(provider)
            print(f"Provider {provider.config.name}:")
            for line in lines:
                print(f"  {line}")
            failures += [f"provider {provider.config.name}: {p}" for p in problems]
            warnings += provider_warnings(provider.config)
        warnings += providers.username_clashes()
    for warning in warnings:
        print(f"Warning: {warning}")
    for failure in failures:
        print(f"Problem: {failure}")
    if not warnings and not failures:
        print("No problems found.")
    return 1 if failures else 0


def check_provider(provider: Provider) -> tuple[list[str], list[str]]:
    """What the provider's configuration resolves to, and what is wrong with it.

    This calls the provider: discovery, the key set, and the lookup with a
    token that is not one (a refusal proves the endpoint and our client
    credentials work).
    """
    config = provider.config
    lines = [f"type {config.kind}, validation {config.validation}"]
    if config.issuers:
        lines.append(f"issuer {' or '.join(config.issuers)}")
    if config.audience:
        lines.append(f"audience {', '.join(config.audience)}")
    problems: list[str] = []
    try:
        if config.discovery_url and config.uses_discovery:
            provider.discovery.document()
            lines.append(f"discovery {config.discovery_url}: ok")
        if provider.keys is not None:
            count = _key_count(provider)
            lines.append(f"key set: {count} signing key(s)")
        if provider.lookup is not None:
            answer = provider.lookup("restauth-config-check-not-a-token")
            lines.append(
                f"{config.validation} endpoint: answers"
                + ("" if not answer.active else " (and accepted a made-up token!)")
            )
            if answer.active:
                problems.append("the provider accepted a made-up token")
    except UpstreamError as exc:
        problems.append(str(exc))
    return lines, problems


def _key_count(provider: Provider) -> int:
    assert provider.keys is not None
    with suppress(UnknownKey):  # fetching the set is the point, not finding a key
        provider.keys.key(None, provider.config.algorithms[0])
    return len(provider.keys.kids)


def provider_warnings(config: ProviderConfig) -> list[str]:
    """Settings that work but deserve a second look: above all, every mode
    that cannot tell whether a token was issued to this app."""
    warnings = []
    prefix = f"RESTAUTH_{config.name.upper()}_"
    if "*" in config.audience:
        warnings.append(
            f"{prefix}AUDIENCE is '*': {config.name} accepts tokens the"
            " provider issued for any API, not only yours; name your API's audience instead"
        )
    if config.validation == "userinfo":
        if config.kind in ("google", "github", "facebook", "gitlab"):
            fix = f"set {prefix}CLIENT_ID (and _CLIENT_SECRET) to check them with {config.kind}"
        elif config.kind == "slack":
            fix = "Slack cannot say which app a token belongs to" + (
                "" if config.mapping.required_values else f"; at least set {prefix}TEAM"
            )
        else:
            fix = "validate by jwt or introspection, which say which client a token belongs to"
        warnings.append(
            f"{config.name} validates by userinfo, which cannot tell whether a token was issued"
            f" to your app: a token of any app of the provider is accepted; {fix}"
        )
    elif config.any_client:
        warnings.append(
            f"{prefix}ANY_CLIENT is true: {config.name} accepts a token of any app of the"
            f" provider; list yours in {prefix}ALLOWED_CLIENTS instead"
        )
    return warnings
