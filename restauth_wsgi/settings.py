"""Settings: from ``RESTAUTH_*`` environment variables, a mapping, or code.

Every setting has one environment variable, the name users see in errors
and docs. :meth:`Settings.from_env` and :meth:`Settings.from_mapping` parse
strings; ``Settings(...)`` in code takes typed values, by keyword. Both end
in the same checks, which raise :class:`ConfigurationError` naming the
variable. Nothing here does I/O: a store or provider that is down is not a
configuration error.

Each setting is declared once (:func:`~restauth_wsgi.config.declaration.setting`:
kind, default, doc), in the group of the part that takes it:
:class:`MiddlewareSettings`, :class:`TokenSettings`,
:class:`UpstreamSettings`, :class:`AccessSettings`,
:class:`PasswordSettings`, :class:`LockoutSettings`,
:class:`AuditSettings`, :class:`CacheSettings`. :class:`Settings` is all
of them at once, so its attributes stay the flat names users write
(``settings.token_store``) and a part can be given the whole settings
where it takes only its group (``Lockout(shared, settings)``). The tables
of docs/settings.md are written from these declarations
(:mod:`restauth_wsgi.settings_doc`).
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from restauth_wsgi.cache import SharedCache, check_cache_url, open_shared_cache
from restauth_wsgi.config.declaration import (
    check_all,
    declared,
    default_of,
    parse_all,
    problems,
    setting,
)
from restauth_wsgi.config.env_file import content_lines
from restauth_wsgi.config.kinds import (
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
    one_of,
    require_extra,
    seconds_between,
)
from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.issuing import TokenPolicy
from restauth_wsgi.tokens.store import TokenStore, check_store_url, open_store
from restauth_wsgi.urls import mask_url

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
    from_file = {k: v for k, v in _read_env_file(path).items() if k.startswith(PREFIX)}
    return {**from_file, **values}


def _read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
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
        clash = [v for v in _variables() if v.startswith(provider.prefix)]
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
    from restauth_wsgi.access.policy import parse_networks

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


_PATHS = Kind(LIST.parse, _check_paths, ",".join)


class _Group:
    """What every group of settings does when made: check each value, naming its variable."""

    def __post_init__(self) -> None:
        check_all(self, env_name)


@dataclass(frozen=True, kw_only=True)
class MiddlewareSettings(_Group):
    """The middleware itself: whether it acts, what it trusts and strips, its realm."""

    enabled: bool = setting(
        BOOL,
        True,
        doc="The global switch. `false` passes every request to the application untouched"
        " (no authentication, nothing stripped).",
    )
    trust_remote_user: bool = setting(
        BOOL,
        False,
        doc="Take a `REMOTE_USER` set by the server in front (e.g. Apache with Kerberos) as"
        " the user, instead of authenticating. The user is still subject to every other"
        " check: networks, path levels, read-only groups and rules. An empty or blank one"
        " means nobody (servers set that for anonymous requests); one with control"
        " characters, line separators or bidirectional overrides, or over 255 characters,"
        " is a 400. Off by default: otherwise any"
        " `REMOTE_USER` in the environ is removed before authentication (kept for"
        ' debugging only under `environ["restauth.untrusted_remote_user"]`).',
    )
    trusted_proxies: int = setting(
        int_at_least(0),
        0,
        doc="How many reverse proxies of yours stand in front: the client address is then"
        " taken that many entries from the right of `X-Forwarded-For` (with or without a"
        " port); an entry that is not an address makes the client unknown, never the proxy.",
    )
    strip_headers: tuple[str, ...] = setting(
        Kind(LIST.parse, _check_header_names, ",".join),
        (),
        doc="More identity headers to remove from every request, beyond the built-in list"
        " below: names, or prefixes ending in `*`.",
    )
    realm: str = setting(
        Kind(STRING.parse, _check_realm),
        "api",
        doc="The realm of every `WWW-Authenticate` challenge; printable ASCII without quotes"
        " or backslashes.",
    )


@dataclass(frozen=True, kw_only=True)
class TokenSettings(_Group):
    """The service's own API tokens: whether they count, their store, the limits on issuing."""

    api_tokens: bool = setting(
        BOOL,
        True,
        doc="Accept the service's own API tokens (`Bearer <token>` and Basic `user:<token>`).",
    )
    token_store: str = setting(
        Kind(STRING.parse, _check_token_store, mask_url),
        factory=default_token_store,
        default_doc="`sqlite://$XDG_DATA_HOME/restauth/tokens.db`",
        doc="Where API tokens are stored. `sqlite:///absolute/path.db` (three slashes, then"
        " the absolute path, as in `file:` URLs); `sqlite:relative.db` is relative to the"
        " working directory; `postgresql://user:password@host/dbname` for several hosts (the"
        " `postgresql` extra; see [deployment](deployment.md)). Without `XDG_DATA_HOME` the"
        " default is `~/.local/share/restauth/tokens.db` of the user the process runs as:"
        " `restauth` and the middleware agree when they run as the same user. Servers that"
        " run as another user (`www-data` under Apache) should set it explicitly.",
    )
    token_store_timeout: float = setting(
        seconds_between(0, 300),
        5.0,
        doc="Seconds a token-store call may wait (SQLite's busy timeout; PostgreSQL's"
        " connect and pool wait, each statement's run and wait for a lock, and a call's"
        " whole answer: its connection is cut a second later), more than 0 and at most"
        " 300.",
    )
    token_feed: bool = setting(
        BOOL,
        True,
        doc="Keep the API tokens a process has checked until the store's change feed says"
        " something changed: a token seen before costs no store read, and a revocation"
        " reaches every process within 0.6 s at worst (see"
        " [API tokens](api-tokens.md#revocation-and-the-change-feed)). `false`: every"
        " request reads the store.",
    )
    token_cache_ttl: int = setting(
        duration_at_least(0),
        0,
        doc="With `RESTAUTH_TOKEN_FEED=false` only (with the feed it is not used): seconds an"
        " API token's record is reused in the process without reading the store. `0`: no such"
        " reuse; `N`: a host may accept a revoked token for up to N seconds.",
    )
    token_max_per_user: int = setting(
        int_at_least(0),
        10,
        doc="Active (not expired, not revoked) tokens one user may hold; `0` for no limit."
        " Enforced atomically, even with many processes creating tokens at once.",
    )
    token_max_lifetime: int = setting(
        lifetime_at_least(1),
        365 * 86400,
        doc="The longest lifetime a new token may be given. A duration with its unit"
        " (`365d`, `1y`).",
    )
    token_default_lifetime: int = setting(
        lifetime_at_least(1),
        90 * 86400,
        doc="The lifetime of a token created without `--expires`, with its unit (`90d`)."
        " Must not exceed the maximum.",
    )
    token_allow_no_expiry: bool = setting(
        BOOL,
        False,
        doc="Whether `restauth token create --expires never` is allowed.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.token_default_lifetime > self.token_max_lifetime:
            raise ConfigurationError(
                "RESTAUTH_TOKEN_DEFAULT_LIFETIME",
                "must not be longer than RESTAUTH_TOKEN_MAX_LIFETIME",
            )

    def open_token_store(self, *, create: bool = True) -> TokenStore:
        """The token store these settings name (no connection is made here).

        :param create: make it on first use if it does not exist; ``False``
            for what only looks (a mistyped path is not an empty store).
        """
        return open_store(self.token_store, timeout=self.token_store_timeout, create=create)

    def token_policy(self) -> TokenPolicy:
        """The limits for issuing API tokens."""
        return TokenPolicy(
            max_per_user=self.token_max_per_user,
            max_lifetime=self.token_max_lifetime,
            default_lifetime=self.token_default_lifetime,
            allow_no_expiry=self.token_allow_no_expiry,
        )


@dataclass(frozen=True, kw_only=True)
class UpstreamSettings(_Group):
    """The identity providers, and how they are called."""

    providers: tuple[ProviderSettings, ...] = setting(
        Kind(LIST.parse, _check_providers, lambda v: ",".join(p.name for p in v)),
        (),
        doc="Comma list of identity provider names, each configured by its own"
        " `RESTAUTH_<NAME>_*` variables: see [providers](providers.md). Empty: API tokens"
        " only.",
    )
    allow_http: bool = setting(
        BOOL,
        False,
        doc="Provider URLs must be https; loopback hosts (`localhost`, `127.0.0.0/8`, `::1`)"
        " are exempt. `true` allows plain http elsewhere: tokens and client secrets then"
        " cross the network readable. Discovered endpoints obey the same rule.",
    )
    http_timeout: float = setting(
        seconds_between(0, 60),
        3.0,
        doc="Seconds one provider call may take in all (the name lookup, connect and the"
        " whole answer), more than 0 and at most 60.",
    )
    ca_bundle: str | None = setting(
        Kind(OPTIONAL_STRING.parse, _check_ca_bundle, OPTIONAL_STRING.show),
        None,
        default_doc="(system)",
        doc="A CA bundle file to verify providers with (a private CA). Without it the"
        " system's, or `REQUESTS_CA_BUNDLE`'s, is used.",
    )
    upstream_backoff: float = setting(
        Kind(seconds_between(0, 300).parse, _check_backoff),
        2.0,
        doc="Seconds a provider that just failed is not called again (tokens it must vouch"
        " for get 503 at once); `0` calls it every time.",
    )
    jwks_cooldown: int = setting(
        duration_at_least(1),
        60,
        doc="The least time between key-set fetches caused by tokens with an unknown `kid`"
        " (per process, and across processes sharing a cache).",
    )
    jwks_max_age: int = setting(
        duration_at_least(60),
        3600,
        doc="The age at which a key set is fetched again; at least a minute.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        from restauth_wsgi.providers.presets import resolve  # the presets need these settings

        for provider in self.providers:
            resolve(provider, allow_http=self.allow_http)


@dataclass(frozen=True, kw_only=True)
class AccessSettings(_Group):
    """Who may reach what: path levels, networks, read-only groups, rules."""

    public_paths: tuple[str, ...] = setting(
        _PATHS,
        (),
        doc="Path globs that need no authentication, e.g. `/health,/static/*`. Matched"
        " against the path as the application's router sees it (`PATH_INFO` decoded as"
        " UTF-8); `*` matches any characters including `/`. Only the canonical spelling of a"
        " path matches: with `.`, `..` or empty segments (also `%2e%2e` decoded twice), a"
        " backslash or invalid UTF-8 it never does, so `/static/../admin` is not public (see"
        " [security](security.md)). Requests to public paths reach the application without"
        " `REMOTE_USER`.",
    )
    protected_paths: tuple[str, ...] = setting(
        _PATHS,
        (),
        doc="Path globs that always need authentication (useful with"
        " `RESTAUTH_DEFAULT_ACCESS=public`). They cover every spelling a router may resolve"
        " to a covered path (`//rest/`, `/x/../rest/`, `/rest` for `/rest/*`...).",
    )
    optional_paths: tuple[str, ...] = setting(
        _PATHS,
        (),
        doc="Path globs where anonymous requests pass without `REMOTE_USER`; credentials"
        " that are sent are still checked. Canonical spellings only, as public paths.",
    )
    default_access: str = setting(
        one_of("required", "optional", "public"),
        "required",
        doc="`required`, `optional` or `public`: the paths none of the globs name.",
    )
    allow_preflight: bool = setting(
        BOOL,
        False,
        doc="Let CORS preflight requests (`OPTIONS` with `Origin` and"
        " `Access-Control-Request-Method`, and no method-override header) through to the"
        " application unauthenticated: browsers never send credentials on a preflight, so"
        " cross-origin calls from a browser page need this. Turn it on only if the"
        " application answers preflights without running a view's code (Flask's automatic"
        " `OPTIONS`, django-cors-headers, flask-cors, Django class-based views): a Django"
        " function view, or a Pyramid view without a `request_method` predicate, runs its"
        " code for a preflight, with no user. Off: a preflight is judged as any `OPTIONS`"
        " request (credentials, every method's rules). The self-service token API answers"
        " its own preflights either way. The network allow-list still applies.",
    )
    allowed_networks: tuple[str, ...] = setting(
        Kind(LIST.parse, _check_networks, ",".join),
        (),
        default_doc="(any)",
        doc="CIDRs (or addresses) clients must come from; others get 403 for every request"
        " (public paths and CORS preflights included) before their credentials are looked"
        " at.",
    )
    read_only_groups: tuple[str, ...] = setting(
        LIST,
        (),
        doc="Groups whose members may only GET and HEAD (in any letter case; a"
        " method-override header's method counts too). `OPTIONS` (other than a CORS"
        " preflight) and other methods are judged as every method, so they may not.",
    )
    rules_file: str | None = setting(
        OPTIONAL_STRING,
        None,
        doc="A TOML file of per-path rules (scopes, users, groups, networks), read at start-up.",
    )


@dataclass(frozen=True, kw_only=True)
class PasswordSettings(_Group):
    """Basic ``user:password`` for service accounts, and where it is refused."""

    password_file: str | None = setting(
        Kind(OPTIONAL_STRING.parse, _check_password_file, OPTIONAL_STRING.show),
        None,
        doc="An htpasswd-style file of service accounts (bcrypt or Argon2) for Basic"
        " `user:password`.",
    )
    block_basic_passwords: bool = setting(
        BOOL,
        False,
        doc="Refuse Basic with a password (401 telling the client to use an API token),"
        " decided before the password is checked, so the answer is the same for a right and"
        " a wrong one; API tokens keep working.",
    )
    basic_password_paths: tuple[str, ...] = setting(
        _PATHS,
        (),
        doc="Path globs where passwords still work when blocked (canonical spellings only).",
    )
    basic_password_users: tuple[str, ...] = setting(
        LIST,
        (),
        doc="Users whose passwords still work when blocked.",
    )


@dataclass(frozen=True, kw_only=True)
class LockoutSettings(_Group):
    """When repeated failures lock a client out (429), and for how long."""

    lockout_threshold: int = setting(
        int_at_least(0),
        10,
        doc="Failed attempts per window of one address, and wrong passwords of one user from"
        " one address, before 429; `0` turns lockout off. A locked address is refused only"
        " passwords and opaque tokens that would need a provider call: API tokens, valid"
        " JWTs and cached answers keep working (see"
        " [access](access.md#lockout-aimed-at-guessing)).",
    )
    lockout_user_threshold: int = setting(
        int_at_least(0),
        100,
        doc="Wrong passwords of one user from anywhere in a window before that user's"
        " passwords are refused from addresses it has not signed in from in the last 30"
        " days; `0`: no such ceiling.",
    )
    lockout_window: int = setting(
        duration_at_least(1),
        300,
        doc="The window the failures are counted in; a lockout ends with it, and"
        " `Retry-After` says when.",
    )


@dataclass(frozen=True, kw_only=True)
class AuditSettings(_Group):
    """What is recorded of each decision: the audit log and Prometheus metrics."""

    audit_log: str | None = setting(
        OPTIONAL_STRING,
        None,
        default_doc="(the logger only)",
        doc="`stderr` or a file path: this middleware writes the audit log's JSON lines"
        " there, through a handler of its own (the `restauth.audit` logger is left alone).",
    )
    metrics: bool = setting(
        Kind(BOOL.parse, _check_metrics, BOOL.show),
        False,
        doc="Keep Prometheus metrics (the `metrics` extra).",
    )
    metrics_path: str = setting(
        Kind(STRING.parse, _check_path),
        "/metrics",
        doc="Where the metrics are served: to whoever the access settings let through (a"
        " public path, or an authenticated scraper allowed by the rules). Not inside"
        " `RESTAUTH_SELF_SERVICE_PATH` when the self-service API is on.",
    )


@dataclass(frozen=True, kw_only=True)
class CacheSettings(_Group):
    """Where answers, refusals and lockout counters are kept, and how many."""

    cache: str = setting(
        Kind(STRING.parse, _check_cache, mask_url),
        "memory",
        doc="Where provider answers (introspection, userinfo, checks, key sets) are shared."
        " `memory`: within the process; `file:///dir`: the processes of one machine;"
        " `redis://[:password@]host:6379/0` (`rediss://` for TLS; the `redis` extra) or"
        " `memcached://host:11211[,host2:11211]` (the `memcached` extra): every host. JSON"
        " values, hashed keys; a failing cache is skipped for 5 s at a time, never a 500.",
    )
    cache_namespace: str | None = setting(
        Kind(OPTIONAL_STRING.parse, _check_namespace, OPTIONAL_STRING.show),
        None,
        default_doc="(derived)",
        doc="This service's name in the shared cache: services with different names share no"
        " answer and no lockout counter. The default is a digest of what decides who is"
        " accepted (the token store, each provider's configuration, the password file, the"
        " realm), so the workers and hosts of one service share and other services do not."
        " Set the same name on services that should share lockout counters (their answers"
        " still stay apart unless their provider configurations are the same). Letters,"
        " digits, `.`, `_`, `-`.",
    )
    cache_timeout: float = setting(
        seconds_between(0, 10),
        0.5,
        doc="Seconds a network cache may take to answer: each receive waits at most this,"
        " and a whole Redis call (or memcached command) at most twice this (a reply"
        " still arriving then is cut; a Redis call whose connection failed is tried once"
        " more within it, a lockout count never); a failing cache is skipped for 5 s.",
    )
    cache_max_entries: int = setting(
        int_at_least(100),
        10_000,
        doc="Tokens remembered per process (validated identities and refusals), at least"
        " 100; the oldest go first.",
    )
    negative_cache_ttl: int = setting(
        duration_at_least(0),
        10,
        doc="How long a provider's refusal of a token is remembered; `0` never.",
    )


# The self-service API's values (restauth_wsgi.self_service serves it).

#: Where Jira and Confluence Data Center serve their personal access token API.
DEFAULT_API_PATH = "/rest/pat/latest/tokens"

# Segments of unreserved characters (RFC 3986), none of them '.' or '..': a
# path that every router reads one way, and that a glob can name literally.
_SEGMENT = r"/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+"
_API_PATH = re.compile(f"(?:{_SEGMENT}){{1,20}}")


def check_api_path(value: object) -> str:
    """``RESTAUTH_SELF_SERVICE_PATH``: an absolute path without a trailing slash,
    of letters, digits and ``.``, ``_``, ``~``, ``-`` (no globs, no ``.``
    or ``..`` segments, nothing to decode).

    :raises ValueError: saying what is wrong.
    """
    if not isinstance(value, str) or len(value) > 200 or not _API_PATH.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a path for the API; write one such as {DEFAULT_API_PATH}"
            " (letters, digits, '.', '_', '~' and '-' between slashes, no trailing slash)"
        )
    return value


def check_origins(value: object) -> tuple[str, ...]:
    """``RESTAUTH_SELF_SERVICE_CORS_ORIGINS``: exact origins
    (``https://app.example.com``, ``http://127.0.0.1:3000``), compared as
    browsers send them in ``Origin``; never ``*``.

    :raises ValueError: naming the first that is not an origin.
    """
    origins = check_str_tuple(value)
    for origin in origins:
        if origin == "*":
            raise ValueError(
                "'*' would let any web page use the API with its visitors' credentials;"
                " list the exact origins (https://app.example.com)"
            )
        parts = urllib.parse.urlsplit(origin)
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            parts = parts._replace(scheme="")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or f"{parts.scheme}://{parts.netloc}" != origin
            or parts.username is not None
            or origin != origin.lower()
        ):
            raise ValueError(
                f"{origin!r} is not an origin; write scheme://host[:port] in lower case,"
                " without a path or a trailing slash (https://app.example.com)"
            )
    return origins


def api_globs(path: str) -> tuple[str, str]:
    """The path globs the API answers for: the collection and one level below it."""
    return (path, path + "/*")


@dataclass(frozen=True, kw_only=True)
class SelfServiceSettings(_Group):
    """The personal access token API users make their own tokens with (docs/self-service.md)."""

    self_service: bool = setting(
        BOOL,
        False,
        doc="Serve the personal access token API at `RESTAUTH_SELF_SERVICE_PATH`. Its paths"
        " always need credentials, whatever the path levels say, and never reach the"
        " application. Needs `RESTAUTH_API_TOKENS=true`.",
    )
    self_service_path: str = setting(
        Kind(STRING.parse, check_api_path),
        DEFAULT_API_PATH,
        doc="Where the API is served (Atlassian's path): `POST` and `GET` there, `DELETE`"
        " below it. Letters, digits, `.`, `_`, `~` and `-` between slashes; no trailing"
        " slash, no globs.",
    )
    self_service_groups: tuple[str, ...] = setting(
        LIST,
        (),
        default_doc="(everyone)",
        doc="Groups whose members may create tokens, by the groups their provider token"
        " carries (a password carries none). Empty: every authenticated user.",
    )
    self_service_admin_groups: tuple[str, ...] = setting(
        LIST,
        (),
        default_doc="(none)",
        doc="Groups whose members list any user's tokens (`GET ...?user=NAME`) and revoke"
        " any token.",
    )
    self_service_from_tokens: bool = setting(
        BOOL,
        False,
        doc="Let an API token create tokens. The new token keeps every restriction of the one"
        " that made it and does not outlive it. Off: only a provider token or a password"
        " creates, so a leaked token cannot make itself permanent.",
    )
    self_service_cors_origins: tuple[str, ...] = setting(
        Kind(LIST.parse, check_origins, ",".join),
        (),
        default_doc="(none)",
        doc="Origins (`https://app.example.com`, exact, as browsers send `Origin`) whose CORS"
        " preflights to the API are answered; `*` is refused.",
    )


# Dataclasses gather fields from the last base to the first: the settings are
# listed (by `restauth config`, in reprs) from MiddlewareSettings to SelfServiceSettings.
@dataclass(frozen=True, kw_only=True)
class Settings(
    SelfServiceSettings,
    CacheSettings,
    AuditSettings,
    LockoutSettings,
    PasswordSettings,
    AccessSettings,
    UpstreamSettings,
    TokenSettings,
    MiddlewareSettings,
):
    """Every setting of the middleware and the CLI, by keyword. See docs/settings.md.

    Each group it is made of is also a type of its own, for the part that
    takes only that group.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.self_service and not self.api_tokens:
            raise ConfigurationError(
                "RESTAUTH_SELF_SERVICE", "needs RESTAUTH_API_TOKENS=true: it makes API tokens"
            )
        api = self.self_service_path
        if (
            self.self_service
            and self.metrics
            and (self.metrics_path == api or self.metrics_path.startswith(api + "/"))
        ):
            # The API answers for its whole subtree first: metrics there would never be served.
            raise ConfigurationError(
                "RESTAUTH_METRICS_PATH",
                f"{self.metrics_path!r} is inside RESTAUTH_SELF_SERVICE_PATH ({api!r});"
                " choose a path outside it",
            )

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
        kwargs: dict[str, Any] = parse_all(cls, values, env_name)
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
        from restauth_wsgi.providers.presets import resolve

        parts = [
            self.realm,
            mask_url(self.token_store) if self.api_tokens else "",
            self.password_file or "",
            *(resolve(p, allow_http=self.allow_http).fingerprint for p in self.providers),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def masked(self) -> dict[str, str]:
        """Every setting as its variable and a printable value, secrets masked."""
        shown = {
            env_name(name): mask_url(declaration.kind.show(getattr(self, name)))
            for name, declaration in declared(self)
        }
        for provider in self.providers:
            shown.update(provider.shown())
        return shown


def _variables() -> list[str]:
    """The variable of every global setting."""
    return [env_name(name) for name, _ in declared(Settings)]


def field_problems(values: Mapping[str, str]) -> list[ConfigurationError]:
    """Every variable of ``values`` that is invalid on its own (not only the first)."""
    from restauth_wsgi.providers.presets import resolve

    found = problems(Settings, values, env_name, skip=("providers",))
    # The providers are judged by the allow_http they would run with; a wrong
    # value of it is reported above, and the providers judged by the default.
    allow_http = default_of(Settings, "allow_http")
    with suppress(ValueError):  # unset or wrong: the default
        allow_http = BOOL.parse(values.get(env_name("allow_http"), ""))
    for name in LIST.parse(values.get(env_name("providers"), "")):
        try:
            resolve(ProviderSettings.from_mapping(name, values), allow_http=allow_http)
        except ConfigurationError as exc:
            found.append(exc)
    return found


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``RESTAUTH_*`` variables in ``environ`` that no setting reads (typos, usually)."""
    known = {*_variables(), SETTINGS_FILE}
    for name in LIST.parse(environ.get(env_name("providers"), "")):
        known |= ProviderSettings.variables_of(name)
    return sorted(k for k in environ if k.startswith(PREFIX) and k not in known)
