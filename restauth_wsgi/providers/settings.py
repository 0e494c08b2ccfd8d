"""The settings of one provider: ``RESTAUTH_<NAME>_*``.

``RESTAUTH_PROVIDERS=corp,github`` names the providers; each reads its own
variables, ``RESTAUTH_CORP_TYPE``, ``RESTAUTH_CORP_DOMAIN``... Which ones a
provider needs depends on its type (the preset); :mod:`.presets` checks that
and names any missing variable. Each setting is declared once, as the global
ones are (:mod:`restauth_wsgi.config.declaration`), and read and checked by the same
loops; the table of docs/providers.md is written from these declarations.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

from restauth_wsgi.config.declaration import check_all, declared, parse_all, setting
from restauth_wsgi.config.kinds import (
    BOOL,
    LIST,
    OPTIONAL_BOOL,
    OPTIONAL_LIST,
    OPTIONAL_STRING,
    PAIRS,
    REGEX,
    SECRET,
    STRING,
    Kind,
    duration_at_least,
    int_at_least,
    one_of,
    one_of_lazily,
)
from restauth_wsgi.errors import ConfigurationError

#: The ways to validate a bearer token.
VALIDATIONS = ("jwt", "introspection", "userinfo", "check")
#: Asymmetric JWS algorithms: the default allow-list (RFC 8725 section 3.1).
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")


def _check_algorithms(value: object) -> tuple[str, ...]:
    algorithms = LIST.check(value)
    if not algorithms:
        raise ValueError("at least one algorithm is needed")
    for algorithm in algorithms:
        if algorithm not in ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS:
            raise ValueError(
                f"{algorithm!r} is not allowed; choose from {', '.join(ASYMMETRIC_ALGORITHMS)}"
                f" (or {', '.join(HMAC_ALGORITHMS)} with HMAC_SECRET)"
            )
    return tuple(algorithms)


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+")


def _check_domains(value: object) -> tuple[str, ...]:
    if value is True or value == ("true",):
        # Until 0.2 this was a boolean that stripped any domain, which made
        # alice@attacker.example the same user as alice@corp.example.
        raise ValueError(
            "list the e-mail domains to strip (e.g. corp.example); stripping any"
            " domain would make users of other domains the same users as yours"
        )
    if value is False or value == ("false",):
        return ()
    domains = tuple(d.lower() for d in LIST.check(value))
    for domain in domains:
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"{domain!r} is not an e-mail domain, e.g. corp.example")
    return domains


def _check_prefix(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    if len(value) > 32 or any(not c.isprintable() or c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a prefix; use up to 32 printable characters, e.g. gh:")
    return value


def _preset_types() -> tuple[str, ...]:
    from restauth_wsgi.providers.presets import (
        TYPES,  # the presets are built on these settings: asked when checked
    )

    return TYPES


_DURATION = duration_at_least(0)
_OPTIONAL_DURATION = Kind(
    _DURATION.parse,
    lambda v: None if v is None else _DURATION.check(v),
    lambda v: "" if v is None else _DURATION.show(v),
)
# Rows of docs/providers.md that several settings share (one row, listing them).
_CLIENT = "for introspection and check endpoints (and Cognito's audience)"
_ENDPOINT = "override the preset's or discovered endpoints"
_TRANSFORM = "username transforms, above"
_PRESET_PARAMETER = "preset parameters, below"


def provider_variable(name: str, attribute: str) -> str:
    """``RESTAUTH_<NAME>_<ATTRIBUTE>``: the variable of a setting of the provider ``name``."""
    return f"RESTAUTH_{name.upper()}_{attribute.upper()}"


@dataclass(frozen=True)
class ProviderSettings:
    """One provider's settings. See docs/providers.md for each preset's.

    Every field but ``name`` is read from ``RESTAUTH_<NAME>_<FIELD>`` and
    given by keyword.
    """

    name: str
    _: KW_ONLY
    type: str | None = setting(
        one_of_lazily(_preset_types, optional=True),
        None,
        doc="the preset or `oidc`/`oauth2`; defaults to the name when the name is a preset",
    )
    issuer: str | None = setting(
        OPTIONAL_STRING,
        None,
        doc="the issuer URL, exactly as in the tokens' `iss` (presets compute it)",
    )
    audience: tuple[str, ...] = setting(
        LIST,
        (),
        doc="accepted audiences, comma list; required for `jwt` and `introspection` (`*`: any,"
        " introspection only, unsafe)",
    )
    client_id: str | None = setting(OPTIONAL_STRING, None, doc=_CLIENT)
    client_secret: str | None = setting(SECRET, None, doc=_CLIENT)
    validation: str | None = setting(
        one_of(*VALIDATIONS, optional=True),
        None,
        doc="`jwt`, `introspection`, `userinfo`, `check` (default: the preset's best)",
    )
    discovery_url: str | None = setting(OPTIONAL_STRING, None, doc=_ENDPOINT)
    jwks_url: str | None = setting(OPTIONAL_STRING, None, doc=_ENDPOINT)
    introspection_url: str | None = setting(OPTIONAL_STRING, None, doc=_ENDPOINT)
    userinfo_url: str | None = setting(OPTIONAL_STRING, None, doc=_ENDPOINT)
    introspection_auth: str = setting(
        one_of("client_secret_basic", "client_secret_post"),
        "client_secret_basic",
        doc="`client_secret_basic` (default) or `client_secret_post`",
    )
    username_attribute: tuple[str, ...] | None = setting(
        OPTIONAL_LIST,
        None,
        doc="claim paths for `REMOTE_USER`, first present wins (default: the preset's)",
    )
    username_lowercase: bool = setting(BOOL, False, doc=_TRANSFORM)
    username_strip_domain: tuple[str, ...] = setting(
        Kind(LIST.parse, _check_domains, ",".join), (), doc=_TRANSFORM
    )
    username_prefix: str = setting(Kind(STRING.parse, _check_prefix), "", doc=_TRANSFORM)
    username_regex: str | None = setting(REGEX, None, doc=_TRANSFORM)
    username_replacement: str = setting(STRING, r"\g<0>", doc=_TRANSFORM)
    groups_attribute: tuple[str, ...] | None = setting(
        OPTIONAL_LIST,
        None,
        doc="claim paths of groups or roles (default: the preset's)",
    )
    service_accounts: Mapping[str, str] = setting(
        PAIRS,
        factory=dict,
        doc="`client=username,...` for tokens without a user",
    )
    allowed_clients: tuple[str, ...] = setting(
        LIST,
        (),
        doc="only tokens issued to these clients (`client_id`, `azp`, `appid`, `cid`); not with"
        " userinfo",
    )
    any_client: bool = setting(
        BOOL,
        False,
        doc="`true`: accept tokens issued to any client, where the provider cannot tell"
        " (required for Slack, and Okta's org server without `ALLOWED_CLIENTS`)",
    )
    team: tuple[str, ...] = setting(
        LIST,
        (),
        doc="Slack team ids (`https://slack.com/team_id`) whose users are accepted",
    )
    require_verified_email: bool | None = setting(
        OPTIONAL_BOOL,
        None,
        doc="when the username is `email`, require `email_verified` (default: Google and Slack"
        " yes)",
    )
    algorithms: tuple[str, ...] = setting(
        Kind(LIST.parse, _check_algorithms, ",".join),
        ASYMMETRIC_ALGORITHMS,
        doc="JWS algorithms accepted (default RS256-512, PS256-512, ES256-512, EdDSA);"
        " `HS256`-`HS512` only with `HMAC_SECRET` (32+ characters)",
    )
    hmac_secret: str | None = setting(
        SECRET,
        None,
        doc="the secret shared with the provider that `HS256`-`HS512` tokens are signed with,"
        " at least 32 characters; used only when `ALGORITHMS` lists one of them",
    )
    leeway: int = setting(
        int_at_least(0),
        60,
        doc="seconds of clock skew allowed for `exp`/`nbf`/`iat` (default 60)",
    )
    cache_ttl: int | None = setting(
        _OPTIONAL_DURATION,
        None,
        doc="longest reuse of a validated answer (default 300 s; 120 s for userinfo/check)",
    )
    access_token_type: tuple[str, ...] = setting(
        LIST,
        (),
        doc="JWT `typ` headers accepted, e.g. `at+jwt` for RFC 9068 providers (refuses ID tokens)",
    )
    token_prefixes: tuple[str, ...] | None = setting(
        OPTIONAL_LIST,
        None,
        doc="opaque tokens with these prefixes are sent to this provider (a family prefix"
        " listed here overrides the routing above); a provider with prefixes gets no"
        " unprefixed tokens",
    )
    domain: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    auth_server: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    tenant: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    tenant_id: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    version: str | None = setting(one_of("1", "2", optional=True), None, doc=_PRESET_PARAMETER)
    policy: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    realm: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    url: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    region: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)
    user_pool_id: str | None = setting(OPTIONAL_STRING, None, doc=_PRESET_PARAMETER)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                "RESTAUTH_PROVIDERS",
                f"{self.name!r} is not a provider name; use letters and digits,"
                " starting with a letter (it becomes RESTAUTH_<NAME>_...)",
            )
        check_all(self, self.variable)
        if self.type is None:
            if self.name.lower() not in _preset_types():
                raise ConfigurationError(
                    self.variable("type"),
                    f"required: {self.name!r} is not a preset name, so say which type it"
                    f" is ({', '.join(_preset_types())})",
                )
            object.__setattr__(self, "type", self.name.lower())

    @property
    def prefix(self) -> str:
        """``RESTAUTH_<NAME>_``, the start of every variable of this provider."""
        return provider_variable(self.name, "")

    def variable(self, attribute: str) -> str:
        """The environment variable of one field."""
        return provider_variable(self.name, attribute)

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[str, str]) -> ProviderSettings:
        """Read the provider ``name`` from strings keyed by variable name.

        :raises ConfigurationError: naming the first variable that is wrong.
        """
        return cls(name, **parse_all(cls, values, functools.partial(provider_variable, name)))

    def shown(self) -> dict[str, str]:
        """The fields that differ from their defaults, by variable, secrets masked."""
        defaults = ProviderSettings(self.name, type=self.type)
        return {
            self.variable(name): declaration.kind.show(getattr(self, name))
            for name, declaration in declared(self)
            if name == "type" or getattr(self, name) != getattr(defaults, name)
        }

    def variables(self) -> set[str]:
        """Every variable this provider reads."""
        return self.variables_of(self.name)

    @classmethod
    def variables_of(cls, name: str) -> set[str]:
        """Every variable the provider ``name`` reads."""
        return {provider_variable(name, attribute) for attribute, _ in declared(cls)}
