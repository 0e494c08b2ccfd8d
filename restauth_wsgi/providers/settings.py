"""The settings of one provider: ``RESTAUTH_<NAME>_*``.

``RESTAUTH_PROVIDERS=corp,github`` names the providers; each reads its own
variables, ``RESTAUTH_CORP_TYPE``, ``RESTAUTH_CORP_DOMAIN``... Which ones a
provider needs depends on its type (the preset); :mod:`.presets` checks that
and names any missing variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.values import (
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
)

#: The types a provider can have: presets, and the two generic ones.
TYPES = (
    "azure",
    "azure-b2c",
    "okta",
    "keycloak",
    "cognito",
    "google",
    "github",
    "slack",
    "gitlab",
    "facebook",
    "oidc",
    "oauth2",
)
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


_ALGORITHMS = Kind(LIST.parse, _check_algorithms, ",".join)
_DURATION = duration_at_least(0)
_OPTIONAL_DURATION = Kind(
    _DURATION.parse,
    lambda v: None if v is None else _DURATION.check(v),
    lambda v: "" if v is None else _DURATION.show(v),
)

#: How each field is parsed, checked and shown; the variable is RESTAUTH_<NAME>_<FIELD>.
KINDS: dict[str, Kind] = {
    "type": one_of(*TYPES, optional=True),
    "issuer": OPTIONAL_STRING,
    "audience": LIST,
    "client_id": OPTIONAL_STRING,
    "client_secret": SECRET,
    "validation": one_of(*VALIDATIONS, optional=True),
    "discovery_url": OPTIONAL_STRING,
    "jwks_url": OPTIONAL_STRING,
    "introspection_url": OPTIONAL_STRING,
    "userinfo_url": OPTIONAL_STRING,
    "introspection_auth": one_of("client_secret_basic", "client_secret_post"),
    "username_attribute": OPTIONAL_LIST,
    "username_lowercase": BOOL,
    "username_strip_domain": Kind(LIST.parse, lambda v: _check_domains(v), ",".join),
    "username_prefix": Kind(STRING.parse, lambda v: _check_prefix(v)),
    "username_regex": REGEX,
    "username_replacement": STRING,
    "groups_attribute": OPTIONAL_LIST,
    "service_accounts": PAIRS,
    "allowed_clients": LIST,
    "any_client": BOOL,
    "team": LIST,
    "require_verified_email": OPTIONAL_BOOL,
    "algorithms": _ALGORITHMS,
    "hmac_secret": SECRET,
    "leeway": int_at_least(0),
    "cache_ttl": _OPTIONAL_DURATION,
    "access_token_type": LIST,
    "token_prefixes": OPTIONAL_LIST,
    "domain": OPTIONAL_STRING,
    "auth_server": OPTIONAL_STRING,
    "tenant": OPTIONAL_STRING,
    "tenant_id": OPTIONAL_STRING,
    "version": one_of("1", "2", optional=True),
    "policy": OPTIONAL_STRING,
    "realm": OPTIONAL_STRING,
    "url": OPTIONAL_STRING,
    "region": OPTIONAL_STRING,
    "user_pool_id": OPTIONAL_STRING,
}


@dataclass(frozen=True)
class ProviderSettings:
    """One provider's settings. See docs/providers.md for each preset's.

    Every field but ``name`` is read from ``RESTAUTH_<NAME>_<FIELD>``.
    """

    name: str
    type: str | None = None
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    validation: str | None = None
    discovery_url: str | None = None
    jwks_url: str | None = None
    introspection_url: str | None = None
    userinfo_url: str | None = None
    introspection_auth: str = "client_secret_basic"
    username_attribute: tuple[str, ...] | None = None
    username_lowercase: bool = False
    username_strip_domain: tuple[str, ...] = ()
    username_prefix: str = ""
    username_regex: str | None = None
    username_replacement: str = r"\g<0>"
    groups_attribute: tuple[str, ...] | None = None
    service_accounts: Mapping[str, str] = field(default_factory=dict)
    allowed_clients: tuple[str, ...] = ()
    any_client: bool = False
    team: tuple[str, ...] = ()
    require_verified_email: bool | None = None
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    hmac_secret: str | None = field(default=None, repr=False)
    leeway: int = 60
    cache_ttl: int | None = None
    access_token_type: tuple[str, ...] = ()
    token_prefixes: tuple[str, ...] | None = None
    domain: str | None = None
    auth_server: str | None = None
    tenant: str | None = None
    tenant_id: str | None = None
    version: str | None = None
    policy: str | None = None
    realm: str | None = None
    url: str | None = None
    region: str | None = None
    user_pool_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                "RESTAUTH_PROVIDERS",
                f"{self.name!r} is not a provider name; use letters and digits,"
                " starting with a letter (it becomes RESTAUTH_<NAME>_...)",
            )
        for spec in fields(self):
            if spec.name == "name":
                continue
            try:
                checked = KINDS[spec.name].check(getattr(self, spec.name))
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(self.variable(spec.name), str(exc)) from None
            object.__setattr__(self, spec.name, checked)
        if self.type is None:
            if self.name.lower() not in TYPES:
                raise ConfigurationError(
                    self.variable("type"),
                    f"required: {self.name!r} is not a preset name, so say which type it"
                    f" is ({', '.join(TYPES)})",
                )
            object.__setattr__(self, "type", self.name.lower())

    @property
    def prefix(self) -> str:
        """``RESTAUTH_<NAME>_``, the start of every variable of this provider."""
        return f"RESTAUTH_{self.name.upper()}_"

    def variable(self, attribute: str) -> str:
        """The environment variable of one field."""
        return self.prefix + attribute.upper()

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[str, str]) -> ProviderSettings:
        """Read the provider ``name`` from strings keyed by variable name.

        :raises ConfigurationError: naming the first variable that is wrong.
        """
        prefix = f"RESTAUTH_{name.upper()}_"
        kwargs: dict[str, Any] = {}
        for attribute, kind in KINDS.items():
            variable = prefix + attribute.upper()
            if variable in values:
                try:
                    kwargs[attribute] = kind.parse(values[variable])
                except ValueError as exc:
                    raise ConfigurationError(variable, str(exc)) from None
        return cls(name=name, **kwargs)

    def shown(self) -> dict[str, str]:
        """The fields that differ from their defaults, by variable, secrets masked."""
        defaults = ProviderSettings(name=self.name, type=self.type)
        return {
            self.variable(spec.name): KINDS[spec.name].show(getattr(self, spec.name))
            for spec in fields(self)
            if spec.name != "name"
            and (spec.name == "type" or getattr(self, spec.name) != getattr(defaults, spec.name))
        }

    def variables(self) -> set[str]:
        """Every variable this provider reads."""
        return {self.variable(attribute) for attribute in KINDS}
