"""Settings: from ``RESTAUTH_*`` environment variables, a mapping, or code.

Every setting has one environment variable, the name users see in errors
and docs. :meth:`Settings.from_env` and :meth:`Settings.from_mapping` parse
strings; ``Settings(...)`` in code takes typed values. Both end in the same
checks, which raise :class:`ConfigurationError` naming the variable.
Nothing here does I/O: a store or provider that is down is not a
configuration error.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .cache import SharedCache, check_cache_url, open_shared_cache
from .config_file import content_lines
from .errors import ConfigurationError
from .metrics import NO_METRICS, Metrics
from .providers.settings import ProviderSettings
from .self_service.config import DEFAULT_API_PATH, check_api_path, check_origins
from .tokens.issuing import TokenPolicy
from .tokens.store import check_store_url
from .values import (
    BOOL,
    LIST,
    OPTIONAL_STRING,
    STRING,
    Kind,
    check_bool,
    check_str_tuple,
    duration_at_least,
    int_at_least,
    lifetime_at_least,
    mask_url,
    one_of,
    require_extra,
    seconds_between,
)

PREFIX = "RESTAUTH_"
# RFC 7235 section 2.2: the realm is sent as a quoted-string; keeping it to
# printable ASCII without quotes or backslashes means it never needs escaping.
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,100}")


def default_token_store() -> str:
    """The store used when ``RESTAUTH_TOKEN_STORE`` is not set.

    ``$XDG_DATA_HOME/restauth/tokens.db``, that is
    ``~/.local/share/restauth/tokens.db`` by default, for the user the
    process runs as: the CLI and the middleware agree on it when they run as
    the same user. Servers running as another user (``www-data`` under
    Apache) should set ``RESTAUTH_TOKEN_STORE`` explicitly.
    """
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return "sqlite://" + os.path.join(os.path.abspath(data_home), "restauth", "tokens.db")


#: The variable naming a settings file; not a setting itself.
SETTINGS_FILE = "RESTAUTH_SETTINGS_FILE"


def settings_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``RESTAUTH_*`` variables that apply: those of the file
    ``RESTAUTH_SETTINGS_FILE`` names, overridden by the environment's own.

    :raises ConfigurationError: if the file cannot be read.
    """
    values = {k: v for k, v in environ.items() if k.startswith(PREFIX)}
    path = values.pop(SETTINGS_FILE, "").strip()
    if not path:
        return values
    from_file = {k: v for k, v in read_env_file(path).items() if k.startswith(PREFIX)}
    return {**from_file, **values}


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``RESTAUTH_*`` settings from a file of ``NAME=value`` lines.

    For servers whose configuration cannot reach ``os.environ`` (Apache's
    ``SetEnv`` only reaches each request's environ under mod_wsgi). Blank
    lines and ``#`` comments are skipped, ``export`` is allowed, and a value
    may be quoted; no other shell syntax is interpreted.

    :raises ConfigurationError: naming the file and line that cannot be read.
    """
    values: dict[str, str] = {}
    where = f"{SETTINGS_FILE} ({path})"
    for number, text in content_lines(path, lambda problem: ConfigurationError(where, problem)):
        name, equals, value = text.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ConfigurationError(
                f"{SETTINGS_FILE} ({path}, line {number})", "is not NAME=value"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def env_name(attribute: str) -> str:
    """The environment variable of a :class:`Settings` attribute."""
    return PREFIX + attribute.upper()


@dataclass(frozen=True)
class Settings:
    """Every setting of the middleware and the CLI. See docs/settings.md."""

    #: RESTAUTH_ENABLED: ``False`` passes every request through untouched.
    enabled: bool = True
    #: RESTAUTH_PROVIDERS: the identity providers, each with its RESTAUTH_<NAME>_* settings.
    providers: tuple[ProviderSettings, ...] = ()
    #: RESTAUTH_API_TOKENS: accept the service's own API tokens.
    api_tokens: bool = True
    #: RESTAUTH_TOKEN_STORE: ``sqlite:///path`` or ``postgresql://...``.
    token_store: str = field(default_factory=default_token_store)
    #: RESTAUTH_TOKEN_STORE_TIMEOUT: seconds a store call may wait (SQLite busy timeout).
    token_store_timeout: float = 5.0
    #: RESTAUTH_TOKEN_FEED: keep checked API tokens until the store's change feed
    #: says something changed (revocations seen within a second everywhere).
    token_feed: bool = True
    #: RESTAUTH_TOKEN_CACHE_TTL: seconds an API token's record is reused unread (0: never).
    token_cache_ttl: int = 0
    #: RESTAUTH_TOKEN_MAX_PER_USER: active tokens one user may hold (0: no limit).
    token_max_per_user: int = 10
    #: RESTAUTH_TOKEN_MAX_LIFETIME: the longest lifetime a new token may have
    #: (seconds in code; a string needs a unit: ``365d``).
    token_max_lifetime: int = 365 * 86400
    #: RESTAUTH_TOKEN_DEFAULT_LIFETIME: lifetime of a token created without one
    #: (seconds in code; a string needs a unit: ``90d``).
    token_default_lifetime: int = 90 * 86400
    #: RESTAUTH_TOKEN_ALLOW_NO_EXPIRY: whether tokens that never expire may be created.
    token_allow_no_expiry: bool = False
    #: RESTAUTH_PUBLIC_PATHS: path globs that need no authentication.
    public_paths: tuple[str, ...] = ()
    #: RESTAUTH_PROTECTED_PATHS: path globs that always need authentication.
    protected_paths: tuple[str, ...] = ()
    #: RESTAUTH_OPTIONAL_PATHS: path globs where anonymous requests pass (credentials checked).
    optional_paths: tuple[str, ...] = ()
    #: RESTAUTH_DEFAULT_ACCESS: ``required``, ``optional`` or ``public`` for other paths.
    default_access: str = "required"
    #: RESTAUTH_ALLOWED_NETWORKS: CIDRs clients must come from (empty: any).
    allowed_networks: tuple[str, ...] = ()
    #: RESTAUTH_TRUSTED_PROXIES: reverse proxies in front whose X-Forwarded-For counts.
    trusted_proxies: int = 0
    #: RESTAUTH_READ_ONLY_GROUPS: groups whose members may only GET, HEAD and OPTIONS.
    read_only_groups: tuple[str, ...] = ()
    #: RESTAUTH_RULES_FILE: a TOML file of per-path rules.
    rules_file: str | None = None
    #: RESTAUTH_PASSWORD_FILE: an htpasswd-style file of service accounts (bcrypt/argon2).
    password_file: str | None = None
    #: RESTAUTH_BLOCK_BASIC_PASSWORDS: refuse Basic with a password (API tokens still work).
    block_basic_passwords: bool = False
    #: RESTAUTH_BASIC_PASSWORD_PATHS: path globs where passwords still work when blocked.
    basic_password_paths: tuple[str, ...] = ()
    #: RESTAUTH_BASIC_PASSWORD_USERS: users whose passwords still work when blocked.
    basic_password_users: tuple[str, ...] = ()
    #: RESTAUTH_LOCKOUT_THRESHOLD: failures in a window before 429 (0: no lockout).
    lockout_threshold: int = 10
    #: RESTAUTH_LOCKOUT_WINDOW: the window failures are counted in, seconds.
    lockout_window: int = 300
    #: RESTAUTH_LOCKOUT_USER_THRESHOLD: wrong passwords of one user from anywhere
    #: in a window before that user's passwords are refused from unknown addresses.
    lockout_user_threshold: int = 100
    #: RESTAUTH_AUDIT_LOG: ``stderr`` or a file for the audit log (else: the logger only).
    audit_log: str | None = None
    #: RESTAUTH_METRICS: keep Prometheus metrics (the ``metrics`` extra).
    metrics: bool = False
    #: RESTAUTH_METRICS_PATH: the path the metrics are served at, when kept.
    metrics_path: str = "/metrics"
    #: RESTAUTH_ALLOW_PREFLIGHT: let CORS preflight requests through unauthenticated.
    allow_preflight: bool = True
    #: RESTAUTH_TRUST_REMOTE_USER: keep a REMOTE_USER set by the server in front.
    trust_remote_user: bool = False
    #: RESTAUTH_STRIP_HEADERS: more identity headers (or ``Prefix-*``) to remove.
    strip_headers: tuple[str, ...] = ()
    #: RESTAUTH_REALM: the realm of the WWW-Authenticate challenges.
    realm: str = "api"
    #: RESTAUTH_CACHE: where provider answers are shared: memory, file://, redis://, memcached://.
    cache: str = "memory"
    #: RESTAUTH_CACHE_NAMESPACE: this service's name in the shared cache (default:
    #: derived from the settings that decide who is accepted).
    cache_namespace: str | None = None
    #: RESTAUTH_CACHE_TIMEOUT: seconds a network cache may take per call.
    cache_timeout: float = 0.5
    #: RESTAUTH_CACHE_MAX_ENTRIES: tokens remembered per process (answers and refusals).
    cache_max_entries: int = 10_000
    #: RESTAUTH_NEGATIVE_CACHE_TTL: seconds a refused provider token stays refused unasked.
    negative_cache_ttl: int = 10
    #: RESTAUTH_ALLOW_HTTP: allow plain-http provider URLs beyond loopback (unsafe).
    allow_http: bool = False
    #: RESTAUTH_HTTP_TIMEOUT: seconds an outbound call may take in all.
    http_timeout: float = 3.0
    #: RESTAUTH_CA_BUNDLE: a CA bundle to verify providers with, instead of the system's.
    ca_bundle: str | None = None
    #: RESTAUTH_UPSTREAM_BACKOFF: seconds a failed provider is not called again (503 at once).
    upstream_backoff: float = 2.0
    #: RESTAUTH_JWKS_COOLDOWN: least seconds between key-set fetches for unknown key ids.
    jwks_cooldown: int = 60
    #: RESTAUTH_JWKS_MAX_AGE: seconds after which a key set is fetched again.
    jwks_max_age: int = 3600
    # The self-service token API (docs/self-service.md), restauth_wsgi.self_service.
    #: RESTAUTH_SELF_SERVICE: serve the personal access token API.
    self_service: bool = False
    #: RESTAUTH_SELF_SERVICE_PATH: where the API is served (Atlassian's path by default).
    self_service_path: str = DEFAULT_API_PATH
    #: RESTAUTH_SELF_SERVICE_GROUPS: groups whose members may create tokens (empty: everyone).
    self_service_groups: tuple[str, ...] = ()
    #: RESTAUTH_SELF_SERVICE_ADMIN_GROUPS: groups whose members list and revoke anyone's tokens.
    self_service_admin_groups: tuple[str, ...] = ()
    #: RESTAUTH_SELF_SERVICE_FROM_TOKENS: let an API token create tokens (narrower, shorter).
    self_service_from_tokens: bool = False
    #: RESTAUTH_SELF_SERVICE_CORS_ORIGINS: browser origins whose CORS preflights are answered.
    self_service_cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for spec in fields(self):
            try:
                checked = _KINDS[spec.name].check(getattr(self, spec.name))
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(env_name(spec.name), str(exc)) from None
            object.__setattr__(self, spec.name, checked)
        if self.self_service and not self.api_tokens:
            raise ConfigurationError(
                "RESTAUTH_SELF_SERVICE", "needs RESTAUTH_API_TOKENS=true: it makes API tokens"
            )
        if self.token_default_lifetime > self.token_max_lifetime:
            raise ConfigurationError(
                "RESTAUTH_TOKEN_DEFAULT_LIFETIME",
                "must not be longer than RESTAUTH_TOKEN_MAX_LIFETIME",
            )
        from .providers.presets import resolve  # the presets need these settings

        for provider in self.providers:
            resolve(provider, allow_http=self.allow_http)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``RESTAUTH_*`` variable of ``environ`` (default ``os.environ``),
        over those of ``RESTAUTH_SETTINGS_FILE`` if it names one."""
        return cls.from_mapping(settings_environ(os.environ if environ is None else environ))

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        """Build settings from strings keyed by environment variable name.

        Keys that are not settings are ignored (see :func:`unknown_variables`).
        :raises ConfigurationError: naming the first variable that is wrong.
        """
        kwargs: dict[str, Any] = {}
        for name, kind in _KINDS.items():
            variable = env_name(name)
            if variable in values:
                try:
                    kwargs[name] = kind.parse(values[variable])
                except ValueError as exc:
                    raise ConfigurationError(variable, str(exc)) from None
        kwargs["providers"] = tuple(
            ProviderSettings.from_mapping(name, values) for name in kwargs.get("providers", ())
        )
        return cls(**kwargs)

    def shared_cache(self, metrics: Metrics = NO_METRICS) -> SharedCache:
        """The shared cache these settings name (no connection is made here)."""
        return open_shared_cache(
            self.cache,
            max_entries=self.cache_max_entries,
            timeout=self.cache_timeout,
            namespace=self.cache_namespace or self.derived_cache_namespace(),
            metrics=metrics,
        )

    def derived_cache_namespace(self) -> str:
        """The namespace when ``RESTAUTH_CACHE_NAMESPACE`` is not set: a digest of
        what decides who is accepted (the token store, each provider's
        fingerprint, the password file, the realm), so that the workers and
        hosts of one service share counters and answers and other services do not."""
        from .providers.presets import resolve

        parts = [
            self.realm,
            mask_url(self.token_store) if self.api_tokens else "",
            self.password_file or "",
            *(resolve(p, allow_http=self.allow_http).fingerprint for p in self.providers),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def token_policy(self) -> TokenPolicy:
        """The limits for issuing API tokens."""
        return TokenPolicy(
            max_per_user=self.token_max_per_user,
            max_lifetime=self.token_max_lifetime,
            default_lifetime=self.token_default_lifetime,
            allow_no_expiry=self.token_allow_no_expiry,
        )

    def masked(self) -> dict[str, str]:
        """Every setting as its variable and a printable value, secrets masked."""
        shown = {
            env_name(spec.name): mask_url(_KINDS[spec.name].show(getattr(self, spec.name)))
            for spec in fields(self)
        }
        for provider in self.providers:
            shown.update(provider.shown())
        return shown


def field_problems(values: Mapping[str, str]) -> list[ConfigurationError]:
    """Every variable of ``values`` that is invalid on its own (not only the first)."""
    from .providers.presets import resolve

    problems = []
    for name, kind in _KINDS.items():
        variable = env_name(name)
        if variable in values and name != "providers":
            try:
                kind.check(kind.parse(values[variable]))
            except (TypeError, ValueError) as exc:
                problems.append(ConfigurationError(variable, str(exc)))
    allow_http = values.get("RESTAUTH_ALLOW_HTTP", "false").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )
    for name in LIST.parse(values.get("RESTAUTH_PROVIDERS", "")):
        try:
            resolve(ProviderSettings.from_mapping(name, values), allow_http=allow_http)
        except ConfigurationError as exc:
            problems.append(exc)
    return problems


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``RESTAUTH_*`` variables in ``environ`` that no setting reads (typos, usually)."""
    known = {env_name(name) for name in _KINDS} | {SETTINGS_FILE}
    for name in LIST.parse(environ.get("RESTAUTH_PROVIDERS", "")):
        prefix = f"RESTAUTH_{name.upper()}_"
        known |= {k for k in environ if k.startswith(prefix)} & _provider_variables(prefix)
    return sorted(k for k in environ if k.startswith(PREFIX) and k not in known)


def _provider_variables(prefix: str) -> set[str]:
    from .providers.settings import KINDS

    return {prefix + attribute.upper() for attribute in KINDS}


def _check_providers(value: object) -> tuple[ProviderSettings, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise TypeError(f"expected a list of ProviderSettings, got {value!r}")
    providers = tuple(value)
    seen: set[str] = set()
    for provider in providers:
        if not isinstance(provider, ProviderSettings):
            raise TypeError(f"expected ProviderSettings, got {provider!r}")
        folded = provider.name.upper()
        if folded in seen:
            raise ValueError(f"{provider.name!r} is named twice")
        seen.add(folded)
        clash = [v for v in map(env_name, _KINDS) if v.startswith(provider.prefix)]
        if clash:
            raise ValueError(
                f"{provider.name!r} cannot be a provider name: its variables would clash"
                f" with {clash[0]}"
            )
    return providers


def _check_paths(value: object) -> tuple[str, ...]:
    paths = check_str_tuple(value)
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not a path glob; each must start with '/'")
    return paths


def _check_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{value!r} is not a path; it must start with '/'")
    return value


def _check_networks(value: object) -> tuple[str, ...]:
    from .access import parse_networks

    networks = check_str_tuple(value)
    parse_networks(networks)
    return networks


# A setting that needs an optional extra is refused at start-up (and by
# `restauth config`) when the extra is missing, rather than failing on the
# first request or, for a cache, silently working without it.


def _check_token_store(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a store URL, got {value!r}")
    check_store_url(value)
    if value.startswith(("postgresql:", "postgres:")):
        require_extra("postgresql", "a PostgreSQL store")
    return value


def _check_cache(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a cache URL, got {value!r}")
    check_cache_url(value)
    if value.startswith(("redis:", "rediss:")):
        require_extra("redis", "a Redis cache")
    elif value.startswith("memcached:"):
        require_extra("memcached", "a memcached cache")
    return value


def _check_metrics(value: object) -> bool:
    if check_bool(value):
        require_extra("metrics", "keeping Prometheus metrics")
    return bool(value)


def _check_password_file(value: object) -> str | None:
    checked: str | None = OPTIONAL_STRING.check(value)
    if checked is not None:
        require_extra("passwords", "checking passwords (bcrypt and Argon2 hashes)")
    return checked


def _check_realm(value: object) -> str:
    if not isinstance(value, str) or not _REALM.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a realm; use 1-100 printable ASCII characters without quotes"
        )
    return value


_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}\*?")


def _check_header_names(value: object) -> tuple[str, ...]:
    names = check_str_tuple(value)
    for name in names:
        if not _HEADER.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a header name; use letters, digits and '-',"
                " with a final '*' for a prefix (X-Auth-*)"
            )
    return names


_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _check_namespace(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAMESPACE.fullmatch(value):
        raise ValueError(f"{value!r} is not a namespace; use 1-64 letters, digits, '.', '_' or '-'")
    return value


def _check_backoff(value: object) -> float:
    if value == 0:
        return 0.0
    checked: float = seconds_between(0, 300).check(value)
    return checked


def _check_ca_bundle(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected the path of a CA bundle file, got {value!r}")
    return value


_KINDS: dict[str, Kind] = {
    "enabled": BOOL,
    "providers": Kind(LIST.parse, _check_providers, lambda v: ",".join(p.name for p in v)),
    "api_tokens": BOOL,
    "token_store": Kind(STRING.parse, _check_token_store, mask_url),
    "token_store_timeout": seconds_between(0, 300),
    "token_feed": BOOL,
    "token_cache_ttl": duration_at_least(0),
    "token_max_per_user": int_at_least(0),
    "token_max_lifetime": lifetime_at_least(1),
    "token_default_lifetime": lifetime_at_least(1),
    "token_allow_no_expiry": BOOL,
    "public_paths": Kind(LIST.parse, _check_paths, ",".join),
    "protected_paths": Kind(LIST.parse, _check_paths, ",".join),
    "optional_paths": Kind(LIST.parse, _check_paths, ",".join),
    "default_access": one_of("required", "optional", "public"),
    "allowed_networks": Kind(LIST.parse, _check_networks, ",".join),
    "trusted_proxies": int_at_least(0),
    "read_only_groups": LIST,
    "rules_file": OPTIONAL_STRING,
    "password_file": Kind(OPTIONAL_STRING.parse, _check_password_file, OPTIONAL_STRING.show),
    "block_basic_passwords": BOOL,
    "basic_password_paths": Kind(LIST.parse, _check_paths, ",".join),
    "basic_password_users": LIST,
    "lockout_threshold": int_at_least(0),
    "lockout_window": duration_at_least(1),
    "lockout_user_threshold": int_at_least(0),
    "audit_log": OPTIONAL_STRING,
    "metrics": Kind(BOOL.parse, _check_metrics, BOOL.show),
    "metrics_path": Kind(STRING.parse, _check_path),
    "allow_preflight": BOOL,
    "trust_remote_user": BOOL,
    "strip_headers": Kind(LIST.parse, _check_header_names, ",".join),
    "realm": Kind(STRING.parse, _check_realm),
    "cache": Kind(STRING.parse, _check_cache, mask_url),
    "cache_namespace": Kind(OPTIONAL_STRING.parse, _check_namespace, OPTIONAL_STRING.show),
    "cache_timeout": seconds_between(0, 10),
    "cache_max_entries": int_at_least(100),
    "negative_cache_ttl": duration_at_least(0),
    "allow_http": BOOL,
    "http_timeout": seconds_between(0, 60),
    "ca_bundle": Kind(OPTIONAL_STRING.parse, _check_ca_bundle, OPTIONAL_STRING.show),
    "upstream_backoff": Kind(seconds_between(0, 300).parse, _check_backoff),
    "jwks_cooldown": duration_at_least(1),
    "jwks_max_age": duration_at_least(60),
    "self_service": BOOL,
    "self_service_path": Kind(STRING.parse, check_api_path),
    "self_service_groups": LIST,
    "self_service_admin_groups": LIST,
    "self_service_from_tokens": BOOL,
    "self_service_cors_origins": Kind(LIST.parse, check_origins, ",".join),
}
